/*-------------------------------------------------------------------------
 *
 * proposal.c
 *	  A command's way into its group's log, and its outcome's way back.
 *
 * A proposal is one command: a local backend's (kalam_node_propose), the
 * worker's own (this node's client address), or one that a follower's
 * worker forwarded to this node.  On the group's leader it waits in the
 * group's pending list for the end of the turn, when propose_pending puts
 * the turn's commands into as few log entries as fit (a batch per entry).
 * On a follower it is forwarded to the leader (the forwarded list), or
 * waits for a leader to be elected (retrying) until its deadline.  Once
 * its entry is applied here, or the leader answered and this node applied
 * the entry too (awaiting_apply), its outcome is known (finished), and is
 * reported at the end of the turn: after node.c wrote what the appliers
 * staged and published the applied positions, so that a backend told
 * "done" can read its write.
 *
 * kalam_node_finish_iteration (node.c) calls kalam_proposal_propose_turn
 * and then kalam_proposal_report_turn each turn.  Each node also writes
 * its client address into the meta group once per start (a row under
 * "node/<id>"), so that every node can name any leader's client address.
 * Everything here runs on the worker's loop thread; libraft's callbacks
 * raise no errors.
 *
 * src/cluster/proposal.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <raft.h>

#include "utils/timestamp.h"

#include "cluster/apply_metrics.h"
#include "cluster/forward.h"
#include "cluster/node.h"
#include "cluster/node_internal.h"
#include "codec/command.h"
#include "codec/entry.h"
#include "codec/group.h"
#include "kalam.h"
#include "worker/channel.h"

/* About this many bytes in one entry (and KALAM_ENTRY_MAX_COMMANDS) */
#define KALAM_ENTRY_TARGET_SIZE		(1024 * 1024)

/*
 * A leader proposes a group's next entry only once the previous one is
 * applied: the commands that arrive meanwhile gather into it (group commit,
 * as PostgreSQL's WAL flushes do).  Each entry costs a durable log write on
 * every node, and those writes dominate a commit's latency; with 16
 * clients, 1 entry in flight gave about 7 commands per entry and more
 * throughput than 2 or no limit (3 interleaved runs each).
 */
#define KALAM_MAX_ENTRIES_IN_FLIGHT	1

/* see push_tick */
#define KALAM_PUSH_DELAY_MS	2

static uv_loop_t *proposal_loop = NULL;
static KalamProposal *finished = NULL;	/* outcome known, to report */
static KalamProposal *retrying = NULL;	/* waiting for a leader */
static KalamProposal *forwarded = NULL; /* sent to the leader */
static KalamProposal *awaiting_apply = NULL;	/* committed, not applied here */
static uv_timer_t retry_timer;
static uv_timer_t push_timer;
static bool address_registered = false;
static bool address_pending = false;	/* a registration is under way */
static uint64 address_tried_at = 0; /* loop time (ms) of the last attempt */

static void fail_proposal(KalamProposal *p, KalamApplyStatus status,
						  const char *fmt,...) pg_attribute_printf(3, 4);

static void
push(KalamProposal **list, KalamProposal *p)
{
	p->next = *list;
	*list = p;
}

/*
 * Take a proposal forwarded to a node off the list: the one with the
 * request id, or with request_id 0 any; NULL if none.
 */
static KalamProposal *
take_forwarded(uint64 request_id, int node_id)
{
	KalamProposal **pp;

	for (pp = &forwarded; *pp != NULL; pp = &(*pp)->next)
	{
		KalamProposal *p = *pp;

		if (p->forwarded_to == node_id &&
			(request_id == 0 || p->request_id == request_id))
		{
			*pp = p->next;
			return p;
		}
	}
	return NULL;
}

static void
finish_proposal(KalamProposal *p)
{
	push(&finished, p);
}

static void
fail_proposal(KalamProposal *p, KalamApplyStatus status, const char *fmt,...)
{
	va_list		args;

	memset(&p->result, 0, sizeof(KalamApplyResult));
	p->result.status = status;
	va_start(args, fmt);
	vsnprintf(p->result.message, sizeof(p->result.message), fmt, args);
	va_end(args);
	finish_proposal(p);
}

