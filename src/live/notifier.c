/*-------------------------------------------------------------------------
 *
 * notifier.c
 *	  The kalam notifier: tells this node's listeners what this node
 *	  applied, right after it applied it.
 *
 * A background worker connected to kalam.database.  The kalam worker sets
 * its latch whenever an apply moved the applied counter while anybody
 * listens on this node (registry.c); it then reads the data groups' change
 * logs (codec/change.h) from where it stopped, through its own RocksDB
 * secondary, and NOTIFYs each change to the channels of the sessions that
 * listen to it: one transaction per round of at most NOTIFIER_BATCH
 * changes (shared fairly among the groups), because every NOTIFYing
 * commit takes PostgreSQL's cluster-wide notify lock (PreCommit_Notify).
 * The apply never waits for it: the log is in RocksDB, and a notifier that
 * falls behind only reads more on its next round.  It is a worker of its
 * own, not a job of the jobs worker, so that DDL replay or a ttl purge
 * never delays a notification.
 *
 * Each NOTIFYing commit wakes every session of the database that LISTENs,
 * and each runs a transaction to read the queue (about 0.1 ms of CPU here):
 * with 33 sessions on a node and a commit per change, that took half of the
 * writers' throughput.  So the notifier spaces its commits by n sessions /
 * kalam.notify_wakeups (2000 a second: 0.5 ms for one session, 16 ms for
 * 33), and a commit carries whatever arrived meanwhile.
 *
 * A group that nobody on this node listens to is passed over without
 * reading its log, and a change nobody listens to costs a comparison;
 * with nobody listening at all, the notifier is not woken by applies, and
 * its wake-up once a second runs no transaction.
 * Nothing is skipped: the position of the last change handled advances
 * only when the round's transaction committed.  If the commit fails (the
 * notification queue is full because a listener does not read), the round
 * is logged as a WARNING and tried again a second later, from the same
 * position; kalam.notifications shows the age of the oldest change not
 * yet sent.  The position lives in shared memory: a notifier that
 * restarts goes on where it stopped; at server start it begins at what
 * was applied then (there are no listeners yet to tell).
 *
 * A subscription's filter runs here with the subscriber's privileges (a
 * security-restricted operation, as index expressions run).  A filter
 * that raises an error (division by zero on some row) ends its
 * subscription, with a WARNING, rather than stop everybody's
 * notifications: the round is tried again without it.
 *
 * src/live/notifier.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/xact.h"
#include "commands/async.h"
#include "commands/extension.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "kalam.h"
#include "kv/row.h"
#include "live/live.h"
#include "worker/channel.h"

/* changes sent in one transaction at most */
#define NOTIFIER_BATCH	2000

static KalamListening *listenings = NULL;
static int	nlistenings = 0;
static bool listened_groups[KALAM_MAX_GROUPS];	/* a listening's rows are there */
static uint64 listened_from[KALAM_MAX_GROUPS];	/* the oldest from_index there */
static bool *same_as_earlier = NULL;	/* an unfiltered listening whose
										 * channel an earlier one has */
static int	listening_sessions = 0; /* distinct sessions among them */
static uint64 listenings_generation = PG_UINT64_MAX;
static bool tables_changed = false;
static bool filter_broke = false;
static TimestampTz last_sent_at = 0;	/* last commit that notified */
static MemoryContext listenings_context = NULL;

/* Tables may have changed: look them up again. */
static void
relcache_changed(Datum arg, Oid relid)
{
	tables_changed = true;
}

