/*-------------------------------------------------------------------------
 *
 * channel.h
 *	  Shared memory through which backends hand commands to the kalam
 *	  worker and wait for the outcome.
 *
 * src/worker/channel.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KALAM_CHANNEL_H
#define KALAM_CHANNEL_H

#include "port/atomics.h"
#include "storage/dsm.h"
#include "storage/latch.h"

#include "codec/result.h"

/* A Raft group as this node sees it, for kalam.groups */
typedef struct KalamGroupStatus
{
	uint64		term;
	uint64		commit_index;
	uint64		applied_index;
	int			leader_id;		/* 0 if unknown */
	char		leader_address[64];
	bool		is_leader;
	uint64		parked_entries; /* committed, waiting for the meta group */
	uint64		parked_on_disk; /* of those, kept in RocksDB (fsm.c) */
	int			install_phase;	/* of a snapshot: 0 none, 1 fetching, 2
								 * waiting for the meta group, 3 ingesting */
	int			install_source; /* the node it comes from; 0 between tries */
	uint64		install_rows;	/* received */
	uint64		install_bytes;
} KalamGroupStatus;

/* Counters shown by kalam.stats */
typedef struct KalamStats
{
	pg_atomic_uint64 commands_applied;
	pg_atomic_uint64 commands_failed;
	pg_atomic_uint64 batches_written;
	pg_atomic_uint64 rows_written;
	pg_atomic_uint64 apply_time_us;
	/* transactions across groups (txn/): committed by this node's backends */
	pg_atomic_uint64 multi_group_committed;
	pg_atomic_uint64 multi_group_commit_us; /* their time to commit */
	pg_atomic_uint64 multi_group_aborted;	/* failed after a prepare */
	pg_atomic_uint64 transactions_recovered;	/* resolved by recovery */
} KalamStats;

/*
 * Commands up to this size travel inside the backend's slot; larger ones in
 * a dynamic shared memory segment of their own.
 */
#define KALAM_INLINE_COMMAND_SIZE	8192

/*
 * A command the worker took from the queue.  One of length 0 is a read
 * fence: it completes once the group's leader confirmed with a quorum that
 * it still leads, and this node applied the leader's commit index of then
 * (applied_index of the result).
 */
typedef struct KalamPendingCommand
{
	int			slot;
	int			group;			/* the Raft group to propose it to */
	const char *inline_data;	/* the command in the slot, or NULL */
	dsm_handle	handle;			/* otherwise its segment */
	Size		length;
} KalamPendingCommand;

extern Size kalam_channel_shmem_size(void);
extern void kalam_channel_shmem_init(void);

/* backend side */
extern void kalam_channel_submit(int group, const char *command, Size length,
								 KalamApplyResult *result);
extern bool kalam_channel_group_status(int group, KalamGroupStatus *status);
extern uint64 kalam_channel_applied_index(void);
extern pid_t kalam_channel_worker_pid(void);
extern void kalam_channel_wait_storage_ready(void);
extern void kalam_channel_nap(long ms);
extern KalamStats *kalam_channel_stats(void);

/* worker side */
extern void kalam_channel_attach_worker(Latch *latch);
extern void kalam_channel_detach_worker(void);
extern void kalam_channel_set_storage_ready(void);
extern int	kalam_channel_take(KalamPendingCommand *commands, int max);
extern void kalam_channel_complete(const KalamPendingCommand *command,
								   const KalamApplyResult *result);
extern void kalam_channel_publish_applied(uint64 applied_index);
extern void kalam_channel_publish_group(int group, const KalamGroupStatus *status);
extern void kalam_channel_publish_reachable(int node_id, bool reachable);
extern void kalam_channel_attach_jobs(Latch *latch);
extern void kalam_channel_wake_jobs(void);
extern void kalam_channel_attach_notifier(Latch *latch);
extern void kalam_channel_set_notifier_wanted(bool wanted);
extern void kalam_channel_wake_notifier(void);
extern bool kalam_channel_node_reachable(int node_id);

#endif							/* KALAM_CHANNEL_H */
