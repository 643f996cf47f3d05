/*-------------------------------------------------------------------------
 *
 * fuzz_snapshot.c
 *	  Fuzz harness of the snapshot readers (src/codec/snapshot.c): a
 *	  snapshot descriptor, and a chunk of a snapshot transfer, the bytes
 *	  another node sends a node that installs a group.
 *
 * The first byte of an input picks the reader: even, the descriptor; odd,
 * a chunk of group 2, read after the previous key "\0\2\0\0\0\1a" when its
 * second bit is set.  Seeds are a descriptor (checked to read back and its
 * group kept), chunks of 0, 1 and 50 rows built with the writer (checked to
 * read back, to pass kalam_chunk_check for group 2 and to be refused for
 * group 1), a refusal, and chunks refused whole: one that hides a key of
 * another group among its rows, one whose keys go down, one whose applied
 * index row is not its header's.  A chunk that opens must claim no more
 * rows than its bytes hold, every row handed out must lie inside it, and
 * the last key a check returns must be inside it or the previous key.
 *
 * test/fuzz/fuzz_snapshot.c
 *
 *-------------------------------------------------------------------------
 */
#include "fuzz.h"

#include "codec/command.h"
#include "codec/key.h"
#include "codec/snapshot.h"

const char *fuzz_name = "snapshot";

/* the applied index row of group 2 */
#define K_APPLIED	"\x00\x02\x00\x00\x00\x00" KALAM_KEY_APPLIED_INDEX
/* the previous key of a chunk read after another */
#define K_PREV		"\x00\x02\x00\x00\x00\x01" "a"

/* Chunk seeds: how the rows go wrong, if they do */
typedef enum
{
	ROWS_GOOD,
	ROWS_FOREIGN,				/* a key of group 3 */
	ROWS_DESCENDING,			/* a key below the one before it */
	ROWS_BAD_APPLIED			/* the applied index row is not the header's */
} RowsKind;

static void
add_seed(char reader, const char *data, size_t len)
{
	char	   *seed = malloc(len + 1);

	seed[0] = reader;
	memcpy(seed + 1, data, len);
	fuzz_add_seed(seed, len + 1);
	free(seed);
}

static void
add_chunk(int rows, RowsKind kind)
{
	KalamChunkWriter writer;
	KalamChunkReader reader;
	KalamChunkHeader header;
	KalamChunkHeader read;
	const char *key;
	const char *value;
	const char *last;
	size_t		keylen;
	size_t		vallen;
	size_t		lastlen;
	const char *error;
	uint64		applied = 1000 + rows + (kind == ROWS_BAD_APPLIED);
	int			i;

	if (!kalam_chunk_begin(&writer, 0, 64))
		fuzz_fail("out of memory");
	if (rows > 0 && !kalam_chunk_add(&writer, K_APPLIED, sizeof(K_APPLIED) - 1,
									 (const char *) &applied, sizeof(applied)))
		fuzz_fail("out of memory");
	for (i = 0; i < rows; i++)
	{
		char		k[16];
		char		v[40];
		int			n = (kind == ROWS_DESCENDING && i == rows - 1) ? 0 : 100 + i;

		snprintf(k, sizeof(k), "%c%c%c%c%c%crow%d", 0,
				 (kind == ROWS_FOREIGN && i == rows / 2) ? 3 : 2, 0, 0, 1, 0, n);
		memset(v, 'v', sizeof(v));
		if (!kalam_chunk_add(&writer, k, 6 + strlen(k + 6), v, i % sizeof(v)))
			fuzz_fail("out of memory");
	}
	memset(&header, 0, sizeof(header));
	header.session = 77;
	header.applied_index = 1000 + rows;
	header.required_meta_index = rows;
	header.flags = KALAM_CHUNK_LAST;
	kalam_chunk_finish(&writer, &header);
	if (!kalam_chunk_open(&reader, writer.data, writer.used, &read, &error) ||
		read.session != 77 || read.applied_index != (uint64) (1000 + rows) ||
		read.count != (uint32) (rows > 0 ? rows + 1 : 0) ||
		read.required_meta_index != (uint64) rows || read.flags != KALAM_CHUNK_LAST)
		fuzz_fail("a seed does not open");
	for (i = 0; kalam_chunk_next(&reader, &key, &keylen, &value, &vallen, &error); i++)
		if (i > 0 && (vallen != (size_t) ((i - 1) % 40) || keylen < 6 ||
					  memcmp(key + 6, "row", 3) != 0))
			fuzz_fail("a seed's row reads back as something else");
	if (error != NULL || i != (rows > 0 ? rows + 1 : 0))
		fuzz_fail("a seed's rows do not read back");
	if (kalam_chunk_check(writer.data, writer.used, 2, NULL, 0, &read, &last,
						  &lastlen, &error) != (kind == ROWS_GOOD))
		fuzz_fail("a seed gets the wrong verdict for its group");
	if (rows > 0 && kalam_chunk_check(writer.data, writer.used, 1, NULL, 0, &read,
									  &last, &lastlen, &error))
		fuzz_fail("a seed of group 2 is accepted by group 1");
	/* after a key above its first, it is out of order */
	if (rows > 0 && kalam_chunk_check(writer.data, writer.used, 2, K_PREV,
									  sizeof(K_PREV) - 1, &read, &last, &lastlen,
									  &error))
		fuzz_fail("a chunk whose keys go down from the previous chunk's is accepted");
	add_seed(1, writer.data, writer.used);
	kalam_chunk_abandon(&writer);
}

