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

#include "port/pg_bswap.h"

#include "codec/command.h"
#include "codec/key.h"

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

/* Commands of a transaction across groups, as txn/commit.c builds them */
static void
add_txn_seeds(void)
{
	static const char record_key[] = "\x00\x02\x00\x00\x00\x00txn/0123456789abcdef";
	static const char intent_key[] = "\x00\x02\x00\x00\x00\x00txi/0123456789abcdef";
	static const char row_key[] = "\x00\x02\x00\x00\x01\x00" "k1";
	uint16		groups[2] = {1, 3};
	char		commit = 1;
	struct
	{
		KalamOpKind kind;
		const char *value;
		size_t		vallen;
		bool		writes;
	}			seeds[] = {
		{KALAM_OP_TXN_PREPARE, (const char *) groups, sizeof(uint16), true},
		{KALAM_OP_TXN_COMMIT, (const char *) groups, sizeof(groups), true},
		{KALAM_OP_TXN_DECIDE, NULL, 0, false},
		{KALAM_OP_TXN_RESOLVE, &commit, 1, false},
		{KALAM_OP_TXN_FORGET, NULL, 0, false},
	};
	int			i;

	for (i = 0; i < (int) lengthof(seeds); i++)
	{
		StringInfoData buf;

		initStringInfo(&buf);
		kalam_command_begin(&buf, 1234567);
		bool		intent = (seeds[i].kind == KALAM_OP_TXN_PREPARE ||
							  seeds[i].kind == KALAM_OP_TXN_RESOLVE);

		kalam_command_add(&buf, seeds[i].kind, 0,
						  intent ? intent_key : record_key,
						  sizeof(record_key) - 1,
						  seeds[i].value, seeds[i].vallen);
		if (seeds[i].writes)
		{
			kalam_command_add(&buf, KALAM_OP_UPDATE, 5, row_key,
							  sizeof(row_key) - 1, "row", 3);
			kalam_command_add(&buf, KALAM_OP_DELETE_PREFIX, 0, row_key, 6,
							  NULL, 0);
		}
		kalam_command_require_meta_index(&buf, 7);
		fuzz_add_seed(buf.data, buf.len);
		pfree(buf.data);
	}
}

/* Expiries (KalamExpireHeader): of a whole table, and of a range in one */
static void
add_expire_seeds(void)
{
	static const char table[] = "\x00\x02\x00\x00\x01\x00";
	static const char start[] = "\x00\x02\x00\x00\x01\x00user1\x00k1";
	static const char end[] = "\x00\x02\x00\x00\x01\x00user1\x00k9";
	struct
	{
		const char *start;
		size_t		startlen;
		const char *end;
		size_t		endlen;
	}			seeds[] = {
		{table, sizeof(table) - 1, NULL, 0},
		{start, sizeof(start) - 1, end, sizeof(end) - 1},
	};
	int			i;

	for (i = 0; i < (int) lengthof(seeds); i++)
	{
		StringInfoData buf;
		KalamCommandReader reader;
		KalamOp		op;
		KalamExpireHeader expire;
		const char *decoded_end;
		size_t		decoded_endlen;
		const char *error;

		initStringInfo(&buf);
		kalam_command_begin(&buf, 1234567);
		kalam_command_add_expire(&buf, seeds[i].start, seeds[i].startlen,
								 seeds[i].end, seeds[i].endlen, 99, 10000);
		if (!kalam_command_open(&reader, buf.data, buf.len, &error) ||
			!kalam_command_next(&reader, &op, &error) ||
			op.kind != KALAM_OP_EXPIRE || op.keylen != seeds[i].startlen ||
			memcmp(op.key, seeds[i].start, op.keylen) != 0)
			fuzz_fail("an expire seed does not decode");
		kalam_command_expire_range(&op, &expire, &decoded_end, &decoded_endlen);
		if (expire.cutoff != 99 || expire.max_rows != 10000 ||
			decoded_endlen != seeds[i].endlen ||
			(decoded_endlen > 0 &&
			 memcmp(decoded_end, seeds[i].end, decoded_endlen) != 0))
			fuzz_fail("an expire seed's range decodes to something else");
		if (!kalam_command_validate(buf.data, buf.len, &error) ||
			!kalam_command_needs_own_entry(buf.data, buf.len))
			fuzz_fail("an expire seed is refused or may share its entry");
		fuzz_add_seed(buf.data, buf.len);
		pfree(buf.data);
	}
}

