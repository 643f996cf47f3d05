/*-------------------------------------------------------------------------
 *
 * jobs_worker.c
 *	  The kalam jobs worker: background work that needs the catalog.
 *
 * Connected to kalam.database, it runs the DDL that other nodes wrote into
 * the meta group's log (ddl_replay.c) when the kalam worker says the meta
 * group moved or a failed replay is due again, and every
 * kalam.ttl_purge_interval deletes the expired rows of every stream table.
 * In each user shard it leads, it reads the table's rows from this node's
 * storage and cuts them into key ranges of at most kalam.ttl_purge_batch
 * rows that hold expired ones, and proposes one expiry per range, carrying
 * the range, the cut-off time and that row limit (codec/command.h): apply
 * examines at most that many rows per log entry, identically on every
 * node, so that no entry holds the kalam worker's loop (which also sends
 * the heartbeats) for long however large the table, and stretches of rows
 * that have not expired cost the loop nothing.  It stops in a group once
 * this node no longer leads it.  Readers never depend on the purge: they
 * skip expired rows.  An error in one job
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
#include "codec/group.h"
#include "codec/row.h"
#include "fdw/kalam_fdw.h"
#include "jobs/jobs_worker.h"
#include "kalam.h"
#include "kv/keys.h"
#include "kv/rocks.h"
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

/* The next range of a table's rows to expire, as a scan finds it */
typedef struct ExpiredRange
{
	TimestampTz cutoff;
	int			max_rows;		/* kalam.ttl_purge_batch */
	int			examined;		/* rows in the range so far; 0: none yet */
	StringInfoData start;		/* its first key, an expired row's */
	StringInfoData end;			/* just after its last expired row */
} ExpiredRange;

/*
 * Visit a row of the scan: a range opens at the first expired row and
 * takes the rows that follow until it holds max_rows of them, expired or
 * not (apply examines them all); it ends just after its last expired row.
 * Stops the scan once the range is full.
 */
static bool
collect_expired(const char *key, size_t keylen, const char *value,
				size_t vallen, void *arg)
{
	ExpiredRange *range = (ExpiredRange *) arg;
	KalamRowHeader header;
	bool		expired = false;

	if (vallen >= KALAM_ROW_HEADER_SIZE)
	{
		kalam_row_read_header(value, &header);
		expired = header.write_time < range->cutoff;
	}
	if (range->examined == 0 && !expired)
		return true;
	if (range->examined == 0)
	{
		resetStringInfo(&range->start);
		appendBinaryStringInfo(&range->start, key, keylen);
	}
	if (expired)
	{
		/* the first key after this one: itself and a zero byte */
		resetStringInfo(&range->end);
		appendBinaryStringInfo(&range->end, key, keylen);
		appendStringInfoChar(&range->end, '\0');
	}
	return ++range->examined < range->max_rows;
}

/*
 * Delete a stream table's expired rows in a user shard: one expiry per
 * range, each range found by a scan of this node's storage from where the
 * previous one ended, each proposed once the previous one was applied
 * here.  Adds the rows deleted to *deleted.  Returns false once this node
 * no longer leads the group.
 */
static bool
purge_table(int group, uint32 table_id, TimestampTz cutoff, uint64 *deleted)
{
	StringInfoData prefix;
	StringInfoData from;
	StringInfoData command;
	ExpiredRange range;

	initStringInfo(&prefix);
	kalam_key_append_group(&prefix, group);
	kalam_key_append_table(&prefix, table_id);
	initStringInfo(&from);
	appendBinaryStringInfo(&from, prefix.data, prefix.len);
	initStringInfo(&command);
	range.cutoff = cutoff;
	range.max_rows = kalam_ttl_purge_batch;
	initStringInfo(&range.start);
	initStringInfo(&range.end);

	for (;;)
	{
		KalamApplyResult result;
		char		errbuf[256];

		CHECK_FOR_INTERRUPTS();
		range.examined = 0;
		errbuf[0] = '\0';
		if (!kalam_rocks_scan_prefix_from(prefix.data, prefix.len,
										  from.data, from.len,
										  collect_expired, &range,
										  errbuf, sizeof(errbuf)) &&
			errbuf[0] != '\0')
			ereport(ERROR,
					(errcode(ERRCODE_IO_ERROR),
					 errmsg("kalam jobs: could not read the rows of stream table %u: %s",
							table_id, errbuf)));
		if (range.examined == 0)
			return true;

		kalam_command_begin(&command, GetCurrentTimestamp());
		kalam_command_add_expire(&command, range.start.data, range.start.len,
								 range.end.data, range.end.len, cutoff,
								 (uint32) range.max_rows);
		kalam_channel_submit(group, command.data, command.len, &result);
		if (result.status == KALAM_APPLY_NOT_LEADER ||
			result.status == KALAM_APPLY_OUTCOME_UNKNOWN)
			return false;		/* the group's new leader goes on */
		if (result.status != KALAM_APPLY_OK)
		{
			ereport(LOG,
					(errmsg("kalam jobs: deleting expired rows of stream table %u failed: %s",
							table_id, result.message)));
			return true;		/* the next round tries again */
		}
		*deleted += result.rows_written;
		resetStringInfo(&from);
		appendBinaryStringInfo(&from, range.end.data, range.end.len);
	}
}

/*
 * One round of ttl purging, in its own transaction, over the user shards
 * this node leads (each shard's rows are its own Raft group's).
 */
static void
purge_expired_rows(void)
{
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
	for (group = KALAM_GROUP_FIRST_USER; ntables > 0 && group < kalam_group_count(); group++)
	{
		KalamGroupStatus status;
		uint64		deleted = 0;

		if (!kalam_channel_group_status(group, &status) || !status.is_leader)
			continue;			/* the group's leader expires its rows */
		for (i = 0; i < ntables; i++)
			if (!purge_table(group, ids[i], cutoffs[i], &deleted))
				break;
		if (deleted > 0)
		{
			char		name[KALAM_GROUP_NAME_LEN];

			kalam_group_name(group, name);
			ereport(DEBUG1,
					(errmsg("kalam jobs: deleted " UINT64_FORMAT " expired stream rows in group \"%s\"",
							deleted, name)));
		}
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
