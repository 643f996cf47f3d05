/*-------------------------------------------------------------------------
 *
 * fsm.c
 *	  The state machine of each Raft group: libraft's apply, snapshot and
 *	  restore callbacks, and the parking of entries that need DDL this node
 *	  has not applied yet.
 *
 * A committed entry is staged with the group's applier, one outcome per
 * command.  A data group's entry whose required meta position (see
 * meta_watermark.c) is ahead of the meta group here parks, with every later
 * entry of its group, until the meta group has applied that far; libraft
 * counts it applied, so the group takes no snapshot while anything is
 * parked.  kalam.debug_hold_meta_apply parks the meta group's own entries,
 * for tests.  A snapshot is a descriptor of the group's applied index, and
 * restoring one that this node's rows are behind installs the group from
 * another node (snapshot.c): a mark parks the entries that follow until
 * the install ends.
 *
 * A split (a command too large for one entry, sent in parts, codec/
 * command.h) applies on libuv's thread pool with an applier of its own
 * (kalam_apply_fork): the loop, which sends every group's heartbeats, is
 * never held by it, whatever its size.  It parks like an entry that waits
 * for DDL, with its group's later entries behind it, until the pool is
 * done; the group's other work goes on.  A snapshot restored meanwhile
 * makes the group install one (its ingest waits for the pool), and the
 * split's outcome is dropped.  Before kalam.max_entry_size, a 200,000-row
 * INSERT was one 16 MB entry whose apply held every node's loop for
 * 1.3-1.6 s, over the 1 s election timeout.
 *
 * Applying on the loop stops for a turn once it took APPLY_BUDGET_US: the
 * entries that follow park, and the next turn goes on with them after the
 * loop's I/O and timers (heartbeats) ran: at once on the group's leader,
 * whose clients wait for the apply, and after as long again on a follower
 * (BACKLOG_PAUSE_US).  A follower with a backlog, such as the entries
 * parked while it installed a snapshot, so applies it with at most half of
 * a core.  At full speed, the entries parked during a 10M-row install
 * took a core for about 10 s on the returning node (bench/scale.sh,
 * 2-core machine), and the leader's p99 over the catch-up was 1.42x and
 * 2.05x of the run's in two runs; at half speed, over 13-15 s, 1.97x and
 * 1.67x (the second with bytes_per_sync, kv/rocks.c).
 *
 * These run inside libraft callbacks on the worker's loop: no ereport, no
 * palloc; failures become libraft error codes or the group's error text.
 *
 * src/cluster/fsm.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/resource.h>
#ifdef __linux__
#include <sys/syscall.h>
#endif
#include <unistd.h>

#include "portability/instr_time.h"
#include "utils/guc.h"

#include "cluster/apply_metrics.h"
#include "cluster/meta_watermark.h"
#include "cluster/node.h"
#include "cluster/node_internal.h"
#include "codec/command.h"
#include "codec/entry.h"
#include "codec/snapshot.h"
#include "kv/parked.h"
#include "kv/txn_apply.h"

int			kalam_parked_memory = 16384;	/* kB */

static uint64 applied_in_turn = 0;	/* commands applied since last asked */
static instr_time apply_time;	/* and the time they took */

/* A split applied on the thread pool, and its outcome */
typedef struct KalamApplyJob
{
	uv_work_t	work;
	KalamGroup *g;
	KalamParkedEntry *entry;	/* NULL once dropped: so is the outcome */
	char	   *data;			/* the entry's data, once dropped */
	uint64		index;
	KalamApplier applier;		/* the group's, forked */
	const char *command;		/* in the entry's data */
	size_t		length;
	KalamApplyResult result;
	instr_time	took;
	bool		done;
} KalamApplyJob;

static uv_loop_t *fsm_loop = NULL;
static int	jobs_running = 0;
static bool fsm_stopping = false;

/*
 * Applying on the loop stops for the turn after this long (entries park
 * until the next turn, which comes at once): libraft hands over every
 * entry committed at once, and a follower that receives many large ones
 * together would otherwise apply them all in one turn.
 */
#define APPLY_BUDGET_US		100000
#define BACKLOG_PAUSE_US	APPLY_BUDGET_US
static uint64 turn_apply_us = 0;	/* applied on the loop in this turn */
static uv_timer_t resume_timer; /* wakes the loop for the next turn */

static KalamGroup *
group_of_fsm(struct raft_fsm *fsm)
{
	return (KalamGroup *) fsm->data;
}

