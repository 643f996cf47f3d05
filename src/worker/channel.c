/*-------------------------------------------------------------------------
 *
 * channel.c
 *	  Shared memory through which backends hand commands to the kalam
 *	  worker and wait for the outcome.
 *
 * Every backend owns one slot, indexed by its BackendId, and has at most one
 * command in flight.  A small command is copied into the slot; a larger one
 * travels in a dynamic shared memory segment created by the backend, whose
 * handle the slot carries.  Queued slots
 * are kept in FIFO order so that the worker applies commands in the order
 * they were handed over.  The worker wakes the backend through its latch
 * once the command is applied and the outcome is in the slot.
 *
 * A backend that is interrupted while waiting withdraws its command if the
 * worker has not taken it yet (nothing was applied).  Once the worker has
 * taken it, the outcome is unknown to the backend; it says so with
 * ERRCODE_KALAM_OUTCOME_UNKNOWN and leaves the slot for the worker to free.
 *
 * src/worker/channel.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/wait_event.h"

#include "codec/group.h"
#include "kalam.h"
#include "worker/channel.h"

typedef enum KalamSlotState
{
	SLOT_FREE = 0,
	SLOT_QUEUED,
	SLOT_APPLYING,
	SLOT_DONE
} KalamSlotState;

typedef struct KalamSlot
{
	KalamSlotState state;
	bool		abandoned;		/* owner stopped waiting; worker frees it */
	int			group;
	Latch	   *owner_latch;
	dsm_handle	handle;			/* DSM_HANDLE_INVALID: the command is inline */
	Size		length;
	KalamApplyResult result;
	char		inline_data[KALAM_INLINE_COMMAND_SIZE];
} KalamSlot;

typedef struct KalamChannel
{
	LWLock	   *lock;			/* protects everything but the atomics */
	Latch	   *worker_latch;	/* NULL while no worker runs */
	Latch	   *jobs_latch;		/* the kalam jobs worker's, once it runs */
	Latch	   *notifier_latch; /* the kalam notifier's, once it runs */
	pid_t		worker_pid;		/* 0 while no worker runs */
	bool		storage_ready;
	pg_atomic_uint64 applied_index; /* sum over the groups: moves on any apply */
	pg_atomic_uint32 notifier_wanted;	/* does anybody listen on this node? */
	bool		group_known[KALAM_MAX_GROUPS];
	KalamGroupStatus groups[KALAM_MAX_GROUPS];
	int			reachable_ids[KALAM_MAX_NODES];	/* 0: unused entry */
	bool		reachable[KALAM_MAX_NODES];
	KalamStats	stats;
	int			nslots;
	int			queue_head;
	int			queue_len;
	int		   *queue;			/* ring of slot numbers, nslots long */
	KalamSlot	slots[FLEXIBLE_ARRAY_MEMBER];
} KalamChannel;

static KalamChannel *channel = NULL;
static bool exit_callback_registered = false;

static void wake(Latch **field);

Size
kalam_channel_shmem_size(void)
{
	Size		size;

	size = add_size(offsetof(KalamChannel, slots),
					mul_size(MaxBackends, sizeof(KalamSlot)));
	size = add_size(size, mul_size(MaxBackends, sizeof(int)));
	return size;
}

void
kalam_channel_shmem_init(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	channel = ShmemInitStruct("kalam channel", kalam_channel_shmem_size(),
							  &found);
	if (!found)
	{
		memset(channel, 0, kalam_channel_shmem_size());
		channel->lock = &(GetNamedLWLockTranche("kalam channel"))->lock;
		channel->nslots = MaxBackends;
		channel->queue = (int *) &channel->slots[MaxBackends];
		pg_atomic_init_u64(&channel->applied_index, 0);
		pg_atomic_init_u32(&channel->notifier_wanted, 0);
		pg_atomic_init_u64(&channel->stats.commands_applied, 0);
		pg_atomic_init_u64(&channel->stats.commands_failed, 0);
		pg_atomic_init_u64(&channel->stats.batches_written, 0);
		pg_atomic_init_u64(&channel->stats.rows_written, 0);
		pg_atomic_init_u64(&channel->stats.apply_time_us, 0);
		pg_atomic_init_u64(&channel->stats.multi_group_committed, 0);
		pg_atomic_init_u64(&channel->stats.multi_group_commit_us, 0);
		pg_atomic_init_u64(&channel->stats.multi_group_aborted, 0);
		pg_atomic_init_u64(&channel->stats.transactions_recovered, 0);
	}
	LWLockRelease(AddinShmemInitLock);
}

static KalamChannel *
get_channel(void)
{
	if (channel == NULL)
		kalam_require_preload();
	return channel;
}

KalamStats *
kalam_channel_stats(void)
{
	return &get_channel()->stats;
}