/*
 * A read fence's leadership was confirmed (status 0): it is done once this
 * node has applied the read index, applied_index.  Or it failed, and the
 * fence looks for a leader again until its deadline (a read may always be
 * tried again).
 */
void
kalam_proposal_finish_fence(KalamProposal *p, int status, uint64 applied_index)
{
	if (status == 0)
	{
		memset(&p->result, 0, sizeof(KalamApplyResult));
		p->result.applied_index = applied_index;
		push(&awaiting_apply, p);
	}
	else if (uv_now(proposal_loop) < p->deadline)
		push(&retrying, p);
	else
		fail_proposal(p, KALAM_APPLY_NOT_LEADER,
					  "node %d could not confirm that it leads group \"%s\": %s",
					  kalam_node_id, kalam_node_group(p->group)->name, raft_strerror(status));
}

/* Hand each proposal of a batch its outcome, from g->results. */
void
kalam_proposal_finish_batch(KalamBatch *batch, KalamGroup *g)
{
	KalamProposal *p;
	int			i = 0;

	while ((p = batch->members) != NULL)
	{
		batch->members = p->next;
		if (i < g->nresults)
			p->result = g->results[i++];
		else
		{
			memset(&p->result, 0, sizeof(KalamApplyResult));
			p->result.status = KALAM_APPLY_BAD_COMMAND;
			strlcpy(p->result.message, "the log entry lacks the command",
					sizeof(p->result.message));
		}
		finish_proposal(p);
	}
	free(batch);
}

/* Give every proposal of a batch the same failure. */
void
kalam_proposal_fail_batch(KalamBatch *batch, KalamApplyStatus status,
						  const char *message)
{
	KalamProposal *p;

	while ((p = batch->members) != NULL)
	{
		batch->members = p->next;
		fail_proposal(p, status, "%s", message);
	}
	free(batch);
}

static void
batch_applied(struct raft_apply *req, int status, void *result)
{
	KalamBatch *batch = (KalamBatch *) req->data;
	KalamGroup *g = kalam_node_group(batch->group);

	g->entries_in_flight--;
	if (status == 0)
		kalam_metrics_proposal_committed(g->id, batch->proposed_us);
	if (status == 0 && result == NULL)
	{
		/* parked by fsm_apply just now: the outcomes come when it applies */
		g->parked_last->waiter = batch;
	}
	else if (status == 0)
		kalam_proposal_finish_batch(batch, g);
	else if (status == RAFT_LEADERSHIPLOST)
	{
		char		message[256];

		snprintf(message, sizeof(message),
				 "node %d lost the leadership of group \"%s\" while the writes waited to commit",
				 kalam_node_id, g->name);
		kalam_proposal_fail_batch(batch, KALAM_APPLY_OUTCOME_UNKNOWN, message);
	}
	else
		kalam_proposal_fail_batch(batch, KALAM_APPLY_LOST, raft_strerror(status));
}

/*
 * This node does not lead the proposal's group: forward a local command to
 * the leader, or wait for one to be elected until the deadline.
 */
static void
not_leader(KalamProposal *p)
{
	KalamGroup *g = kalam_node_group(p->group);
	raft_id		leader;
	const char *address;
	const KalamPeer *peer;

	raft_leader(&g->raft, &leader, &address);
	if (p->origin_conn == 0 && leader != 0 && leader != (raft_id) kalam_node_id &&
		(peer = kalam_peer_find((int) leader)) != NULL)
	{
		p->request_id = kalam_node_new_request_id();
		p->forwarded_to = (int) leader;
		p->forwarded_us = kalam_metrics_now_us();
		p->reply_deadline = uv_now(proposal_loop) + kalam_leader_wait_timeout;
		push(&forwarded, p);
		kalam_forward_request((int) leader, peer->host, peer->port + kalam_group_count(),
							  p->request_id, p->group, p->data, p->len);
		return;
	}
	/* no leader, or this node on its way out of leading: wait for one */
	if (p->origin_conn == 0 && (leader == 0 || leader == (raft_id) kalam_node_id) &&
		uv_now(proposal_loop) < p->deadline)
	{
		push(&retrying, p);
		return;
	}
	if (leader != 0)
		fail_proposal(p, KALAM_APPLY_NOT_LEADER,
					  "group \"%s\" is led by node %llu at %s", g->name,
					  (unsigned long long) leader, address);
	else
		fail_proposal(p, KALAM_APPLY_NOT_LEADER,
					  "group \"%s\" has had no leader for %d ms", g->name,
					  kalam_leader_wait_timeout);
}