/*
 * Is the whole entry well formed?  Its count is known once it opens (at
 * most KALAM_ENTRY_MAX_COMMANDS); 1 if it does not.
 */
static bool
entry_is_valid(const char *data, size_t len, uint32 *count, const char **error)
{
	KalamEntryReader reader;
	const char *command;
	size_t		length;

	if (!kalam_entry_open(&reader, data, len, count, error))
	{
		*count = 1;
		return false;
	}
	while (kalam_entry_next(&reader, &command, &length, error))
		;
	return *error == NULL;
}

/* Room for count outcomes in g->results; false if out of memory */
static bool
reserve_results(KalamGroup *g, uint32 count)
{
	KalamApplyResult *bigger;

	if (count <= (uint32) g->results_cap)
		return true;
	bigger = realloc(g->results, sizeof(KalamApplyResult) * count);
	if (bigger == NULL)
		return false;
	g->results = bigger;
	g->results_cap = count;
	return true;
}

/*
 * Stage the commands of an entry with the group's applier, their outcomes
 * into g->results; the meta group notes its DDL.  A malformed entry fails
 * every command it claims, each alone.  False if out of memory.
 */
static bool
apply_entry(KalamGroup *g, uint64 index, const char *data, size_t len)
{
	KalamEntryReader reader;
	uint32		count;
	const char *command = NULL;
	size_t		length = 0;
	const char *error;
	bool		valid = entry_is_valid(data, len, &count, &error);
	instr_time	start;
	instr_time	end;
	uint64		rows = 0;
	int			i;

	if (!reserve_results(g, count))
		return false;

	INSTR_TIME_SET_CURRENT(start);
	if (valid)
		(void) kalam_entry_open(&reader, data, len, &count, &error);
	g->nresults = 0;
	while (g->nresults < (int) count)
	{
		KalamApplyResult *result = &g->results[g->nresults++];

		if (valid)
			(void) kalam_entry_next(&reader, &command, &length, &error);
		kalam_apply_command(&g->applier, index, command, length, result);
		if (!valid && result->status == KALAM_APPLY_BAD_COMMAND)
			strlcpy(result->message, error, sizeof(result->message));
		if (g->id == KALAM_GROUP_META && result->status == KALAM_APPLY_OK)
			kalam_watermark_note_command(command, length, index);
	}
	INSTR_TIME_SET_CURRENT(end);
	INSTR_TIME_ACCUM_DIFF(apply_time, end, start);
	applied_in_turn += count;
	for (i = 0; i < g->nresults; i++)
		rows += g->results[i].rows_written;
	INSTR_TIME_SUBTRACT(end, start);
	turn_apply_us += INSTR_TIME_GET_MICROSEC(end);
	kalam_metrics_entry_applied(g->id, INSTR_TIME_GET_MICROSEC(end),
								g->nresults, rows, len);
	return true;
}

static void
resume_tick(uv_timer_t *timer)
{
	/* nothing: kalam_node_finish_iteration releases what is parked */
}

/*
 * May the group apply on the loop now?  Not once this turn applied its
 * share, nor while the group is a follower that pauses after its share.
 * Wake the loop for the turn in which it may.
 */
static bool
over_budget(KalamGroup *g)
{
	uint64		now = uv_now(fsm_loop);
	uint64		wake;

	if (now < g->apply_paused_until)
		return true;
	if (turn_apply_us < APPLY_BUDGET_US)
		return false;
	wake = now;
	if (raft_state(&g->raft) != RAFT_LEADER)
		wake = g->apply_paused_until = now + BACKLOG_PAUSE_US / 1000;
	if (!fsm_stopping &&
		(!uv_is_active((uv_handle_t *) &resume_timer) ||
		 wake < uv_timer_get_due_in(&resume_timer) + now))
		uv_timer_start(&resume_timer, resume_tick, wake - now, 0);
	return true;
}

/*
 * The highest meta position that a command of the entry requires.  A
 * command that does not decode (a requirement beyond
 * KALAM_COMMAND_MAX_META_INDEX included) requires nothing: apply refuses
 * it, on every node alike, rather than parking the group for it.
 */
static uint64
entry_required_meta_index(const char *data, size_t len)
{
	KalamEntryReader reader;
	KalamCommandReader command_reader;
	uint32		count;
	const char *command;
	size_t		length;
	const char *error;
	uint64		required = 0;

	if (!kalam_entry_open(&reader, data, len, &count, &error))
		return 0;
	while (kalam_entry_next(&reader, &command, &length, &error))
		if (kalam_command_validate(command, length, &error) &&
			kalam_command_open(&command_reader, command, length, &error))
			required = Max(required, command_reader.header.required_meta_index);
	return required;
}

