/*-------------------------------------------------------------------------
 *
 * command.h
 *	  The binary record that carries every write of one transaction.
 *
 * A command is what a backend hands to the kalam worker at COMMIT and what
 * the apply function executes; a Raft log entry carries one or more of
 * them (entry.h).  It is read in place from its buffer, without copying
 * the rows.  It crosses processes and the network, so the reader trusts
 * nothing: every length, count and kind is checked against the buffer, and
 * a failure is a static message, never an error raised: the reader needs
 * neither palloc nor ereport, so it runs inside libraft callbacks and in
 * the fuzz harness (test/fuzz/).
 *
 * Layout (native byte order; all nodes of a cluster share an architecture):
 *	 header: magic 'K', format version, 2 reserved bytes (zero), operation
 *			 count (4), timestamp (8), required meta index (8)
 *	 each operation: kind (1), 3 reserved bytes (zero), key length (4),
 *			 value length (4), expected version (8), key bytes, value bytes
 *	 nothing after the last operation
 *
 * src/codec/command.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KALAM_COMMAND_H
#define KALAM_COMMAND_H

#include "datatype/timestamp.h"
#include "lib/stringinfo.h"

#include "codec/key.h"

#define KALAM_COMMAND_MAGIC		'K'
#define KALAM_COMMAND_VERSION	1

/*
 * The highest meta group position a command may require.  Beyond it the
 * command is refused where it is decoded, on every node alike, instead of
 * parking its group forever: 2^48 entries take 1,700 years at the 5,100
 * commits/s measured here (design.md).
 */
#define KALAM_COMMAND_MAX_META_INDEX	(UINT64CONST(1) << 48)

/*
 * A command of at least this many inserts, in strictly increasing key
 * order, is a bulk insert: apply checks its keys with one forward pass
 * over the database and writes it in a batch of its own (kv/apply.c).
 */
#define KALAM_BULK_MIN_OPS	256

typedef enum KalamOpKind
{
	KALAM_OP_INSERT = 1,		/* fails if the key exists */
	KALAM_OP_INSERT_IF_ABSENT,	/* does nothing if the key exists */
	KALAM_OP_UPDATE,			/* fails unless the row has expected_version */
	KALAM_OP_DELETE,			/* fails unless the row has expected_version */
	KALAM_OP_DELETE_PREFIX,		/* deletes every row whose key starts with
								 * key; no value */
	KALAM_OP_EXPIRE,			/* deletes rows of a key range written
								 * before a cut-off (KalamExpireHeader) */
	KALAM_OP_PUT,				/* writes the key whatever it holds */

	/*
	 * Transactions across groups (codec/txn.h); key: the transaction's
	 * intent key ("txi/": PREPARE, RESOLVE) or record key ("txn/": COMMIT,
	 * DECIDE, FORGET) in the command's group.  PREPARE and COMMIT come
	 * first in a command and the transaction's writes to the group follow
	 * them; DECIDE, RESOLVE and FORGET stand alone.
	 */
	KALAM_OP_TXN_PREPARE,		/* check the writes, keep them as an intent;
								 * value: the coordinator group (2 bytes) */
	KALAM_OP_TXN_COMMIT,		/* apply the writes, record "committed";
								 * value: the participant groups (2 bytes
								 * each) */
	KALAM_OP_TXN_DECIDE,		/* record "aborted" unless a record exists;
								 * no value */
	KALAM_OP_TXN_RESOLVE,		/* apply or drop the group's intent; value:
								 * KALAM_TXN_RESOLVE_COMMIT or _ABORT */
	KALAM_OP_TXN_FORGET,		/* remove the record; no value */

	/*
	 * A command larger than kalam.max_entry_size travels in parts, each in
	 * a log entry of its own (fdw/writeset.c): PART stores one part, itself
	 * a whole command of row writes, under the split's key in the group's
	 * table id 0; SPLIT then applies the parts in order as one command, all
	 * or nothing, and removes them (kv/apply.c).  Each is alone in its
	 * command, SPLIT alone in its log entry.
	 */
	KALAM_OP_PART,				/* key: the part's (KALAM_PART_KEY_LEN);
								 * value: the part */
	KALAM_OP_SPLIT				/* key: the split's prefix
								 * (KALAM_SPLIT_PREFIX_LEN); value:
								 * KalamSplitHeader */
} KalamOpKind;

#define KALAM_OP_IS_TXN(kind) \
	((kind) >= KALAM_OP_TXN_PREPARE && (kind) <= KALAM_OP_TXN_FORGET)
#define KALAM_OP_LAST			KALAM_OP_SPLIT

/*
 * A split's parts are keyed by the split's id (8 random bytes the backend
 * draws) and their sequence number (4 bytes, big endian, from 0) after the
 * tag, in table id 0 of a data group.
 */