/*
 * The meta position a data command requires must be one the meta group
 * can have reached: at most the last index of the meta log on this node,
 * the data group's leader.  Checked here, before the command enters the
 * log, because no bound is deterministic at apply time (each node's meta
 * group is where it is): a requirement beyond the meta log would park the
 * group on every node until meta got that far.  A legitimate requirement
 * comes from a node that applied that meta entry, so this leader's meta
 * log has it or soon will: the proposal waits for it until its deadline,
 * then fails.  Apply refuses, on every node alike, only requirements
 * beyond KALAM_COMMAND_MAX_META_INDEX (codec/command.h).  A command that
 * does not decode is left to apply to refuse.  True if the proposal may
 * go on.
 */
static bool
meta_requirement_reachable(KalamProposal *p, KalamGroup *g)
{
	KalamCommandReader reader;
	const char *error;
	uint64		meta_last;

	if (g->id == KALAM_GROUP_META ||
		!kalam_command_open(&reader, p->data, p->len, &error))
		return true;
	meta_last = raft_last_index(&g->meta->raft);
	if (reader.header.required_meta_index <= meta_last)
		return true;
	if (uv_now(proposal_loop) < p->deadline)
		push(&retrying, p);
	else
		fail_proposal(p, KALAM_APPLY_BAD_COMMAND,
					  "the command requires meta group position %llu, but the meta log of node %d, leader of group \"%s\", ends at %llu",
					  (unsigned long long) reader.header.required_meta_index,
					  kalam_node_id, g->name, (unsigned long long) meta_last);
	return false;
}

/*
 * Queue the proposal for its group's next log entry if this node leads the
 * group (propose_pending sends the entry at the end of the turn).
 */
static void
try_propose(KalamProposal *p)
{
	KalamGroup *g = kalam_node_group(p->group);

	if (raft_state(&g->raft) != RAFT_LEADER)
	{
		not_leader(p);
		return;
	}
	if (p->len == 0)
	{
		kalam_fence_enqueue(g, p);
		return;
	}
	if (!meta_requirement_reachable(p, g))
		return;
	p->next = NULL;
	if (g->pending == NULL)
		g->pending = p;
	else
		g->pending_last->next = p;
	g->pending_last = p;
}

/*
 * Propose the commands that reached this leader during the turn in as few
 * log entries as fit: one write to the log and one message to each
 * follower carry them all.  The meta group's commands go one per entry
 * (DDL replay orders its records by log position), and so does a command
 * that reads a range (apply writes what is staged before such a read, and
 * an entry must become durable whole).
 */
static void
propose_pending(KalamGroup *g)
{
	int			max_commands = (g->id == KALAM_GROUP_META) ? 1 : KALAM_ENTRY_MAX_COMMANDS;
	KalamProposal *p;

	while (g->pending != NULL && g->entries_in_flight < KALAM_MAX_ENTRIES_IN_FLIGHT)
	{
		KalamBatch *batch = calloc(1, sizeof(KalamBatch));
		const char *commands[KALAM_ENTRY_MAX_COMMANDS];
		size_t		lengths[KALAM_ENTRY_MAX_COMMANDS];
		KalamProposal **tail;
		struct raft_buffer buf;
		size_t		size = 0;
		int			rv;

		if (batch == NULL)
		{
			p = g->pending;
			g->pending = p->next;
			fail_proposal(p, KALAM_APPLY_LOST, "out of memory");
			continue;
		}
		batch->req.data = batch;
		batch->group = g->id;
		tail = &batch->members;
		while ((p = g->pending) != NULL && batch->count < max_commands)
		{
			bool		alone = kalam_command_needs_own_entry(p->data, p->len);

			if (batch->count > 0 && (alone || size + p->len > KALAM_ENTRY_TARGET_SIZE))
				break;
			g->pending = p->next;
			p->next = NULL;
			*tail = p;
			tail = &p->next;
			commands[batch->count] = p->data;
			lengths[batch->count] = p->len;
			batch->count++;
			size += p->len;
			if (alone)
				break;
		}

		buf.len = kalam_entry_size(lengths, batch->count);
		buf.base = raft_malloc(buf.len);
		if (buf.base == NULL)
		{
			kalam_proposal_fail_batch(batch, KALAM_APPLY_LOST, "out of memory");
			continue;
		}
		kalam_entry_write(buf.base, commands, lengths, batch->count);
		batch->proposed_us = kalam_metrics_now_us();
		rv = raft_apply(&g->raft, &batch->req, &buf, 1, batch_applied);
		if (rv == 0)
		{
			g->entries_in_flight++;
			g->proposed_in_turn = true;
			g->proposals++;
			continue;
		}
		raft_free(buf.base);
		if (rv != RAFT_NOTLEADER)
		{
			kalam_proposal_fail_batch(batch, KALAM_APPLY_LOST, raft_strerror(rv));
			continue;
		}
		while ((p = batch->members) != NULL)
		{
			batch->members = p->next;
			not_leader(p);
		}
		free(batch);
	}
	if (g->pending == NULL)
		g->pending_last = NULL;
}