/* A bulk insert: KALAM_BULK_MIN_OPS + 1 inserts, keys increasing */
static void
add_bulk_seed(void)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	kalam_command_begin(&buf, 1234567);
	for (i = 0; i <= KALAM_BULK_MIN_OPS; i++)
	{
		char		key[10] = "\x00\x03\x00\x00\x01\x00";
		uint32		be = pg_hton32((uint32) i);

		memcpy(key + 6, &be, 4);
		kalam_command_add(&buf, KALAM_OP_INSERT, 0, key, sizeof(key), "r", 1);
	}
	kalam_command_require_meta_index(&buf, 3);
	if (!kalam_command_is_bulk_insert(buf.data, buf.len))
		fuzz_fail("the bulk seed is not a bulk insert");
	fuzz_add_seed(buf.data, buf.len);
	pfree(buf.data);
}

/*
 * A split's part (a command of writes inside a command) and the split
 * that applies its parts, as fdw/writeset.c builds them
 */
static void
add_split_seeds(void)
{
	static const char row_key[] = "\x00\x02\x00\x00\x01\x00" "k1";
	static const char split_id[KALAM_SPLIT_ID_LEN] = "splitid";
	char		key[KALAM_PART_KEY_LEN];
	StringInfoData part;
	StringInfoData buf;
	KalamCommandReader reader;
	KalamOp		op;
	KalamSplitHeader split;
	const char *error;

	initStringInfo(&part);
	kalam_command_begin(&part, 1234567);
	kalam_command_add(&part, KALAM_OP_INSERT, 0, row_key, sizeof(row_key) - 1,
					  "row", 3);
	kalam_command_part_key(key, 2, split_id, 3);
	initStringInfo(&buf);
	kalam_command_begin(&buf, 1234567);
	kalam_command_add(&buf, KALAM_OP_PART, 0, key, sizeof(key), part.data,
					  part.len);
	if (!kalam_command_validate(buf.data, buf.len, &error) ||
		!kalam_command_needs_own_entry(buf.data, buf.len) ||
		kalam_command_is_split(buf.data, buf.len))
		fuzz_fail("a part seed does not decode as one");
	fuzz_add_seed(buf.data, buf.len);

	kalam_command_begin(&buf, 1234567);
	kalam_command_add_split(&buf, 2, split_id, 4, KALAM_SPLIT_BULK);
	if (!kalam_command_open(&reader, buf.data, buf.len, &error) ||
		!kalam_command_next(&reader, &op, &error) ||
		op.kind != KALAM_OP_SPLIT || op.keylen != KALAM_SPLIT_PREFIX_LEN ||
		memcmp(op.key, key, KALAM_SPLIT_PREFIX_LEN) != 0 ||
		!kalam_command_is_split(buf.data, buf.len))
		fuzz_fail("a split seed does not decode as one");
	memcpy(&split, op.value, sizeof(split));
	if (split.nparts != 4 || split.flags != KALAM_SPLIT_BULK)
		fuzz_fail("a split seed's header decodes to something else");
	fuzz_add_seed(buf.data, buf.len);
	pfree(buf.data);
	pfree(part.data);
}

