/*-------------------------------------------------------------------------
 *
 * snapshot.c
 *	  Writing and reading a Raft group's snapshot descriptor and the chunks
 *	  of a snapshot transfer (see snapshot.h).
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

void
kalam_snapshot_write_descriptor(char *out, int group, uint64 applied_index)
{
	int32		group32 = group;

	memset(out, 0, KALAM_SNAPSHOT_DESCRIPTOR_SIZE);
	out[0] = KALAM_SNAPSHOT_MAGIC;
	out[1] = KALAM_SNAPSHOT_VERSION;
	memcpy(out + 8, &group32, 4);
	memcpy(out + 16, &applied_index, 8);
}

bool
kalam_snapshot_read_descriptor(const char *data, size_t len,
							   KalamSnapshotDescriptor *desc,
							   const char **error)
{
	int32		group32;
	int			i;

	*error = NULL;
	if (data == NULL || len != KALAM_SNAPSHOT_DESCRIPTOR_SIZE)
	{
		*error = "snapshot descriptor of the wrong size";
		return false;
	}
	if (data[0] != KALAM_SNAPSHOT_MAGIC || data[1] != KALAM_SNAPSHOT_VERSION)
	{
		*error = "unknown snapshot format";
		return false;
	}
	for (i = 2; i < 16; i++)
		if (data[i] != 0 && (i < 8 || i >= 12))
		{
			*error = "reserved bytes of the snapshot descriptor are set";
			return false;
		}
	memcpy(&group32, data + 8, 4);
	memcpy(&desc->applied_index, data + 16, 8);
	desc->group = group32;
	/* no log gets that far (see KALAM_COMMAND_MAX_META_INDEX) */
	if (desc->applied_index > KALAM_COMMAND_MAX_META_INDEX)
	{
		*error = "applied index is beyond any log position";
		return false;
	}
	return true;
}

bool
kalam_chunk_begin(KalamChunkWriter *writer, size_t reserve, size_t initial_size)
{
	memset(writer, 0, sizeof(KalamChunkWriter));
	writer->reserve = reserve;
	writer->used = reserve + KALAM_CHUNK_HEADER_SIZE;
	writer->cap = Max(initial_size, writer->used);
	writer->data = malloc(writer->cap);
	return writer->data != NULL;
}

