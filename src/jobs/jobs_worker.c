/*-------------------------------------------------------------------------
 *
 * jobs_worker.c
 *	  The kalam jobs worker: background work that needs the catalog.
 *
 * Connected to kalam.database, it runs the DDL that other nodes wrote into
 * the meta group's log (ddl_replay.c) when the kalam worker says the meta
 * group moved or a failed replay is due again, and every
 * kalam.ttl_purge_interval deletes the expired rows of every stream table.
 * The deletion is an ordinary command per user shard, carrying the cut-off
 * time, so that it is applied like any write, identically on every node.
 * Readers never depend on it: they skip expired rows.  An error in one job
 * is logged and its transaction rolled back; the worker goes on with the
 * other and runs the failed one again on its next round.
 *
 * src/jobs/jobs_worker.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "codec/command.h"
#include "fdw/kalam_fdw.h"
#include "jobs/jobs_worker.h"
#include "kalam.h"
#include "raft/group.h"
#include "storage/keys.h"
#include "txn/txn.h"
#include "worker/channel.h"

/*
 * The cut-off of every stream table: rows written before it are expired.
 * Returns the number of stream tables.
 */
static int
list_stream_tables(uint32 **ids, TimestampTz **cutoffs)
{
	uint64		i;

	if (!OidIsValid(get_extension_oid("kalam", true)))
		return 0;
	if (SPI_execute("SELECT id, now() - ttl FROM kalam.tables WHERE type = 'stream'",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "kalam jobs: could not list stream tables");

	*ids = palloc(sizeof(uint32) * (SPI_processed + 1));
	*cutoffs = palloc(sizeof(TimestampTz) * (SPI_processed + 1));
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;

		(*ids)[i] = DatumGetInt32(SPI_getbinval(tuple, desc, 1, &isnull));
		(*cutoffs)[i] = DatumGetTimestampTz(SPI_getbinval(tuple, desc, 2, &isnull));
	}
	return (int) SPI_processed;
}

/*
 * One round of ttl purging, in its own transaction: one command per user
 * shard, since each shard's rows are its own Raft group's.
 */
static void
purge_expired_rows(void)
{
	StringInfoData buf;
	KalamApplyResult result;
	uint32	   *ids = NULL;
	TimestampTz *cutoffs = NULL;
	int			ntables;
	int			group;
	int			i;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "kalam: deleting expired stream rows");

	ntables = list_stream_tables(&ids, &cutoffs);
	initStringInfo(&buf);
	for (group = KALAM_GROUP_FIRST_USER; ntables > 0 && group < kalam_group_count(); group++)
	{
		kalam_command_begin(&buf, GetCurrentTimestamp());
		for (i = 0; i < ntables; i++)
		{
			StringInfoData prefix;

			initStringInfo(&prefix);
			kalam_key_append_group(&prefix, group);
			kalam_key_append_table(&prefix, ids[i]);
			kalam_command_add(&buf, KALAM_OP_EXPIRE, 0, prefix.data, prefix.len,
							  (const char *) &cutoffs[i], sizeof(TimestampTz));
		}
		kalam_channel_submit(group, buf.data, buf.len, &result);
		if (result.status == KALAM_APPLY_NOT_LEADER)
			continue;			/* the group's leader expires its rows */
		if (result.status != KALAM_APPLY_OK)
			ereport(LOG,
					(errmsg("kalam jobs: deleting expired stream rows failed: %s",
							result.message)));
		else if (result.rows_written > 0)
			ereport(DEBUG1,
					(errmsg("kalam jobs: deleted " UINT64_FORMAT " expired stream rows",
							result.rows_written)));
	}

	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
}

/* How often the intents of transactions across groups are looked at */
#define KALAM_RECOVERY_INTERVAL_MS	1000

/* One round of recovery of transactions across groups (txn/recovery.c) */
static void
recover_transactions(void)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	pgstat_report_activity(STATE_RUNNING, "kalam: recovering transactions across groups");
	kalam_txn_recover();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * Run one job.  An error it raises is logged and its transaction rolled
 * back, as a backend does with a failed statement, and the worker goes on.
 */
static void
run_job(void (*job) (void))
{
	MemoryContext context = CurrentMemoryContext;

	PG_TRY();
	{
		job();
	}
	PG_CATCH();
	{
		HOLD_INTERRUPTS();
		EmitErrorReport();
		AbortOutOfAnyTransaction();
		FlushErrorState();
		MemoryContextSwitchTo(context);
		pgstat_report_activity(STATE_IDLE, NULL);
		RESUME_INTERRUPTS();
	}
	PG_END_TRY();
}

void
kalam_jobs_worker_main(Datum main_arg)
{
	TimestampTz next_purge;
	TimestampTz next_recovery;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(kalam_database, NULL, 0);
	/* ttl purge and DDL replay read this node's own state */
	kalam_internal_reads = true;
	kalam_channel_attach_jobs(MyLatch);
	next_purge = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
											 kalam_ttl_purge_interval * 1000L);
	next_recovery = GetCurrentTimestamp();

	for (;;)
	{
		TimestampTz wake = Min(next_purge, next_recovery);
		long		wait;

		if (kalam_replay_retry_at() != 0 && kalam_replay_retry_at() < wake)
			wake = kalam_replay_retry_at();
		wait = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), wake);

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 wait, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		run_job(kalam_replay_ddl);
		if (GetCurrentTimestamp() >= next_purge)
		{
			run_job(purge_expired_rows);
			next_purge = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													 kalam_ttl_purge_interval * 1000L);
		}
		if (GetCurrentTimestamp() >= next_recovery)
		{
			run_job(recover_transactions);
			next_recovery = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
														KALAM_RECOVERY_INTERVAL_MS);
		}
	}
}