/* The listenings, copied again when they changed */
static void
refresh_listenings(void)
{
	uint64		generation;
	KalamListening *copy;
	int			n;
	MemoryContext old;

	if (kalam_live_generation() == listenings_generation)
		return;
	if (listenings_context == NULL)
		listenings_context = AllocSetContextCreate(TopMemoryContext,
												   "kalam notifier listenings",
												   ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(listenings_context);
	n = kalam_live_copy(&copy, &generation);
	MemoryContextSwitchTo(old);
	if (generation == listenings_generation)
	{
		pfree(copy);
		return;
	}
	if (listenings != NULL)
		pfree(listenings);
	if (same_as_earlier != NULL)
		pfree(same_as_earlier);
	listenings = copy;
	nlistenings = n;
	listenings_generation = generation;
	memset(listened_groups, 0, sizeof(listened_groups));
	memset(listened_from, 0, sizeof(listened_from));
	same_as_earlier = MemoryContextAllocZero(listenings_context,
											 sizeof(bool) * Max(nlistenings, 1));
	for (n = 0; n < nlistenings; n++)
	{
		int			j;

		if (!listenings[n].broken)
		{
			int			g = kalam_live_listening_group(&listenings[n]);

			if (!listened_groups[g] || listenings[n].from_index < listened_from[g])
				listened_from[g] = listenings[n].from_index;
			listened_groups[g] = true;
		}
		/* one NOTIFY per channel: every session that LISTENs to it gets it */
		for (j = 0; j < n && listenings[n].filter_len == 0; j++)
			if (strcmp(listenings[j].channel, listenings[n].channel) == 0)
			{
				same_as_earlier[n] = true;
				break;
			}
	}
	listening_sessions = 0;
	for (n = 0; n < nlistenings; n++)
	{
		int			j;

		for (j = 0; j < n && listenings[j].pid != listenings[n].pid; j++)
			;
		if (j == n)
			listening_sessions++;
	}
}

/*
 * Wait, if need be, until the last commit that notified is far enough
 * behind: n listening sessions, each woken (and running a transaction) by
 * every NOTIFYing commit of the database, may be woken at most
 * kalam.notify_wakeups times a second in all.
 */
static void
space_commits(void)
{
	long		gap_us;
	long		waited_us;

	if (kalam_notify_wakeups <= 0 || last_sent_at == 0 || listening_sessions == 0)
		return;
	gap_us = (long) ((int64) listening_sessions * USECS_PER_SEC / kalam_notify_wakeups);
	waited_us = (long) (GetCurrentTimestamp() - last_sent_at);
	if (waited_us < gap_us)
		pg_usleep(gap_us - waited_us);
}

/* Does the filter of listening i hold for the row?  (see the file header) */
static bool
filter_holds(int i, ExprState **filters, EState *estate, Relation rel,
			 Datum *values, bool *isnull)
{
	KalamListening *l = &listenings[i];
	Oid			save_userid;
	int			save_sec_context;
	ExprContext *econtext = GetPerTupleExprContext(estate);
	TupleTableSlot *slot;
	Datum		result;
	bool		result_isnull;
	MemoryContext old;

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(l->roleid,
						   save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	PG_TRY();
	{
		if (filters[i] == NULL)
		{
			old = MemoryContextSwitchTo(estate->es_query_cxt);
			filters[i] = ExecPrepareExpr((Expr *) stringToNode(l->filter), estate);
			MemoryContextSwitchTo(old);
		}
		slot = MakeSingleTupleTableSlot(RelationGetDescr(rel), &TTSOpsVirtual);
		memcpy(slot->tts_values, values, sizeof(Datum) * slot->tts_tupleDescriptor->natts);
		memcpy(slot->tts_isnull, isnull, sizeof(bool) * slot->tts_tupleDescriptor->natts);
		ExecStoreVirtualTuple(slot);
		econtext->ecxt_scantuple = slot;
		result = ExecEvalExprSwitchContext(filters[i], econtext, &result_isnull);
		ResetExprContext(econtext);
		ExecDropSingleTupleTableSlot(slot);
	}
	PG_CATCH();
	{
		/* ends this subscription; the round runs again without it */
		kalam_live_mark_broken(l->channel, l->pid);
		filter_broke = true;
		PG_RE_THROW();
	}
	PG_END_TRY();
	SetUserIdAndSecContext(save_userid, save_sec_context);
	return !result_isnull && DatumGetBool(result);
}

/*
 * Notify one change to the listenings it concerns; returns the number of
 * notifications.
 */
static int
notify_change(const KalamLoggedChange *lc, ExprState **filters, EState *estate)
{
	KalamChange change;
	KalamLiveTable *table;
	const char *error;
	char		user[NAMEDATALEN];
	bool	   *match;
	bool		any = false;
	Relation	rel;
	Datum	   *values = NULL;
	bool	   *isnull = NULL;
	char	   *key_json = NULL;
	char	   *row_json = NULL;
	char	   *payload;
	int			sent = 0;
	int			i;

	if (!kalam_change_read(lc->key, lc->keylen, lc->value, lc->vallen,
						   &change, &error))
	{
		ereport(WARNING,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("kalam notifier skipped a malformed change: %s", error)));
		return 0;
	}
	table = kalam_live_table(kalam_key_table(change.key, change.keylen));
	if (table == NULL)
		return 0;
	if (table->type != KALAM_TABLE_SHARED &&
		!kalam_change_key_user(change.key, change.keylen, user, sizeof(user),
							   &error))
	{
		ereport(WARNING,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("kalam notifier skipped a change with a malformed key: %s",
						error)));
		return 0;
	}

	match = palloc0(sizeof(bool) * Max(nlistenings, 1));
	for (i = 0; i < nlistenings; i++)
	{
		KalamListening *l = &listenings[i];

		match[i] = !l->broken && !same_as_earlier[i] &&
			l->table_id == table->table_id &&
			(l->shared || strcmp(l->user, user) == 0);
		any |= match[i];
	}
	if (!any)
		return 0;

	rel = relation_open(table->relid, AccessShareLock);
	if (change.row != NULL &&
		!kalam_row_check(change.row, change.rowlen, RelationGetDescr(rel), &error))
	{
		ereport(WARNING,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("kalam notifier skipped a change with a malformed row: %s",
						error)));
		relation_close(rel, AccessShareLock);
		return 0;
	}
	if (change.row != NULL)
	{
		int			natts = RelationGetDescr(rel)->natts;

		values = palloc(sizeof(Datum) * natts);
		isnull = palloc(sizeof(bool) * natts);
		kalam_live_decode(rel, &change, values, isnull);
		key_json = kalam_live_key_json(table, RelationGetDescr(rel), values, isnull);
		if (change.op != KALAM_CHANGE_DELETE)
			row_json = kalam_live_row_json(rel, values, isnull);
	}
	payload = kalam_live_payload(table, &change,
								 table->type == KALAM_TABLE_SHARED ? NULL : user,
								 key_json, row_json);
	for (i = 0; i < nlistenings; i++)
	{
		if (!match[i])
			continue;
		if (listenings[i].filter_len > 0 && values != NULL &&
			!filter_holds(i, filters, estate, rel, values, isnull))
			continue;
		Async_Notify(listenings[i].channel, payload);
		sent++;
	}
	relation_close(rel, AccessShareLock);
	return sent;
}

