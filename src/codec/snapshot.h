/*-------------------------------------------------------------------------
 *
 * snapshot.h
 *	  The byte format of a Raft group's snapshot, its writer and its
 *	  checked reader.
 *
 * A snapshot carries every key of a group, applied index included, so that
 * a node that missed compacted log entries is rebuilt from it; and, like a
 * command, the meta group position that its rows' tables require.  It
 * comes from another node, so the reader checks the header, the row count
 * (no more rows than the bytes can hold) and every length, and nothing may
 * follow the last row; kalam_snapshot_check also holds every key to the
 * rule of codec/key.h, before anything is written.  Writer and reader use malloc, never palloc, and
 * report errors as static messages: they run inside libraft callbacks, and
 * the reader in the fuzz harness too (test/fuzz/).
 *
 * Layout (native byte order): magic 'S', format version 2, 6 reserved
 * bytes (zero), applied index (8), row count (8), required meta index (8),
 * then each row as key length (4), key, value length (4), value.
 *
 * src/codec/snapshot.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KALAM_SNAPSHOT_H
#define KALAM_SNAPSHOT_H

#define KALAM_SNAPSHOT_MAGIC		'S'
#define KALAM_SNAPSHOT_VERSION		2
#define KALAM_SNAPSHOT_HEADER_SIZE	32

typedef struct KalamSnapshotHeader
{
	uint64		applied_index;
	uint64		count;
	uint64		required_meta_index;
} KalamSnapshotHeader;

/* A snapshot being written, into a malloc'd buffer that grows */
typedef struct KalamSnapshotWriter
{
	char	   *data;
	size_t		used;
	size_t		cap;
	uint64		count;
} KalamSnapshotWriter;

typedef struct KalamSnapshotReader
{
	const char *pos;
	const char *end;
	uint64		remaining;
} KalamSnapshotReader;

/* writing: false when out of memory (the writer is then freed) */
extern bool kalam_snapshot_begin(KalamSnapshotWriter *writer,
								 size_t initial_size);
extern bool kalam_snapshot_add(KalamSnapshotWriter *writer,
							   const char *key, size_t keylen,
							   const char *value, size_t vallen);
extern void kalam_snapshot_finish(KalamSnapshotWriter *writer,
								  uint64 applied_index,
								  uint64 required_meta_index);
extern void kalam_snapshot_abandon(KalamSnapshotWriter *writer);

/* reading (no palloc, no ereport): false and *error on refusal */
extern bool kalam_snapshot_open(KalamSnapshotReader *reader, const char *data,
								size_t len, KalamSnapshotHeader *header,
								const char **error);
extern bool kalam_snapshot_next(KalamSnapshotReader *reader,
								const char **key, size_t *keylen,
								const char **value, size_t *vallen,
								const char **error);
extern bool kalam_snapshot_check(const char *data, size_t len, int group,
								 KalamSnapshotHeader *header,
								 const char **error);

#endif							/* KALAM_SNAPSHOT_H */
