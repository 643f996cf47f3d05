/*-------------------------------------------------------------------------
 *
 * kalam_worker.c
 *	  The kalam worker: owner of the RocksDB primary and of the Raft groups.
 *
 * The worker has no database connection.  It opens the RocksDB primary,
 * starts this node's Raft groups on a libuv loop (cluster/node.c), and then
 * waits on one WaitEventSet for its latch (a backend queued a command),
 * postmaster death, and the loop's epoll descriptor with the loop's next
 * timer as timeout.  Each turn: take the queued commands and propose them,
 * run the loop once without blocking, then write what was applied and
 * report outcomes.  Commands that arrive while the Raft log is written wait
 * for the next turn, which is what batches concurrent commits.
 *
 * A turn that takes half the election timeout (500 ms) or more is logged
 * with where its time went: no heartbeat leaves while it runs, and a
 * longer one sets off elections.
 *
 * When RocksDB fails to write what a group applied, libraft already counts
 * those entries applied: the worker stops with FATAL, and its restart
 * replays the Raft log from the last index written.
 *
 * src/worker/kalam_worker.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <uv.h>

#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "cluster/node.h"
#include "codec/group.h"
#include "kalam.h"
#include "kv/rocks.h"
#include "worker/channel.h"
#include "worker/kalam_worker.h"

/* most commands taken from the queue in one turn */
#define KALAM_MAX_BATCH		64
#define SLOW_TURN_MS		500

static rocksdb_t *primary_db = NULL;
static uv_loop_t loop;
static bool node_started = false;

/* the flush by age, on libuv's pool (kv/rocks.c says why) */
static uv_work_t flush_work;
static bool flush_running = false;
static char *flush_error = NULL;	/* RocksDB's, from the pool */
static uint64 flush_min_size = 0;	/* kalam.flush_min_size, in bytes */

static void
worker_exit(int code, Datum arg)
{
	kalam_channel_detach_worker();
	if (node_started)
	{
		kalam_node_stop();
		node_started = false;
	}
	if (primary_db != NULL)
	{
		kalam_rocks_close_primary(primary_db);
		primary_db = NULL;
	}
}

/* Stop if a group's applied entries could not be written (cluster/node.c). */
static void
stop_if_storage_failed(void)
{
	char		group[KALAM_GROUP_NAME_LEN];
	char		errbuf[256];

	if (kalam_node_storage_failed(group, errbuf, sizeof(errbuf)))
		ereport(FATAL,
				(errcode(ERRCODE_IO_ERROR),
				 errmsg("kalam could not write the applied entries of group \"%s\"", group),
				 errdetail("RocksDB: %s", errbuf),
				 errhint("The kalam worker restarts and replays the Raft log from the last entry written.")));
}

/* On a thread of libuv's pool: RocksDB only */
static void
flush_run(uv_work_t *req)
{
	flush_error = kalam_rocks_flush_memtable(primary_db, flush_min_size);
}

static void
flush_done(uv_work_t *req, int status)
{
	flush_running = false;
	if (flush_error != NULL)
	{
		ereport(WARNING,
				(errmsg("kalam could not flush its memtable"),
				 errdetail("RocksDB: %s", flush_error)));
		rocksdb_free(flush_error);
		flush_error = NULL;
	}
}

/* Flush the memtable by age, on the pool, unless a flush still runs */
static void
flush_if_due(void)
{
	if (flush_running || !kalam_rocks_flush_due(kalam_flush_interval))
		return;
	flush_min_size = (uint64) kalam_flush_min_size * 1024;
	if (uv_queue_work(&loop, &flush_work, flush_run, flush_done) == 0)
		flush_running = true;
}

/*
 * Begin a new RocksDB MANIFEST by opening storage again.  If it does not
 * open again, the groups' appliers hold a closed database: the worker then
 * stops without closing its Raft groups (closing them applies and parks
 * entries through it), as if killed, and replays its Raft log once
 * restarted.
 */
