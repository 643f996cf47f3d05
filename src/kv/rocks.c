/*-------------------------------------------------------------------------
 *
 * rocks.c
 *	  Opening RocksDB: the primary in the kalam worker, a secondary in
 *	  each backend that reads.
 *
 * Only the kalam worker opens the database read-write.  A backend opens its
 * own secondary instance the first time it reads, under
 * <kalam.data_dir>/secondary/<pid>, keeps it for its lifetime, and catches
 * it up with the primary only when the worker changed storage since it last
 * looked (kalam_rocks_publish_change: an entry applied, a change log
 * purged): a catch-up costs little with one file-opening thread, and
 * nothing when skipped.  This file knows nothing of settings or workers:
 * kalam.c tells it the directory and how to wait for the primary
 * (kalam_rocks_configure).
 *
 * A new connection's first read opens that secondary, which replays the
 * primary's log since its last memtable flush into memtables of its own:
 * about 36 ms per MB here, 450-600 ms with the 8 MB memtable full, and as
 * much memory in every reading backend.  So the kalam worker flushes a
 * memtable that is kalam.flush_interval old (kalam_rocks_flush_due),
 * unless the flush would cost more than it saves (kalam_rocks_flush_memtable
 * says when), and the reader is opened to cost little: no memtable Bloom
 * filter of its own (3 MB touched at each open), table files' index and
 * filter blocks in a 1 MB block cache instead of loaded whole at open
 * (which grew with the data), and a quiet info log.  Table files have
 * partitioned index and filter blocks, so the cache holds the small top
 * level and reads stay at 0.06 ms.  Measured (bench/first_read.sh, 20 new
 * connections, p50): first point read 547 ms after 200k or 500k rows
 * written when flushing by size only, 27 and 15 ms with all of this (a
 * heap table's: 6-9 ms); 24.5 MB private memory per backend after a full
 * scan before, 5.0 MB after (a heap-table backend: 3.9 MB).  The open's
 * own floor is about 6.5 ms.
 *
 * The open also replays the primary's MANIFEST, one record per flush and
 * per compaction since the file began, and RocksDB begins a new one only
 * past max_manifest_file_size (1 GB): with a flush each second, a day of
 * trickling writes is about 13 MB of it.  Measured with a probe (a
 * RocksDB primary flushing ten 200-byte rows at a time, a secondary
 * opened after): 3.4 ms with an empty MANIFEST, 29 ms after 4,000 flushes
 * (590 kB), 123-142 ms after 16,000-20,000 (2.4-3.0 MB); with a 64 kB
 * limit, 4-11 ms all along.  RocksDB's own limit cannot be used: Debian's
 * RocksDB 7.8 keeps its assertions, and a secondary that catches up
 * across the primary's switch to a new MANIFEST can fail one in
 * ManifestTailer ("version_ != cfd->current()", version_builder.cc) and
 * abort its backend, which restarts the whole server: it happened once in
 * three 10M-row runs of bench/scale.sh with a 64 kB limit.
 *
 * So kalam switches MANIFESTs itself, and no reader ever catches up across
 * a switch.  The primary begins a new MANIFEST each time it opens; the
 * kalam worker opens it again (kalam_rocks_reopen_primary: 21-29 ms in
 * t/016_storage_reopen.pl's small database) when the MANIFEST has grown
 * past kalam.manifest_size_limit and nothing else holds the database.
 * Locking protocol, in shared memory (KalamStorageShared): the primary
 * opens with the "kalam storage" LWLock held exclusively and moves the
 * incarnation counter before it lets go; a reader opens, and catches up,
 * with the lock held shared, and only if it was opened under the current
 * incarnation.  A reader of an older one is closed and opened again (3-11
 * ms, once per switch) when no iterator of its is open; while one is (a
 * statement still scanning, a cursor), it keeps the view it has and does
 * not catch up at all.  The same protocol covers the kalam worker's
 * restarts.
 *
 * Nor does a reader catch up across a flush of the primary: it opens
 * again.  RocksDB 7.8's secondary keeps in its memtable what it replayed
 * from a log that the primary has since flushed, above the flushed table
 * file, so a row read, then updated and flushed, read on as its old value
 * for good (RocksDB issue 15051, fixed in 2026): long-lived sessions and
 * the kalam reader served stale rows, UPDATEs of them failed with 40001
 * over and over, and t/012's bank check saw nodes disagree.  Every flush
 * (and compaction) appends to the MANIFEST, so a reader notes its size
 * when it opens, and opens again when it has grown, before or during a
 * catch-up (open_reader_whole also when during the open).  t/016 reads a
 * row updated and flushed five times, in a session and through the kalam
 * reader.  It costs nothing measurable: four sessions reading random keys
 * while one updates 650-800 rows a second (a probe with pgbench, 15 s,
 * twice each) read 11.8-12.0k rows a second, p50 0.24 ms, p99 1.1-1.3 ms,
 * where catching up instead gave 10.8-11.1k, 0.27-0.29 ms, 1.2-1.4 ms (a
 * heap table: 21-22k, 0.13-0.14 ms, 0.5-0.6 ms).
 *
 * Even with a small MANIFEST, a backend's first open of RocksDB costs 7-11
 * ms (a probe forking children as the postmaster does; a second open in
 * the same process: 0.6 ms), where a heap table's first read costs 4 ms
 * more than the next.  Timed in backends: 2.9 ms creating the reader's
 * options, 6.3 ms opening; with the options created in the postmaster
 * instead, the open took 8.9 ms: the cost is the forked process's first
 * touch of memory, not work that can be done once before the fork.
 * Opening the reader on a thread while the backend authenticates was
 * tried: the first read took 4-6 ms, but the connection 7-8 ms longer on
 * this 2-core machine (bench/first_read.sh, same run), so a connection
 * that reads gained 0-2.5 ms in all, and one that does not lost 7-8 ms.
 * It is not done.  Instead a session's first reads do not open the reader
 * at all: the kalam reader process answers them (kv/read_service.c), and
 * the session opens its own at its first scan of a range too large for
 * that, or after kalam.served_reads of them.
 *
 * A reader keeps every table file of its view open (max_open_files -1), as
 * RocksDB requires of a secondary: the primary deletes the files that
 * compaction replaced whether a secondary still reads them or not, and an
 * open descriptor is what keeps such a file readable.  With at most 64
 * files open, readers opened files lazily, and under the compaction of
 * bench/scale.sh's 3M-row load the jobs worker's reads failed 26 times
 * with "IO error: No such file or directory: While open a file for random
 * read".  So a reader holds one descriptor per table file (about 1 per 64
 * MB of data, plus level 0's few), beyond the KALAM_READER_FDS it reserves
 * from PostgreSQL's budget for its logs and manifest.
 *
 * src/kv/rocks.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/file_utils.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "kv/read_service.h"
#include "kv/rocks.h"

/*
 * The primary's memtable size.  A backend's first read opens a secondary,
 * which replays the primary's log since its last flush: with RocksDB's
 * default (64 MB) that took 90 ms on an empty database and 677 ms after
 * 63,000 inserts here, and the change log of live queries makes the log
 * grow twice as fast.  8 MB bounds the replay.
 */
