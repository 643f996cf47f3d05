/*-------------------------------------------------------------------------
 *
 * kalam_worker.c
 *	  The kalam worker: owner of the RocksDB primary and of the apply loop.
 *
 * The worker has no database connection.  It opens the RocksDB primary,
 * publishes the applied index, and then loops: take the queued commands,
 * stage them with the apply function, write them as one synced batch, then
 * publish the new applied index and wake the waiting backends.  Commands
 * that arrive while a batch is written wait for the next one, which is what
 * makes concurrent commits share an fsync.
 *
 * src/worker/kalam_worker.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "pgstat.h"
#include "portability/instr_time.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "utils/guc.h"

#include "storage/apply.h"
#include "storage/rocks.h"
#include "worker/channel.h"
#include "worker/kalam_worker.h"

/* most commands applied in one batch */
#define KALAM_MAX_BATCH		64

static rocksdb_t *primary_db = NULL;
static KalamApplier applier;

void
kalam_worker_register(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS;
	worker.bgw_start_time = BgWorkerStart_PostmasterStart;
	worker.bgw_restart_time = 1;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "kalam");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "kalam_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "kalam worker");
	snprintf(worker.bgw_type, BGW_MAXLEN, "kalam worker");
	RegisterBackgroundWorker(&worker);
}

static void
worker_exit(int code, Datum arg)
{
	kalam_channel_detach_worker();
	if (primary_db != NULL)
	{
		kalam_apply_destroy(&applier);
		kalam_rocks_close_primary(primary_db);
		primary_db = NULL;
	}
}

/* Apply one batch of taken commands and report each outcome. */
static void
apply_batch(KalamPendingCommand *commands, int n)
{
	KalamApplyResult results[KALAM_MAX_BATCH];
	KalamStats *stats = kalam_channel_stats();
	char		flush_error[256];
	instr_time	start;
	instr_time	elapsed;
	uint64		rows = 0;
	uint64		failed = 0;
	int			i;

	INSTR_TIME_SET_CURRENT(start);
	for (i = 0; i < n; i++)
	{
		dsm_segment *seg;

		if (commands[i].inline_data != NULL)
		{
			kalam_apply_command(&applier, applier.staged_index + 1,
								commands[i].inline_data, commands[i].length,
								&results[i]);
			continue;
		}
		seg = dsm_attach(commands[i].handle);
		if (seg == NULL)
		{
			/* the owner gave up and its segment is gone */
			memset(&results[i], 0, sizeof(KalamApplyResult));
			results[i].status = KALAM_APPLY_LOST;
			continue;
		}
		kalam_apply_command(&applier, applier.staged_index + 1,
							dsm_segment_address(seg), commands[i].length,
							&results[i]);
		dsm_detach(seg);
	}

	if (!kalam_apply_flush(&applier, flush_error, sizeof(flush_error)))
		ereport(LOG,
				(errcode(ERRCODE_IO_ERROR),
				 errmsg("kalam worker could not write a batch of %d commands", n),
				 errdetail("RocksDB: %s", flush_error)));

	for (i = 0; i < n; i++)
	{
		KalamApplyResult *r = &results[i];

		if (r->status == KALAM_APPLY_OK &&
			r->applied_index > applier.durable_index)
		{
			r->status = KALAM_APPLY_STORAGE_ERROR;
			strlcpy(r->message, flush_error, sizeof(r->message));
		}
		if (r->status == KALAM_APPLY_OK)
			rows += r->rows_written;
		else
			failed++;
	}
	kalam_channel_publish_applied(applier.durable_index);

	INSTR_TIME_SET_CURRENT(elapsed);
	INSTR_TIME_SUBTRACT(elapsed, start);
	pg_atomic_fetch_add_u64(&stats->commands_applied, n - failed);
	pg_atomic_fetch_add_u64(&stats->commands_failed, failed);
	pg_atomic_fetch_add_u64(&stats->batches_written, 1);
	pg_atomic_fetch_add_u64(&stats->rows_written, rows);
	pg_atomic_fetch_add_u64(&stats->apply_time_us, INSTR_TIME_GET_MICROSEC(elapsed));

	for (i = 0; i < n; i++)
		kalam_channel_complete(&commands[i], &results[i]);
}

void
kalam_worker_main(Datum main_arg)
{
	char		errbuf[256];
	KalamPendingCommand commands[KALAM_MAX_BATCH];

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();

	primary_db = kalam_rocks_open_primary();
	kalam_rocks_remove_stale_secondaries();
	if (!kalam_apply_init(&applier, primary_db, errbuf, sizeof(errbuf)))
		ereport(FATAL,
				(errcode(ERRCODE_IO_ERROR),
				 errmsg("kalam worker could not read its applied index"),
				 errdetail("RocksDB: %s", errbuf)));
	before_shmem_exit(worker_exit, (Datum) 0);

	kalam_channel_attach_worker(MyLatch);
	kalam_channel_set_storage_ready(applier.durable_index);
	ereport(LOG,
			(errmsg("kalam worker started at applied index " UINT64_FORMAT,
					applier.durable_index)));

	while (!ShutdownRequestPending)
	{
		int			n;

		ResetLatch(MyLatch);
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		n = kalam_channel_take(commands, KALAM_MAX_BATCH);
		if (n > 0)
		{
			apply_batch(commands, n);
			continue;
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_EXIT_ON_PM_DEATH, -1L,
						 PG_WAIT_EXTENSION);
	}
	proc_exit(0);
}
