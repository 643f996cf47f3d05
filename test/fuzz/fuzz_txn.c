/*-------------------------------------------------------------------------
 *
 * fuzz_txn.c
 *	  Fuzz harness of the reader of transaction records and intents
 *	  (src/codec/txn.c).
 *
 * Records and intents of transactions across groups arrive in snapshots
 * from other nodes, so their reader sees bytes from the network.  Seeds
 * are values built as apply builds them: an intent holding a prepare
 * command, a committed record with its participants, an aborted record.
 * An accepted value must be in a known state, name only groups that can
 * exist, keep its participants and command inside the value, and an
 * intent's command must decode whole and start with its prepare.
 *
 * test/fuzz/fuzz_txn.c
 *
 *-------------------------------------------------------------------------
 */
#include "fuzz.h"

#include "lib/stringinfo.h"

#include "codec/command.h"
#include "codec/group.h"
#include "codec/txn.h"

const char *fuzz_name = "txn";

static void
add_value(KalamTxnState state, int coordinator, int nparticipants,
		  const char *data, size_t datalen)
{
	KalamTxnHeader header;
	StringInfoData buf;

	kalam_txn_header(&header, state, coordinator, nparticipants, 42);
	initStringInfo(&buf);
	appendBinaryStringInfo(&buf, (char *) &header, sizeof(header));
	appendBinaryStringInfo(&buf, data, datalen);
	fuzz_add_seed(buf.data, buf.len);
	pfree(buf.data);
}

void
fuzz_seeds(void)
{
	static const char row_key[] = "\x00\x02\x00\x00\x01\x00" "k1";
	char		txn_key[KALAM_TXN_KEY_LEN];
	uint16		groups[2] = {2, 3};
	StringInfoData command;
	char		key[KALAM_TABLE_LOCK_KEY_LEN];

	kalam_txn_key(txn_key, 2, "0123456789abcdef", true);
	initStringInfo(&command);
	kalam_command_begin(&command, 1234567);
	kalam_command_add(&command, KALAM_OP_TXN_PREPARE, 0, txn_key,
					  sizeof(txn_key), (const char *) groups, sizeof(uint16));
	kalam_command_add(&command, KALAM_OP_INSERT, 0, row_key,
					  sizeof(row_key) - 1, "row", 3);
	kalam_command_require_meta_index(&command, 7);
	add_value(KALAM_TXN_PREPARED, 1, 0, command.data, command.len);
	add_value(KALAM_TXN_COMMITTED, 1, 2, (const char *) groups, sizeof(groups));
	add_value(KALAM_TXN_ABORTED, 1, 0, NULL, 0);
	pfree(command.data);

	/* the keys are where codec/txn.h says */
	kalam_txn_table_lock_key(key, 2, 0x01020304);
	if (memcmp(key + KALAM_TABLE_LOCK_PREFIX_LEN, "\x01\x02\x03\x04", 4) != 0 ||
		memcmp(txn_key + KALAM_TXN_PREFIX_LEN, "0123456789abcdef",
			   KALAM_TXN_ID_LEN) != 0 || !kalam_txn_key_is(txn_key, sizeof(txn_key), true) ||
		kalam_txn_key_is(txn_key, sizeof(txn_key), false))
		fuzz_fail("a key is not laid out as documented");
}

void
fuzz_one(const char *data, size_t len)
{
	KalamTxnRecord record;
	KalamCommandReader reader;
	KalamOp		op;
	const char *error;
	int			i;

	if (!kalam_txn_read(data, len, &record, &error))
	{
		if (error == NULL)
			fuzz_fail("refused without a message");
		return;
	}
	if (record.coordinator < 0 || record.coordinator >= KALAM_MAX_GROUPS)
		fuzz_fail("a coordinator that cannot exist was accepted");
	switch (record.state)
	{
		case KALAM_TXN_PREPARED:
			if (record.command < data ||
				record.command + record.commandlen > data + len)
				fuzz_fail("an intent's command lies outside the value");
			if (!kalam_command_validate(record.command, record.commandlen, &error) ||
				!kalam_command_open(&reader, record.command, record.commandlen, &error) ||
				!kalam_command_next(&reader, &op, &error) ||
				op.kind != KALAM_OP_TXN_PREPARE)
				fuzz_fail("an intent without a whole prepare command was accepted");
			fuzz_touch(record.command, record.commandlen);
			break;
		case KALAM_TXN_COMMITTED:
			if (record.nparticipants < 1 ||
				record.participants + record.nparticipants * sizeof(uint16) > data + len)
				fuzz_fail("participants lie outside the value");
			for (i = 0; i < record.nparticipants; i++)
				if (kalam_txn_participant(&record, i) >= KALAM_MAX_GROUPS)
					fuzz_fail("a participant that cannot exist was accepted");
			break;
		case KALAM_TXN_ABORTED:
			if (len != sizeof(KalamTxnHeader))
				fuzz_fail("an aborted record with contents was accepted");
			break;
		default:
			fuzz_fail("a record in an unknown state was accepted");
	}
}