#define KALAM_WRITE_BUFFER_SIZE		(8 * 1024 * 1024)

/*
 * Table files the primary keeps open (RocksDB's default is all of them).
 * A 10M-row load that ingested two files per transaction ran the kalam
 * worker out of its 1024 descriptors ("Too many open files") and stopped
 * it; the primary reopens a closed file when it needs it.
 */
#define KALAM_PRIMARY_MAX_OPEN_FILES	512

/*
 * The primary writes its table files out as it builds them, this much at
 * a time, instead of in one burst when each is closed: a flush or a
 * compaction then does not queue megabytes of writeback ahead of the Raft
 * log's small synced writes on the same disk.  In the 10 s after a
 * follower caught up at 10M rows (bench/scale.sh), while RocksDB flushed
 * and compacted what it had applied, the leader's p99 was 44 ms in the two
 * runs before, 19 ms and 24 ms in the two after (the run's: 13-14 ms).
 */
#define KALAM_BYTES_PER_SYNC		(1024 * 1024)

/* No flush by age while level 0 holds this many files (see flush_memtable) */
#define KALAM_FLUSH_MAX_L0			12

/*
 * No flush by age while writes come at least this fast (bytes a second
 * into the active memtable, which they fill by size within 8 s then): see
 * kalam_rocks_flush_memtable.
 */