static KalamProposal *
new_proposal(int group, const char *data, size_t length)
{
	KalamProposal *p = calloc(1, sizeof(KalamProposal));

	if (p == NULL)
		return NULL;
	p->group = group;
	p->deadline = uv_now(proposal_loop) + kalam_leader_wait_timeout;
	p->len = length;
	p->data = malloc(Max(length, 1));	/* a fence has no bytes */
	if (p->data == NULL)
	{
		free(p);
		return NULL;
	}
	memcpy(p->data, data, length);
	return p;
}

/*
 * Write this node's client address into the meta group, through its leader
 * wherever it is; one attempt at a time, each second until one succeeds.
 */
static void
register_client_address(void)
{
	StringInfoData key;
	StringInfoData command;
	const char *address = kalam_peer_own_client_address();
	KalamProposal *p;

	if (address_registered || address_pending ||
		uv_now(proposal_loop) < address_tried_at + 1000)
		return;
	address_tried_at = uv_now(proposal_loop);
	initStringInfo(&key);
	kalam_peer_client_address_key(&key, kalam_node_id);
	initStringInfo(&command);
	kalam_command_begin(&command, GetCurrentTimestamp());
	kalam_command_add(&command, KALAM_OP_PUT, 0, key.data, key.len, address,
					  strlen(address));
	p = new_proposal(KALAM_GROUP_META, command.data, command.len);
	pfree(key.data);
	pfree(command.data);
	if (p == NULL)
		return;
	p->command.slot = -1;		/* the worker's own: no backend waits */
	address_pending = true;
	try_propose(p);
}

/* Propose a backend's command to its group. */
void
kalam_node_propose(const KalamPendingCommand *command)
{
	KalamProposal *p;
	dsm_segment *seg = NULL;
	const char *data = command->inline_data;

	if (data == NULL)
	{
		seg = dsm_attach(command->handle);
		if (seg != NULL)
			data = dsm_segment_address(seg);
	}
	p = data ? new_proposal(command->group, data, command->length) : NULL;
	if (seg != NULL)
		dsm_detach(seg);
	if (p == NULL)
	{
		KalamApplyResult result;

		/* the owner gave up and its segment is gone, or no memory */
		memset(&result, 0, sizeof(result));
		result.status = KALAM_APPLY_LOST;
		kalam_channel_complete(command, &result);
		return;
	}
	p->command = *command;
	if (command->group < 0 || command->group >= kalam_group_count())
		fail_proposal(p, KALAM_APPLY_BAD_COMMAND, "no Raft group %d on this node",
					  command->group);
	else
		try_propose(p);
}

/* A follower's worker forwarded a command: propose it here. */
void
kalam_proposal_forwarded_request(uint64 conn_id, uint64 request_id,
								 int group, const char *command, size_t length)
{
	KalamProposal *p = new_proposal(group, command, length);

	if (p == NULL)
		return;					/* the follower hears nothing: in doubt */
	p->origin_conn = conn_id;
	p->origin_request = request_id;
	if (group < 0 || group >= kalam_group_count())
		fail_proposal(p, KALAM_APPLY_BAD_COMMAND, "no Raft group %d on node %d",
					  group, kalam_node_id);
	else
		try_propose(p);
}

