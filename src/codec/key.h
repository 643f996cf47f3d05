/*-------------------------------------------------------------------------
 *
 * key.h
 *	  The parts of a RocksDB key that apply checks, and the rule of which
 *	  keys a group's commands and snapshots may touch.
 *
 * A key is its Raft group (2 bytes, big endian), its table id (4 bytes,
 * big endian), then the row's part (kv/keys.c encodes it).  Table id
 * 0 holds a group's own metadata: its applied index ("applied_index"), and
 * in the meta group the DDL records ("ddl/...") and the nodes' client
 * addresses ("node/..."), in every group the records, intents and locks of
 * transactions across groups (codec/txn.h), in a data group the parts of
 * a command split across log entries ("part/", codec/command.h).  Commands and snapshots come from other nodes, so
 * apply checks every key they name against this rule before anything is
 * written; the check reads bytes only (no palloc, no ereport), inside
 * libraft callbacks and in the fuzz harness (test/fuzz/).
 *
 * src/codec/key.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KALAM_CODEC_KEY_H
#define KALAM_CODEC_KEY_H

#define KALAM_GROUP_PREFIX_LEN	2
#define KALAM_TABLE_PREFIX_LEN	(KALAM_GROUP_PREFIX_LEN + 4)

/* what follows table id 0 in the group metadata's keys */
#define KALAM_KEY_APPLIED_INDEX	"applied_index"
#define KALAM_KEY_DDL_TAG		"ddl/"
#define KALAM_KEY_NODE_TAG		"node/"

/*
 * Keys of no group (group 0xFFFF, above every group's): this node's own
 * scratch, which no command may name (its group is none of theirs) and no
 * snapshot carries.  The entries parked out of memory (kv/parked.c)
 * are there, under their group (2 bytes) and log index (8 bytes), both big
 * endian.
 */
#define KALAM_KEY_LOCAL_GROUP	0xFFFF
#define KALAM_PARKED_KEY_LEN	(KALAM_GROUP_PREFIX_LEN + 2 + 8)

/* What a key is used for, as far as the rule goes */
typedef enum KalamKeyUse
{
	KALAM_KEY_USE_ROW,			/* a command's operation on one key */
	KALAM_KEY_USE_RANGE,		/* a command's deletion of every key under it */
	KALAM_KEY_USE_TXN,			/* a transaction operation's record key */
	KALAM_KEY_USE_SPLIT,		/* a part's key, or a split's prefix */
	KALAM_KEY_USE_SNAPSHOT		/* a row of a snapshot of the group */
} KalamKeyUse;

/*
 * RocksDB's bytewise order of two keys (a key before every longer key it
 * is a prefix of): <0, 0 or >0, as memcmp
 */
static inline int
kalam_key_compare(const char *a, size_t alen, const char *b, size_t blen)
{
	int			c = memcmp(a, b, Min(alen, blen));

	return c != 0 ? c : (alen > blen) - (alen < blen);
}

extern int	kalam_key_group(const char *key, size_t keylen);
extern void kalam_key_group_prefix(int group, char *out);
extern void kalam_key_parked(int group, uint64 index, char *out);
extern uint32 kalam_key_table(const char *key, size_t keylen);
extern bool kalam_key_has_prefix(const char *key, size_t keylen,
								 const char *prefix, size_t prefixlen);
extern bool kalam_key_check_scope(int group, KalamKeyUse use,
								  const char *key, size_t keylen,
								  const char **error);

#endif							/* KALAM_CODEC_KEY_H */