#define KALAM_FLUSH_BUSY_RATE		(KALAM_WRITE_BUFFER_SIZE / 8)

/* A reader's block cache, and the descriptors it reserves beside its tables' */
#define KALAM_READER_BLOCK_CACHE	(1024 * 1024)
#define KALAM_READER_FDS	8	/* log, manifest, info log, directories */

/* What the primary and the readers of a server share (see the file header) */
typedef struct KalamStorageShared
{
	LWLock	   *lock;			/* exclusive: the primary opens; shared: a
								 * reader opens or catches up */
	pg_atomic_uint64 incarnation;	/* moves each time the primary opens */
	pg_atomic_uint64 version;	/* moves each time the primary's contents
								 * change (kalam_rocks_publish_change) */
} KalamStorageShared;

static KalamStorageShared *storage_shared = NULL;

/* kalam.served_reads (registered in kalam.c) */
int			kalam_served_reads = 64;

/* reads of this session the kalam reader answered */
static int	served_reads = 0;

/* set at load by kalam_rocks_configure */
static char storage_dir[MAXPGPATH];
static char db_path[MAXPGPATH];	/* the primary's directory: storage_dir/db */
static void (*wait_for_primary) (void) = NULL;

static rocksdb_t *reader_db = NULL;
static rocksdb_options_t *reader_options = NULL;
static rocksdb_readoptions_t *reader_read_options = NULL;
static char *reader_path = NULL;
static uint64 reader_seen_version = 0;
static uint64 reader_incarnation = 0;
static off_t reader_manifest = 0;	/* the primary's MANIFEST size when the
									 * reader last opened or caught up */
static int	reader_iterators = 0;	/* iterators of reader_db still open */

static void
report_rocks_error(const char *what, const char *path, char *err)
{
	char	   *msg = pstrdup(err);

	rocksdb_free(err);
	ereport(ERROR,
			(errcode(ERRCODE_IO_ERROR),
			 errmsg("could not %s kalam storage at \"%s\"", what, path),
			 errdetail("RocksDB: %s", msg)));
}

/*
 * Options of the primary and of the readers.  Whole-key Bloom filters, in
 * the memtable and in table files: each INSERT's apply looks up a key that
 * is usually absent, which without a filter costs a full memtable search
 * and a probe of every table file.
 */
static rocksdb_options_t *
create_options(bool reader)
{
	rocksdb_options_t *options = rocksdb_options_create();
	rocksdb_block_based_table_options_t *table = rocksdb_block_based_options_create();

	rocksdb_block_based_options_set_filter_policy(table,
												  rocksdb_filterpolicy_create_bloom_full(10));
	rocksdb_block_based_options_set_index_type(table,
											   rocksdb_block_based_table_index_type_two_level_index_search);
	rocksdb_block_based_options_set_partition_filters(table, 1);
	rocksdb_block_based_options_set_metadata_block_size(table, 4096);
	if (reader)
	{
		rocksdb_block_based_options_set_cache_index_and_filter_blocks(table, 1);
		rocksdb_block_based_options_set_block_cache(table,
													rocksdb_cache_create_lru(KALAM_READER_BLOCK_CACHE));
	}
	rocksdb_options_set_block_based_table_factory(options, table);
	rocksdb_block_based_options_destroy(table);
	if (reader)
	{
		rocksdb_options_set_max_open_files(options, -1);
		rocksdb_options_set_max_file_opening_threads(options, 1);
		rocksdb_options_set_info_log_level(options, 5);	/* header only */
		rocksdb_options_set_stats_dump_period_sec(options, 0);
		rocksdb_options_set_stats_persist_period_sec(options, 0);
	}
	else
	{
		rocksdb_options_set_memtable_prefix_bloom_size_ratio(options, 0.05);
		rocksdb_options_set_memtable_whole_key_filtering(options, 1);
		rocksdb_options_set_max_open_files(options, KALAM_PRIMARY_MAX_OPEN_FILES);
		rocksdb_options_set_bytes_per_sync(options, KALAM_BYTES_PER_SYNC);
	}
	return options;
}

