/*-------------------------------------------------------------------------
 *
 * kalam.c
 *	  Module load: settings, shared memory, background workers and hooks.
 *
 * kalam must be loaded through shared_preload_libraries: its worker owns the
 * storage and its shared memory carries every write, so loading it into a
 * single backend cannot work and is refused with a hint.
 *
 * src/kalam.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/guc.h"

#include "cluster/apply_metrics.h"
#include "cluster/handshake.h"
#include "cluster/meta_watermark.h"
#include "cluster/node.h"
#include "cluster/snapshot.h"
#include "codec/command.h"
#include "codec/group.h"
#include "fdw/kalam_fdw.h"
#include "kalam.h"
#include "kv/apply.h"
#include "kv/read_service.h"
#include "kv/rocks.h"
#include "live/live.h"
#include "txn/txn.h"
#include "worker/channel.h"

PG_MODULE_MAGIC;

char	   *kalam_data_dir = NULL;
char	   *kalam_database = NULL;
char	   *kalam_as_user = NULL;
int			kalam_ttl_purge_interval = 10;
int			kalam_ttl_purge_batch = 10000;
int			kalam_change_retention = 3600;
int			kalam_flush_interval = 1000;
int			kalam_flush_min_size = 512;
int			kalam_manifest_size_limit = 64;
int			kalam_worker_wait_timeout = 10000;
bool		kalam_debug_ddl_records = false;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

void		_PG_init(void);

/* Raise the error that tells how to load kalam properly. */
void
kalam_require_preload(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("kalam must be loaded via shared_preload_libraries"),
			 errhint("Add 'kalam' to shared_preload_libraries in postgresql.conf and restart the server.")));
}

/* A path under kalam.data_dir; a relative setting is relative to PGDATA. */
char *
kalam_data_path(const char *sub)
{
	char	   *base;

	if (is_absolute_path(kalam_data_dir))
		base = pstrdup(kalam_data_dir);
	else
		base = psprintf("%s/%s", DataDir, kalam_data_dir);
	if (sub == NULL)
		return base;
	return psprintf("%s/%s", base, sub);
}

/*
 * Register one of kalam's background workers: the kalam worker (storage
 * and Raft, no database), the jobs worker and the notifier (both connected
 * to kalam.database), the reader (a session's first reads, no database).
 */
static void
register_worker(const char *name, const char *function, bool database,
				int restart_seconds)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS;
	if (database)
		worker.bgw_flags |= BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = database ? BgWorkerStart_RecoveryFinished :
		BgWorkerStart_PostmasterStart;
	worker.bgw_restart_time = restart_seconds;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "kalam");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "%s", function);
	snprintf(worker.bgw_name, BGW_MAXLEN, "%s", name);
	snprintf(worker.bgw_type, BGW_MAXLEN, "%s", name);
	RegisterBackgroundWorker(&worker);
}

static void
kalam_shmem_request(void)
{
	Size		size = kalam_channel_shmem_size();

	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	size = add_size(size, kalam_watermark_shmem_size());
	size = add_size(size, kalam_live_shmem_size());
	size = add_size(size, kalam_metrics_shmem_size());
	size = add_size(size, kalam_rocks_shmem_size());
	size = add_size(size, kalam_read_service_shmem_size());
	RequestAddinShmemSpace(size);
	RequestNamedLWLockTranche("kalam channel", 1);
	RequestNamedLWLockTranche("kalam storage", 1);
	RequestNamedLWLockTranche("kalam live", 1);
}

static void
kalam_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	kalam_channel_shmem_init();
	kalam_watermark_shmem_init();
	kalam_live_shmem_init();
	kalam_metrics_shmem_init();
	kalam_rocks_shmem_init();
	kalam_read_service_shmem_init();
}