void
fuzz_seeds(void)
{
	char		desc[KALAM_SNAPSHOT_DESCRIPTOR_SIZE];
	KalamSnapshotDescriptor read;
	KalamChunkWriter writer;
	KalamChunkHeader header;
	const char *error;

	kalam_snapshot_write_descriptor(desc, 5, 987654);
	if (!kalam_snapshot_read_descriptor(desc, sizeof(desc), &read, &error) ||
		read.group != 5 || read.applied_index != 987654)
		fuzz_fail("a descriptor does not read back");
	add_seed(0, desc, sizeof(desc));

	add_chunk(0, ROWS_GOOD);
	add_chunk(1, ROWS_GOOD);
	add_chunk(50, ROWS_GOOD);
	add_chunk(50, ROWS_FOREIGN);
	add_chunk(50, ROWS_DESCENDING);
	add_chunk(3, ROWS_BAD_APPLIED);

	/* a source that is behind */
	if (!kalam_chunk_begin(&writer, 0, 0))
		fuzz_fail("out of memory");
	memset(&header, 0, sizeof(header));
	header.applied_index = 12;
	header.flags = KALAM_CHUNK_BEHIND;
	kalam_chunk_finish(&writer, &header);
	add_seed(1, writer.data, writer.used);
	kalam_chunk_abandon(&writer);
}

static void
one_chunk(const char *data, size_t len, bool after_prev)
{
	KalamChunkReader reader;
	KalamChunkHeader header;
	const char *key;
	const char *value;
	const char *last;
	size_t		keylen;
	size_t		vallen;
	size_t		lastlen;
	const char *error;
	uint64		n = 0;
	const char *prev = after_prev ? K_PREV : NULL;
	size_t		prevlen = after_prev ? sizeof(K_PREV) - 1 : 0;

	if (!kalam_chunk_open(&reader, data, len, &header, &error))
	{
		if (error == NULL)
			fuzz_fail("refused without a message");
		return;
	}
	if (header.count > len / 8 ||
		header.required_meta_index > KALAM_COMMAND_MAX_META_INDEX ||
		(header.flags & ~KALAM_CHUNK_FLAGS) != 0)
		fuzz_fail("an impossible header was accepted");
	while (kalam_chunk_next(&reader, &key, &keylen, &value, &vallen, &error))
	{
		if (key < data || key + keylen > data + len ||
			value < data || value + vallen > data + len)
			fuzz_fail("a row lies outside the chunk");
		fuzz_touch(key, keylen);
		fuzz_touch(value, vallen);
		n++;
	}
	if (n > header.count)
		fuzz_fail("more rows than the header says");
	if (kalam_chunk_check(data, len, 2, prev, prevlen, &header, &last, &lastlen,
						  &error))
	{
		if (n != header.count || error != NULL)
			fuzz_fail("a chunk that does not read whole passes the check");
		if (last != prev && (last < data || last + lastlen > data + len))
			fuzz_fail("the last key lies outside the chunk");
		fuzz_touch(last, lastlen);
	}
}

void
fuzz_one(const char *data, size_t len)
{
	KalamSnapshotDescriptor desc;
	const char *error;

	if (len == 0)
		return;
	if ((data[0] & 1) == 0)
	{
		if (kalam_snapshot_read_descriptor(data + 1, len - 1, &desc, &error))
		{
			if (desc.applied_index > KALAM_COMMAND_MAX_META_INDEX)
				fuzz_fail("an impossible descriptor was accepted");
		}
		else if (error == NULL)
			fuzz_fail("refused without a message");
		return;
	}
	one_chunk(data + 1, len - 1, (data[0] & 2) != 0);
}