/*
 * Where storage lives (the database in dir/db, the readers' secondaries
 * in dir/secondary), and how a reader waits for the process that opens
 * the primary (the kalam worker) to have done so.  Called at load, in the
 * postmaster, so that every process inherits it.
 */
void
kalam_rocks_configure(const char *dir, void (*wait) (void))
{
	strlcpy(storage_dir, dir, sizeof(storage_dir));
	snprintf(db_path, sizeof(db_path), "%s/db", dir);
	wait_for_primary = wait;
}

/* A path under the storage directory, palloc'd */
static char *
storage_path(const char *sub)
{
	return psprintf("%s/%s", storage_dir, sub);
}

Size
kalam_rocks_shmem_size(void)
{
	return sizeof(KalamStorageShared);
}

void
kalam_rocks_shmem_init(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	storage_shared = ShmemInitStruct("kalam storage", sizeof(KalamStorageShared),
									 &found);
	if (!found)
	{
		storage_shared->lock = &(GetNamedLWLockTranche("kalam storage"))->lock;
		pg_atomic_init_u64(&storage_shared->incarnation, 0);
		pg_atomic_init_u64(&storage_shared->version, 0);
	}
	LWLockRelease(AddinShmemInitLock);
}

static KalamStorageShared *
get_storage_shared(void)
{
	if (storage_shared == NULL)
		kalam_rocks_shmem_init();
	return storage_shared;
}

/*
 * The primary's contents changed (an entry applied, changes purged):
 * readers catch up before their next read.  Called by the process that
 * wrote them, before it tells anyone of the change.
 */
void
kalam_rocks_publish_change(void)
{
	pg_atomic_fetch_add_u64(&get_storage_shared()->version, 1);
}

static uint64
storage_version(void)
{
	return pg_atomic_read_u64(&get_storage_shared()->version);
}

/*
 * Open the primary: a new MANIFEST, which no reader may be catching up
 * across (see the file header).
 */
static rocksdb_t *
open_primary(void)
{
	KalamStorageShared *shared = get_storage_shared();
	rocksdb_options_t *options;
	rocksdb_t  *db;
	char	   *err = NULL;

	options = create_options(false);
	rocksdb_options_set_create_if_missing(options, 1);
	rocksdb_options_increase_parallelism(options, 2);
	rocksdb_options_set_write_buffer_size(options, KALAM_WRITE_BUFFER_SIZE);
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	db = rocksdb_open(options, db_path, &err);
	pg_atomic_fetch_add_u64(&shared->incarnation, 1);
	LWLockRelease(shared->lock);
	rocksdb_options_destroy(options);
	if (err != NULL)
		report_rocks_error("open", db_path, err);
	return db;
}

rocksdb_t *
kalam_rocks_open_primary(void)
{
	if (MakePGDirectory(storage_dir) < 0 && errno != EEXIST)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create directory \"%s\": %m", storage_dir)));
	return open_primary();
}

void
kalam_rocks_close_primary(rocksdb_t *db)
{
	rocksdb_close(db);
}

/*
 * Size of the MANIFEST the primary writes, in bytes, or 0 when it cannot
 * be told (the worker then does not reopen for it).
 */
static off_t
manifest_size(void)
{
	char		name[MAXPGPATH];
	char		file[MAXPGPATH * 2];
	FILE	   *current;
	struct stat st;
	size_t		len;

	snprintf(file, sizeof(file), "%s/CURRENT", db_path);
	current = AllocateFile(file, "r");
	if (current == NULL)
		return 0;
	len = fread(name, 1, sizeof(name) - 1, current);
	FreeFile(current);
	name[len] = '\0';
	if (len == 0 || name[len - 1] != '\n' ||
		strncmp(name, "MANIFEST-", 9) != 0 || strchr(name, '/') != NULL)
		return 0;
	name[len - 1] = '\0';
	snprintf(file, sizeof(file), "%s/%s", db_path, name);
	if (stat(file, &st) != 0)
		return 0;
	return st.st_size;
}

