/*-------------------------------------------------------------------------
 *
 * snapshot.c
 *	  Writing and reading a Raft group's snapshot (see snapshot.h).
 *
 * The format was written and read inside storage/apply.c, whose reader
 * trusted the row count it was given; it lives here so that the reader is
 * checked and fuzzed with the other decoders.
 *
 * src/codec/snapshot.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "codec/command.h"
#include "codec/key.h"
#include "codec/snapshot.h"

/* each row takes at least its two lengths */
#define ROW_OVERHEAD	(2 * sizeof(uint32))

bool
kalam_snapshot_begin(KalamSnapshotWriter *writer, size_t initial_size)
{
	memset(writer, 0, sizeof(KalamSnapshotWriter));
	writer->cap = Max(initial_size, KALAM_SNAPSHOT_HEADER_SIZE);
	writer->used = KALAM_SNAPSHOT_HEADER_SIZE;
	writer->data = malloc(writer->cap);
	return writer->data != NULL;
}

bool
kalam_snapshot_add(KalamSnapshotWriter *writer, const char *key, size_t keylen,
				   const char *value, size_t vallen)
{
	uint32		klen32 = (uint32) keylen;
	uint32		vlen32 = (uint32) vallen;
	size_t		need = writer->used + ROW_OVERHEAD + keylen + vallen;
	char	   *pos;

	if (keylen > PG_UINT32_MAX || vallen > PG_UINT32_MAX)
	{
		kalam_snapshot_abandon(writer);
		return false;
	}
	if (need > writer->cap)
	{
		char	   *bigger;

		while (need > writer->cap)
			writer->cap *= 2;
		bigger = realloc(writer->data, writer->cap);
		if (bigger == NULL)
		{
			kalam_snapshot_abandon(writer);
			return false;
		}
		writer->data = bigger;
	}
	pos = writer->data + writer->used;
	memcpy(pos, &klen32, sizeof(klen32));
	memcpy(pos + sizeof(klen32), key, keylen);
	memcpy(pos + sizeof(klen32) + keylen, &vlen32, sizeof(vlen32));
	memcpy(pos + ROW_OVERHEAD + keylen, value, vallen);
	writer->used = need;
	writer->count++;
	return true;
}

/* Write the header; data and used are then the snapshot, the caller's. */
void
kalam_snapshot_finish(KalamSnapshotWriter *writer, uint64 applied_index,
					  uint64 required_meta_index)
{
	memset(writer->data, 0, KALAM_SNAPSHOT_HEADER_SIZE);
	writer->data[0] = KALAM_SNAPSHOT_MAGIC;
	writer->data[1] = KALAM_SNAPSHOT_VERSION;
	memcpy(writer->data + 8, &applied_index, 8);
	memcpy(writer->data + 16, &writer->count, 8);
	memcpy(writer->data + 24, &required_meta_index, 8);
}

void
kalam_snapshot_abandon(KalamSnapshotWriter *writer)
{
	free(writer->data);
	writer->data = NULL;
	writer->used = 0;
	writer->cap = 0;
}

bool
kalam_snapshot_open(KalamSnapshotReader *reader, const char *data, size_t len,
					KalamSnapshotHeader *header, const char **error)
{
	int			i;

	*error = NULL;
	if (data == NULL || len < KALAM_SNAPSHOT_HEADER_SIZE)
	{
		*error = "snapshot is shorter than its header";
		return false;
	}
	if (data[0] != KALAM_SNAPSHOT_MAGIC || data[1] != KALAM_SNAPSHOT_VERSION)
	{
		*error = "unknown snapshot format";
		return false;
	}
	for (i = 2; i < 8; i++)
		if (data[i] != 0)
		{
			*error = "reserved bytes of the snapshot header are set";
			return false;
		}
	memcpy(&header->applied_index, data + 8, 8);
	memcpy(&header->count, data + 16, 8);
	memcpy(&header->required_meta_index, data + 24, 8);
	if (header->count > (len - KALAM_SNAPSHOT_HEADER_SIZE) / ROW_OVERHEAD)
	{
		*error = "row count exceeds what the snapshot holds";
		return false;
	}
	if (header->required_meta_index > KALAM_COMMAND_MAX_META_INDEX)
	{
		*error = "required meta index is beyond any meta group position";
		return false;
	}
	/* no log gets that far either (see KALAM_COMMAND_MAX_META_INDEX) */
	if (header->applied_index > KALAM_COMMAND_MAX_META_INDEX)
	{
		*error = "applied index is beyond any log position";
		return false;
	}
	reader->pos = data + KALAM_SNAPSHOT_HEADER_SIZE;
	reader->end = data + len;
	reader->remaining = header->count;
	return true;
}

/*
 * The next row.  False at the end (*error NULL), or with *error set if the
 * snapshot is truncated or bytes follow its last row.
 */
bool
kalam_snapshot_next(KalamSnapshotReader *reader, const char **key,
					size_t *keylen, const char **value, size_t *vallen,
					const char **error)
{
	size_t		avail = (size_t) (reader->end - reader->pos);
	uint32		len32;

	*error = NULL;
	if (reader->remaining == 0)
	{
		if (avail != 0)
			*error = "bytes follow the last row of the snapshot";
		return false;
	}
	if (avail < sizeof(len32))
	{
		*error = "snapshot is truncated";
		return false;
	}
	memcpy(&len32, reader->pos, sizeof(len32));
	avail -= sizeof(len32);
	if ((size_t) len32 > avail || avail - len32 < sizeof(len32))
	{
		*error = "snapshot is truncated";
		return false;
	}
	*key = reader->pos + sizeof(len32);
	*keylen = len32;
	avail -= len32 + sizeof(len32);
	memcpy(&len32, *key + *keylen, sizeof(len32));
	if ((size_t) len32 > avail)
	{
		*error = "snapshot is truncated";
		return false;
	}
	*value = *key + *keylen + sizeof(len32);
	*vallen = len32;
	reader->pos = *value + *vallen;
	reader->remaining--;
	return true;
}

/*
 * Read the whole snapshot of a group: well formed, every key one the group
 * may hold (codec/key.h), and the applied index row, if any, the header's.
 * False with *error set if not.
 */
bool
kalam_snapshot_check(const char *data, size_t len, int group,
					 KalamSnapshotHeader *header, const char **error)
{
	KalamSnapshotReader reader;
	const char *key;
	const char *value;
	size_t		keylen;
	size_t		vallen;

	if (!kalam_snapshot_open(&reader, data, len, header, error))
		return false;
	while (kalam_snapshot_next(&reader, &key, &keylen, &value, &vallen, error))
	{
		if (!kalam_key_check_scope(group, KALAM_KEY_USE_SNAPSHOT, key, keylen,
								   error))
			return false;
		/* the group's applied index, if carried, is the header's */
		if (kalam_key_table(key, keylen) == 0 &&
			keylen == KALAM_TABLE_PREFIX_LEN + strlen(KALAM_KEY_APPLIED_INDEX) &&
			memcmp(key + KALAM_TABLE_PREFIX_LEN, KALAM_KEY_APPLIED_INDEX,
				   keylen - KALAM_TABLE_PREFIX_LEN) == 0 &&
			(vallen != sizeof(uint64) ||
			 memcmp(value, &header->applied_index, sizeof(uint64)) != 0))
		{
			*error = "the snapshot's applied index row differs from its header";
			return false;
		}
	}
	return *error == NULL;
}