/* May an entry that requires this meta group position be applied now? */
bool
kalam_fsm_may_apply(KalamGroup *g, uint64 required_meta_index)
{
	if (g->id == KALAM_GROUP_META)
		return !kalam_debug_hold_meta_apply;
	return required_meta_index <= g->meta->applier.staged_index;
}

/* Queue an entry behind the group's parked ones. */
static void
park(KalamGroup *g, KalamParkedEntry *e, uint64 index, uint64 required)
{
	e->index = index;
	e->required_meta_index = required;
	if (g->parked == NULL)
		g->parked = e;
	else
		g->parked_last->next = e;
	g->parked_last = e;
	if (!e->is_snapshot)
		g->nparked++;
}

/*
 * Keep the data of an entry to park: in memory up to kalam.parked_memory
 * per group, past it in RocksDB (kv/parked.c), or in memory still if
 * that write fails.  A split's entry stays in memory: its job reads it,
 * and it is small.  False if out of memory.
 */
static bool
keep_parked_data(KalamGroup *g, KalamParkedEntry *e, uint64 index,
				 const struct raft_buffer *buf, bool off_loop)
{
	char		errbuf[256];

	e->len = buf->len;
	if (!off_loop &&
		g->parked_bytes + buf->len > (uint64) kalam_parked_memory * 1024)
	{
		if (kalam_parked_put(g->applier.db, g->id, index, buf->base, buf->len,
							 errbuf, sizeof(errbuf)))
		{
			e->on_disk = true;
			g->parked_on_disk++;
			return true;
		}
		snprintf(g->error, sizeof(g->error),
				 "could not keep a parked entry in storage, kept in memory: %s",
				 errbuf);
	}
	if ((e->data = malloc(buf->len)) == NULL)
		return false;
	memcpy(e->data, buf->base, buf->len);
	g->parked_bytes += buf->len;
	return true;
}

/*
 * Forget a parked entry and its data: applied, or dropped.  One kept in
 * RocksDB stays there: the caller removes a run of them at once.
 */
static void
free_parked(KalamGroup *g, KalamParkedEntry *e)
{
	if (e->on_disk)
		g->parked_on_disk--;
	else if (e->data != NULL)
		g->parked_bytes -= e->len;
	free(e->data);
	free(e);
}

/*
 * Apply a parked entry on the loop.  One kept in RocksDB is read back
 * first; if that fails, the applier fails, and the worker stops and
 * applies the entry again from the Raft log after its restart (which
 * removes every parked entry from storage).
 */
static bool
apply_parked(KalamGroup *g, KalamParkedEntry *e)
{
	char		errbuf[256];
	char	   *data;
	size_t		len;
	bool		ok;

	if (!e->on_disk)
		return apply_entry(g, e->index, e->data, e->len);
	data = kalam_parked_get(g->applier.db, g->id, e->index, &len, errbuf,
							sizeof(errbuf));
	if (data == NULL)
	{
		kalam_apply_fail(&g->applier, errbuf);
		return false;
	}
	ok = apply_entry(g, e->index, data, len);
	rocksdb_free(data);
	return ok;
}

/*
 * Is the entry one command, a split's?  Its command, if so, into
 * *command and *length (when not NULL).
 */
static bool
entry_is_split(const char *data, size_t len, const char **command,
			   size_t *length)
{
	KalamEntryReader reader;
	uint32		count;
	const char *error;
	const char *c;
	size_t		l;

	if (!kalam_entry_open(&reader, data, len, &count, &error) || count != 1 ||
		!kalam_entry_next(&reader, &c, &l, &error) ||
		!kalam_command_is_split(c, l))
		return false;
	if (command != NULL)
	{
		*command = c;
		*length = l;
	}
	return true;
}

/*
 * Lower the CPU priority of the calling thread of libuv's pool, once, by
 * POOL_NICE: its bulk work (splits, snapshot chunks and installs) then
 * yields the CPU to the loops, which send every group's heartbeats, and to
 * the backends.  On a 2-core machine, t/015_split.pl's three nodes apply
 * a 1M-row split each on their pools at once, beside a pgbench writer.
 * libc only: it runs on the pool.
 */
#define POOL_NICE	5