#define KALAM_KEY_PART_TAG		"part/"
#define KALAM_SPLIT_ID_LEN		8
#define KALAM_PARTS_PREFIX_LEN	(KALAM_TABLE_PREFIX_LEN + 5)	/* the group's */
#define KALAM_SPLIT_PREFIX_LEN	(KALAM_PARTS_PREFIX_LEN + KALAM_SPLIT_ID_LEN)
#define KALAM_PART_KEY_LEN		(KALAM_SPLIT_PREFIX_LEN + 4)
#define KALAM_SPLIT_MAX_PARTS	(1 << 20)

typedef struct KalamSplitHeader
{
	uint32		nparts;			/* 1 .. KALAM_SPLIT_MAX_PARTS */
	uint32		flags;			/* KALAM_SPLIT_* */
} KalamSplitHeader;

#define KALAM_SPLIT_BULK		0x1 /* the parts make one bulk insert */
#define KALAM_SPLIT_ABORT		0x2 /* remove the parts, apply nothing */

/*
 * An expiry (KALAM_OP_EXPIRE) deletes the rows of one key range of one
 * table that were written before a cut-off, and examines at most
 * max_rows stored rows of the range, in key order: whatever a table holds,
 * its entry does a bounded amount of work on the worker's loop.  Its key
 * is the range's first key (a table's prefix, or a key under it); its
 * value is this header, then the range's end: a key of the same table
 * after the first, excluded; none for the end of the table.  An expiry is
 * alone in its command, and that command alone in its log entry
 * (kalam_command_needs_own_entry), so one entry examines at most
 * KALAM_EXPIRE_MAX_ROWS rows.  The jobs worker cuts each table into such
 * ranges (jobs/jobs_worker.c).
 *
 * The limit keeps an entry well inside the election timeout (1 s): here,
 * with every row expired, an entry of 10,000 rows took 85-105 ms to apply
 * and one of 100,000 rows 580 ms, and held the loop for 1.8 s with the
 * write of its batch (bench/ttl_purge.sh).
 */
typedef struct KalamExpireHeader
{
	TimestampTz cutoff;			/* rows written before it are expired */
	uint32		max_rows;		/* 1 .. KALAM_EXPIRE_MAX_ROWS */
	uint32		reserved;		/* zero */
} KalamExpireHeader;

#define KALAM_EXPIRE_MAX_ROWS	20000

typedef struct KalamCommandHeader
{
	char		magic;
	uint8		version;
	uint16		reserved;
	uint32		nops;
	TimestampTz timestamp;
	uint64		required_meta_index;
} KalamCommandHeader;

typedef struct KalamOpHeader
{
	uint8		kind;
	uint8		reserved[3];
	uint32		keylen;
	uint32		vallen;
	uint64		expected_version;
} KalamOpHeader;

/* one decoded operation; key and value point into the command buffer */
typedef struct KalamOp
{
	KalamOpKind kind;
	uint64		expected_version;
	const char *key;
	size_t		keylen;
	const char *value;
	size_t		vallen;
} KalamOp;

typedef struct KalamCommandReader
{
	KalamCommandHeader header;
	const char *pos;
	const char *end;
	uint32		remaining;
} KalamCommandReader;

/* writing (backends, the kalam worker) */
extern void kalam_command_begin(StringInfo buf, TimestampTz timestamp);
extern void kalam_command_add(StringInfo buf, KalamOpKind kind,
							  uint64 expected_version,
							  const char *key, size_t keylen,
							  const char *value, size_t vallen);
extern void kalam_command_require_meta_index(StringInfo buf,
											 uint64 meta_index);
extern void kalam_command_add_split(StringInfo buf, int group,
									const char *split_id, uint32 nparts,
									uint32 flags);
extern void kalam_command_parts_prefix(char *prefix, int group);
extern void kalam_command_part_key(char *key, int group, const char *split_id,
								   uint32 seq);
extern void kalam_command_add_expire(StringInfo buf,
									 const char *start, size_t startlen,
									 const char *end, size_t endlen,
									 TimestampTz cutoff, uint32 max_rows);

/* reading (apply; no palloc, no ereport): false and *error on refusal */
extern bool kalam_command_open(KalamCommandReader *reader, const char *buf,
							   size_t len, const char **error);
extern bool kalam_command_next(KalamCommandReader *reader, KalamOp *op,
							   const char **error);
extern bool kalam_command_validate(const char *buf, size_t len,
								   const char **error);
extern void kalam_command_expire_range(const KalamOp *op,
									   KalamExpireHeader *expire,
									   const char **end, size_t *endlen);
extern bool kalam_command_reads_ranges(const char *command, size_t length);
extern bool kalam_command_is_bulk_insert(const char *command, size_t length);
extern bool kalam_command_only_deletes_ranges(const char *command,
											  size_t length);
extern bool kalam_command_needs_own_entry(const char *command, size_t length);
extern bool kalam_command_is_split(const char *command, size_t length);
extern bool kalam_command_txn(const char *buf, size_t len, KalamOp *txn_op,
							  const char **error);

#endif							/* KALAM_COMMAND_H */