/* Position pos at group g's index, every change of it handled */
static void
handled_through(KalamChangePos *pos, int g, uint64 index)
{
	pos->group = g;
	pos->index = index;
	pos->n = PG_UINT32_MAX;
}

/*
 * What each data group applied, then who listens, in that order: whoever
 * LISTENs after this look committed its LISTEN after those changes.
 */
static void
look(uint64 *applied)
{
	int			g;

	for (g = KALAM_GROUP_SHARED; g < kalam_group_count(); g++)
	{
		KalamGroupStatus status;

		applied[g] = kalam_channel_group_status(g, &status) ?
			status.applied_index : 0;
	}
	refresh_listenings();
}

/*
 * One round: read what the data groups logged since the last round and
 * notify it, in one transaction.  Returns true if there is more to read.
 */
static bool
notify_round(void)
{
	KalamNotifierState *state = kalam_live_notifier_state();
	KalamChangePos next[KALAM_MAX_GROUPS];
	uint64		applied[KALAM_MAX_GROUPS];
	ExprState **filters;
	EState	   *estate;
	int			per_group = Max(NOTIFIER_BATCH / (kalam_group_count() - 1), 1);
	bool		more = false;
	int			total = 0;
	int			sent = 0;
	int			g;
	int			i;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (!OidIsValid(get_extension_oid("kalam", true)))
	{
		PopActiveSnapshot();
		CommitTransactionCommand();
		return false;
	}
	pgstat_report_activity(STATE_RUNNING, "kalam: notifying listeners");
	if (tables_changed)
	{
		tables_changed = false;
		kalam_live_forget_tables();
	}

	/* a group nobody listens to is passed over up to what it applied */
	look(applied);

	filters = palloc0(sizeof(ExprState *) * Max(nlistenings, 1));
	estate = CreateExecutorState();
	for (g = KALAM_GROUP_SHARED; g < kalam_group_count(); g++)
	{
		KalamLoggedChange *changes;
		int			n;

		next[g] = state->sent[g];
		if (applied[g] == 0)
			continue;
		if (!state->cursor_set[g])
		{
			handled_through(&state->sent[g], g, applied[g]);
			state->cursor_set[g] = true;
			next[g] = state->sent[g];
		}

		/*
		 * Every listening of the group began after the last change handled
		 * (the notifier is not woken while nobody listens): what was
		 * applied before the oldest one began is nobody's.
		 */
		if (listened_groups[g] && state->sent[g].index < listened_from[g])
		{
			handled_through(&state->sent[g], g, listened_from[g]);
			next[g] = state->sent[g];
		}
		/* nothing new (a position's changes may take several rounds) */
		if (applied[g] < state->sent[g].index ||
			(applied[g] == state->sent[g].index &&
			 state->sent[g].n == PG_UINT32_MAX))
			continue;
		if (!listened_groups[g])
		{
			handled_through(&next[g], g, applied[g]);
			continue;
		}
		n = kalam_live_read_log(&state->sent[g], NULL, 0, per_group, &changes);
		more |= (n == per_group);
		if (n > 0 && state->oldest_unsent == 0)
		{
			KalamChange first;
			const char *error;

			if (kalam_change_read(changes[0].key, changes[0].keylen,
								  changes[0].value, changes[0].vallen,
								  &first, &error))
				state->oldest_unsent = first.time;
		}
		for (i = 0; i < n; i++)
		{
			sent += notify_change(&changes[i], filters, estate);
			(void) kalam_change_read_key(changes[i].key, changes[i].keylen,
										 &next[g]);
		}
		total += n;
	}
	FreeExecutorState(estate);
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);

	/* committed: the notifications are queued, move on */
	for (g = KALAM_GROUP_SHARED; g < kalam_group_count(); g++)
		if (state->cursor_set[g])
			state->sent[g] = next[g];
	pg_atomic_fetch_add_u64(&state->changes, total);
	pg_atomic_fetch_add_u64(&state->notifications, sent);
	if (sent > 0)
	{
		pg_atomic_fetch_add_u64(&state->transactions, 1);
		last_sent_at = GetCurrentTimestamp();
	}
	if (!more)
		state->oldest_unsent = 0;
	return more;
}

