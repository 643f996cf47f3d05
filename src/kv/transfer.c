/*-------------------------------------------------------------------------
 *
 * transfer.c
 *	  A group's rows out of RocksDB in chunks, and into RocksDB again
 *	  through SST files (transfer.h), for snapshot transfers between nodes
 *	  (cluster/snapshot.c carries them).
 *
 * The source reads a RocksDB snapshot taken after the group's staged
 * batch was written, so every chunk of a transfer comes from one state at
 * one applied index while the group goes on applying.  The sink writes
 * the checked chunks, in key order, into SST files with RocksDB's
 * SstFileWriter, so that the installing node holds at most a chunk or two
 * in memory whatever the group's size.  Then it replaces the group's rows
 * in two steps, each atomic:
 *   1. a synced range deletion of the whole group, its applied index
 *      included (a crash here leaves the group empty at index 0, and the
 *      snapshot descriptor libraft reloads at restart makes this node
 *      fetch it again);
 *   2. one ingestion of every file (RocksDB ingests a list of files
 *      atomically, at a sequence number above the deletion's), the
 *      group's applied index row among the rows.
 * Between the two, the old rows leave the disk: the table files wholly
 * inside the group's range are dropped (DeleteFilesInRange), and a manual
 * compaction of the range removes the rest and the deletion itself, so
 * that nothing in the database overlaps the files any more and RocksDB
 * ingests them into its last level.  Ingested over the deletion instead,
 * they went into level 0 above the old rows, and RocksDB compacted them
 * with the old rows after the install, on the CPUs and the disk the other
 * nodes share: in bench/scale.sh's catch-up at 3M rows (25 files, 1.7 GB)
 * the leader's p99 in the 10 s after the catch-up was 35.8 ms, 2.1x the
 * run's; with the files in the last level (and the source's reads off its
 * loop, cluster/snapshot.c), 13.9 ms.
 *
 * Nothing here calls palloc or ereport: the source runs in libuv
 * callbacks on the loop, the sink's add, finish and ingest on libuv's
 * thread pool, where no PostgreSQL function may run.
 *
 * src/kv/transfer.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kv/transfer.h"

/* a file's path: the directory's, a slash, six digits and ".sst" */
#define PATH_LEN	(sizeof(((KalamTransferSink *) NULL)->dir) + 16)

static void
copy_error(char *err, char *errbuf, size_t errlen)
{
	strlcpy(errbuf, err, errlen);
	rocksdb_free(err);
}

/*
 * Open a view of the group as applied so far (what is staged written
 * first); required_of_table gives the meta position a table's rows need.
 */
bool
kalam_transfer_source_open(KalamTransferSource *source, KalamApplier *applier,
						   uint64 (*required_of_table) (uint32 table_id),
						   char *errbuf, size_t errlen)
{
	char		start[KALAM_GROUP_PREFIX_LEN];

	memset(source, 0, sizeof(KalamTransferSource));
	if (!kalam_apply_flush(applier, errbuf, errlen))
		return false;
	source->db = applier->db;
	source->applied_index = applier->durable_index;
	source->required_of_table = required_of_table;
	source->snapshot = rocksdb_create_snapshot(applier->db);
	source->options = rocksdb_readoptions_create();
	rocksdb_readoptions_set_snapshot(source->options, source->snapshot);
	/* a transfer reads each block once: keep it out of the cache */
	rocksdb_readoptions_set_fill_cache(source->options, 0);
	kalam_key_group_prefix(applier->group + 1, source->end);
	rocksdb_readoptions_set_iterate_upper_bound(source->options, source->end,
												sizeof(source->end));
	source->iter = rocksdb_create_iterator(applier->db, source->options);
	kalam_key_group_prefix(applier->group, start);
	rocksdb_iter_seek(source->iter, start, sizeof(start));
	return true;
}

/*
 * Append the next rows to the chunk until it holds max_bytes or more (at
 * least one row) or the group ends (*done).  False with errbuf on a
 * RocksDB error, or when out of memory (the writer is then freed).
 */