/* True at most once per interval_ms (never with 0); *last: when it was */
static bool
interval_passed(TimestampTz *last, int interval_ms)
{
	TimestampTz now;

	if (interval_ms <= 0)
		return false;
	now = GetCurrentTimestamp();
	if (!TimestampDifferenceExceeds(*last, now, interval_ms))
		return false;
	*last = now;
	return true;
}

/*
 * Has the primary's MANIFEST grown past limit_kb kilobytes?  Looks at most
 * once a second; limit_kb 0 never says yes.
 */
bool
kalam_rocks_manifest_due(int limit_kb)
{
	static TimestampTz last = 0;

	if (limit_kb <= 0 || !interval_passed(&last, 1000))
		return false;
	return manifest_size() > (off_t) limit_kb * 1024;
}

/*
 * Close the primary and open it again, which begins a new MANIFEST holding
 * only the live files.  The caller makes sure that nothing else uses db:
 * no snapshot, iterator or work on another thread.  The memtable is
 * flushed first, since what was written without the WAL (parked entries)
 * lives only there, and so that the open has no log to replay.
 */
rocksdb_t *
kalam_rocks_reopen_primary(rocksdb_t *db)
{
	rocksdb_flushoptions_t *flush_options = rocksdb_flushoptions_create();
	TimestampTz start = GetCurrentTimestamp();
	off_t		before = manifest_size();
	char	   *err = NULL;

	rocksdb_flushoptions_set_wait(flush_options, 1);
	rocksdb_flush(db, flush_options, &err);
	rocksdb_flushoptions_destroy(flush_options);
	if (err != NULL)
	{
		ereport(WARNING,
				(errmsg("kalam did not begin a new storage manifest: its memtable could not be flushed"),
				 errdetail("RocksDB: %s", err)));
		rocksdb_free(err);
		return db;
	}
	rocksdb_close(db);
	db = open_primary();
	ereport(LOG,
			(errmsg("kalam began a new storage manifest in %ld ms",
					(long) ((GetCurrentTimestamp() - start) / 1000)),
			 errdetail("The last one had grown to %ld bytes; the new one holds %ld.",
					   (long) before, (long) manifest_size())));
	return db;
}

/*
 * Remove the secondary directories of processes that are gone.  They are
 * left behind when a backend is killed.
 */
void
kalam_rocks_remove_stale_secondaries(void)
{
	char	   *dir = storage_path("secondary");
	DIR		   *d;
	struct dirent *de;

	if (MakePGDirectory(dir) < 0 && errno != EEXIST)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create directory \"%s\": %m", dir)));

	d = AllocateDir(dir);
	while ((de = ReadDir(d, dir)) != NULL)
	{
		char	   *end;
		long		pid = strtol(de->d_name, &end, 10);

		if (*end != '\0' || pid <= 0)
			continue;
		if (kill((pid_t) pid, 0) == 0 || errno != ESRCH)
			continue;
		rmtree(psprintf("%s/%s", dir, de->d_name), true);
	}
	FreeDir(d);
}

static void
close_reader_db(void)
{
	rocksdb_close(reader_db);
	reader_db = NULL;
	for (int i = 0; i < KALAM_READER_FDS; i++)
		ReleaseExternalFD();
}

/*
 * At exit, once the transaction was aborted (an on_shmem_exit callback
 * runs after those of before_shmem_exit, which abort it): a scan's
 * iterator is gone by then, and RocksDB would fail an assertion closing a
 * database with one open.
 */
static void
close_reader(int code, Datum arg)
{
	if (reader_db != NULL && reader_iterators == 0)
	{
		close_reader_db();
		rmtree(reader_path, true);
	}
}