void
fuzz_seeds(void)
{
	char		big[1000];
	SeedOp		ops[] = {
		{KALAM_OP_INSERT, "\x00\x02\x00\x00\x01\x00user1\x00\x01" "k1", "row", 3},
		{KALAM_OP_INSERT_IF_ABSENT, "\x00\x02\x00\x00\x01\x00" "k2", "r", 1},
		{KALAM_OP_UPDATE, "\x00\x02\x00\x00\x01\x00" "k3", "updated row", 11},
		{KALAM_OP_DELETE, "\x00\x02\x00\x00\x01\x00" "k4", NULL, 0},
		{KALAM_OP_DELETE_PREFIX, "\x00\x02\x00\x00\x01\x00", NULL, 0},
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
	add_txn_seeds();
	add_expire_seeds();
	add_bulk_seed();
	add_split_seeds();
}

/*
 * A command's place in a transaction across groups: a transaction
 * operation only first, PREPARE and COMMIT followed by writes only (and
 * PREPARE by one at least), DECIDE and RESOLVE alone.
 */
static void
check_txn(const char *data, size_t len, bool valid)
{
	KalamCommandReader reader;
	KalamOp		txn_op;
	KalamOp		op;
	const char *error;
	uint32		n = 0;

	if (!kalam_command_txn(data, len, &txn_op, &error))
	{
		if (error == NULL)
			fuzz_fail("transaction rule refused without a message");
		return;
	}
	if (!valid)
		fuzz_fail("transaction rule accepted an invalid command");
	(void) kalam_command_open(&reader, data, len, &error);
	while (kalam_command_next(&reader, &op, &error))
	{
		if (n++ == 0)
		{
			if (KALAM_OP_IS_TXN(op.kind) != (txn_op.kind != 0))
				fuzz_fail("transaction operation not reported");
			continue;
		}
		if (KALAM_OP_IS_TXN(op.kind) ||
			(txn_op.kind != 0 &&
			 (op.kind == KALAM_OP_EXPIRE || op.kind == KALAM_OP_PUT)))
			fuzz_fail("a transaction operation or expiry accepted after the first");
	}
	if ((txn_op.kind == KALAM_OP_TXN_DECIDE || txn_op.kind == KALAM_OP_TXN_RESOLVE ||
		 txn_op.kind == KALAM_OP_TXN_FORGET) && n != 1)
		fuzz_fail("a decision or resolution with other operations accepted");
	if (txn_op.kind == KALAM_OP_TXN_PREPARE && n < 2)
		fuzz_fail("a prepare without writes accepted");
	if (txn_op.kind == KALAM_OP_TXN_RESOLVE && (uint8) txn_op.value[0] > 3)
		fuzz_fail("a resolution with unknown flags accepted");
}

/*
 * An accepted expiry is alone in its command, which goes alone in its
 * entry; its row limit is within bounds and its range lies in one table,
 * its end (if any) after its start.
 */
static void
check_expire(const char *data, size_t len)
{
	KalamCommandReader reader;
	KalamOp		op;
	KalamExpireHeader expire;
	const char *end;
	size_t		endlen;
	const char *error;
	int			c;

	if (!kalam_command_open(&reader, data, len, &error))
		return;
	while (kalam_command_next(&reader, &op, &error))
	{
		if (op.kind != KALAM_OP_EXPIRE)
			continue;
		if (reader.header.nops != 1 ||
			!kalam_command_needs_own_entry(data, len))
			fuzz_fail("an expiry that shares its command or entry accepted");
		if (op.keylen < KALAM_TABLE_PREFIX_LEN || op.vallen < sizeof(expire))
			fuzz_fail("an expiry without a table or a header accepted");
		kalam_command_expire_range(&op, &expire, &end, &endlen);
		if (expire.max_rows == 0 || expire.max_rows > KALAM_EXPIRE_MAX_ROWS ||
			expire.reserved != 0)
			fuzz_fail("an expiry with a bad row limit accepted");
		if (endlen == 0)
			continue;
		c = memcmp(op.key, end, Min(op.keylen, endlen));
		if (endlen < KALAM_TABLE_PREFIX_LEN ||
			memcmp(op.key, end, KALAM_TABLE_PREFIX_LEN) != 0 ||
			c > 0 || (c == 0 && op.keylen >= endlen))
			fuzz_fail("an expiry of a range that is not in one table, in order, accepted");
	}
}

/*
 * An accepted part or split is alone in its command, which goes alone in
 * its entry; its key has its size, a part is not empty, a split's header
 * is in range.
 */
static void
check_split(const char *data, size_t len)
{
	KalamCommandReader reader;
	KalamOp		op;
	KalamSplitHeader split;
	const char *error;

	(void) kalam_command_open(&reader, data, len, &error);
	while (kalam_command_next(&reader, &op, &error))
	{
		if (op.kind != KALAM_OP_PART && op.kind != KALAM_OP_SPLIT)
			continue;
		if (reader.header.nops != 1 || !kalam_command_needs_own_entry(data, len))
			fuzz_fail("a part or split that shares its command or entry accepted");
		if (kalam_command_is_split(data, len) != (op.kind == KALAM_OP_SPLIT))
			fuzz_fail("a split not reported as one");
		if (op.kind == KALAM_OP_PART &&
			(op.keylen != KALAM_PART_KEY_LEN || op.vallen == 0))
			fuzz_fail("a part with a bad key or no value accepted");
		if (op.kind == KALAM_OP_PART)
			continue;
		if (op.keylen != KALAM_SPLIT_PREFIX_LEN || op.vallen != sizeof(split))
			fuzz_fail("a split with a bad key or value accepted");
		memcpy(&split, op.value, sizeof(split));
		if (split.nparts == 0 || split.nparts > KALAM_SPLIT_MAX_PARTS ||
			(split.flags & ~(KALAM_SPLIT_BULK | KALAM_SPLIT_ABORT)) != 0)
			fuzz_fail("a split with a bad header accepted");
	}
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
			op.kind < KALAM_OP_INSERT || op.kind > KALAM_OP_LAST)
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
	if (kalam_command_is_bulk_insert(data, len) &&
		(!valid || reader.header.nops < KALAM_BULK_MIN_OPS ||
		 !kalam_command_needs_own_entry(data, len)))
		fuzz_fail("a bulk insert that is not one");
	check_txn(data, len, valid);
	if (valid)
	{
		check_expire(data, len);
		check_split(data, len);
	}
}