bool
kalam_transfer_source_read(KalamTransferSource *source,
						   KalamChunkWriter *writer, size_t max_bytes,
						   bool *done, char *errbuf, size_t errlen)
{
	char	   *err = NULL;

	*done = false;
	while (rocksdb_iter_valid(source->iter) &&
		   (writer->count == 0 || writer->used < max_bytes))
	{
		size_t		keylen;
		size_t		vallen;
		const char *key = rocksdb_iter_key(source->iter, &keylen);
		const char *value = rocksdb_iter_value(source->iter, &vallen);
		uint32		table = kalam_key_table(key, keylen);

		if (table != 0 && table != source->last_table)
		{
			source->last_table = table;
			source->required_meta_index = Max(source->required_meta_index,
											  source->required_of_table(table));
		}
		if (!kalam_chunk_add(writer, key, keylen, value, vallen))
		{
			strlcpy(errbuf, "out of memory", errlen);
			return false;
		}
		rocksdb_iter_next(source->iter);
	}
	rocksdb_iter_get_error(source->iter, &err);
	if (err != NULL)
	{
		copy_error(err, errbuf, errlen);
		return false;
	}
	*done = !rocksdb_iter_valid(source->iter);
	return true;
}

void
kalam_transfer_source_close(KalamTransferSource *source)
{
	if (source->iter != NULL)
		rocksdb_iter_destroy(source->iter);
	if (source->options != NULL)
		rocksdb_readoptions_destroy(source->options);
	if (source->snapshot != NULL)
		rocksdb_release_snapshot(source->db, source->snapshot);
	memset(source, 0, sizeof(KalamTransferSource));
}

/* The name of the sink's file n */
static void
file_name(const KalamTransferSink *sink, int n, char *out, size_t len)
{
	snprintf(out, len, "%s/%06d.sst", sink->dir, n);
}

/* Remove the files of an earlier transfer from the directory, if any */
void
kalam_transfer_clean(const char *dir)
{
	DIR		   *d = opendir(dir);
	struct dirent *de;
	char		path[PATH_LEN];

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL)
	{
		size_t		n = strlen(de->d_name);

		if (n > 4 && strcmp(de->d_name + n - 4, ".sst") == 0)
		{
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			(void) unlink(path);
		}
	}
	closedir(d);
}

/* Begin a transfer into an empty directory dir (created if need be) */
bool
kalam_transfer_sink_begin(KalamTransferSink *sink, const char *dir,
						  char *errbuf, size_t errlen)
{
	memset(sink, 0, sizeof(KalamTransferSink));
	if (strlcpy(sink->dir, dir, sizeof(sink->dir)) >= sizeof(sink->dir))
	{
		strlcpy(errbuf, "directory path too long", errlen);
		return false;
	}
	if (mkdir(dir, S_IRWXU) != 0 && errno != EEXIST)
	{
		snprintf(errbuf, errlen, "could not create directory \"%s\": %s",
				 dir, strerror(errno));
		return false;
	}
	kalam_transfer_clean(dir);
	sink->options = rocksdb_options_create();
	sink->env_options = rocksdb_envoptions_create();
	return true;
}

/* Finish the open file, if any */
static bool
close_file(KalamTransferSink *sink, char *errbuf, size_t errlen)
{
	char	   *err = NULL;

	if (sink->writer == NULL)
		return true;
	rocksdb_sstfilewriter_finish(sink->writer, &err);
	rocksdb_sstfilewriter_destroy(sink->writer);
	sink->writer = NULL;
	if (err != NULL)
	{
		copy_error(err, errbuf, errlen);
		return false;
	}
	return true;
}