/* Open the reader; on failure, *err says why (caller holds the lock) */
static void
open_reader(char **err)
{
	if (reader_path == NULL)
	{
		reader_path = MemoryContextStrdup(TopMemoryContext,
										  psprintf("%s/%d", storage_path("secondary"), MyProcPid));
		on_shmem_exit(close_reader, (Datum) 0);
	}
	if (reader_options == NULL)
	{
		reader_options = create_options(true);
		reader_read_options = rocksdb_readoptions_create();
	}
	/* what RocksDB opens comes out of the backend's descriptor budget */
	for (int i = 0; i < KALAM_READER_FDS; i++)
		ReserveExternalFD();
	reader_seen_version = storage_version();
	reader_incarnation = pg_atomic_read_u64(&storage_shared->incarnation);
	reader_manifest = manifest_size();
	reader_db = rocksdb_open_as_secondary(reader_options, db_path,
										  reader_path, err);
	if (*err != NULL)
	{
		reader_db = NULL;
		for (int i = 0; i < KALAM_READER_FDS; i++)
			ReleaseExternalFD();
	}
}

/*
 * Open the reader so that no flush of the primary ran meanwhile: one that
 * did may have removed a log the open then skipped, before the MANIFEST
 * the open read named the flushed file (RocksDB takes the missing log for
 * an empty one).  After three tries, the reader stays as opened, and the
 * next read looks again.
 */
static void
open_reader_whole(char **err)
{
	for (int attempt = 0; attempt < 3; attempt++)
	{
		open_reader(err);
		if (*err != NULL || manifest_size() == reader_manifest)
			return;
		if (attempt < 2)
			close_reader_db();
	}
	reader_seen_version = 0;	/* the next read looks again */
}

/*
 * The backend's secondary instance, opened on first use and caught up with
 * the primary when storage changed, or opened again when the primary was
 * or flushed (see the file header for the locking protocol).  While an
 * iterator of it is open, it keeps the view it has.
 */
rocksdb_t *
kalam_rocks_reader(void)
{
	KalamStorageShared *shared = get_storage_shared();
	char	   *err = NULL;

	if (reader_db == NULL)
		wait_for_primary();
	else if ((storage_version() == reader_seen_version &&
			  pg_atomic_read_u64(&shared->incarnation) == reader_incarnation) ||
			 reader_iterators > 0)
		return reader_db;

	LWLockAcquire(shared->lock, LW_SHARED);
	if (reader_db != NULL &&
		(pg_atomic_read_u64(&shared->incarnation) != reader_incarnation ||
		 manifest_size() != reader_manifest))
	{
		close_reader_db();
		ereport(DEBUG1,
				(errmsg("kalam reader opened again: the kalam worker opened or flushed storage since")));
	}
	if (reader_db != NULL)
	{
		reader_seen_version = storage_version();
		rocksdb_try_catch_up_with_primary(reader_db, &err);
		/* a flush during the catch-up: what it replayed may be stale */
		if (err == NULL && manifest_size() != reader_manifest)
			close_reader_db();
	}
	if (reader_db == NULL && err == NULL)
	{
		open_reader_whole(&err);
		LWLockRelease(shared->lock);
		if (err != NULL)
			report_rocks_error("open a reader of", db_path, err);
		return reader_db;
	}
	LWLockRelease(shared->lock);
	if (err != NULL)
	{
		/* not caught up: the next read tries again */
		reader_seen_version = 0;
		report_rocks_error("catch up with", reader_path, err);
	}
	return reader_db;
}

/*
 * An iterator of the backend's reader, with options or (NULL) the
 * reader's own.  The reader is not opened again while one is open:
 * release it with kalam_rocks_reader_iterator_destroy.
 */
rocksdb_iterator_t *
kalam_rocks_reader_iterator(rocksdb_readoptions_t *options)
{
	rocksdb_t  *db = kalam_rocks_reader();
	rocksdb_iterator_t *it;

	it = rocksdb_create_iterator(db, options != NULL ? options :
								 reader_read_options);

	reader_iterators++;
	return it;
}

void
kalam_rocks_reader_iterator_destroy(rocksdb_iterator_t *it)
{
	rocksdb_iter_destroy(it);
	Assert(reader_iterators > 0);
	reader_iterators--;
}

/*
 * Visit the keys under prefix, from start, in the backend's reader (see
 * kalam_scan_prefix_from).  A visitor may raise an error (palloc): the
 * iterator is destroyed all the same, since a reader cannot be closed
 * while one is open.
 */