/*
 * The leader answered, on the connection that carried the request: a
 * committed command still has to be applied here before the backend may
 * read it; a leader that lost its place is looked for again.  forward.c
 * checked the reply's status and message.
 */
void
kalam_proposal_forwarded_reply(int node_id, uint64 request_id,
							   const KalamApplyResult *result)
{
	KalamProposal *p = take_forwarded(request_id, node_id);

	if (p == NULL)
		return;
	p->result = *result;
	kalam_metrics_forward_answered(p->group, p->forwarded_us);
	if (result->status == KALAM_APPLY_OK)
		push(&awaiting_apply, p);
	else if (result->status == KALAM_APPLY_NOT_LEADER &&
			 uv_now(proposal_loop) < p->deadline)
		push(&retrying, p);
	else
		finish_proposal(p);
}

/*
 * The connection to a leader failed.  Commands that never left look for a
 * leader again; those sent on a connection that broke may or may not
 * commit.
 */
void
kalam_proposal_forward_lost(int node_id, bool was_connected)
{
	KalamProposal *p;

	kalam_snapshot_peer_lost(node_id);
	while ((p = take_forwarded(0, node_id)) != NULL)
	{
		if (!was_connected && uv_now(proposal_loop) < p->deadline)
			push(&retrying, p);
		else if (!was_connected)
			fail_proposal(p, KALAM_APPLY_NOT_LEADER,
						  "node %d, leader of group \"%s\", cannot be reached",
						  node_id, kalam_node_group(p->group)->name);
		else
			fail_proposal(p, KALAM_APPLY_OUTCOME_UNKNOWN,
						  "the connection to node %d, leader of group \"%s\", broke",
						  node_id, kalam_node_group(p->group)->name);
	}
}

static void
retry_tick(uv_timer_t *timer)
{
}

static void
barrier_done(struct raft_barrier *req, int status)
{
	free(req);
}

/*
 * A follower that forwarded a command waits until it has applied the
 * entry, and it learns that the entry is committed only from the leader's
 * next message: a heartbeat, up to a tenth of the election timeout later.
 * A barrier entry goes out at once and carries the new commit index,
 * unless an entry proposed in this turn, after the commit, carries it.
 */
static void
push_commit_index(KalamGroup *g)
{
	struct raft_barrier *req;

	g->push_commit = false;
	if (g->proposed_in_turn || raft_state(&g->raft) != RAFT_LEADER ||
		(req = calloc(1, sizeof(struct raft_barrier))) == NULL)
		return;
	if (raft_barrier(&g->raft, req, barrier_done) != 0)
		free(req);
}

/*
 * A follower notifies its listeners of a commit once it applied it, and it
 * learns of the commit with the leader's next message.  While writes go on
 * that is the next entry; after the last one it would be a heartbeat, up to
 * a tenth of the election timeout later.  So a commit that no entry has
 * followed within KALAM_PUSH_DELAY_MS is pushed with a barrier entry.  Not
 * at once: with one client writing, the barrier's log write delays the
 * client's next entry (bench/cluster_bench.sh, 1 client on the leader: 822
 * tps with an immediate push, 1233 with this delay, synchronous streaming
 * replication 1196-1236 in the same runs).  A group of one voter has
 * nobody to tell.
 */
static void
push_tick(uv_timer_t *timer)
{
	int			i;

	for (i = 0; i < kalam_group_count(); i++)
	{
		KalamGroup *g = kalam_node_group(i);

		if (g->push_later && g->proposals == g->push_unless_past)
			g->push_commit = true;
		g->push_later = false;
	}
}

/* Commands forwarded to a leader that did not answer by their reply deadline */
void
kalam_proposal_expire_forwarded(uint64 now)
{
	KalamProposal **pp = &forwarded;
	KalamProposal *p;

	while ((p = *pp) != NULL)
	{
		if (now >= p->reply_deadline)
		{
			*pp = p->next;
			fail_proposal(p, KALAM_APPLY_OUTCOME_UNKNOWN,
						  "node %d, leader of group \"%s\", did not answer within %d ms",
						  p->forwarded_to, kalam_node_group(p->group)->name,
						  kalam_leader_wait_timeout);
		}
		else
			pp = &p->next;
	}
}