void
kalam_fsm_lower_pool_priority(void)
{
#ifdef __linux__
	static __thread bool lowered = false;
	pid_t		tid;
	int			nice;

	if (lowered)
		return;
	lowered = true;
	tid = (pid_t) syscall(SYS_gettid);
	errno = 0;
	nice = getpriority(PRIO_PROCESS, (id_t) tid);
	if (errno == 0)
		(void) setpriority(PRIO_PROCESS, (id_t) tid, Min(nice + POOL_NICE, 19));
#endif
}

/* On a thread of libuv's pool: RocksDB and libc only */
static void
job_run(uv_work_t *req)
{
	KalamApplyJob *job = (KalamApplyJob *) req->data;
	instr_time	start;

	kalam_fsm_lower_pool_priority();
	INSTR_TIME_SET_CURRENT(start);
	kalam_apply_command(&job->applier, job->index, job->command,
						job->length, &job->result);
	INSTR_TIME_SET_CURRENT(job->took);
	INSTR_TIME_SUBTRACT(job->took, start);
}

/* Back on the loop: the group takes the outcome, and its entries go on */
static void
job_done(uv_work_t *req, int status)
{
	KalamApplyJob *job = (KalamApplyJob *) req->data;
	KalamGroup *g = job->g;

	jobs_running--;
	g->job_running = false;
	if (job->entry == NULL)
	{
		/* dropped: a snapshot replaces the group, or the worker stops */
		rocksdb_writebatch_wi_destroy(job->applier.batch);
		free(job->data);
		free(job);
		return;
	}
	kalam_apply_join(&g->applier, &job->applier);
	if (status != 0)
		kalam_apply_set_error(&job->result, KALAM_APPLY_STORAGE_ERROR,
							  "the thread pool did not run the apply");
	job->done = true;
	if (!fsm_stopping)
		kalam_fsm_release_parked(g);
}

/*
 * Start applying the split at the head of the group's parked entries on
 * the pool, after writing what the group staged before it.  False if it
 * cannot start now (a failed write fails the applier, and the worker
 * stops).
 */
static bool
start_job(KalamGroup *g, KalamParkedEntry *e)
{
	KalamApplyJob *job;
	char		errbuf[256];

	if (fsm_stopping ||
		!kalam_apply_flush(&g->applier, errbuf, sizeof(errbuf)) ||
		(job = calloc(1, sizeof(KalamApplyJob))) == NULL)
		return false;
	(void) entry_is_split(e->data, e->len, &job->command, &job->length);
	job->g = g;
	job->entry = e;
	job->index = e->index;
	job->work.data = job;
	kalam_apply_fork(&g->applier, &job->applier);
	if (uv_queue_work(fsm_loop, &job->work, job_run, job_done) != 0)
	{
		rocksdb_writebatch_wi_destroy(job->applier.batch);
		free(job);
		return false;
	}
	e->job = job;
	g->job_running = true;
	jobs_running++;
	return true;
}

/*
 * A split's outcome becomes the group's, as if applied on the loop.  False
 * if out of memory.
 */
static bool
finish_job(KalamGroup *g, KalamParkedEntry *e)
{
	KalamApplyJob *job = e->job;

	if (!reserve_results(g, 1))
		return false;
	g->results[0] = job->result;
	g->nresults = 1;
	snprintf(g->notice, sizeof(g->notice),
			 "applied a split at index " UINT64_FORMAT " on the thread pool: %s, " UINT64_FORMAT " rows in %.0f ms",
			 job->index,
			 job->result.status == KALAM_APPLY_OK ? "done" : "failed",
			 job->result.rows_written, INSTR_TIME_GET_MILLISEC(job->took));
	applied_in_turn++;
	INSTR_TIME_ADD(apply_time, job->took);
	kalam_metrics_entry_applied(g->id, INSTR_TIME_GET_MICROSEC(job->took), 1,
								job->result.status == KALAM_APPLY_OK ?
								job->result.rows_written : 0, e->len);
	free(job);
	e->job = NULL;
	return true;
}

/*
 * Apply a committed entry, or park it when the DDL it requires is not
 * applied here yet (or an older entry of the group is parked).  The result
 * is the group, whose results hold the commands' outcomes; that of a
 * parked entry is NULL: its batch, if it is ours, learns the outcomes when
 * the entry is applied (kalam_fsm_release_parked).
 */