/* The open file, a new one if none is or it is full; NULL on a failure */
static rocksdb_sstfilewriter_t *
open_file(KalamTransferSink *sink, char *errbuf, size_t errlen)
{
	char		path[PATH_LEN];
	char	   *err = NULL;

	if (sink->writer != NULL && sink->file_bytes >= KALAM_TRANSFER_FILE_SIZE &&
		!close_file(sink, errbuf, errlen))
		return NULL;
	if (sink->writer != NULL)
		return sink->writer;
	if (sink->nfiles == KALAM_TRANSFER_MAX_FILES)
	{
		strlcpy(errbuf, "the rows need more SST files than a transfer may write",
				errlen);
		return NULL;
	}
	file_name(sink, sink->nfiles++, path, sizeof(path));
	sink->writer = rocksdb_sstfilewriter_create(sink->env_options,
												sink->options);
	rocksdb_sstfilewriter_open(sink->writer, path, &err);
	sink->file_bytes = 0;
	if (err != NULL)
	{
		copy_error(err, errbuf, errlen);
		return NULL;
	}
	return sink->writer;
}

/*
 * Write a key and its value (or, value NULL, the key's deletion) after the
 * sink's previous key, into the files: a new file every
 * KALAM_TRANSFER_FILE_SIZE.
 */
bool
kalam_transfer_sink_put(KalamTransferSink *sink, const char *key,
						size_t keylen, const char *value, size_t vallen,
						char *errbuf, size_t errlen)
{
	rocksdb_sstfilewriter_t *writer = open_file(sink, errbuf, errlen);
	char	   *err = NULL;

	if (writer == NULL)
		return false;
	if (value != NULL)
		rocksdb_sstfilewriter_put(writer, key, keylen, value, vallen, &err);
	else
		rocksdb_sstfilewriter_delete(writer, key, keylen, &err);
	if (err != NULL)
	{
		copy_error(err, errbuf, errlen);
		return false;
	}
	sink->file_bytes += keylen + vallen;
	sink->bytes += keylen + vallen;
	sink->rows++;
	return true;
}

/*
 * Write a chunk's rows (checked by kalam_chunk_check, after the previous
 * chunk's) into the files.
 */
bool
kalam_transfer_sink_add(KalamTransferSink *sink, const char *chunk, size_t len,
						char *errbuf, size_t errlen)
{
	KalamChunkReader reader;
	KalamChunkHeader header;
	const char *key;
	const char *value;
	size_t		keylen;
	size_t		vallen;
	const char *error;

	if (!kalam_chunk_open(&reader, chunk, len, &header, &error))
	{
		strlcpy(errbuf, error, errlen);
		return false;
	}
	while (kalam_chunk_next(&reader, &key, &keylen, &value, &vallen, &error))
		if (!kalam_transfer_sink_put(sink, key, keylen, value, vallen,
									 errbuf, errlen))
			return false;
	if (error != NULL)
	{
		strlcpy(errbuf, error, errlen);
		return false;
	}
	return true;
}

/* The last chunk was added: finish the open file */
bool
kalam_transfer_sink_finish(KalamTransferSink *sink, char *errbuf, size_t errlen)
{
	return close_file(sink, errbuf, errlen);
}

/*
 * Ingest the files of the sinks (finished), in one atomic step, moved into
 * the database.  The keys of one sink's files are ascending, and the sinks'
 * ranges must not overlap.  RocksDB stops every write while it ingests,
 * and files whose range meets keys in the memtable need it flushed first:
 * the first attempt refuses to flush; if it must, the memtable is flushed
 * here, writes going on meanwhile, and the second attempt flushes only
 * what arrived in the range since.
 */