pid_t
kalam_channel_worker_pid(void)
{
	pid_t		pid;

	get_channel();
	LWLockAcquire(channel->lock, LW_SHARED);
	pid = channel->worker_pid;
	LWLockRelease(channel->lock);
	return pid;
}

uint64
kalam_channel_applied_index(void)
{
	return pg_atomic_read_u64(&get_channel()->applied_index);
}

/*
 * Remove a queued slot from the ring, keeping the order of the others.
 * Caller holds the lock exclusively.
 */
static void
queue_remove(int slotno)
{
	int			i;
	int			found = -1;

	for (i = 0; i < channel->queue_len; i++)
	{
		int			pos = (channel->queue_head + i) % channel->nslots;

		if (found >= 0)
			channel->queue[(pos + channel->nslots - 1) % channel->nslots] =
				channel->queue[pos];
		else if (channel->queue[pos] == slotno)
			found = i;
	}
	Assert(found >= 0);
	channel->queue_len--;
}

/*
 * Let go of our slot: withdraw a queued command, mark a command being
 * applied as abandoned, or free a finished one.  Returns the state the slot
 * was in.
 */
static KalamSlotState
release_own_slot(int slotno, KalamApplyResult *result)
{
	KalamSlot  *slot = &channel->slots[slotno];
	KalamSlotState state;

	LWLockAcquire(channel->lock, LW_EXCLUSIVE);
	state = slot->state;
	switch (state)
	{
		case SLOT_QUEUED:
			queue_remove(slotno);
			slot->state = SLOT_FREE;
			break;
		case SLOT_APPLYING:
			slot->abandoned = true;
			break;
		case SLOT_DONE:
			if (result)
				*result = slot->result;
			slot->state = SLOT_FREE;
			break;
		case SLOT_FREE:
			break;
	}
	LWLockRelease(channel->lock);
	return state;
}

/* A backend that exits while waiting must not leave its slot behind. */
static void
channel_backend_exit(int code, Datum arg)
{
	if (channel != NULL && MyBackendId != InvalidBackendId)
		(void) release_own_slot(MyBackendId - 1, NULL);
}

/*
 * How long a waiting COMMIT may still wait under statement_timeout, in ms;
 * -1 without a timeout.  PostgreSQL stops the statement timer before it
 * commits, so kalam enforces it itself.
 */
static long
statement_time_left(void)
{
	TimestampTz deadline;
	long		left;

	if (StatementTimeout <= 0)
		return -1;
	deadline = TimestampTzPlusMilliseconds(GetCurrentStatementStartTimestamp(),
										   StatementTimeout);
	left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
	if (left <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_QUERY_CANCELED),
				 errmsg("canceling statement due to statement timeout")));
	return left;
}

/*
 * One step of a backend's polling wait on the worker: sleep on the latch
 * for up to ms milliseconds, then act on cancel, timeouts and termination.
 */
void
kalam_channel_nap(long ms)
{
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					 ms, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
}

/*
 * Wait until a slot abandoned by an earlier interrupted commit has been
 * freed by the worker (each of the worker's waits is bounded, by
 * kalam.leader_wait_timeout or an election), under statement_timeout.
 */
static void
wait_for_free_slot(KalamSlot *slot)
{
	for (;;)
	{
		KalamSlotState state;
		long		time_left;

		LWLockAcquire(channel->lock, LW_SHARED);
		state = slot->state;
		LWLockRelease(channel->lock);
		if (state == SLOT_FREE)
			return;
		time_left = statement_time_left();
		kalam_channel_nap(time_left >= 0 ? Min(time_left, 10L) : 10L);
	}
}

/*
 * Wait, up to kalam.worker_wait_timeout, until the kalam worker has opened
 * storage.  Reads and writes both need it.
 */
void
kalam_channel_wait_storage_ready(void)
{
	TimestampTz start = GetCurrentTimestamp();

	get_channel();
	while (!channel->storage_ready)
	{
		if (TimestampDifferenceExceeds(start, GetCurrentTimestamp(),
									   kalam_worker_wait_timeout))
			ereport(ERROR,
					(errcode(ERRCODE_KALAM_WORKER_UNAVAILABLE),
					 errmsg("kalam storage is not available"),
					 errdetail("The kalam worker has not opened its storage within %d ms.",
							   kalam_worker_wait_timeout),
					 errhint("Check the server log for errors of the \"kalam worker\" process, then retry.")));
		kalam_channel_nap(10L);
	}
}

/*
 * Hand a command to the kalam worker and wait until it is applied.  The
 * outcome of the apply function is returned in *result; errors of the wait
 * itself are raised here.
 */
