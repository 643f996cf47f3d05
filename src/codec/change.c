/*-------------------------------------------------------------------------
 *
 * change.c
 *	  Keys and values of the change log (see change.h).
 *
 * Written by apply inside libraft callbacks and read from snapshots that
 * other nodes sent, so nothing here allocates or raises an error.
 *
 * src/codec/change.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "port/pg_bswap.h"

#include "codec/change.h"

static void
metadata_prefix(char *buf, int group)
{
	uint16		be = pg_hton16((uint16) group);

	memcpy(buf, &be, sizeof(be));
	memset(buf + KALAM_GROUP_PREFIX_LEN, 0, 4);
}

/* The first KALAM_CHANGE_PREFIX_LEN bytes of every change key of a group */
void
kalam_change_prefix(char *buf, int group)
{
	metadata_prefix(buf, group);
	memcpy(buf + KALAM_TABLE_PREFIX_LEN, KALAM_KEY_CHANGES_TAG,
		   sizeof(KALAM_KEY_CHANGES_TAG) - 1);
}

/* A change's key, KALAM_CHANGE_KEY_LEN bytes */
void
kalam_change_key(char *buf, const KalamChangePos *pos)
{
	uint64		index = pg_hton64(pos->index);
	uint32		n = pg_hton32(pos->n);

	kalam_change_prefix(buf, pos->group);
	memcpy(buf + KALAM_CHANGE_PREFIX_LEN, &index, sizeof(index));
	memcpy(buf + KALAM_CHANGE_PREFIX_LEN + 8, &n, sizeof(n));
}

/* Where the purge records the last change it removed */
void
kalam_change_purged_key(char *buf, int group)
{
	metadata_prefix(buf, group);
	memcpy(buf + KALAM_TABLE_PREFIX_LEN, KALAM_KEY_CHANGES_PURGED,
		   sizeof(KALAM_KEY_CHANGES_PURGED) - 1);
}

/* The position a change key names; false if it is no change key. */
bool
kalam_change_read_key(const char *key, size_t keylen, KalamChangePos *pos)
{
	char		prefix[KALAM_CHANGE_PREFIX_LEN];
	uint64		index;
	uint32		n;

	if (keylen != KALAM_CHANGE_KEY_LEN || kalam_key_group(key, keylen) < 0)
		return false;
	pos->group = kalam_key_group(key, keylen);
	kalam_change_prefix(prefix, pos->group);
	if (memcmp(key, prefix, sizeof(prefix)) != 0)
		return false;
	memcpy(&index, key + KALAM_CHANGE_PREFIX_LEN, sizeof(index));
	memcpy(&n, key + KALAM_CHANGE_PREFIX_LEN + 8, sizeof(n));
	pos->index = pg_ntoh64(index);
	pos->n = pg_ntoh32(n);
	return true;
}

/* Order of two positions of one group */
int
kalam_change_pos_cmp(const KalamChangePos *a, const KalamChangePos *b)
{
	if (a->index != b->index)
		return a->index < b->index ? -1 : 1;
	if (a->n != b->n)
		return a->n < b->n ? -1 : 1;
	return 0;
}

void
kalam_change_header(KalamChangeHeader *header, KalamChangeOp op, uint8 flags,
					size_t keylen, TimestampTz time)
{
	memset(header, 0, sizeof(KalamChangeHeader));
	header->version = KALAM_CHANGE_VERSION;
	header->op = (uint8) op;
	header->flags = flags;
	header->keylen = (uint32) keylen;
	header->time = time;
}

/*
 * Decode a change from its key and value; false with *error if either is
 * malformed.  change->key and change->row point into value.
 */
bool
kalam_change_read(const char *key, size_t keylen, const char *value,
				  size_t vallen, KalamChange *change, const char **error)
{
	KalamChangeHeader header;
	size_t		rest;

	*error = NULL;
	memset(change, 0, sizeof(KalamChange));
	if (!kalam_change_read_key(key, keylen, &change->pos))
	{
		*error = "not a change key";
		return false;
	}
	if (vallen < sizeof(header))
	{
		*error = "change shorter than its header";
		return false;
	}
	memcpy(&header, value, sizeof(header));
	if (header.version != KALAM_CHANGE_VERSION)
	{
		*error = "unknown change format version";
		return false;
	}
	if (header.op < KALAM_CHANGE_INSERT || header.op > KALAM_CHANGE_TRUNCATE)
	{
		*error = "unknown change operation";
		return false;
	}
	if ((header.flags & ~KALAM_CHANGE_EXPIRED) != 0 ||
		((header.flags & KALAM_CHANGE_EXPIRED) != 0 &&
		 header.op != KALAM_CHANGE_DELETE))
	{
		*error = "unknown change flags";
		return false;
	}
	rest = vallen - sizeof(header);
	if (header.keylen < KALAM_TABLE_PREFIX_LEN || header.keylen > rest)
	{
		*error = "change key length out of range";
		return false;
	}
	change->op = (KalamChangeOp) header.op;
	change->expired = (header.flags & KALAM_CHANGE_EXPIRED) != 0;
	change->time = header.time;
	change->key = value + sizeof(header);
	change->keylen = header.keylen;
	if (kalam_key_group(change->key, change->keylen) != change->pos.group ||
		kalam_key_table(change->key, change->keylen) == 0)
	{
		*error = "change of a row outside its group";
		return false;
	}
	rest -= header.keylen;
	if (change->op == KALAM_CHANGE_TRUNCATE)
	{
		if (rest != 0)
		{
			*error = "truncate change with a row";
			return false;
		}
		return true;
	}
	change->row = change->key + header.keylen;
	change->rowlen = rest;
	return true;
}

/*
 * The user of a user or stream table's row key (or truncated prefix), the
 * escaped bytes after the table id (kv/keys.c), as a C string.
 */
bool
kalam_change_key_user(const char *key, size_t keylen, char *user,
					  size_t usersize, const char **error)
{
	size_t		i = KALAM_TABLE_PREFIX_LEN;
	size_t		len = 0;

	*error = NULL;
	while (i < keylen)
	{
		char		c = key[i++];

		if (c == '\0')
		{
			if (i >= keylen)
				break;
			if (key[i] == (char) 0x01)
			{
				user[len] = '\0';
				return true;
			}
			if (key[i] != (char) 0xFF)
				break;
			i++;
			*error = "user name holds a zero byte";
			return false;
		}
		if (len + 1 >= usersize)
		{
			*error = "user name too long";
			return false;
		}
		user[len++] = c;
	}
	*error = "key holds no terminated user name";
	return false;
}
