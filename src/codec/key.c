/*-------------------------------------------------------------------------
 *
 * key.c
 *	  Reading a key's group and table id, and the rule of which keys a
 *	  group may touch (see key.h).
 *
 * It exists because apply wrote whatever keys a command or a snapshot
 * named: a command proposed to one group could write any row of any group,
 * the applied index included, and a prefix deletion with an empty key
 * wiped every group.
 *
 * src/codec/key.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "port/pg_bswap.h"

#include "codec/change.h"
#include "codec/command.h"
#include "codec/group.h"
#include "codec/key.h"
#include "codec/txn.h"

/* The group a key belongs to; -1 if the key is too short to have one. */
int
kalam_key_group(const char *key, size_t keylen)
{
	uint16		be;

	if (keylen < KALAM_GROUP_PREFIX_LEN)
		return -1;
	memcpy(&be, key, sizeof(be));
	return pg_ntoh16(be);
}

/* Write the KALAM_GROUP_PREFIX_LEN bytes that begin every key of a group */
void
kalam_key_group_prefix(int group, char *out)
{
	uint16		be = pg_hton16((uint16) group);

	memcpy(out, &be, KALAM_GROUP_PREFIX_LEN);
}

/* The key of a group's parked entry at a log index (KALAM_PARKED_KEY_LEN) */
void
kalam_key_parked(int group, uint64 index, char *out)
{
	uint64		be = pg_hton64(index);

	kalam_key_group_prefix(KALAM_KEY_LOCAL_GROUP, out);
	kalam_key_group_prefix(group, out + KALAM_GROUP_PREFIX_LEN);
	memcpy(out + 2 * KALAM_GROUP_PREFIX_LEN, &be, sizeof(be));
}

/* The table id of a row's key; 0 (a group's own metadata) if too short. */
uint32
kalam_key_table(const char *key, size_t keylen)
{
	uint32		be;

	if (keylen < KALAM_TABLE_PREFIX_LEN)
		return 0;
	memcpy(&be, key + KALAM_GROUP_PREFIX_LEN, sizeof(be));
	return pg_ntoh32(be);
}

bool
kalam_key_has_prefix(const char *key, size_t keylen,
					 const char *prefix, size_t prefixlen)
{
	return keylen >= prefixlen && memcmp(key, prefix, prefixlen) == 0;
}

/* Does the key's part after table id 0 start with tag (a C string)? */
static bool
metadata_tag_is(const char *key, size_t keylen, const char *tag, bool exact)
{
	size_t		taglen = strlen(tag);

	if (exact && keylen != KALAM_TABLE_PREFIX_LEN + taglen)
		return false;
	return kalam_key_has_prefix(key + KALAM_TABLE_PREFIX_LEN,
								keylen - KALAM_TABLE_PREFIX_LEN, tag, taglen);
}

/* Is the key a transaction record, intent or lock (codec/txn.h)? */
static bool
is_txn_key(const char *key, size_t keylen)
{
	return kalam_txn_key_is(key, keylen, false) ||
		kalam_txn_key_is(key, keylen, true) ||
		(keylen > KALAM_LOCK_PREFIX_LEN &&
		 metadata_tag_is(key, keylen, KALAM_KEY_LOCK_TAG, false)) ||
		(keylen == KALAM_TABLE_LOCK_KEY_LEN &&
		 metadata_tag_is(key, keylen, KALAM_KEY_TABLE_LOCK_TAG, false));
}

/*
 * May the group touch the key for this use?  Its group prefix must be the
 * group's; a range must name a table (not table id 0); a data group's
 * rows are table rows, the meta group's are its DDL records and node
 * addresses only; a transaction operation names its "txn/" key; a
 * split's operations name a data group's part keys (codec/command.h); a
 * snapshot also carries the group's applied index and transaction
 * records, intents and locks, and a data group's snapshot its change log
 * (codec/change.h) and parts.  False with *error set if not.
 */
bool
kalam_key_check_scope(int group, KalamKeyUse use, const char *key,
					  size_t keylen, const char **error)
{
	uint32		table_id;

	*error = NULL;
	if (kalam_key_group(key, keylen) != group)
	{
		*error = "key outside the group of the command";
		return false;
	}
	if (keylen < KALAM_TABLE_PREFIX_LEN)
	{
		*error = use == KALAM_KEY_USE_RANGE ?
			"range deletion does not name a table" : "key names no table";
		return false;
	}
	table_id = kalam_key_table(key, keylen);
	if (use == KALAM_KEY_USE_TXN)
	{
		if (kalam_txn_key_is(key, keylen, false) ||
			kalam_txn_key_is(key, keylen, true))
			return true;
		*error = "transaction operation on a key that is not a transaction record";
		return false;
	}
	if (use == KALAM_KEY_USE_SNAPSHOT && table_id == 0 && is_txn_key(key, keylen))
		return true;
	if ((use == KALAM_KEY_USE_SPLIT || use == KALAM_KEY_USE_SNAPSHOT) &&
		group != KALAM_GROUP_META && table_id == 0 &&
		(keylen == KALAM_PART_KEY_LEN ||
		 (use == KALAM_KEY_USE_SPLIT && keylen == KALAM_SPLIT_PREFIX_LEN)) &&
		metadata_tag_is(key, keylen, KALAM_KEY_PART_TAG, false))
		return true;
	if (use == KALAM_KEY_USE_SPLIT)
	{
		*error = "part or split operation on a key that is not a data group's part";
		return false;
	}
	if (use == KALAM_KEY_USE_RANGE && table_id == 0)
	{
		*error = "range deletion of the group's own metadata (table id 0)";
		return false;
	}
	if (use == KALAM_KEY_USE_SNAPSHOT && table_id == 0 &&
		metadata_tag_is(key, keylen, KALAM_KEY_APPLIED_INDEX, true))
		return true;
	if (group == KALAM_GROUP_META)
	{
		if (table_id == 0 && use != KALAM_KEY_USE_RANGE &&
			(metadata_tag_is(key, keylen, KALAM_KEY_DDL_TAG, false) ||
			 metadata_tag_is(key, keylen, KALAM_KEY_NODE_TAG, false)))
			return true;
		*error = "key of the meta group that is neither a DDL record nor a node address";
		return false;
	}
	if (use == KALAM_KEY_USE_SNAPSHOT && table_id == 0 &&
		(metadata_tag_is(key, keylen, KALAM_KEY_CHANGES_PURGED, true) ||
		 (keylen == KALAM_CHANGE_KEY_LEN &&
		  metadata_tag_is(key, keylen, KALAM_KEY_CHANGES_TAG, false))))
		return true;
	if (table_id == 0)
	{
		*error = "key of the group's own metadata (table id 0)";
		return false;
	}
	return true;
}
