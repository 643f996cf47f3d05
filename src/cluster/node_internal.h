/*-------------------------------------------------------------------------
 *
 * node_internal.h
 *	  What node.c (groups and proposals) and fsm.c (apply and parking)
 *	  share about this node's Raft groups.  Private to src/cluster.
 *
 * src/cluster/node_internal.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KALAM_NODE_INTERNAL_H
#define KALAM_NODE_INTERNAL_H

#include <raft.h>
#include <raft/uv.h>

#include "lib/stringinfo.h"

#include "codec/group.h"
#include "kv/apply.h"
#include "worker/channel.h"

#define KALAM_ADDRESS_LEN	64

struct KalamBatch;
struct KalamInstall;

/* a node of kalam.peers */
typedef struct KalamPeer
{
	raft_id		id;
	char		host[KALAM_ADDRESS_LEN];
	int			port;
} KalamPeer;

/*
 * A committed entry that this node may not apply yet: the meta group here
 * has not applied the DDL it requires (or is held back, for tests), the
 * group is installing a snapshot, which an entry of no data marks
 * (snapshot.c), or an entry before it is applied on the thread pool (a
 * split, fsm.c).  A group's entries park and leave in log order.
 */
typedef struct KalamParkedEntry
{
	uint64		index;
	uint64		required_meta_index;
	bool		is_snapshot;	/* the install's mark: leaves when it ends */
	bool		off_loop;		/* a split: applied on the thread pool */
	struct KalamApplyJob *job;	/* which applies it, once started */
	char	   *data;			/* NULL when kept in RocksDB (on_disk) */
	size_t		len;
	bool		on_disk;		/* kv/parked.c keeps the data */
	struct KalamBatch *waiter;	/* whose outcomes it decides, if any */
	uint64		parked_us;		/* when it was parked (apply_metrics.h) */
	struct KalamParkedEntry *next;
} KalamParkedEntry;

typedef struct KalamGroup
{
	int			id;
	struct KalamGroup *meta;	/* the meta group, whose position gates apply */
	char		name[KALAM_GROUP_NAME_LEN];
	char		address[KALAM_ADDRESS_LEN];
	struct raft raft;
	struct raft_io io;
	struct raft_uv_transport transport;
	struct raft_fsm fsm;
	KalamApplier applier;
	KalamApplyResult *results;	/* of the last entry applied, one per command */
	int			nresults;
	int			results_cap;
	struct KalamProposal *pending;	/* to propose at the end of the turn */
	struct KalamProposal *pending_last;
	int			entries_in_flight;	/* proposed, not yet applied here */
	struct KalamProposal *fence_waiting;	/* read fences for the next round */
	struct KalamProposal *fence_confirming; /* those of the round in flight */
	struct raft_barrier fence_barrier;
	uint64		fence_round;	/* request id of a confirmation round; 0: barrier */
	uint64		fence_term;		/* the term the round confirms */
	uint64		fence_read_index;	/* commit index when the round started */
	uint64		fence_started;	/* loop time (ms) of its start */
	int			fence_majority; /* voters that must follow, this node included */
	int			fence_nacked;	/* other nodes that confirmed */
	int			fence_acked[KALAM_MAX_NODES];
	uint64		confirmed_term; /* a barrier of this term was applied here */
	KalamParkedEntry *parked;	/* oldest parked entry */
	KalamParkedEntry *parked_last;
	uint64		nparked;		/* committed entries parked */
	uint64		parked_bytes;	/* their data held in memory */
	uint64		parked_on_disk; /* of them, kept in RocksDB */
	uint64		apply_paused_until; /* loop time (ms): a follower's pause */
	struct KalamInstall *install;	/* of a snapshot, while it runs */
	bool		job_running;	/* a split is applied on the thread pool */
	bool		purging;		/* its change log is purged on the pool */
	int			purge_removed;	/* by that purge; -1: purge_error says why */
	char		purge_error[256];
	char		install_dir[MAXPGPATH]; /* its SST files */
	uint64		log_bytes;		/* of entries since the last snapshot */
	uint64		log_entries;
	bool		snapshot_by_size;	/* the threshold is lowered for one */
	char		error[256];		/* set by callbacks, logged later */
	char		notice[256];	/* the same, of what went well */
	bool		initialized;	/* raft_init succeeded */
	bool		push_commit;	/* followers wait to learn a commit */
	bool		proposed_in_turn;	/* an entry went out in this turn */
	uint64		proposals;		/* entries proposed so far */
	bool		push_later;		/* push the commit index unless an entry */
	uint64		push_unless_past;	/* is proposed past this count first */
	KalamGroupStatus published; /* what kalam.groups shows now */
	uint64		reachable_published_at; /* loop time (ms), meta group */
	bool		started;
	bool		closed;
	/* see group_io_close in node.c */
	void		(*io_close) (struct raft_io *io, raft_io_close_cb cb);
	raft_io_close_cb io_close_cb;
	bool		io_closed;
} KalamGroup;