bool
kalam_rocks_scan_prefix_from(const char *prefix, size_t prefixlen,
							 const char *start, size_t startlen,
							 KalamPrefixVisitor visit, void *arg,
							 char *errbuf, size_t errlen)
{
	rocksdb_iterator_t *it = kalam_rocks_reader_iterator(NULL);
	volatile bool completed = false;

	PG_TRY();
	{
		completed = kalam_scan_iterator(it, prefix, prefixlen, start, startlen,
										visit, arg, errbuf, errlen);
	}
	PG_FINALLY();
	{
		kalam_rocks_reader_iterator_destroy(it);
	}
	PG_END_TRY();
	return completed;
}

bool
kalam_rocks_scan_prefix(const char *prefix, size_t prefixlen,
						KalamPrefixVisitor visit, void *arg,
						char *errbuf, size_t errlen)
{
	return kalam_rocks_scan_prefix_from(prefix, prefixlen, prefix, prefixlen,
										visit, arg, errbuf, errlen);
}

/*
 * May the kalam reader answer this read?  The session's first
 * kalam_served_reads go through it (kv/read_service.c) while the session
 * has no reader of its own.
 */
static bool
may_ask_kalam_reader(void)
{
	return reader_db == NULL && served_reads < kalam_served_reads;
}

/* Point read into palloc'd memory; NULL when the key is absent */
char *
kalam_rocks_get(const char *key, size_t keylen, size_t *vallen)
{
	if (may_ask_kalam_reader())
	{
		char	   *value = NULL;

		switch (kalam_read_service_get(key, keylen, &value, vallen))
		{
			case KALAM_SERVED_FOUND:
				served_reads++;
				return value;
			case KALAM_SERVED_ABSENT:
				served_reads++;
				return NULL;
			case KALAM_SERVED_UNAVAILABLE:
				break;
		}
	}
	return kalam_rocks_reader_get(key, keylen, vallen);
}

/*
 * The rows from lower up to (not with) upper, as the kalam reader read
 * them with one iterator, packed (codec/served.h), if the session has no
 * reader of its own, has not used up kalam_served_reads, and the reader
 * could answer; false otherwise: read them yourself.
 */
bool
kalam_rocks_served_range(const char *lower, size_t lowerlen,
						 const char *upper, size_t upperlen, char **rows,
						 size_t *len)
{
	if (!may_ask_kalam_reader() ||
		kalam_read_service_range(lower, lowerlen, upper, upperlen, rows,
								 len) != KALAM_SERVED_FOUND)
		return false;
	served_reads++;
	return true;
}

/* Point read through this process's own reader, as kalam_rocks_get */
char *
kalam_rocks_reader_get(const char *key, size_t keylen, size_t *vallen)
{
	rocksdb_t  *db = kalam_rocks_reader();
	char	   *err = NULL;
	char	   *value;
	char	   *copy;

	value = rocksdb_get(db, reader_read_options, key, keylen, vallen, &err);
	if (err != NULL)
		report_rocks_error("read", reader_path, err);
	if (value == NULL)
		return NULL;
	copy = palloc(*vallen);
	memcpy(copy, value, *vallen);
	rocksdb_free(value);
	return copy;
}

/*
 * Is it time to flush the primary's memtable by age?  True at most once
 * per interval_ms (never with 0), so that the log a new reader replays
 * stays small (see the file header).  The flush itself, and the looks at
 * RocksDB's state before it, run off the worker's loop
 * (kalam_rocks_flush_memtable): each takes RocksDB's database mutex,
 * which a flush or compaction in the background may hold, and under
 * bench/scale.sh's 1M-row load the loop stalled 0.5-1.1 s, 11 times,
 * waiting on them, where the flush itself took under a millisecond.
 */
bool
kalam_rocks_flush_due(int interval_ms)
{
	static TimestampTz last = 0;

	return interval_passed(&last, interval_ms);
}

