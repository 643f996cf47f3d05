/*-------------------------------------------------------------------------
 *
 * fence.c
 *	  Read fences: a group's leader confirms with a quorum that it still
 *	  leads, for linearizable reads (kalam.read_consistency).
 *
 * libraft 0.15 has neither ReadIndex nor leases.  A barrier entry proves
 * leadership, but costs a durable log write on the leader and a quorum:
 * measured with bench/read_bench.sh, 0.8 ms per linearizable point read
 * with 1 client and 6,400 reads/s with 16 (4x fewer than at the leader
 * level).  So the fence does what Raft's ReadIndex does, over kalam's own
 * authenticated forwarding connections: the leader notes its commit index,
 * asks every other voter whether it still follows it in its term, and
 * once a majority (itself included) says yes, no other leader can have
 * been elected since the question was asked; the reader may read once
 * this node has applied that commit index.  No log write, one round trip.
 * A commit index is only trustworthy once the leader has committed an
 * entry of its own term, so the first fence of a term uses a barrier
 * entry, which proves both.
 *
 * A fence that reaches the leader (from a local backend, or forwarded by a
 * follower as a command of length 0) waits for the next round; while one
 * is in flight, newcomers gather for the one after it, so a burst of reads
 * pays for one round and none is served by a round begun before it came.
 * A round that does not gather a majority within the election timeout
 * fails, and its fences look for a leader again (proposal.c).  The outcome
 * carries the read index: the reader waits until it applied that far (a
 * follower as for a forwarded write).
 *
 * Runs on the worker's loop; no ereport.
 *
 * src/cluster/fence.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "cluster/node.h"
#include "cluster/node_internal.h"

static void fence_start(KalamGroup *g);

/* The round ended: hand its fences their outcome, start the next one. */
static void
fence_end(KalamGroup *g, int status, uint64 read_index)
{
	KalamProposal *p = g->fence_confirming;

	g->fence_confirming = NULL;
	g->fence_round = 0;
	while (p != NULL)
	{
		KalamProposal *next = p->next;

		kalam_proposal_finish_fence(p, status, read_index);
		p = next;
	}
	fence_start(g);
}

static void
barrier_applied(struct raft_barrier *req, int status)
{
	KalamGroup *g = (KalamGroup *) req->data;

	if (status == 0 && raft_state(&g->raft) == RAFT_LEADER &&
		g->raft.current_term == g->fence_term)
		g->confirmed_term = g->fence_term;
	fence_end(g, status, req->index);
}

/* Has a majority confirmed the round? */
static void
fence_check(KalamGroup *g)
{
	if (g->fence_nacked + 1 < g->fence_majority)
		return;
	if (raft_state(&g->raft) != RAFT_LEADER ||
		g->raft.current_term != g->fence_term)
		fence_end(g, RAFT_LEADERSHIPLOST, 0);
	else
		fence_end(g, 0, g->fence_read_index);
}

/* Start a round for the fences that wait, unless one is in flight. */
static void
fence_start(KalamGroup *g)
{
	int			voters;
	int			rv;

	if (g->fence_confirming != NULL || g->fence_waiting == NULL)
		return;
	g->fence_confirming = g->fence_waiting;
	g->fence_waiting = NULL;
	g->fence_term = g->raft.current_term;
	g->fence_started = g->io.time(&g->io);
	g->fence_nacked = 0;
	if (g->confirmed_term != g->fence_term)
	{
		g->fence_round = 0;
		g->fence_barrier.data = g;
		rv = raft_barrier(&g->raft, &g->fence_barrier, barrier_applied);
		if (rv != 0)
			fence_end(g, rv, 0);
		return;
	}
	g->fence_read_index = g->raft.commit_index;
	voters = kalam_node_ask_confirm(g, &g->fence_round, g->fence_term);
	g->fence_majority = voters / 2 + 1;
	fence_check(g);
}

/* A fence reached this group's leader. */
void
kalam_fence_enqueue(KalamGroup *g, KalamProposal *p)
{
	p->next = g->fence_waiting;
	g->fence_waiting = p;
	fence_start(g);
}

/* A node answered the question of a round. */
void
kalam_fence_confirmed(KalamGroup *g, int node_id, uint64 round, uint64 term,
					  bool yes)
{
	int			i;

	if (g->fence_confirming == NULL || round == 0 || round != g->fence_round ||
		term != g->fence_term || !yes)
		return;
	for (i = 0; i < g->fence_nacked; i++)
		if (g->fence_acked[i] == node_id)
			return;
	if (g->fence_nacked == KALAM_MAX_NODES)
		return;
	g->fence_acked[g->fence_nacked++] = node_id;
	fence_check(g);
}

/* A confirmation round that gathered no majority in time fails. */
void
kalam_fence_tick(KalamGroup *g)
{
	if (g->fence_confirming != NULL && g->fence_round != 0 &&
		g->io.time(&g->io) >= g->fence_started + (uint64) kalam_election_timeout)
		fence_end(g, RAFT_NOCONNECTION, 0);
}
