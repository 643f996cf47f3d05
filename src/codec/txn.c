/*-------------------------------------------------------------------------
 *
 * txn.c
 *	  Keys and values of transactions that span several Raft groups.
 *
 * See codec/txn.h for the layout.  Pure functions: no palloc, no ereport,
 * so that apply runs them inside libraft callbacks and the fuzz harness
 * (test/fuzz/fuzz_txn.c) runs the reader on any bytes.
 *
 * src/codec/txn.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "port/pg_bswap.h"

#include "codec/command.h"
#include "codec/group.h"
#include "codec/txn.h"

/* group prefix, table id 0 and tag: the start of every key made here */
static void
metadata_key(char *key, int group, const char *tag)
{
	uint16		be = pg_hton16((uint16) group);

	memcpy(key, &be, KALAM_GROUP_PREFIX_LEN);
	memset(key + KALAM_GROUP_PREFIX_LEN, 0, 4);
	memcpy(key + KALAM_TABLE_PREFIX_LEN, tag, strlen(tag));
}

/* key: KALAM_TXN_KEY_LEN bytes; an intent's, or a record's */
void
kalam_txn_key(char *key, int group, const char *txid, bool intent)
{
	metadata_key(key, group, intent ? KALAM_KEY_INTENT_TAG : KALAM_KEY_TXN_TAG);
	memcpy(key + KALAM_TXN_PREFIX_LEN, txid, KALAM_TXN_ID_LEN);
}

/* prefix: KALAM_TXN_PREFIX_LEN bytes */
void
kalam_txn_prefix(char *prefix, int group, bool intent)
{
	metadata_key(prefix, group, intent ? KALAM_KEY_INTENT_TAG : KALAM_KEY_TXN_TAG);
}

/* Is the key, whatever its group, an intent's (or a record's) key? */
bool
kalam_txn_key_is(const char *key, size_t keylen, bool intent)
{
	const char *tag = intent ? KALAM_KEY_INTENT_TAG : KALAM_KEY_TXN_TAG;

	return keylen == KALAM_TXN_KEY_LEN &&
		memcmp(key + KALAM_GROUP_PREFIX_LEN, "\0\0\0\0", 4) == 0 &&
		memcmp(key + KALAM_TABLE_PREFIX_LEN, tag, strlen(tag)) == 0;
}

/* prefix: KALAM_LOCK_PREFIX_LEN bytes; a row's lock key appends its key */
void
kalam_txn_lock_prefix(char *prefix, int group)
{
	metadata_key(prefix, group, KALAM_KEY_LOCK_TAG);
}

/* key: KALAM_TABLE_LOCK_KEY_LEN bytes */
void
kalam_txn_table_lock_key(char *key, int group, uint32 table_id)
{
	uint32		be = pg_hton32(table_id);

	metadata_key(key, group, KALAM_KEY_TABLE_LOCK_TAG);
	memcpy(key + KALAM_TABLE_LOCK_PREFIX_LEN, &be, sizeof(be));
}

/* prefix: KALAM_TABLE_LOCK_PREFIX_LEN bytes */
void
kalam_txn_table_lock_prefix(char *prefix, int group)
{
	metadata_key(prefix, group, KALAM_KEY_TABLE_LOCK_TAG);
}

void
kalam_txn_header(KalamTxnHeader *header, KalamTxnState state,
				 int coordinator, int nparticipants, TimestampTz time)
{
	memset(header, 0, sizeof(KalamTxnHeader));
	header->version = KALAM_TXN_VERSION;
	header->state = (uint8) state;
	header->coordinator = (uint16) coordinator;
	header->nparticipants = (uint16) nparticipants;
	header->time = time;
}

/*
 * Decode a "txn/" value; false with *error if any of it is malformed.  An
 * intent's command must decode whole and start with its prepare operation.
 */
bool
kalam_txn_read(const char *value, size_t vallen, KalamTxnRecord *record,
			   const char **error)
{
	KalamTxnHeader header;
	const char *rest = value + sizeof(header);
	size_t		restlen;
	int			i;

	*error = NULL;
	if (vallen < sizeof(header))
	{
		*error = "transaction record is shorter than its header";
		return false;
	}
	memcpy(&header, value, sizeof(header));
	restlen = vallen - sizeof(header);
	if (header.version != KALAM_TXN_VERSION)
	{
		*error = "transaction record of an unknown format version";
		return false;
	}
	if (header.reserved != 0)
	{
		*error = "reserved bytes of a transaction record are set";
		return false;
	}
	if (header.coordinator >= KALAM_MAX_GROUPS)
	{
		*error = "transaction record names a group that cannot exist";
		return false;
	}
	memset(record, 0, sizeof(KalamTxnRecord));
	record->coordinator = header.coordinator;
	record->time = header.time;
	switch (header.state)
	{
		case KALAM_TXN_PREPARED:
			{
				KalamCommandReader reader;
				KalamOp		op;

				if (header.nparticipants != 0)
				{
					*error = "transaction intent lists participants";
					return false;
				}
				if (!kalam_command_validate(rest, restlen, error) ||
					!kalam_command_open(&reader, rest, restlen, error))
					return false;
				if (!kalam_command_next(&reader, &op, error) ||
					op.kind != KALAM_OP_TXN_PREPARE)
				{
					*error = "transaction intent does not hold a prepare command";
					return false;
				}
				record->command = rest;
				record->commandlen = restlen;
				break;
			}
		case KALAM_TXN_COMMITTED:
			if (header.nparticipants == 0 ||
				header.nparticipants > KALAM_MAX_GROUPS ||
				restlen != (size_t) header.nparticipants * sizeof(uint16))
			{
				*error = "transaction record with a bad list of participants";
				return false;
			}
			record->nparticipants = header.nparticipants;
			record->participants = rest;
			for (i = 0; i < record->nparticipants; i++)
				if (kalam_txn_participant(record, i) >= KALAM_MAX_GROUPS)
				{
					*error = "transaction record names a group that cannot exist";
					return false;
				}
			break;
		case KALAM_TXN_ABORTED:
			if (header.nparticipants != 0 || restlen != 0)
			{
				*error = "aborted transaction record with contents";
				return false;
			}
			break;
		default:
			*error = "transaction record in an unknown state";
			return false;
	}
	record->state = (KalamTxnState) header.state;
	return true;
}

/* The i-th participant group of a committed record. */
int
kalam_txn_participant(const KalamTxnRecord *record, int i)
{
	uint16		group;

	memcpy(&group, record->participants + i * sizeof(uint16), sizeof(uint16));
	return group;
}