/*
 * Flush the primary's active memtable by age, without waiting for the
 * flush.  RocksDB and libc only: it runs on a thread of libuv's pool, one
 * call at a time (its static state is its own).  On failure, returns
 * RocksDB's message (to rocksdb_free).
 *
 * A flushed file costs more than its size: all of kalam's keys are in one
 * column family, so each file spans from the groups' applied positions to
 * the change log's tail to the rows' tail, and each compaction of level 0
 * (4 files) rewrites all of level 1 (207 MB on average at 10M rows, in
 * bench/scale.sh).  Flushing every interval whatever the writes made that
 * load slower (11.9k rows/s loaded, 16.9k with kalam.flush_interval = 0)
 * and doubled the leader's p99 while a follower caught up at 1M rows.  So
 * a flush by age passes while:
 * - writes fill the memtable at KALAM_FLUSH_BUSY_RATE or faster: it fills
 *   by size within seconds (the next call after they slow down flushes
 *   what they left);
 * - a flush by size began the memtable since the last call: it is younger
 *   than the interval (a load of large transactions flushes at each);
 * - the memtable holds less than min_size (kalam.flush_min_size): a
 *   reader replays it in a few ms, and a file of it costs as much
 *   compaction as a full one;
 * - RocksDB compacts: another file would start the next compaction of
 *   level 1 as soon as this one ends;
 * - an earlier flush is still pending (a second immutable memtable would
 *   make rocksdb_flush wait for the first), or level 0 holds
 *   KALAM_FLUSH_MAX_L0 files or more: near RocksDB's slowdown trigger (20
 *   files), rocksdb_flush waits, even told not to, until compaction has
 *   brought the count down ("WaitUntilFlushWouldNotStallWrites" in
 *   RocksDB's LOG, 1-2 times per node in bench/scale.sh's 3M-row load on
 *   this 2-core machine).
 */
char *
kalam_rocks_flush_memtable(rocksdb_t *db, uint64 min_size)
{
	static uint64 seen_size = 0;	/* the active memtable's, last call */
	static struct timespec seen_at; /* that call's time (monotonic) */
	struct timespec now;
	int64		elapsed_ms;
	rocksdb_flushoptions_t *flush_options;
	uint64		entries = 0;
	uint64		immutable = 0;
	uint64		compactions = 0;
	uint64		size = 0;
	uint64		grown;
	bool		young;
	unsigned long level0;
	char	   *value;
	char	   *err = NULL;

	if (rocksdb_property_int(db, "rocksdb.cur-size-active-mem-table", &size) != 0)
		return NULL;
	clock_gettime(CLOCK_MONOTONIC, &now);
	/* the first call: as if after a long pause */
	elapsed_ms = seen_at.tv_sec == 0 ? INT_MAX :
		(now.tv_sec - seen_at.tv_sec) * 1000 +
		(now.tv_nsec - seen_at.tv_nsec) / 1000000;
	/* smaller than last time: a flush by size began a new memtable since */
	young = size < seen_size;
	grown = young ? 0 : size - seen_size;
	seen_size = size;
	seen_at = now;
	if (young || size < min_size ||
		grown * 1000 >= (uint64) KALAM_FLUSH_BUSY_RATE * (uint64) elapsed_ms)
		return NULL;
	if (rocksdb_property_int(db, "rocksdb.num-entries-active-mem-table", &entries) != 0 ||
		entries == 0 ||
		rocksdb_property_int(db, "rocksdb.num-immutable-mem-table", &immutable) != 0 ||
		immutable > 0 ||
		rocksdb_property_int(db, "rocksdb.num-running-compactions", &compactions) != 0 ||
		compactions > 0)
		return NULL;
	/* a string property: rocksdb_property_int fails on it */
	value = rocksdb_property_value(db, "rocksdb.num-files-at-level0");
	if (value == NULL)
		return NULL;
	level0 = strtoul(value, NULL, 10);
	rocksdb_free(value);
	if (level0 >= KALAM_FLUSH_MAX_L0)
		return NULL;
	flush_options = rocksdb_flushoptions_create();
	rocksdb_flushoptions_set_wait(flush_options, 0);
	rocksdb_flush(db, flush_options, &err);
	rocksdb_flushoptions_destroy(flush_options);
	if (err == NULL)
		seen_size = 0;			/* the flush began a new memtable */
	return err;
}