void
kalam_channel_submit(int group, const char *command, Size length,
					 KalamApplyResult *result)
{
	int			slotno = MyBackendId - 1;
	KalamSlot  *slot;
	dsm_segment *volatile seg = NULL;
	Latch	   *worker_latch;
	MemoryContext oldcxt = CurrentMemoryContext;

	get_channel();
	Assert(slotno >= 0 && slotno < channel->nslots);
	slot = &channel->slots[slotno];

	if (!exit_callback_registered)
	{
		before_shmem_exit(channel_backend_exit, (Datum) 0);
		exit_callback_registered = true;
	}
	/* a worker that cannot open its storage would leave COMMIT hanging */
	kalam_channel_wait_storage_ready();
	wait_for_free_slot(slot);

	/* the worker reads the slot only once it is queued */
	/* a read fence (see channel.h) carries no command */
	if (length <= KALAM_INLINE_COMMAND_SIZE)
	{
		if (length > 0)
			memcpy(slot->inline_data, command, length);
	}
	else
	{
		seg = dsm_create(length, 0);
		memcpy(dsm_segment_address(seg), command, length);
	}

	LWLockAcquire(channel->lock, LW_EXCLUSIVE);
	slot->state = SLOT_QUEUED;
	slot->abandoned = false;
	slot->group = group;
	slot->owner_latch = MyLatch;
	slot->handle = seg ? dsm_segment_handle(seg) : DSM_HANDLE_INVALID;
	slot->length = length;
	channel->queue[(channel->queue_head + channel->queue_len) % channel->nslots] = slotno;
	channel->queue_len++;
	worker_latch = channel->worker_latch;
	LWLockRelease(channel->lock);

	if (worker_latch != NULL)
		SetLatch(worker_latch);

	PG_TRY();
	{
		for (;;)
		{
			bool		done;
			long		time_left;

			LWLockAcquire(channel->lock, LW_EXCLUSIVE);
			done = (slot->state == SLOT_DONE);
			if (done)
			{
				*result = slot->result;
				slot->state = SLOT_FREE;
			}
			LWLockRelease(channel->lock);
			if (done)
				break;

			time_left = statement_time_left();
			(void) WaitLatch(MyLatch,
							 WL_LATCH_SET | WL_EXIT_ON_PM_DEATH |
							 (time_left >= 0 ? WL_TIMEOUT : 0),
							 time_left, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
	}
	PG_CATCH();
	{
		KalamSlotState state = release_own_slot(slotno, result);

		if (state == SLOT_QUEUED || state == SLOT_FREE)
			PG_RE_THROW();

		MemoryContextSwitchTo(oldcxt);
		FlushErrorState();
		if (state == SLOT_APPLYING)
			ereport(ERROR,
					(errcode(ERRCODE_KALAM_OUTCOME_UNKNOWN),
					 errmsg("the outcome of this commit is unknown"),
					 errdetail("The wait was interrupted after the kalam worker had taken the transaction's writes; they may or may not have been applied."),
					 errhint("Read the rows again to learn whether the writes are there.")));
		/* SLOT_DONE: the command was applied before the interrupt; go on */
	}
	PG_END_TRY();

	if (seg != NULL)
		dsm_detach(seg);
}

void
kalam_channel_attach_worker(Latch *latch)
{
	int			i;

	get_channel();
	LWLockAcquire(channel->lock, LW_EXCLUSIVE);
	channel->worker_latch = latch;
	channel->worker_pid = MyProcPid;

	/*
	 * Commands that a previous worker took but did not finish may or may not
	 * have been written: their owners must hear that the outcome is unknown.
	 */
	for (i = 0; i < channel->nslots; i++)
	{
		KalamSlot  *slot = &channel->slots[i];

		if (slot->state != SLOT_APPLYING)
			continue;
		if (slot->abandoned)
			slot->state = SLOT_FREE;
		else
		{
			memset(&slot->result, 0, sizeof(KalamApplyResult));
			slot->result.status = KALAM_APPLY_LOST;
			slot->state = SLOT_DONE;
			SetLatch(slot->owner_latch);
		}
	}
	LWLockRelease(channel->lock);
}

void
kalam_channel_detach_worker(void)
{
	LWLockAcquire(channel->lock, LW_EXCLUSIVE);
	channel->worker_latch = NULL;
	channel->worker_pid = 0;
	channel->storage_ready = false;
	memset(channel->group_known, 0, sizeof(channel->group_known));
	LWLockRelease(channel->lock);
}

void
kalam_channel_set_storage_ready(void)
{
	LWLockAcquire(channel->lock, LW_EXCLUSIVE);
	channel->storage_ready = true;
	LWLockRelease(channel->lock);
}

/* Take up to max queued commands, oldest first. */
int
kalam_channel_take(KalamPendingCommand *commands, int max)
{
	int			n = 0;

	LWLockAcquire(channel->lock, LW_EXCLUSIVE);
	while (n < max && channel->queue_len > 0)
	{
		int			slotno = channel->queue[channel->queue_head];
		KalamSlot  *slot = &channel->slots[slotno];

		channel->queue_head = (channel->queue_head + 1) % channel->nslots;
		channel->queue_len--;
		slot->state = SLOT_APPLYING;
		commands[n].slot = slotno;
		commands[n].group = slot->group;
		commands[n].inline_data =
			slot->handle == DSM_HANDLE_INVALID ? slot->inline_data : NULL;
		commands[n].handle = slot->handle;
		commands[n].length = slot->length;
		n++;
	}
	LWLockRelease(channel->lock);
	return n;
}

void
kalam_channel_publish_applied(uint64 applied_index)
{
	bool		moved = pg_atomic_read_u64(&channel->applied_index) != applied_index;

	pg_write_barrier();
	pg_atomic_write_u64(&channel->applied_index, applied_index);
	pg_memory_barrier();
	if (moved && pg_atomic_read_u32(&channel->notifier_wanted) != 0)
		wake(&channel->notifier_latch);
}

/* Put the outcome in the slot and wake its owner. */
void
kalam_channel_complete(const KalamPendingCommand *command,
					   const KalamApplyResult *result)
{
	KalamSlot  *slot = &channel->slots[command->slot];
	Latch	   *owner = NULL;

	LWLockAcquire(channel->lock, LW_EXCLUSIVE);
	if (slot->abandoned)
		slot->state = SLOT_FREE;
	else
	{
		slot->result = *result;
		slot->state = SLOT_DONE;
		owner = slot->owner_latch;
	}
	LWLockRelease(channel->lock);
	if (owner != NULL)
		SetLatch(owner);
}

void
kalam_channel_publish_group(int group, const KalamGroupStatus *status)
{
	LWLockAcquire(channel->lock, LW_EXCLUSIVE);
	channel->groups[group] = *status;
	channel->group_known[group] = true;
	LWLockRelease(channel->lock);
}

/* The status the worker last published for a group; false if none. */
bool
kalam_channel_group_status(int group, KalamGroupStatus *status)
{
	bool		known;

	get_channel();
	LWLockAcquire(channel->lock, LW_SHARED);
	known = channel->group_known[group];
	if (known)
		*status = channel->groups[group];
	LWLockRelease(channel->lock);
	return known;
}

/* Remember whether another node answers, as the meta group sees it. */
void
kalam_channel_publish_reachable(int node_id, bool reachable)
{
	int			i;

	LWLockAcquire(channel->lock, LW_EXCLUSIVE);
	for (i = 0; i < KALAM_MAX_NODES; i++)
	{
		if (channel->reachable_ids[i] == node_id || channel->reachable_ids[i] == 0)
		{
			channel->reachable_ids[i] = node_id;
			channel->reachable[i] = reachable;
			break;
		}
	}
	LWLockRelease(channel->lock);
}

bool
kalam_channel_node_reachable(int node_id)
{
	bool		reachable = false;
	int			i;

	get_channel();
	LWLockAcquire(channel->lock, LW_SHARED);
	for (i = 0; i < KALAM_MAX_NODES; i++)
		if (channel->reachable_ids[i] == node_id)
			reachable = channel->reachable[i];
	LWLockRelease(channel->lock);
	return reachable;
}

static void
attach(Latch **field, Latch *latch)
{
	LWLockAcquire(channel->lock, LW_EXCLUSIVE);
	*field = latch;
	LWLockRelease(channel->lock);
}

static void
wake(Latch **field)
{
	Latch	   *latch;

	LWLockAcquire(channel->lock, LW_SHARED);
	latch = *field;
	LWLockRelease(channel->lock);
	if (latch != NULL)
		SetLatch(latch);
}

void
kalam_channel_attach_jobs(Latch *latch)
{
	attach(&get_channel()->jobs_latch, latch);
}

/* Wake the kalam jobs worker: the meta group applied more. */
void
kalam_channel_wake_jobs(void)
{
	wake(&channel->jobs_latch);
}

/*
 * The notifier is woken whenever the applied counter moves while somebody
 * listens on this node (the registry sets whether anybody does, under its
 * lock), and by the registry when a session begins to listen.
 */
void
kalam_channel_attach_notifier(Latch *latch)
{
	attach(&get_channel()->notifier_latch, latch);
}

void
kalam_channel_set_notifier_wanted(bool wanted)
{
	get_channel();
	pg_atomic_write_u32(&channel->notifier_wanted, wanted ? 1 : 0);
	pg_memory_barrier();
}

void
kalam_channel_wake_notifier(void)
{
	get_channel();
	wake(&channel->notifier_latch);
}
