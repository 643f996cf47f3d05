/*-------------------------------------------------------------------------
 *
 * registry.c
 *	  Who listens to which kalam channel, in shared memory, and what the
 *	  notifier publishes about itself.
 *
 * PostgreSQL's LISTEN keeps no list that another process can read, and the
 * notifier must know which channels to send a change to: a user's change
 * goes to that user's channel of the table, a shared table's change to
 * the channel of each role that listens, a filtered subscription's only
 * when its filter holds.  So every LISTEN on a kalam channel (checked by
 * channels.c) and every kalam.subscribe is recorded here as a listening;
 * UNLISTEN, kalam.unsubscribe and the end of the session remove it.  A
 * change nobody listens to costs the notifier a comparison, no NOTIFY.
 *
 * Locking: one LWLock ("kalam live") protects the listenings and the
 * generation counter, which moves on every change to them so that the
 * notifier copies the listenings only when they changed.  Under it, each
 * change also tells the kalam worker whether anybody listens
 * (kalam_channel_set_notifier_wanted): with nobody, an apply does not wake
 * the notifier, which saved every node's notifier 20-40 us of CPU and a
 * context switch per replicated single-row INSERT
 * (bench/commit_breakdown.sh).  A listening records its group's applied
 * index when it began (read before it is published): the notifier, not
 * woken meanwhile, owes it nothing up to there.  The notifier's own state
 * is written by the notifier alone: its counters are atomics, the rest is
 * read by kalam.notifications without a lock (a torn read shows a position
 * a moment old).
 *
 * The channel key that makes table channel names unguessable is the
 * cluster secret when there is one (the same name on every node); a
 * single node without one draws a random key at server start.
 *
 * src/live/registry.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/guc.h"

#include "codec/group.h"
#include "kalam.h"
#include "live/live.h"
#include "worker/channel.h"

typedef struct KalamLiveShared
{
	LWLock	   *lock;
	uint64		generation;
	unsigned char channel_key[32];	/* without a cluster secret */
	KalamNotifierState notifier;
	KalamListening listenings[FLEXIBLE_ARRAY_MEMBER];
} KalamLiveShared;

int			kalam_max_listenings = 1024;
int			kalam_notify_wakeups = 2000;

static KalamLiveShared *live = NULL;
static bool exit_callback_registered = false;

static int	count_in_use(const KalamLiveShared *l);

