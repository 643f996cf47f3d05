/*-------------------------------------------------------------------------
 *
 * transfer.h
 *	  A group's rows out of RocksDB in chunks, for a node that installs a
 *	  snapshot, and into RocksDB again on that node, through SST files.
 *
 * src/kv/transfer.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KALAM_TRANSFER_H
#define KALAM_TRANSFER_H

#include <rocksdb/c.h>

#include "codec/key.h"
#include "codec/snapshot.h"
#include "kv/apply.h"

/* The reading end: a consistent view of a group at an applied index */
typedef struct KalamTransferSource
{
	rocksdb_t  *db;
	const rocksdb_snapshot_t *snapshot;
	rocksdb_readoptions_t *options;
	rocksdb_iterator_t *iter;
	char		end[KALAM_GROUP_PREFIX_LEN];	/* the next group's: the upper bound */
	uint64		applied_index;	/* of the view */
	uint64		required_meta_index;	/* of the rows read so far */
	uint32		last_table;
	uint64		(*required_of_table) (uint32 table_id);
} KalamTransferSource;

extern bool kalam_transfer_source_open(KalamTransferSource *source,
									   KalamApplier *applier,
									   uint64 (*required_of_table) (uint32 table_id),
									   char *errbuf, size_t errlen);
extern bool kalam_transfer_source_read(KalamTransferSource *source,
									   KalamChunkWriter *writer,
									   size_t max_bytes, bool *done,
									   char *errbuf, size_t errlen);
extern void kalam_transfer_source_close(KalamTransferSource *source);

/*
 * The writing end: checked chunks (or keys in order, put) into SST files of
 * at most KALAM_TRANSFER_FILE_SIZE bytes in a directory of their own,
 * ingested at the end in place of the group's rows (or, a bulk split's,
 * beside them: kv/apply.c).  put, add, finish and ingest may run on a
 * thread of libuv's pool; they call RocksDB and libc only.
 */
#define KALAM_TRANSFER_FILE_SIZE	(64 * 1024 * 1024)
#define KALAM_TRANSFER_MAX_FILES	4096

typedef struct KalamTransferSink
{
	char		dir[1024];
	rocksdb_options_t *options;
	rocksdb_envoptions_t *env_options;
	rocksdb_sstfilewriter_t *writer;	/* the open file, if any */
	int			nfiles;			/* files begun */
	uint64		file_bytes;		/* written into the open one */
	uint64		rows;
	uint64		bytes;
} KalamTransferSink;

extern bool kalam_transfer_sink_begin(KalamTransferSink *sink, const char *dir,
									  char *errbuf, size_t errlen);
extern bool kalam_transfer_sink_put(KalamTransferSink *sink, const char *key,
									size_t keylen, const char *value,
									size_t vallen, char *errbuf, size_t errlen);
extern bool kalam_transfer_sink_add(KalamTransferSink *sink, const char *chunk,
									size_t len, char *errbuf, size_t errlen);
extern bool kalam_transfer_sink_finish(KalamTransferSink *sink,
									   char *errbuf, size_t errlen);
extern bool kalam_transfer_ingest(KalamTransferSink *const *sinks, int nsinks,
								  rocksdb_t *db, char *errbuf, size_t errlen);
extern bool kalam_transfer_sink_ingest(KalamTransferSink *sink, rocksdb_t *db,
									   int group, char *errbuf, size_t errlen);
extern void kalam_transfer_sink_end(KalamTransferSink *sink);
extern void kalam_transfer_clean(const char *dir);

#endif							/* KALAM_TRANSFER_H */