/*
 * The turn's proposals: this node's client address until it is written,
 * the commands still looking for a leader, then each led group's pending
 * commands, into log entries.
 */
void
kalam_proposal_propose_turn(void)
{
	KalamProposal *p;
	int			i;

	register_client_address();

	/* commands still looking for a leader */
	p = retrying;
	retrying = NULL;
	while (p != NULL)
	{
		KalamProposal *next = p->next;

		try_propose(p);
		p = next;
	}
	if (retrying != NULL)
		uv_timer_start(&retry_timer, retry_tick, 20, 0);
	for (i = 0; i < kalam_group_count(); i++)
		propose_pending(kalam_node_group(i));
}

/*
 * After the turn's writes were made and published: report the proposals
 * whose outcome is known, and have followers learn the commits that
 * someone waits for.  Adds the rows written and the commands that failed.
 */
void
kalam_proposal_report_turn(uint64 *rows, uint64 *failed)
{
	KalamProposal *p;
	KalamProposal **pp;
	int			i;

	/*
	 * Forwarded commands that this node has now applied too, and fences
	 * whose read index it has reached (an index of any entry, a command's
	 * or not).
	 */
	pp = &awaiting_apply;
	while ((p = *pp) != NULL)
	{
		KalamGroup *g = kalam_node_group(p->group);

		if ((p->len == 0 ? kalam_node_applied_position(g) : g->applier.durable_index) >=
			p->result.applied_index)
		{
			*pp = p->next;
			finish_proposal(p);
		}
		else
			pp = &p->next;
	}

	while (finished != NULL)
	{
		KalamGroup *g;

		p = finished;
		g = kalam_node_group(p->group);
		finished = p->next;
		if (p->result.status == KALAM_APPLY_OK && g != NULL && p->len > 0 &&
			p->result.applied_index > g->applier.durable_index)
		{
			p->result.status = KALAM_APPLY_STORAGE_ERROR;
			strlcpy(p->result.message, "the applied entry could not be written",
					sizeof(p->result.message));
		}
		if (p->result.status == KALAM_APPLY_OK)
			*rows += p->result.rows_written;
		else
			(*failed)++;
		/*
		 * Followers learn a commit at once when someone waits for them: the
		 * origin of a forwarded command waits to apply it; data entries that
		 * require a DDL would park until then.  Any other commit reaches
		 * them soon, for their listeners (see push_tick).
		 */
		if (g != NULL && p->result.status == KALAM_APPLY_OK)
		{
			if (p->origin_conn != 0 || g->id == KALAM_GROUP_META)
				g->push_commit = true;
			else if (!g->push_later && g->raft.configuration.n > 1)
			{
				g->push_later = true;
				g->push_unless_past = g->proposals;
				if (!uv_is_active((uv_handle_t *) &push_timer))
					uv_timer_start(&push_timer, push_tick, KALAM_PUSH_DELAY_MS, 0);
			}
		}
		if (p->origin_conn != 0)
			kalam_forward_reply(p->origin_conn, p->origin_request, &p->result);
		else if (p->command.slot < 0)
		{
			address_registered = (p->result.status == KALAM_APPLY_OK);
			address_pending = false;
		}
		else
			kalam_channel_complete(&p->command, &p->result);
		free(p->data);
		free(p);
	}
	for (i = 0; i < kalam_group_count(); i++)
	{
		KalamGroup *g = kalam_node_group(i);

		if (g->push_commit)
			push_commit_index(g);
		g->proposed_in_turn = false;
	}
}

void
kalam_proposal_start(uv_loop_t *loop)
{
	proposal_loop = loop;
	uv_timer_init(loop, &retry_timer);
	uv_timer_init(loop, &push_timer);
}

void
kalam_proposal_stop(void)
{
	uv_close((uv_handle_t *) &retry_timer, NULL);
	uv_close((uv_handle_t *) &push_timer, NULL);
}