bool
kalam_chunk_add(KalamChunkWriter *writer, const char *key, size_t keylen,
				const char *value, size_t vallen)
{
	uint32		klen32 = (uint32) keylen;
	uint32		vlen32 = (uint32) vallen;
	size_t		need = writer->used + ROW_OVERHEAD + keylen + vallen;
	char	   *pos;

	if (keylen > PG_UINT32_MAX || vallen > PG_UINT32_MAX ||
		writer->count == PG_UINT32_MAX)
	{
		kalam_chunk_abandon(writer);
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
			kalam_chunk_abandon(writer);
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

/*
 * Write the header (its count is the writer's); data and used are then
 * the chunk after reserve bytes, the caller's.
 */
void
kalam_chunk_finish(KalamChunkWriter *writer, const KalamChunkHeader *header)
{
	char	   *out = writer->data + writer->reserve;

	memcpy(out, &header->session, 8);
	memcpy(out + 8, &header->applied_index, 8);
	memcpy(out + 16, &header->required_meta_index, 8);
	memcpy(out + 24, &header->flags, 4);
	memcpy(out + 28, &writer->count, 4);
}

void
kalam_chunk_abandon(KalamChunkWriter *writer)
{
	free(writer->data);
	writer->data = NULL;
	writer->used = 0;
	writer->cap = 0;
}

bool
kalam_chunk_open(KalamChunkReader *reader, const char *data, size_t len,
				 KalamChunkHeader *header, const char **error)
{
	*error = NULL;
	if (data == NULL || len < KALAM_CHUNK_HEADER_SIZE)
	{
		*error = "snapshot chunk is shorter than its header";
		return false;
	}
	memcpy(&header->session, data, 8);
	memcpy(&header->applied_index, data + 8, 8);
	memcpy(&header->required_meta_index, data + 16, 8);
	memcpy(&header->flags, data + 24, 4);
	memcpy(&header->count, data + 28, 4);
	if ((header->flags & ~KALAM_CHUNK_FLAGS) != 0)
	{
		*error = "unknown flags in a snapshot chunk";
		return false;
	}
	if ((header->flags & (KALAM_CHUNK_BEHIND | KALAM_CHUNK_REFUSED)) != 0 &&
		(header->count != 0 || (header->flags & KALAM_CHUNK_LAST) != 0))
	{
		*error = "a refused snapshot chunk carries rows";
		return false;
	}
	if (header->count > (len - KALAM_CHUNK_HEADER_SIZE) / ROW_OVERHEAD)
	{
		*error = "row count exceeds what the snapshot chunk holds";
		return false;
	}
	if (header->required_meta_index > KALAM_COMMAND_MAX_META_INDEX)
	{
		*error = "required meta index is beyond any meta group position";
		return false;
	}
	if (header->applied_index > KALAM_COMMAND_MAX_META_INDEX)
	{
		*error = "applied index is beyond any log position";
		return false;
	}
	reader->pos = data + KALAM_CHUNK_HEADER_SIZE;
	reader->end = data + len;
	reader->remaining = header->count;
	return true;
}

/*
 * The next row.  False at the end (*error NULL), or with *error set if the
 * chunk is truncated or bytes follow its last row.
 */
bool
kalam_chunk_next(KalamChunkReader *reader, const char **key, size_t *keylen,
				 const char **value, size_t *vallen, const char **error)
{
	size_t		avail = (size_t) (reader->end - reader->pos);
	uint32		len32;

	*error = NULL;
	if (reader->remaining == 0)
	{
		if (avail != 0)
			*error = "bytes follow the last row of the snapshot chunk";
		return false;
	}
	if (avail < sizeof(len32))
	{
		*error = "snapshot chunk is truncated";
		return false;
	}
	memcpy(&len32, reader->pos, sizeof(len32));
	avail -= sizeof(len32);
	if ((size_t) len32 > avail || avail - len32 < sizeof(len32))
	{
		*error = "snapshot chunk is truncated";
		return false;
	}
	*key = reader->pos + sizeof(len32);
	*keylen = len32;
	avail -= len32 + sizeof(len32);
	memcpy(&len32, *key + *keylen, sizeof(len32));
	if ((size_t) len32 > avail)
	{
		*error = "snapshot chunk is truncated";
		return false;
	}
	*value = *key + *keylen + sizeof(len32);
	*vallen = len32;
	reader->pos = *value + *vallen;
	reader->remaining--;
	return true;
}

/*
 * Read a whole chunk of a transfer of the group: well formed, every key
 * one the group may hold (codec/key.h), after prev_key (none if
 * prev_keylen is 0) and after the chunk's previous key, and the applied
 * index row, if any, the header's.  *last_key is then the chunk's last key
 * (pointing into data), or prev_key if it has no rows.  False with *error
 * set if not.
 */
bool
kalam_chunk_check(const char *data, size_t len, int group,
				  const char *prev_key, size_t prev_keylen,
				  KalamChunkHeader *header,
				  const char **last_key, size_t *last_keylen,
				  const char **error)
{
	KalamChunkReader reader;
	const char *key;
	const char *value;
	size_t		keylen;
	size_t		vallen;

	*last_key = prev_key;
	*last_keylen = prev_keylen;
	if (!kalam_chunk_open(&reader, data, len, header, error))
		return false;
	while (kalam_chunk_next(&reader, &key, &keylen, &value, &vallen, error))
	{
		if (!kalam_key_check_scope(group, KALAM_KEY_USE_SNAPSHOT, key, keylen,
								   error))
			return false;
		if (*last_keylen > 0 &&
			kalam_key_compare(*last_key, *last_keylen, key, keylen) >= 0)
		{
			*error = "the keys of a snapshot transfer are not in ascending order";
			return false;
		}
		*last_key = key;
		*last_keylen = keylen;
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
