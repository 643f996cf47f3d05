/*-------------------------------------------------------------------------
 *
 * fence.c
 *	  Read fences: a group's leader confirms with a quorum that it still
 *	  leads, for linearizable reads (kalam.read_consistency).
 *
 * libraft 0.15 has neither ReadIndex nor leases; a barrier entry is the
 * only way a leader learns that a quorum still follows it in its term, and
 * once it is applied, so is everything committed before it.  A fence that
 * reaches the leader (from a local backend, or forwarded by a follower as
 * a command of length 0) waits for the next barrier; while one is in
 * flight, newcomers gather for the one after it, so a burst of reads pays
 * for one log entry, and none is served by a barrier sent before it
 * arrived.  The fence's outcome carries the applier's position when the
 * barrier was applied: what the reader must have applied (a follower waits
 * for it, as for a forwarded write).
 *
 * Runs on the worker's loop; no ereport.
 *
 * src/raft/fence.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "raft/node_internal.h"

static void fence_start(KalamGroup *g);

static void
fence_end(KalamGroup *g, int status)
{
	KalamProposal *p = g->fence_confirming;

	g->fence_confirming = NULL;
	while (p != NULL)
	{
		KalamProposal *next = p->next;

		kalam_node_finish_fence(p, status, g->applier.staged_index);
		p = next;
	}
	fence_start(g);
}

static void
fence_confirmed(struct raft_barrier *req, int status)
{
	fence_end((KalamGroup *) req->data, status);
}

/* Send a barrier for the fences that wait, unless one is in flight. */
static void
fence_start(KalamGroup *g)
{
	int			rv;

	if (g->fence_confirming != NULL || g->fence_waiting == NULL)
		return;
	g->fence_confirming = g->fence_waiting;
	g->fence_waiting = NULL;
	g->fence_barrier.data = g;
	rv = raft_barrier(&g->raft, &g->fence_barrier, fence_confirmed);
	if (rv != 0)
		fence_end(g, rv);
}

/* A fence reached this group's leader. */
void
kalam_fence_enqueue(KalamGroup *g, KalamProposal *p)
{
	p->next = g->fence_waiting;
	g->fence_waiting = p;
	fence_start(g);
}