static void
reopen_storage(void)
{
	rocksdb_t  *db = primary_db;

	primary_db = NULL;
	node_started = false;
	db = kalam_rocks_reopen_primary(db);
	primary_db = db;
	node_started = true;
	kalam_node_set_storage(db);
}

void
kalam_worker_main(Datum main_arg)
{
	KalamPendingCommand commands[KALAM_MAX_BATCH];
	WaitEventSet *events;
	TimestampTz next_purge = 0;
	int			rv;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();

	primary_db = kalam_rocks_open_primary();
	kalam_rocks_remove_stale_secondaries();
	before_shmem_exit(worker_exit, (Datum) 0);

	if ((rv = uv_loop_init(&loop)) != 0)
		ereport(FATAL,
				(errmsg("kalam worker could not create its event loop: %s",
						uv_strerror(rv))));
	kalam_node_start(&loop, primary_db);
	node_started = true;
	kalam_node_finish_iteration();

	kalam_channel_attach_worker(MyLatch);
	kalam_channel_set_storage_ready();
	ereport(LOG,
			(errmsg("kalam worker started as node %d", kalam_node_id)));

	events = CreateWaitEventSet(TopMemoryContext, 3);
	AddWaitEventToSet(events, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(events, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	AddWaitEventToSet(events, WL_SOCKET_READABLE, uv_backend_fd(&loop), NULL, NULL);

	while (!ShutdownRequestPending)
	{
		WaitEvent	occurred[3];
		TimestampTz turn[6];
		TimestampTz due;
		long		timeout;
		int			n;
		int			i;

		uv_update_time(&loop);
		timeout = uv_backend_timeout(&loop);
		due = timeout < 0 ? 0 :
			TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout);
		(void) WaitEventSetWait(events, timeout, occurred,
								lengthof(occurred), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		turn[0] = GetCurrentTimestamp();
		if (due > 0 && turn[0] - due >= SLOW_TURN_MS * 1000)
			ereport(LOG,
					(errmsg("kalam worker: its loop woke %ld ms after its next timer was due",
							(long) ((turn[0] - due) / 1000)),
					 errdetail("The process was not scheduled: no heartbeat went out meanwhile.")));
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		n = kalam_channel_take(commands, KALAM_MAX_BATCH);
		for (i = 0; i < n; i++)
			kalam_node_propose(&commands[i]);
		turn[1] = GetCurrentTimestamp();
		uv_run(&loop, UV_RUN_NOWAIT);
		stop_if_storage_failed();
		turn[2] = GetCurrentTimestamp();
		kalam_node_finish_iteration();
		stop_if_storage_failed();
		turn[3] = GetCurrentTimestamp();
		if (turn[3] >= next_purge)
		{
			kalam_node_purge_changes(turn[3] - kalam_change_retention * USECS_PER_SEC);
			next_purge = TimestampTzPlusMilliseconds(turn[3], 1000);
		}
		turn[4] = GetCurrentTimestamp();
		if (!flush_running && !kalam_node_storage_busy() &&
			kalam_rocks_manifest_due(kalam_manifest_size_limit))
			reopen_storage();
		flush_if_due();
		turn[5] = GetCurrentTimestamp();
		if (turn[5] - turn[0] >= SLOW_TURN_MS * 1000)
			ereport(LOG,
					(errmsg("kalam worker: a turn of its loop took %ld ms, over which no heartbeat went out",
							(long) ((turn[5] - turn[0]) / 1000)),
					 errdetail("Proposing %ld ms, libuv callbacks (Raft, apply) %ld ms, writing and publishing %ld ms, starting the change log's purge %ld ms, starting a flush and a new manifest %ld ms.",
							   (long) ((turn[1] - turn[0]) / 1000),
							   (long) ((turn[2] - turn[1]) / 1000),
							   (long) ((turn[3] - turn[2]) / 1000),
							   (long) ((turn[4] - turn[3]) / 1000),
							   (long) ((turn[5] - turn[4]) / 1000))));
	}
	proc_exit(0);
}