static int
fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
	KalamGroup *g = group_of_fsm(fsm);
	uint64		index = raft_last_applied(&g->raft) + 1;
	uint64		required = entry_required_meta_index(buf->base, buf->len);
	bool		off_loop = index > g->applier.durable_index &&
		entry_is_split(buf->base, buf->len, NULL, NULL);
	KalamParkedEntry *e;

	kalam_metrics_entry_arrived(g->id);
	kalam_snapshot_note_entry(g, buf->len);
	if (index <= g->applier.durable_index ||
		(g->parked == NULL && !off_loop && kalam_fsm_may_apply(g, required) &&
		 !over_budget(g)))
	{
		if (!apply_entry(g, index, buf->base, buf->len))
			return RAFT_NOMEM;
		*result = g;
		return 0;
	}

	e = calloc(1, sizeof(KalamParkedEntry));
	if (e == NULL)
		return RAFT_NOMEM;
	if (!keep_parked_data(g, e, index, buf, off_loop))
	{
		free(e);
		return RAFT_NOMEM;
	}
	e->off_loop = off_loop;
	park(g, e, index, required);
	if (!off_loop || e != g->parked)
	{
		e->parked_us = kalam_metrics_now_us();
		kalam_metrics_entry_parked(g->id);
	}
	*result = NULL;
	return 0;
}

/* Apply the parked entries of a group that may be applied now, in order. */
void
kalam_fsm_release_parked(KalamGroup *g)
{
	KalamParkedEntry *e;
	uint64		disk_from = 0;	/* the run of applied entries kept in RocksDB */
	uint64		disk_to = 0;
	char		errbuf[256];

	while ((e = g->parked) != NULL && kalam_fsm_may_apply(g, e->required_meta_index))
	{
		/* on failure (out of memory, storage), try again next turn */
		if (e->is_snapshot)
		{
			if (g->install != NULL)
				break;
		}
		else if (e->off_loop)
		{
			if (e->job == NULL && !start_job(g, e))
				break;
			if (!e->job->done || !finish_job(g, e))
				break;
		}
		else if (over_budget(g) || !apply_parked(g, e))
			break;
		g->parked = e->next;
		if (!e->is_snapshot)
			g->nparked--;
		if (e->parked_us != 0)
			kalam_metrics_parked_released(g->id, kalam_metrics_now_us() - e->parked_us);
		if (e->waiter != NULL)
			kalam_proposal_finish_batch(e->waiter, g);
		if (e->on_disk)
		{
			disk_from = disk_from == 0 ? e->index : disk_from;
			disk_to = e->index;
		}
		free_parked(g, e);
	}
	if (disk_to != 0 &&
		!kalam_parked_remove(g->applier.db, g->id, disk_from, disk_to, errbuf,
							 sizeof(errbuf)))
		snprintf(g->error, sizeof(g->error),
				 "could not remove applied parked entries from storage: %s",
				 errbuf);
}

/*
 * Forget a group's parked entries: a snapshot replaces them, or the worker
 * stops.  A proposal still waiting on one cannot know its outcome here.
 */
void
kalam_fsm_drop_parked(KalamGroup *g)
{
	KalamParkedEntry *e;
	char		errbuf[256];
	bool		cleared = g->parked_on_disk == 0 ||
		kalam_parked_clear(g->applier.db, g->id, errbuf, sizeof(errbuf));

	if (!cleared)
		snprintf(g->error, sizeof(g->error),
				 "could not remove the parked entries from storage: %s", errbuf);
	while ((e = g->parked) != NULL)
	{
		g->parked = e->next;
		/* removed at once above; the worker's start removes what is left */
		e->on_disk = false;
		if (e->job != NULL && !e->job->done)
		{
			/* job_done frees the job, and the data it reads */
			e->job->entry = NULL;
			e->job->data = e->data;
			e->data = NULL;
		}
		else
			free(e->job);
		if (e->waiter != NULL)
			kalam_proposal_fail_batch(e->waiter, KALAM_APPLY_OUTCOME_UNKNOWN,
									  "a snapshot replaced the entry on this node before it was applied here");
		free_parked(g, e);
	}
	g->nparked = 0;
	g->parked_bytes = 0;
	g->parked_on_disk = 0;
}

/*
 * The snapshot is a descriptor of what the group applied, made durable
 * first (snapshot.c says why).
 */