static void
define_gucs(void)
{
	DefineCustomStringVariable("kalam.data_dir",
							   "Directory of kalam's RocksDB storage.",
							   "A relative path is relative to the data directory.",
							   &kalam_data_dir,
							   "kalam",
							   PGC_POSTMASTER,
							   0,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("kalam.database",
							   "Database in which the kalam extension lives and its workers connect.",
							   NULL,
							   &kalam_database,
							   "postgres",
							   PGC_POSTMASTER,
							   0,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("kalam.as_user",
							   "User whose rows of user and stream tables this session reads and writes.",
							   "Empty means the current user.  Only superusers may set it.",
							   &kalam_as_user,
							   "",
							   PGC_SUSET,
							   0,
							   NULL, NULL, NULL);
	DefineCustomIntVariable("kalam.ttl_purge_interval",
							"Time between background deletions of expired stream table rows.",
							NULL,
							&kalam_ttl_purge_interval,
							10,
							1,
							86400,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);
	DefineCustomIntVariable("kalam.ttl_purge_batch",
							"Stored rows that one step of the ttl purge examines at most.",
							"Each step is one Raft log entry, applied on the kalam worker's loop: a smaller batch holds the loop for less time per entry, at the cost of more entries.",
							&kalam_ttl_purge_batch,
							10000,
							1,
							KALAM_EXPIRE_MAX_ROWS,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("kalam.flush_interval",
							"Age at which the kalam worker writes its RocksDB memtable out to a table file.",
							"A new connection's first read replays what was written since the last such flush: a shorter interval makes it cheaper, at the cost of more, smaller table files to compact.  Not under writes of 1 MB/s or more, which fill the memtable by size (8 MB) within seconds, nor while RocksDB compacts, nor below kalam.flush_min_size.  0 flushes by size only.",
							&kalam_flush_interval,
							1000,
							0,
							INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("kalam.flush_min_size",
							"Size the RocksDB memtable must reach before the kalam worker flushes it by age.",
							"Each table file flushed costs a compaction of a quarter of RocksDB's level 1 later, whatever its size; a new connection's first read replays about 36 ms per MB of the memtable.",
							&kalam_flush_min_size,
							512,
							0,
							INT_MAX / 1024,
							PGC_SIGHUP,
							GUC_UNIT_KB,
							NULL, NULL, NULL);
	DefineCustomIntVariable("kalam.served_reads",
							"Reads of a session that the kalam reader process answers before the session opens RocksDB itself.",
							"Lookups by key, and scans of key ranges whose rows fit in 32 kB.  A session's own RocksDB reader costs 7-11 ms to open, and then about 0.05 ms less per read than asking the kalam reader.  0 always reads by itself.",
							&kalam_served_reads,
							64,
							0,
							INT_MAX,
							PGC_USERSET,
							0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("kalam.manifest_size_limit",
							"Size past which the kalam worker begins a new RocksDB MANIFEST.",
							"A new connection's first read replays the MANIFEST, which grows with every flush and compaction; the worker begins a new one by opening its storage again (20-30 ms on a small database, 170-480 ms at 4.5 GB under load; between turns of its loop, when no snapshot transfer, split or flush is under way).  0 never does.",
							&kalam_manifest_size_limit,
							64,
							0,
							INT_MAX / 1024,
							PGC_SIGHUP,
							GUC_UNIT_KB,
							NULL, NULL, NULL);
	DefineCustomIntVariable("kalam.change_retention",
							"How long each node keeps the changes it applied, for kalam.changes.",
							"A client that resumes from a position older than this gets KL005 and reloads.",
							&kalam_change_retention,
							3600,
							1,
							INT_MAX / 1000,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);
	DefineCustomIntVariable("kalam.worker_wait_timeout",
							"How long a session waits for the kalam worker to open its storage.",
							NULL,
							&kalam_worker_wait_timeout,
							10000,
							0,
							INT_MAX,
							PGC_USERSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("kalam.user_shards",
							"Number of Raft groups that hold the rows of user and stream tables.",
							"Must be the same on every node, and never change once rows are stored.",
							&kalam_user_shards,
							4,
							1,
							KALAM_MAX_USER_SHARDS,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("kalam.node_id",
							"This node's id in kalam.peers.",
							NULL,
							&kalam_node_id,
							1,
							1,
							255,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);
	DefineCustomStringVariable("kalam.raft_address",
							   "host:port where this node's Raft groups listen; group N uses port + N.",
							   "Empty, with kalam.peers empty: a one-node cluster, which listens on no port.",
							   &kalam_raft_address,
							   "",
							   PGC_POSTMASTER,
							   0,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("kalam.peers",
							   "The initial voters of the cluster, as id@host:port,..., this node included.",
							   "Empty: a one-node cluster.",
							   &kalam_peers,
							   "",
							   PGC_POSTMASTER,
							   0,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("kalam.client_address",
							   "host:port where clients reach this node's PostgreSQL, as kalam.groups shows it.",
							   "Empty: the first of listen_addresses and port.",
							   &kalam_client_address,
							   "",
							   PGC_POSTMASTER,
							   0,
							   NULL, NULL, NULL);
	DefineCustomIntVariable("kalam.election_timeout",
							"Raft election timeout; heartbeats go out at a tenth of it.",
							NULL,
							&kalam_election_timeout,
							1000,
							50,
							60000,
							PGC_POSTMASTER,
							GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("kalam.leader_wait_timeout",
							"How long a commit waits for its Raft group to have a leader.",
							NULL,
							&kalam_leader_wait_timeout,
							5000,
							0,
							INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomBoolVariable("kalam.debug_hold_meta_apply",
							 "Holds back this node's applying of meta group entries.",
							 "For tests of a node whose meta group is behind: data entries that need the held DDL wait too.",
							 &kalam_debug_hold_meta_apply,
							 false,
							 PGC_SIGHUP,
							 GUC_NOT_IN_SAMPLE,
							 NULL, NULL, NULL);
	DefineCustomBoolVariable("kalam.debug_fail_apply_write",
							 "Makes this node's writes of applied entries fail.",
							 "For tests: the kalam worker stops with FATAL and replays the Raft log when it restarts.",
							 &kalam_debug_fail_apply_write,
							 false,
							 PGC_SIGHUP,
							 GUC_NOT_IN_SAMPLE,
							 NULL, NULL, NULL);
	DefineCustomBoolVariable("kalam.debug_enable_hooks",
							 "Enables the developer-only functions such as kalam.debug_propose.",
							 "For tests: they hand raw commands to the Raft groups.",
							 &kalam_debug_enable_hooks,
							 false,
							 PGC_POSTMASTER,
							 GUC_NOT_IN_SAMPLE,
							 NULL, NULL, NULL);
	DefineCustomBoolVariable("kalam.debug_ddl_records",
							 "Lets superusers write unchecked DDL records into the meta group's log.",
							 "For tests of the refusal of bad records by the other nodes (kalam.debug_put_ddl_record).",
							 &kalam_debug_ddl_records,
							 false,
							 PGC_POSTMASTER,
							 GUC_NOT_IN_SAMPLE,
							 NULL, NULL, NULL);
	kalam_handshake_define_gucs();
	kalam_snapshot_define_gucs();
	kalam_fsm_define_gucs();
	kalam_read_define_gucs();
	kalam_live_define_gucs();
	kalam_txn_define_gucs();
	kalam_writeset_define_gucs();
	MarkGUCPrefixReserved("kalam");
}

void
_PG_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		kalam_require_preload();

	define_gucs();
	kalam_rocks_configure(kalam_data_path(NULL), kalam_channel_wait_storage_ready);
	kalam_node_check_settings();

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = kalam_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = kalam_shmem_startup;

	register_worker("kalam worker", "kalam_worker_main", false, 1);
	register_worker("kalam jobs", "kalam_jobs_worker_main", true, 10);
	register_worker("kalam notifier", "kalam_notifier_main", true, 1);
	register_worker("kalam reader", "kalam_reader_main", false, 1);
	kalam_fdw_install_hooks();
	kalam_live_install_hooks();
}