void
kalam_live_define_gucs(void)
{
	DefineCustomIntVariable("kalam.max_listeners",
							"Number of LISTENs on kalam channels and kalam.subscribe subscriptions the server holds at once.",
							"Each takes about 3 kB of shared memory.",
							&kalam_max_listenings,
							1024,
							1,
							1024 * 1024,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("kalam.notify_wakeups",
							"How many times a second the kalam notifier may wake the sessions that LISTEN on this node.",
							"Every NOTIFYing commit wakes every LISTENing session of the database, each running a transaction: with n sessions listening, the notifier leaves n / kalam.notify_wakeups seconds between its commits, gathering the changes of that time into one.  0: no limit.",
							&kalam_notify_wakeups,
							2000,
							0,
							1000000,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);
}

Size
kalam_live_shmem_size(void)
{
	return add_size(offsetof(KalamLiveShared, listenings),
					mul_size(kalam_max_listenings, sizeof(KalamListening)));
}

void
kalam_live_shmem_init(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	live = ShmemInitStruct("kalam live", kalam_live_shmem_size(), &found);
	if (!found)
	{
		memset(live, 0, kalam_live_shmem_size());
		live->lock = &(GetNamedLWLockTranche("kalam live"))->lock;
		if (!pg_strong_random(live->channel_key, sizeof(live->channel_key)))
			ereport(FATAL,
					(errmsg("kalam could not draw a random channel key")));
		pg_atomic_init_u64(&live->notifier.notifications, 0);
		pg_atomic_init_u64(&live->notifier.changes, 0);
		pg_atomic_init_u64(&live->notifier.transactions, 0);
		pg_atomic_init_u64(&live->notifier.retries, 0);
	}
	LWLockRelease(AddinShmemInitLock);
}

static KalamLiveShared *
get_live(void)
{
	if (live == NULL)
		kalam_require_preload();
	return live;
}

KalamNotifierState *
kalam_live_notifier_state(void)
{
	return &get_live()->notifier;
}

LWLock *
kalam_live_lock(void)
{
	return get_live()->lock;
}

/* This server's key of table channel names, when there is no cluster secret */
const unsigned char *
kalam_live_local_key(void)
{
	return get_live()->channel_key;
}

/* Is s the session's listening of the channel (of any, if channel is NULL)? */
static bool
is_listening(const KalamListening *s, int pid, const char *channel)
{
	return s->in_use && s->pid == pid &&
		(channel == NULL || strcmp(s->channel, channel) == 0);
}

/* A session's listenings end with it. */
static void
remove_own(int code, Datum arg)
{
	(void) kalam_live_remove(MyProcPid, NULL);
}

/*
 * Record a listening; false when all kalam.max_listeners are taken.  The
 * same channel twice for one session is recorded once.
 */
bool
kalam_live_add(const KalamListening *listening)
{
	KalamLiveShared *l = get_live();
	int			free_slot = -1;
	int			i;
	KalamGroupStatus status;
	int			group = kalam_live_listening_group(listening);

	if (!exit_callback_registered)
	{
		before_shmem_exit(remove_own, (Datum) 0);
		exit_callback_registered = true;
	}
	LWLockAcquire(l->lock, LW_EXCLUSIVE);
	for (i = 0; i < kalam_max_listenings; i++)
	{
		KalamListening *s = &l->listenings[i];

		if (!s->in_use)
		{
			if (free_slot < 0)
				free_slot = i;
			continue;
		}
		if (is_listening(s, listening->pid, listening->channel))
		{
			LWLockRelease(l->lock);
			return true;
		}
	}
	if (free_slot >= 0)
	{
		l->listenings[free_slot] = *listening;
		l->listenings[free_slot].in_use = true;
		l->listenings[free_slot].from_index =
			kalam_channel_group_status(group, &status) ? status.applied_index : 0;
		l->generation++;
		kalam_channel_set_notifier_wanted(true);
	}
	LWLockRelease(l->lock);
	if (free_slot >= 0)
		kalam_channel_wake_notifier();
	return free_slot >= 0;
}

/* The Raft group whose changes a listening hears */
int
kalam_live_listening_group(const KalamListening *listening)
{
	return listening->shared ? KALAM_GROUP_SHARED :
		kalam_user_group(listening->user);
}

/*
 * End (remove) or break a session's listenings of a channel, or all of
 * them (channel NULL).  Returns whether there was one.
 */
static bool
change_listenings(int pid, const char *channel, bool remove)
{
	KalamLiveShared *l = get_live();
	bool		changed = false;
	int			i;

	LWLockAcquire(l->lock, LW_EXCLUSIVE);
	for (i = 0; i < kalam_max_listenings; i++)
	{
		KalamListening *s = &l->listenings[i];

		if (!is_listening(s, pid, channel))
			continue;
		if (remove)
			s->in_use = false;
		else
			s->broken = true;
		changed = true;
	}
	if (changed)
		l->generation++;
	if (remove && changed)
		kalam_channel_set_notifier_wanted(count_in_use(l) > 0);
	LWLockRelease(l->lock);
	return changed;
}

bool
kalam_live_remove(int pid, const char *channel)
{
	return change_listenings(pid, channel, true);
}

/* Does the session, as this role, hold this channel? */
bool
kalam_live_owns(int pid, Oid roleid, const char *channel)
{
	KalamLiveShared *l = get_live();
	bool		owns = false;
	int			i;

	LWLockAcquire(l->lock, LW_SHARED);
	for (i = 0; i < kalam_max_listenings && !owns; i++)
	{
		KalamListening *s = &l->listenings[i];

		owns = is_listening(s, pid, channel) && s->roleid == roleid;
	}
	LWLockRelease(l->lock);
	return owns;
}

uint64
kalam_live_generation(void)
{
	KalamLiveShared *l = get_live();
	uint64		generation;

	LWLockAcquire(l->lock, LW_SHARED);
	generation = l->generation;
	LWLockRelease(l->lock);
	return generation;
}

/* The listenings in use; the caller holds the lock. */
static int
count_in_use(const KalamLiveShared *l)
{
	int			n = 0;
	int			i;

	for (i = 0; i < kalam_max_listenings; i++)
		if (l->listenings[i].in_use)
			n++;
	return n;
}

/*
 * Copy the listenings in use into a palloc'd array, with the generation
 * they belong to.  Returns how many.
 */
int
kalam_live_copy(KalamListening **listenings, uint64 *generation)
{
	KalamLiveShared *l = get_live();
	int			n = 0;
	int			i;

	LWLockAcquire(l->lock, LW_SHARED);
	*listenings = palloc(sizeof(KalamListening) * Max(count_in_use(l), 1));
	n = 0;
	for (i = 0; i < kalam_max_listenings; i++)
		if (l->listenings[i].in_use)
			(*listenings)[n++] = l->listenings[i];
	*generation = l->generation;
	LWLockRelease(l->lock);
	return n;
}

/* A filter failed: its subscription gets nothing more. */
void
kalam_live_mark_broken(const char *channel, int pid)
{
	(void) change_listenings(pid, channel, false);
}

int
kalam_live_count(void)
{
	KalamLiveShared *l = get_live();
	int			n;

	LWLockAcquire(l->lock, LW_SHARED);
	n = count_in_use(l);
	LWLockRelease(l->lock);
	return n;
}