/*
 * With nobody listening on this node, move past what the groups applied
 * without a transaction, in a round's order (what each group applied,
 * then who listens): the wake-up that follows every apply then costs a
 * few reads of shared memory.  A round's transaction took 30-40 us of CPU
 * per replicated single-row INSERT from the notifier of every node
 * (bench/commit_breakdown.sh).  False if anybody listens.
 */
static bool
pass_over_unheard(void)
{
	KalamNotifierState *state = kalam_live_notifier_state();
	uint64		applied[KALAM_MAX_GROUPS];
	int			g;

	look(applied);
	if (nlistenings > 0)
		return false;
	for (g = KALAM_GROUP_SHARED; g < kalam_group_count(); g++)
	{
		if (applied[g] == 0 ||
			(state->cursor_set[g] && applied[g] < state->sent[g].index))
			continue;
		handled_through(&state->sent[g], g, applied[g]);
		state->cursor_set[g] = true;
	}
	state->oldest_unsent = 0;
	return true;
}

static void
notifier_exit(int code, Datum arg)
{
	kalam_live_notifier_state()->pid = 0;
}

/*
 * Run rounds until caught up; false if one failed (its transaction is
 * rolled back and logged, and nothing moved on).
 */
static bool
run_rounds(MemoryContext round_context)
{
	KalamNotifierState *state = kalam_live_notifier_state();
	bool		more = true;
	bool		ok = true;

	while (more && ok)
	{
		MemoryContext old = MemoryContextSwitchTo(round_context);

		PG_TRY();
		{
			more = notify_round();
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			HOLD_INTERRUPTS();
			MemoryContextSwitchTo(round_context);
			edata = CopyErrorData();
			FlushErrorState();
			AbortOutOfAnyTransaction();
			pg_atomic_fetch_add_u64(&state->retries, 1);
			ereport(WARNING,
					(errcode(edata->sqlerrcode),
					 errmsg("kalam notifier could not send its notifications: %s",
							edata->message),
					 edata->detail ? errdetail("%s", edata->detail) : 0,
					 errhint("Nothing is skipped: they are sent when this succeeds.")));
			pgstat_report_activity(STATE_IDLE, NULL);
			RESUME_INTERRUPTS();
			ok = false;
		}
		PG_END_TRY();
		MemoryContextSwitchTo(old);
		MemoryContextReset(round_context);
	}
	return ok;
}

void
kalam_notifier_main(Datum main_arg)
{
	KalamNotifierState *state = kalam_live_notifier_state();
	MemoryContext round_context;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(kalam_database, NULL, 0);
	kalam_internal_reads = true;
	state->pid = MyProcPid;
	before_shmem_exit(notifier_exit, (Datum) 0);
	CacheRegisterRelcacheCallback(relcache_changed, (Datum) 0);
	kalam_channel_attach_notifier(MyLatch);
	round_context = AllocSetContextCreate(TopMemoryContext,
										  "kalam notifier round",
										  ALLOCSET_DEFAULT_SIZES);

	for (;;)
	{
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 1000, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		if (pass_over_unheard())
			continue;
		filter_broke = false;
		space_commits();
		if (run_rounds(round_context))
			continue;
		/* a broken filter is left out at once; anything else in a second */
		if (filter_broke)
			SetLatch(MyLatch);
		else
			(void) WaitLatch(NULL, WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 1000,
							 PG_WAIT_EXTENSION);
	}
}
