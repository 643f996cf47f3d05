/*-------------------------------------------------------------------------
 *
 * txn.h
 *	  The records of transactions that span several Raft groups: their
 *	  keys, the intents that hold their keys, and the record that decides.
 *
 * A COMMIT that writes to one group stays one command in one log entry.
 * One that writes to several commits in two phases (src/txn/commit.c has
 * the protocol, README "Transactions across groups" its failure cases):
 * every group but the coordinator (the lowest group the transaction
 * writes) first prepares its part, which apply checks as if it ran and
 * then keeps as an intent instead of writing it; the coordinator's own
 * command writes its part and the transaction record "committed" in one
 * entry; the other groups then resolve their intents from that record.
 *
 * Keys, all under the group's metadata (table id 0):
 *	 "txn/" + transaction id (16 bytes): in the coordinator, the record
 *			(committed or aborted)
 *	 "txi/" + transaction id: in a participant, the intent (prepared)
 *	 "lock/" + row key: a row held by a prepared transaction; value: its id
 *	 "tlock/" + table id (4 bytes, big endian): a table whose rows a
 *			prepared transaction deletes (TRUNCATE, DROP); value: its id
 *
 * A "txn/" value (native byte order, like a stored row's header): format
 * version, state, coordinator group (2), participant count (2), 2
 * reserved bytes, the time it was written (8); then, for an intent, the
 * prepare command it holds (codec/command.h), for a committed record the
 * participant groups (2 bytes each), for an aborted one nothing.  These
 * values arrive in snapshots from other nodes: the reader checks every
 * length, enum and count and the held command whole (no palloc, no
 * ereport; fuzzed in test/fuzz/).
 *
 * src/codec/txn.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KALAM_CODEC_TXN_H
#define KALAM_CODEC_TXN_H

#include "datatype/timestamp.h"

#include "codec/key.h"

#define KALAM_TXN_ID_LEN		16
#define KALAM_KEY_TXN_TAG		"txn/"
#define KALAM_KEY_INTENT_TAG	"txi/"	/* as long as KALAM_KEY_TXN_TAG */
#define KALAM_KEY_LOCK_TAG		"lock/"
#define KALAM_KEY_TABLE_LOCK_TAG	"tlock/"

#define KALAM_TXN_PREFIX_LEN \
	(KALAM_TABLE_PREFIX_LEN + sizeof(KALAM_KEY_TXN_TAG) - 1)
#define KALAM_TXN_KEY_LEN		(KALAM_TXN_PREFIX_LEN + KALAM_TXN_ID_LEN)
#define KALAM_LOCK_PREFIX_LEN \
	(KALAM_TABLE_PREFIX_LEN + sizeof(KALAM_KEY_LOCK_TAG) - 1)
#define KALAM_TABLE_LOCK_PREFIX_LEN \
	(KALAM_TABLE_PREFIX_LEN + sizeof(KALAM_KEY_TABLE_LOCK_TAG) - 1)
#define KALAM_TABLE_LOCK_KEY_LEN	(KALAM_TABLE_LOCK_PREFIX_LEN + 4)

#define KALAM_TXN_VERSION		1

typedef enum KalamTxnState
{
	KALAM_TXN_PREPARED = 1,		/* an intent, in a participant */
	KALAM_TXN_COMMITTED,		/* the record, in the coordinator */
	KALAM_TXN_ABORTED			/* the record, written by recovery */
} KalamTxnState;

/*
 * How long the coordinator keeps a transaction's record: recovery resolves
 * an intent within kalam.transaction_timeout; the record then outlives
 * any COMMIT still in flight from its origin (bounded by
 * kalam.leader_wait_timeout) many times over.
 */
#define KALAM_TXN_RECORD_RETENTION_MS	(60 * 1000)

/*
 * What TXN_RESOLVE's one-byte value asks for: commit (or abort), and
 * whether the intent's writes delete a range, which makes the resolution
 * read the database and go alone in its log entry (see
 * kalam_command_needs_own_entry).
 */
#define KALAM_TXN_RESOLVE_ABORT		0
#define KALAM_TXN_RESOLVE_COMMIT	1
#define KALAM_TXN_RESOLVE_RANGES	2

typedef struct KalamTxnHeader
{
	uint8		version;
	uint8		state;
	uint16		coordinator;
	uint16		nparticipants;
	uint16		reserved;
	TimestampTz time;
} KalamTxnHeader;

/* a decoded "txn/" value; pointers into the value */
typedef struct KalamTxnRecord
{
	KalamTxnState state;
	int			coordinator;
	TimestampTz time;
	int			nparticipants;
	const char *participants;	/* 2 bytes each, native order */
	const char *command;		/* an intent's prepare command */
	size_t		commandlen;
} KalamTxnRecord;

extern void kalam_txn_key(char *key, int group, const char *txid,
						  bool intent);
extern void kalam_txn_prefix(char *prefix, int group, bool intent);
extern bool kalam_txn_key_is(const char *key, size_t keylen, bool intent);
extern void kalam_txn_lock_prefix(char *prefix, int group);
extern void kalam_txn_table_lock_key(char *key, int group, uint32 table_id);
extern void kalam_txn_table_lock_prefix(char *prefix, int group);
extern void kalam_txn_header(KalamTxnHeader *header, KalamTxnState state,
							 int coordinator, int nparticipants,
							 TimestampTz time);
extern bool kalam_txn_read(const char *value, size_t vallen,
						   KalamTxnRecord *record, const char **error);
extern int	kalam_txn_participant(const KalamTxnRecord *record, int i);

#endif							/* KALAM_CODEC_TXN_H */
