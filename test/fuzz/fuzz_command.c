/*-------------------------------------------------------------------------
 *
 * fuzz_command.c
 *	  Fuzz harness of the command decoder (src/codec/command.c).
 *
 * Seeds are commands of every operation kind built with the encoder, and
 * each is checked to decode back to what was encoded.  Every input must
 * either be refused with a message or decode to operations that lie inside
 * it, as many as the header says.
 *
 * test/fuzz/fuzz_command.c
 *
 *-------------------------------------------------------------------------
 */
#include "fuzz.h"

#include "codec/command.h"

const char *fuzz_name = "command";

typedef struct SeedOp
{
	KalamOpKind kind;
	const char *key;
	const char *value;
	size_t		vallen;
} SeedOp;

static void
add_command(const SeedOp *ops, int nops, uint64 required)
{
	StringInfoData buf;
	KalamCommandReader reader;
	KalamOp		op;
	const char *error;
	int			i;

	initStringInfo(&buf);
	kalam_command_begin(&buf, 1234567);
	for (i = 0; i < nops; i++)
		kalam_command_add(&buf, ops[i].kind, i * 7, ops[i].key,
						  strlen(ops[i].key), ops[i].value, ops[i].vallen);
	kalam_command_require_meta_index(&buf, required);

	/* the encoding decodes back to what was encoded */
	if (!kalam_command_open(&reader, buf.data, buf.len, &error) ||
		reader.header.nops != (uint32) nops ||
		reader.header.required_meta_index != required ||
		reader.header.timestamp != 1234567)
		fuzz_fail("a seed does not decode");
	for (i = 0; kalam_command_next(&reader, &op, &error); i++)
		if (op.kind != ops[i].kind || op.expected_version != (uint64) i * 7 ||
			op.keylen != strlen(ops[i].key) ||
			memcmp(op.key, ops[i].key, op.keylen) != 0 ||
			op.vallen != ops[i].vallen ||
			(op.vallen > 0 && memcmp(op.value, ops[i].value, op.vallen) != 0))
			fuzz_fail("a seed's operation decodes to something else");
	if (error != NULL || i != nops)
		fuzz_fail("a seed's operations do not decode");
	fuzz_add_seed(buf.data, buf.len);
	pfree(buf.data);
}

void
fuzz_seeds(void)
{
	TimestampTz cutoff = 99;
	char		big[1000];
	SeedOp		ops[] = {
		{KALAM_OP_INSERT, "\x00\x02\x00\x00\x01\x00user1\x00\x01" "k1", "row", 3},
		{KALAM_OP_INSERT_IF_ABSENT, "\x00\x02\x00\x00\x01\x00" "k2", "r", 1},
		{KALAM_OP_UPDATE, "\x00\x02\x00\x00\x01\x00" "k3", "updated row", 11},
		{KALAM_OP_DELETE, "\x00\x02\x00\x00\x01\x00" "k4", NULL, 0},
		{KALAM_OP_DELETE_PREFIX, "\x00\x02\x00\x00\x01\x00", NULL, 0},
		{KALAM_OP_EXPIRE, "\x00\x02\x00\x00\x01\x00", (const char *) &cutoff,
		sizeof(cutoff)},
		{KALAM_OP_PUT, "\x00\x00\x00\x00\x00\x00node/", "127.0.0.1:5432", 14},
	};
	SeedOp		large = {KALAM_OP_INSERT, "\x00\x03\x00\x00\x00\x07" "big", big, sizeof(big)};
	int			i;

	memset(big, 'x', sizeof(big));
	add_command(ops, 0, 0);
	for (i = 0; i < (int) lengthof(ops); i++)
		add_command(&ops[i], 1, i * 1000);
	add_command(ops, lengthof(ops), 42);
	add_command(&large, 1, KALAM_COMMAND_MAX_META_INDEX);
}

void
fuzz_one(const char *data, size_t len)
{
	KalamCommandReader reader;
	KalamOp		op;
	const char *error;
	bool		valid = kalam_command_validate(data, len, &error);
	uint32		n = 0;

	if (!valid && error == NULL)
		fuzz_fail("refused without a message");
	if (!kalam_command_open(&reader, data, len, &error))
	{
		if (valid)
			fuzz_fail("validated but does not open");
		return;
	}
	while (kalam_command_next(&reader, &op, &error))
	{
		if (op.key < data || op.key + op.keylen > data + len ||
			op.value < data || op.value + op.vallen > data + len ||
			op.kind < KALAM_OP_INSERT || op.kind > KALAM_OP_PUT)
			fuzz_fail("an operation lies outside the command");
		fuzz_touch(op.key, op.keylen);
		fuzz_touch(op.value, op.vallen);
		n++;
	}
	if (n > reader.header.nops)
		fuzz_fail("more operations than the header says");
	if (valid != (error == NULL && n == reader.header.nops))
		fuzz_fail("validate and a walk disagree");
	if (reader.header.required_meta_index > KALAM_COMMAND_MAX_META_INDEX)
		fuzz_fail("an impossible meta index was accepted");
	(void) kalam_command_reads_ranges(data, len);
}
