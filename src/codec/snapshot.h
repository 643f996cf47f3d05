/*-------------------------------------------------------------------------
 *
 * snapshot.h
 *	  The byte formats of a Raft group's snapshot: the descriptor libraft
 *	  keeps, and the chunks in which a node that installs it fetches the
 *	  group's rows from another; their writers and checked readers.
 *
 * libraft 0.15 keeps a snapshot as one buffer: on disk, in the message
 * that sends it to a follower, and in the follower's memory.  A group of
 * 10 million rows does not fit there (issue 12: a 1.5M-row shard put 1.4-
 * 1.8 GB in every worker and stalled the loop through elections), so the
 * snapshot libraft sees is only a descriptor, the group and its applied
 * index; the rows stay in RocksDB, which already holds them durably at
 * that index (fsm.c syncs its WAL first).  A node that must install a
 * descriptor newer than what it stores fetches the group's current rows
 * from a peer in chunks of bounded size (cluster/snapshot.c), as TiKV sends
 * SST files outside its Raft messages.
 *
 * Descriptor (24 bytes): magic 'S', format version 3, 6 reserved bytes
 * (zero), the group (4), 4 reserved bytes (zero), the applied index (8).
 *
 * Chunk (the body of a KALAM_FRAME_CHUNK): the transfer's session (8), the
 * source's applied index (8), the meta group position that the rows sent
 * so far require (8), flags (4), the row count (4); then each row as key
 * length (4), key, value length (4), value.  Keys are the group's, in
 * strictly ascending byte order across the whole transfer.
 *
 * Integers in native byte order: the nodes of a cluster share an
 * architecture.  Both come from another node, so the readers check every
 * length, count and flag, and kalam_chunk_check holds each key to the rule
 * of codec/key.h and to the order.  No palloc, no ereport: they run in
 * libuv callbacks and in the fuzz harness (test/fuzz/fuzz_snapshot.c).
 *
 * src/codec/snapshot.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KALAM_SNAPSHOT_H
#define KALAM_SNAPSHOT_H

#define KALAM_SNAPSHOT_MAGIC		'S'
#define KALAM_SNAPSHOT_VERSION		3
#define KALAM_SNAPSHOT_DESCRIPTOR_SIZE	24

typedef struct KalamSnapshotDescriptor
{
	int			group;
	uint64		applied_index;
} KalamSnapshotDescriptor;

extern void kalam_snapshot_write_descriptor(char *out, int group,
											uint64 applied_index);
extern bool kalam_snapshot_read_descriptor(const char *data, size_t len,
										   KalamSnapshotDescriptor *desc,
										   const char **error);

/* chunk flags */
#define KALAM_CHUNK_LAST		0x1 /* the transfer's last chunk */
#define KALAM_CHUNK_BEHIND		0x2 /* the source has not applied that far */
#define KALAM_CHUNK_REFUSED		0x4 /* no such session, or no room for one */
#define KALAM_CHUNK_FLAGS		0x7
#define KALAM_CHUNK_HEADER_SIZE	32

typedef struct KalamChunkHeader
{
	uint64		session;
	uint64		applied_index;
	uint64		required_meta_index;
	uint32		flags;
	uint32		count;
} KalamChunkHeader;

/* A chunk being written, after reserve bytes left for the frame's header */
typedef struct KalamChunkWriter
{
	char	   *data;
	size_t		reserve;
	size_t		used;
	size_t		cap;
	uint32		count;
} KalamChunkWriter;

typedef struct KalamChunkReader
{
	const char *pos;
	const char *end;
	uint32		remaining;
} KalamChunkReader;

/* writing: false when out of memory (the writer is then freed) */
extern bool kalam_chunk_begin(KalamChunkWriter *writer, size_t reserve,
							  size_t initial_size);
extern bool kalam_chunk_add(KalamChunkWriter *writer,
							const char *key, size_t keylen,
							const char *value, size_t vallen);
extern void kalam_chunk_finish(KalamChunkWriter *writer,
							   const KalamChunkHeader *header);
extern void kalam_chunk_abandon(KalamChunkWriter *writer);

/* reading: false and *error on refusal */
extern bool kalam_chunk_open(KalamChunkReader *reader, const char *data,
							 size_t len, KalamChunkHeader *header,
							 const char **error);
extern bool kalam_chunk_next(KalamChunkReader *reader,
							 const char **key, size_t *keylen,
							 const char **value, size_t *vallen,
							 const char **error);
extern bool kalam_chunk_check(const char *data, size_t len, int group,
							  const char *prev_key, size_t prev_keylen,
							  KalamChunkHeader *header,
							  const char **last_key, size_t *last_keylen,
							  const char **error);

#endif							/* KALAM_SNAPSHOT_H */