/*
 * A command on its way through a group's log: a local backend's, or one
 * that a follower's worker forwarded to this node.
 */
typedef struct KalamProposal
{
	int			group;
	KalamPendingCommand command;	/* local origin */
	uint64		origin_conn;	/* forwarded to us: its connection, else 0 */
	uint64		origin_request;
	char	   *data;			/* the command, kept for forwarding */
	size_t		len;			/* 0: a read fence (see fence.c) */
	uint64		request_id;		/* while we forward it */
	int			forwarded_to;
	uint64		forwarded_us;	/* when it was sent (apply_metrics.h) */
	uint64		reply_deadline; /* loop time (ms) to stop waiting for it */
	uint64		deadline;		/* loop time (ms) to stop waiting for a leader */
	KalamApplyResult result;
	struct KalamProposal *next;
} KalamProposal;

/*
 * The proposals that one log entry carries, in entry order (chained by
 * next), waiting for libraft to commit and apply it.
 */
typedef struct KalamBatch
{
	struct raft_apply req;
	int			group;
	int			count;
	uint64		proposed_us;	/* when raft_apply took it (apply_metrics.h) */
	KalamProposal *members;
} KalamBatch;

/* fsm.c */
extern void kalam_fsm_start(uv_loop_t *loop);
extern void kalam_fsm_stop(void);
extern void kalam_fsm_init(KalamGroup *g);
extern bool kalam_fsm_may_apply(KalamGroup *g, uint64 required_meta_index);
extern void kalam_fsm_release_parked(KalamGroup *g);
extern void kalam_fsm_drop_parked(KalamGroup *g);
extern void kalam_fsm_take_apply_stats(uint64 *commands, uint64 *microseconds);
extern void kalam_fsm_lower_pool_priority(void);
extern bool kalam_fsm_job_running(void);

/* peers.c */
extern int	kalam_peer_count(void);
extern const KalamPeer *kalam_peer_at(int i);
extern const KalamPeer *kalam_peer_find(int node_id);
extern bool kalam_peer_is_member(int node_id);
extern void kalam_peer_group_address(int group, const char *host, int port,
									 char *out);
extern bool kalam_peer_raft_address(int node_id, int group, char *address,
									size_t len);
extern void kalam_peer_self_address(int group, char *out);
extern void kalam_peer_client_address_key(StringInfo key, int node_id);
extern const char *kalam_peer_own_client_address(void);

/* fence.c */
extern void kalam_fence_enqueue(KalamGroup *g, struct KalamProposal *p);
extern void kalam_fence_confirmed(KalamGroup *g, int node_id, uint64 round,
								  uint64 term, bool yes);
extern void kalam_fence_tick(KalamGroup *g);

/* snapshot.c */
extern void kalam_snapshot_start(uv_loop_t *loop);
extern void kalam_snapshot_note_entry(KalamGroup *g, size_t len);
extern void kalam_snapshot_taken(KalamGroup *g);
extern bool kalam_snapshot_install(KalamGroup *g, uint64 target);
extern void kalam_snapshot_progress(KalamGroup *g, KalamGroupStatus *status);
extern void kalam_snapshot_serve(uint64 conn_id, int peer_id, uint64 request_id,
								 int group, uint64 session, uint64 index);
extern void kalam_snapshot_chunk(int node_id, uint64 request_id,
								 const char *data, size_t len);
extern void kalam_snapshot_peer_lost(int node_id);
extern void kalam_snapshot_tick(void);
extern void kalam_snapshot_stop(void);
extern bool kalam_snapshot_transfer_open(void);

/* node.c: the groups, request ids, fence confirmation rounds */
extern KalamGroup *kalam_node_group(int group);
extern uint64 kalam_node_new_request_id(void);
extern uint64 kalam_node_applied_position(KalamGroup *g);
extern int	kalam_node_ask_confirm(KalamGroup *g, uint64 *round, uint64 term);

/* proposal.c: commands into the log, outcomes back */
extern void kalam_proposal_start(uv_loop_t *loop);
extern void kalam_proposal_stop(void);
extern void kalam_proposal_propose_turn(void);
extern void kalam_proposal_report_turn(uint64 *rows, uint64 *failed);
extern void kalam_proposal_finish_fence(struct KalamProposal *p, int status,
										uint64 applied_index);
extern void kalam_proposal_finish_batch(KalamBatch *batch, KalamGroup *g);
extern void kalam_proposal_fail_batch(KalamBatch *batch, KalamApplyStatus status,
									  const char *message);
extern void kalam_proposal_forwarded_request(uint64 conn_id, uint64 request_id,
											 int group, const char *command,
											 size_t length);
extern void kalam_proposal_forwarded_reply(int node_id, uint64 request_id,
										   const KalamApplyResult *result);
extern void kalam_proposal_forward_lost(int node_id, bool was_connected);
extern void kalam_proposal_expire_forwarded(uint64 now);

#endif							/* KALAM_NODE_INTERNAL_H */