bool
kalam_transfer_ingest(KalamTransferSink *const *sinks, int nsinks,
					  rocksdb_t *db, char *errbuf, size_t errlen)
{
	rocksdb_ingestexternalfileoptions_t *options;
	char	  **paths;
	char	   *names;
	char	   *err = NULL;
	int			nfiles = 0;
	int			n = 0;
	int			i;
	int			j;

	for (i = 0; i < nsinks; i++)
		nfiles += sinks[i]->nfiles;
	if (nfiles == 0)
		return true;
	paths = malloc(sizeof(char *) * nfiles);
	names = malloc((size_t) nfiles * PATH_LEN);
	if (paths == NULL || names == NULL)
	{
		free(paths);
		free(names);
		strlcpy(errbuf, "out of memory", errlen);
		return false;
	}
	for (i = 0; i < nsinks; i++)
		for (j = 0; j < sinks[i]->nfiles; j++, n++)
		{
			paths[n] = names + (size_t) n * PATH_LEN;
			file_name(sinks[i], j, paths[n], PATH_LEN);
		}
	options = rocksdb_ingestexternalfileoptions_create();
	rocksdb_ingestexternalfileoptions_set_move_files(options, 1);
	rocksdb_ingestexternalfileoptions_set_allow_blocking_flush(options, 0);
	rocksdb_ingest_external_file(db, (const char *const *) paths, nfiles,
								 options, &err);
	if (err != NULL)
	{
		rocksdb_flushoptions_t *flush = rocksdb_flushoptions_create();

		/* the memtable holds keys in the files' range: flush, then again */
		rocksdb_free(err);
		err = NULL;
		rocksdb_flushoptions_set_wait(flush, 1);
		rocksdb_flush(db, flush, &err);
		rocksdb_flushoptions_destroy(flush);
		if (err == NULL)
		{
			rocksdb_ingestexternalfileoptions_set_allow_blocking_flush(options, 1);
			rocksdb_ingest_external_file(db, (const char *const *) paths,
										 nfiles, options, &err);
		}
	}
	rocksdb_ingestexternalfileoptions_destroy(options);
	free(paths);
	free(names);
	if (err != NULL)
	{
		copy_error(err, errbuf, errlen);
		return false;
	}
	return true;
}

/*
 * Replace the group's rows with the files' (see the head comment).  The
 * files are moved into the database; the caller reads the group's applied
 * index afterwards (kalam_apply_reload).
 */
bool
kalam_transfer_sink_ingest(KalamTransferSink *sink, rocksdb_t *db, int group,
						   char *errbuf, size_t errlen)
{
	char		start[KALAM_GROUP_PREFIX_LEN];
	char		end[KALAM_GROUP_PREFIX_LEN];
	rocksdb_writebatch_t *batch = rocksdb_writebatch_create();
	rocksdb_writeoptions_t *sync_options = rocksdb_writeoptions_create();
	rocksdb_compactoptions_t *compact;
	char	   *err = NULL;

	kalam_key_group_prefix(group, start);
	kalam_key_group_prefix(group + 1, end);
	rocksdb_writebatch_delete_range(batch, start, sizeof(start), end, sizeof(end));
	rocksdb_writeoptions_set_sync(sync_options, 1);
	rocksdb_write(db, sync_options, batch, &err);
	rocksdb_writeoptions_destroy(sync_options);
	rocksdb_writebatch_destroy(batch);
	if (err == NULL)
		rocksdb_delete_file_in_range(db, start, sizeof(start), end, sizeof(end),
									 &err);
	if (err != NULL)
	{
		copy_error(err, errbuf, errlen);
		return false;
	}
	compact = rocksdb_compactoptions_create();
	rocksdb_compactoptions_set_exclusive_manual_compaction(compact, 0);
	rocksdb_compact_range_opt(db, compact, start, sizeof(start), end, sizeof(end));
	rocksdb_compactoptions_destroy(compact);
	return kalam_transfer_ingest(&sink, 1, db, errbuf, errlen);
}

/* Close what is open and remove the files not ingested */
void
kalam_transfer_sink_end(KalamTransferSink *sink)
{
	if (sink->writer != NULL)
		rocksdb_sstfilewriter_destroy(sink->writer);
	if (sink->options != NULL)
		rocksdb_options_destroy(sink->options);
	if (sink->env_options != NULL)
		rocksdb_envoptions_destroy(sink->env_options);
	if (sink->dir[0] != '\0')
		kalam_transfer_clean(sink->dir);
	memset(sink, 0, sizeof(KalamTransferSink));
}