static int
fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n)
{
	KalamGroup *g = group_of_fsm(fsm);
	char	   *data;

	/* it would cover entries not applied yet: later */
	if (g->parked != NULL)
		return RAFT_BUSY;
	if (!kalam_apply_sync(&g->applier, g->error, sizeof(g->error)))
		return RAFT_IOERR;
	*bufs = malloc(sizeof(struct raft_buffer));
	data = malloc(KALAM_SNAPSHOT_DESCRIPTOR_SIZE);
	if (*bufs == NULL || data == NULL)
	{
		free(*bufs);
		free(data);
		*bufs = NULL;
		return RAFT_NOMEM;
	}
	kalam_snapshot_write_descriptor(data, g->id, g->applier.durable_index);
	(*bufs)[0].base = data;
	(*bufs)[0].len = KALAM_SNAPSHOT_DESCRIPTOR_SIZE;
	*n = 1;
	kalam_snapshot_taken(g);
	return 0;
}

static int
fsm_snapshot_finalize(struct raft_fsm *fsm, struct raft_buffer *bufs[],
					  unsigned *n)
{
	if (*bufs != NULL)
	{
		free((*bufs)[0].base);
		free(*bufs);
	}
	*bufs = NULL;
	*n = 0;
	return 0;
}

/*
 * Restore a descriptor: nothing to do if the rows here are as new (a
 * restart reloads the last snapshot even when RocksDB went on past it);
 * else, or while a split is applied on the pool (which position it will
 * reach is not known yet), install the group from another node, the
 * entries that follow parked behind a mark until it ends.
 */
static int
fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
	KalamGroup *g = group_of_fsm(fsm);
	KalamSnapshotDescriptor desc;
	KalamParkedEntry *e;
	const char *error;

	if (!kalam_snapshot_read_descriptor(buf->base, buf->len, &desc, &error) ||
		desc.group != g->id)
	{
		snprintf(g->error, sizeof(g->error), "snapshot refused: %s",
				 error != NULL ? error : "it is another group's");
		return RAFT_MALFORMED;
	}
	kalam_fsm_drop_parked(g);
	kalam_apply_discard(&g->applier);
	if (desc.applied_index > g->applier.durable_index || g->install != NULL ||
		g->job_running)
	{
		if ((e = calloc(1, sizeof(KalamParkedEntry))) == NULL)
			return RAFT_NOMEM;
		e->is_snapshot = true;
		park(g, e, g->applier.durable_index + 1, 0);
		if (!kalam_snapshot_install(g, desc.applied_index))
		{
			kalam_fsm_drop_parked(g);
			return RAFT_NOMEM;
		}
	}
	raft_free(buf->base);
	return 0;
}

void
kalam_fsm_define_gucs(void)
{
	DefineCustomIntVariable("kalam.parked_memory",
							"Memory for the data of each group's parked entries; past it they wait in RocksDB.",
							"Entries park while a snapshot installs or the DDL they need is not applied here; they are read back as they are applied.",
							&kalam_parked_memory,
							16384,
							0,
							INT_MAX / 1024,
							PGC_SIGHUP,
							GUC_UNIT_KB,
							NULL, NULL, NULL);
}

/* The loop whose thread pool applies splits */
void
kalam_fsm_start(uv_loop_t *loop)
{
	fsm_loop = loop;
	uv_timer_init(loop, &resume_timer);
}

/* Is a split being applied on the thread pool? */
bool
kalam_fsm_job_running(void)
{
	return jobs_running > 0;
}

/*
 * The worker stops: start no more splits, and wait for those on the pool
 * (their writes are whole; their outcomes are lost with the worker).
 */
void
kalam_fsm_stop(void)
{
	fsm_stopping = true;
	uv_close((uv_handle_t *) &resume_timer, NULL);
	while (jobs_running > 0)
		uv_run(fsm_loop, UV_RUN_ONCE);
}

/* Set up the group's state machine for raft_init. */
void
kalam_fsm_init(KalamGroup *g)
{
	g->fsm.version = 2;
	g->fsm.data = g;
	g->fsm.apply = fsm_apply;
	g->fsm.snapshot = fsm_snapshot;
	g->fsm.snapshot_finalize = fsm_snapshot_finalize;
	g->fsm.restore = fsm_restore;
}

/*
 * The commands applied, and the time it took, since the last call: at the
 * end of each turn, which starts the next turn's budget.
 */
void
kalam_fsm_take_apply_stats(uint64 *commands, uint64 *microseconds)
{
	*commands = applied_in_turn;
	*microseconds = INSTR_TIME_GET_MICROSEC(apply_time);
	applied_in_turn = 0;
	INSTR_TIME_SET_ZERO(apply_time);
	turn_apply_us = 0;
}
