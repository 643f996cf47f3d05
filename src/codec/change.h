/*-------------------------------------------------------------------------
 *
 * change.h
 *	  The change log: what apply wrote, kept per group for the notifier
 *	  and for kalam.changes.
 *
 * Live queries need every node to tell its own listeners what it applied,
 * in apply order, and a client that reconnects to another node must be
 * able to ask for what it missed since a commit position.  Both read one
 * log that apply writes in the same RocksDB batch as the rows, so it is
 * identical on every node (the same commands at the same positions) and
 * never disagrees with the rows: a notification goes out only after the
 * row it announces is readable, and a crash loses neither or both.
 *
 * A change's key is its group's metadata (table id 0), "changes/", the log
 * position of the command that made it (8 bytes, big endian) and its
 * number at that position (4 bytes, big endian; the commands of one log
 * entry share its position and are numbered on in entry order): key order
 * is commit order.  "changes_purged" holds the position of the last change that
 * the retention purge removed, so that a request for changes since an
 * older position can tell that some are gone.
 *
 * A change's value (native byte order, like a stored row's header): format
 * version, operation, flags, a reserved byte, the length of the row key
 * (4), the command's timestamp (8), the row key, then the row payload
 * (codec/row.h): the new row of an insert or update, the deleted row of a
 * delete, nothing for a truncate (whose key is the prefix it deleted).
 * The reader checks every length and enum (no palloc, no ereport; fuzzed
 * in test/fuzz/), since the log arrives in snapshots from other nodes.
 *
 * src/codec/change.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KALAM_CODEC_CHANGE_H
#define KALAM_CODEC_CHANGE_H

#include "datatype/timestamp.h"

#include "codec/key.h"

#define KALAM_KEY_CHANGES_TAG	"changes/"
#define KALAM_KEY_CHANGES_PURGED	"changes_purged"

#define KALAM_CHANGE_PREFIX_LEN \
	(KALAM_TABLE_PREFIX_LEN + sizeof(KALAM_KEY_CHANGES_TAG) - 1)
#define KALAM_CHANGE_KEY_LEN	(KALAM_CHANGE_PREFIX_LEN + 12)
#define KALAM_CHANGE_PURGED_KEY_LEN \
	(KALAM_TABLE_PREFIX_LEN + sizeof(KALAM_KEY_CHANGES_PURGED) - 1)

#define KALAM_CHANGE_VERSION	1

typedef enum KalamChangeOp
{
	KALAM_CHANGE_INSERT = 1,
	KALAM_CHANGE_UPDATE,
	KALAM_CHANGE_DELETE,
	KALAM_CHANGE_TRUNCATE
} KalamChangeOp;

#define KALAM_CHANGE_EXPIRED	0x01	/* a delete by the stream ttl */

/* A change's position: group, log index, number within the command */
typedef struct KalamChangePos
{
	int			group;
	uint64		index;
	uint32		n;
} KalamChangePos;

/* The fixed head of a change's value */
typedef struct KalamChangeHeader
{
	uint8		version;
	uint8		op;
	uint8		flags;
	uint8		reserved;
	uint32		keylen;
	TimestampTz time;
} KalamChangeHeader;

/* A decoded change; key and row point into the value */
typedef struct KalamChange
{
	KalamChangePos pos;
	KalamChangeOp op;
	bool		expired;
	TimestampTz time;
	const char *key;
	size_t		keylen;
	const char *row;			/* NULL for a truncate */
	size_t		rowlen;
} KalamChange;

/* keys (fixed-size buffers: apply cannot palloc) */
extern void kalam_change_prefix(char *buf, int group);
extern void kalam_change_key(char *buf, const KalamChangePos *pos);
extern void kalam_change_purged_key(char *buf, int group);
extern bool kalam_change_read_key(const char *key, size_t keylen,
								  KalamChangePos *pos);
extern int	kalam_change_pos_cmp(const KalamChangePos *a,
								 const KalamChangePos *b);

/* values: the head written before the key and the row */
extern void kalam_change_header(KalamChangeHeader *header, KalamChangeOp op,
								uint8 flags, size_t keylen, TimestampTz time);
extern bool kalam_change_read(const char *key, size_t keylen,
							  const char *value, size_t vallen,
							  KalamChange *change, const char **error);

/* the user part of a user or stream table's row key */
extern bool kalam_change_key_user(const char *key, size_t keylen,
								  char *user, size_t usersize,
								  const char **error);

#endif							/* KALAM_CODEC_CHANGE_H */
