/*-------------------------------------------------------------------------
 *
 * node.c
 *	  This node's Raft groups, run by the kalam worker on its libuv loop.
 *
 * Each group (see group.h) is its own libraft instance with its own log
 * directory and port (kalam.raft_address's port plus the group number), all
 * on the worker's loop.  The commands that reach a group's leader in one
 * turn of the loop (from local backends, or forwarded by followers) are
 * proposed together as one log entry; once committed, libraft calls the
 * state machine (fsm.c), which stages them with the group's applier, each
 * with its own outcome.  After each turn of the loop the worker writes
 * what the appliers staged, publishes the applied positions, and only then
 * reports the outcomes, so a backend that is told "done" can read its
 * write.
 *
 * Everything here runs on the worker's main thread.  libraft's callbacks
 * must not raise errors: they record what went wrong in the group, and
 * kalam_node_finish_iteration logs it.
 *
 * With kalam.peers empty, every group is a one-voter cluster listening on a
 * loopback port chosen by the kernel.
 *
 * Each node writes its client address into the meta group once per start
 * (a row under "node/<id>"), so that every node can name any leader's
 * client address.
 *
 * src/raft/node.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <pthread.h>
#include <signal.h>

#include <raft.h>
#include <raft/uv.h>

#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "codec/command.h"
#include "codec/entry.h"
#include "kalam.h"
#include "raft/apply_metrics.h"
#include "raft/forward.h"
#include "raft/group.h"
#include "raft/handshake.h"
#include "raft/meta_watermark.h"
#include "raft/node.h"
#include "raft/node_internal.h"
#include "raft/snapshot.h"
#include "raft/transport.h"
#include "storage/transfer.h"

int			kalam_node_id = 1;
char	   *kalam_raft_address = NULL;
char	   *kalam_peers = NULL;
int			kalam_election_timeout = 1000;
int			kalam_leader_wait_timeout = 5000;
bool		kalam_debug_hold_meta_apply = false;
char	   *kalam_client_address = NULL;

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

static KalamGroup *groups = NULL;
static int	ngroups = 0;
static uv_loop_t *node_loop = NULL;
static KalamProposal *finished = NULL;	/* outcome known, to report */
static KalamProposal *retrying = NULL;	/* waiting for a leader */
static KalamProposal *forwarded = NULL; /* sent to the leader */
static KalamProposal *awaiting_apply = NULL;	/* committed, not applied here */
static uint64 next_request_id = 0;
static uint64 meta_index_seen = 0;	/* meta group's applied index, last turn */
static bool meta_held = false;	/* kalam.debug_hold_meta_apply, last turn */
static uv_timer_t retry_timer;
static uv_timer_t tick_timer;
static uv_timer_t push_timer;

/* see push_tick */
#define KALAM_PUSH_DELAY_MS	2
static bool address_registered = false;
static bool address_pending = false;	/* a registration is under way */
static uint64 address_tried_at = 0; /* loop time (ms) of the last attempt */

static void finish_proposal(KalamProposal *p);
static void fail_proposal(KalamProposal *p, KalamApplyStatus status,
						  const char *fmt,...) pg_attribute_printf(3, 4);
static void forwarded_request(uint64 conn_id, uint64 request_id, int group,
							  const char *command, size_t length);
static void forwarded_reply(int node_id, uint64 request_id,
							const KalamApplyResult *result);
static void forward_lost(int node_id, bool was_connected);
static void forward_tick(uv_timer_t *timer);
static void forward_confirm(uint64 conn_id, int node_id, uint64 request_id,
							int group, uint64 term);
static void forward_confirmed(int node_id, uint64 request_id, int group,
							  uint64 term, bool yes);

/*
 * Raise a start-up error with the signal mask restored, with libraft's
 * message (or that of its I/O, before raft_init).  libraft does not pass
 * on its transport's message (which address could not be bound, and why):
 * say it too.
 */
static void
start_failed(const sigset_t *mask, KalamGroup *g, const char *what, int rv)
{
	const char *detail = g->initialized ? raft_errmsg(&g->raft) : g->io.errmsg;

	pthread_sigmask(SIG_SETMASK, mask, NULL);
	ereport(FATAL,
			(errcode(ERRCODE_INTERNAL_ERROR),
			 errmsg("kalam could not %s Raft group \"%s\": %s", what, g->name,
					raft_strerror(rv)),
			 g->transport.errmsg[0] != '\0' ?
			 errdetail("%s%s%s", g->transport.errmsg, detail[0] ? "; " : "", detail) :
			 detail[0] ? errdetail("%s", detail) : 0));
}

/*
 * libraft 0.15's raft_uv can report its close more than once, the later
 * times after its owner has freed it.  uvAppendClose finalizes the open
 * segment: the segment leaves uv->append_segments at once, but its writer
 * closes two libuv handles.  When the segment's finalize work in the thread
 * pool and the transport's close end before those handles do,
 * uvMaybeFireCloseCb finds nothing pending and calls the close callback;
 * the writer's close, one callback later, calls uvMaybeFireCloseCb again,
 * which calls it again (on freed memory if raft_uv_close ran in between:
 * the kalam worker died with SIGSEGV in raft.c's ioCloseCb at shutdown).
 *
 * So libraft's io->close is wrapped: its callback (raft.c's ioCloseCb,
 * which closes the raft and calls group_closed) runs once, and
 * raft_uv_close waits until the loop has nothing left to run
 * (kalam_node_stop).
 */
static void
group_io_closed(struct raft_io *io)
{
	KalamGroup *g = (KalamGroup *) ((char *) io - offsetof(KalamGroup, io));

	if (g->io_closed)
		return;
	g->io_closed = true;
	if (g->io_close_cb != NULL)
		g->io_close_cb(io);
}

static void
group_io_close(struct raft_io *io, raft_io_close_cb cb)
{
	KalamGroup *g = (KalamGroup *) ((char *) io - offsetof(KalamGroup, io));

	g->io_close_cb = cb;
	g->io_close(io, group_io_closed);
}

static void
noop_work(uv_work_t *req)
{
}

static void
noop_after_work(uv_work_t *req, int status)
{
	*(bool *) req->data = true;
}

static void
start_group(KalamGroup *g, rocksdb_t *db, const sigset_t *mask)
{
	char		errbuf[256];
	char	   *dir;
	char	   *split_dir;
	struct raft_configuration conf;
	int			rv;
	int			i;

	kalam_group_name(g->id, g->name);
	split_dir = kalam_data_path(psprintf("install/%s-split", g->name));
	if (MakePGDirectory(split_dir) < 0 && errno != EEXIST)
	{
		pthread_sigmask(SIG_SETMASK, mask, NULL);
		ereport(FATAL,
				(errcode_for_file_access(),
				 errmsg("could not create directory \"%s\": %m", split_dir)));
	}
	kalam_transfer_clean(psprintf("%s/changes", split_dir));
	kalam_transfer_clean(psprintf("%s/rows", split_dir));
	if (!kalam_apply_init(&g->applier, db, g->id, g->id != KALAM_GROUP_META,
						  split_dir, errbuf, sizeof(errbuf)))
	{
		pthread_sigmask(SIG_SETMASK, mask, NULL);
		ereport(FATAL,
				(errcode(ERRCODE_IO_ERROR),
				 errmsg("kalam could not read the applied index of group \"%s\"", g->name),
				 errdetail("RocksDB: %s", errbuf)));
	}

	dir = kalam_data_path(psprintf("raft/%s", g->name));
	if (MakePGDirectory(dir) < 0 && errno != EEXIST)
	{
		pthread_sigmask(SIG_SETMASK, mask, NULL);
		ereport(FATAL,
				(errcode_for_file_access(),
				 errmsg("could not create directory \"%s\": %m", dir)));
	}

	strlcpy(g->install_dir, kalam_data_path(psprintf("install/%s", g->name)),
			sizeof(g->install_dir));
	kalam_transfer_clean(g->install_dir);
	kalam_fsm_init(g);

	raft_configuration_init(&conf);
	if (kalam_peer_count() == 0)
	{
		kalam_peer_self_address(g->id, g->address);
		rv = raft_configuration_add(&conf, kalam_node_id, g->address, RAFT_VOTER);
	}
	else
	{
		rv = 0;
		for (i = 0; i < kalam_peer_count() && rv == 0; i++)
		{
			const KalamPeer *peer = kalam_peer_at(i);
			char		address[KALAM_ADDRESS_LEN];

			kalam_peer_group_address(g->id, peer->host, peer->port, address);
			if (peer->id == (raft_id) kalam_node_id)
				strlcpy(g->address, address, sizeof(g->address));
			rv = raft_configuration_add(&conf, peer->id, address, RAFT_VOTER);
		}
	}
	if (rv != 0)
		start_failed(mask, g, "configure", rv);

	if ((rv = kalam_transport_init(&g->transport, node_loop, g->id,
								   kalam_peer_raft_address)) != 0)
		start_failed(mask, g, "create the transport of", rv);
	if ((rv = raft_uv_init(&g->io, node_loop, dir, &g->transport)) != 0)
		start_failed(mask, g, "open the log of", rv);
	g->io_close = g->io.close;
	g->io.close = group_io_close;
	if ((rv = raft_init(&g->raft, &g->io, &g->fsm, kalam_node_id, g->address)) != 0)
		start_failed(mask, g, "initialize", rv);
	g->initialized = true;
	rv = raft_bootstrap(&g->raft, &conf);
	raft_configuration_close(&conf);
	if (rv != 0 && rv != RAFT_CANTBOOTSTRAP)
		start_failed(mask, g, "bootstrap", rv);

	raft_set_election_timeout(&g->raft, kalam_election_timeout);
	raft_set_heartbeat_timeout(&g->raft, Max(kalam_election_timeout / 10, 10));

	/*
	 * A node that missed heartbeats (its loop held by a long apply, or just
	 * restarted) first asks whether it could win, and stands only if a
	 * majority has stopped hearing from the leader: without this, one
	 * node's pause raised the term of every group, deposing leaders that
	 * were fine (bench/scale.sh: 19 elections across all groups when a
	 * follower came back after 21 s away, 18 in a 3M-row bulk load).
	 */
	raft_set_pre_vote(&g->raft, true);
	raft_set_snapshot_threshold(&g->raft, kalam_snapshot_threshold);
	raft_set_snapshot_trailing(&g->raft, kalam_snapshot_threshold * 2);
	if ((rv = raft_start(&g->raft)) != 0)
		start_failed(mask, g, "start", rv);
	g->started = true;
}

/*
 * Start every group on the loop.  libraft's disk writes run on libuv's
 * thread pool: all signals stay blocked until its threads exist, so that
 * they never run PostgreSQL's signal handlers.
 */
void
kalam_node_start(uv_loop_t *loop, rocksdb_t *db)
{
	sigset_t	all;
	sigset_t	mask;
	uv_work_t	work;
	bool		pool_ready = false;
	char		errbuf[256];
	int			i;

	node_loop = loop;
	ngroups = kalam_group_count();
	groups = MemoryContextAllocZero(TopMemoryContext, sizeof(KalamGroup) * ngroups);
	if (MakePGDirectory(kalam_data_path("raft")) < 0 && errno != EEXIST)
		ereport(FATAL,
				(errcode_for_file_access(),
				 errmsg("could not create directory \"%s\": %m", kalam_data_path("raft"))));
	if (MakePGDirectory(kalam_data_path("install")) < 0 && errno != EEXIST)
		ereport(FATAL,
				(errcode_for_file_access(),
				 errmsg("could not create directory \"%s\": %m", kalam_data_path("install"))));
	kalam_snapshot_start(loop);
	kalam_fsm_start(loop);

	kalam_watermark_prepare();
	if (!kalam_watermark_load(db, errbuf, sizeof(errbuf)))
		ereport(FATAL,
				(errcode(ERRCODE_IO_ERROR),
				 errmsg("kalam could not read the replicated DDL positions"),
				 errdetail("RocksDB: %s", errbuf)));

	kalam_handshake_set_members(kalam_peer_is_member);
	/* request ids of this incarnation never match those of an earlier one */
	if (!pg_strong_random(&next_request_id, sizeof(next_request_id)))
		next_request_id = (uint64) GetCurrentTimestamp() << 16;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &mask);
	work.data = &pool_ready;
	uv_queue_work(loop, &work, noop_work, noop_after_work);
	while (!pool_ready)
		uv_run(loop, UV_RUN_ONCE);
	for (i = 0; i < ngroups; i++)
	{
		groups[i].id = i;
		groups[i].meta = &groups[KALAM_GROUP_META];
		start_group(&groups[i], db, &mask);
	}
	pthread_sigmask(SIG_SETMASK, &mask, NULL);

	uv_timer_init(loop, &retry_timer);
	uv_timer_init(loop, &push_timer);
	uv_timer_init(loop, &tick_timer);
	uv_timer_start(&tick_timer, forward_tick, 100, 100);
	if (kalam_peer_count() > 0)
	{
		const KalamPeer *self = kalam_peer_find(kalam_node_id);
		static const KalamForwardCallbacks callbacks = {
			.request = forwarded_request,
			.reply = forwarded_reply,
			.lost = forward_lost,
			.confirm = forward_confirm,
			.confirmed = forward_confirmed,
			.fetch = kalam_snapshot_serve,
			.chunk = kalam_snapshot_chunk
		};
		int			rv = kalam_forward_start(loop, self->host, self->port + ngroups,
											 &callbacks);

		if (rv != 0)
			ereport(FATAL,
					(errcode(ERRCODE_CONFIG_FILE_ERROR),
					 errmsg("kalam could not listen for forwarded commands on %s:%d: %s",
							self->host, self->port + ngroups, uv_strerror(rv)),
					 errhint("Ports from kalam.raft_address's to %d above it must be free.",
							 ngroups)));
	}
}

/* A group of this node; NULL if there is no such group */
KalamGroup *
kalam_node_group(int group)
{
	return (group >= 0 && group < ngroups) ? &groups[group] : NULL;
}

/* An id for a request to another node's worker; never 0. */
uint64
kalam_node_new_request_id(void)
{
	if (++next_request_id == 0)
		next_request_id = 1;
	return next_request_id;
}

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
kalam_node_finish_fence(KalamProposal *p, int status, uint64 applied_index)
{
	if (status == 0)
	{
		memset(&p->result, 0, sizeof(KalamApplyResult));
		p->result.applied_index = applied_index;
		push(&awaiting_apply, p);
	}
	else if (uv_now(node_loop) < p->deadline)
		push(&retrying, p);
	else
		fail_proposal(p, KALAM_APPLY_NOT_LEADER,
					  "node %d could not confirm that it leads group \"%s\": %s",
					  kalam_node_id, groups[p->group].name, raft_strerror(status));
}

/* Hand each proposal of a batch its outcome, from g->results. */
void
kalam_node_finish_batch(KalamBatch *batch, KalamGroup *g)
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
kalam_node_fail_batch(KalamBatch *batch, KalamApplyStatus status,
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
	KalamGroup *g = &groups[batch->group];

	g->entries_in_flight--;
	if (status == 0)
		kalam_metrics_proposal_committed(g->id, batch->proposed_us);
	if (status == 0 && result == NULL)
	{
		/* parked by fsm_apply just now: the outcomes come when it applies */
		g->parked_last->waiter = batch;
	}
	else if (status == 0)
		kalam_node_finish_batch(batch, g);
	else if (status == RAFT_LEADERSHIPLOST)
	{
		char		message[256];

		snprintf(message, sizeof(message),
				 "node %d lost the leadership of group \"%s\" while the writes waited to commit",
				 kalam_node_id, g->name);
		kalam_node_fail_batch(batch, KALAM_APPLY_OUTCOME_UNKNOWN, message);
	}
	else
		kalam_node_fail_batch(batch, KALAM_APPLY_LOST, raft_strerror(status));
}

/*
 * This node does not lead the proposal's group: forward a local command to
 * the leader, or wait for one to be elected until the deadline.
 */
static void
not_leader(KalamProposal *p)
{
	KalamGroup *g = &groups[p->group];
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
		p->reply_deadline = uv_now(node_loop) + kalam_leader_wait_timeout;
		push(&forwarded, p);
		kalam_forward_request((int) leader, peer->host, peer->port + ngroups,
							  p->request_id, p->group, p->data, p->len);
		return;
	}
	/* no leader, or this node on its way out of leading: wait for one */
	if (p->origin_conn == 0 && (leader == 0 || leader == (raft_id) kalam_node_id) &&
		uv_now(node_loop) < p->deadline)
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
	if (uv_now(node_loop) < p->deadline)
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
	KalamGroup *g = &groups[p->group];

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
			kalam_node_fail_batch(batch, KALAM_APPLY_LOST, "out of memory");
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
			kalam_node_fail_batch(batch, KALAM_APPLY_LOST, raft_strerror(rv));
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
	p->deadline = uv_now(node_loop) + kalam_leader_wait_timeout;
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
		uv_now(node_loop) < address_tried_at + 1000)
		return;
	address_tried_at = uv_now(node_loop);
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
	if (command->group < 0 || command->group >= ngroups)
		fail_proposal(p, KALAM_APPLY_BAD_COMMAND, "no Raft group %d on this node",
					  command->group);
	else
		try_propose(p);
}

/* A follower's worker forwarded a command: propose it here. */
static void
forwarded_request(uint64 conn_id, uint64 request_id, int group,
				  const char *command, size_t length)
{
	KalamProposal *p = new_proposal(group, command, length);

	if (p == NULL)
		return;					/* the follower hears nothing: in doubt */
	p->origin_conn = conn_id;
	p->origin_request = request_id;
	if (group < 0 || group >= ngroups)
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
static void
forwarded_reply(int node_id, uint64 request_id, const KalamApplyResult *result)
{
	KalamProposal *p = take_forwarded(request_id, node_id);

	if (p == NULL)
		return;
	p->result = *result;
	kalam_metrics_forward_answered(p->group, p->forwarded_us);
	if (result->status == KALAM_APPLY_OK)
		push(&awaiting_apply, p);
	else if (result->status == KALAM_APPLY_NOT_LEADER &&
			 uv_now(node_loop) < p->deadline)
		push(&retrying, p);
	else
		finish_proposal(p);
}

/*
 * The connection to a leader failed.  Commands that never left look for a
 * leader again; those sent on a connection that broke may or may not
 * commit.
 */
static void
forward_lost(int node_id, bool was_connected)
{
	KalamProposal *p;

	kalam_snapshot_peer_lost(node_id);
	while ((p = take_forwarded(0, node_id)) != NULL)
	{
		if (!was_connected && uv_now(node_loop) < p->deadline)
			push(&retrying, p);
		else if (!was_connected)
			fail_proposal(p, KALAM_APPLY_NOT_LEADER,
						  "node %d, leader of group \"%s\", cannot be reached",
						  node_id, groups[p->group].name);
		else
			fail_proposal(p, KALAM_APPLY_OUTCOME_UNKNOWN,
						  "the connection to node %d, leader of group \"%s\", broke",
						  node_id, groups[p->group].name);
	}
}

static void
retry_tick(uv_timer_t *timer)
{
}

/*
 * The log position up to which this node applied a group and wrote it:
 * libraft's, but a parked entry is not applied yet.  After a turn's
 * flush, readers see everything up to it.
 */
static uint64
applied_position(KalamGroup *g)
{
	return g->parked != NULL ? g->parked->index - 1 : raft_last_applied(&g->raft);
}

/*
 * Ask every other voter whether it follows this node in the group and
 * term, as a fence's confirmation round *round (a new request id).
 * Returns the number of voters, this node included.
 */
int
kalam_node_ask_confirm(KalamGroup *g, uint64 *round, uint64 term)
{
	int			i;

	*round = kalam_node_new_request_id();
	for (i = 0; i < kalam_peer_count(); i++)
	{
		const KalamPeer *peer = kalam_peer_at(i);

		if (peer->id != (raft_id) kalam_node_id)
			kalam_forward_ask_confirm((int) peer->id, peer->host,
									  peer->port + ngroups, *round, g->id, term);
	}
	return Max(kalam_peer_count(), 1);
}

/* A leader asks whether this node follows it in a group's term. */
static void
forward_confirm(uint64 conn_id, int node_id, uint64 request_id, int group,
				uint64 term)
{
	bool		yes = false;

	if (group >= 0 && group < ngroups)
	{
		KalamGroup *g = &groups[group];
		raft_id		leader;
		const char *address;

		raft_leader(&g->raft, &leader, &address);
		yes = raft_state(&g->raft) == RAFT_FOLLOWER &&
			g->raft.current_term == term && leader == (raft_id) node_id;
	}
	kalam_forward_answer_confirm(conn_id, request_id, group, term, yes);
}

/* A node answered a confirmation round of this leader. */
static void
forward_confirmed(int node_id, uint64 request_id, int group, uint64 term,
				  bool yes)
{
	if (group >= 0 && group < ngroups)
		kalam_fence_confirmed(&groups[group], node_id, request_id, term, yes);
}

/*
 * Commands forwarded to a leader that has not answered within
 * kalam.leader_wait_timeout: they were sent, so they may still commit.
 */
static void
forward_tick(uv_timer_t *timer)
{
	KalamProposal **pp = &forwarded;
	KalamProposal *p;
	uint64		now = uv_now(node_loop);
	int			i;

	for (i = 0; i < ngroups; i++)
		kalam_fence_tick(&groups[i]);
	kalam_snapshot_tick();

	while ((p = *pp) != NULL)
	{
		if (now >= p->reply_deadline)
		{
			*pp = p->next;
			fail_proposal(p, KALAM_APPLY_OUTCOME_UNKNOWN,
						  "node %d, leader of group \"%s\", did not answer within %d ms",
						  p->forwarded_to, groups[p->group].name,
						  kalam_leader_wait_timeout);
		}
		else
			pp = &p->next;
	}
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

	for (i = 0; i < ngroups; i++)
	{
		KalamGroup *g = &groups[i];

		if (g->push_later && g->proposals == g->push_unless_past)
			g->push_commit = true;
		g->push_later = false;
	}
}

/*
 * Log a group's change of leader as this node learns it: a new term whose
 * leader it knows, or this node standing for election.  An election while
 * nothing failed means some loop went unheard for the election timeout;
 * the log says when, beside the worker's slow-turn lines.
 */
static void
log_leadership(KalamGroup *g, const KalamGroupStatus *status)
{
	const KalamGroupStatus *was = &g->published;

	if (was->term == 0 || status->term == was->term)
	{
		if (status->leader_id == 0 || status->leader_id == was->leader_id ||
			was->term == 0)
			return;
	}
	if (raft_state(&g->raft) == RAFT_CANDIDATE && status->term != was->term)
		ereport(LOG,
				(errmsg("kalam Raft group \"%s\": this node stands for election at term %llu",
						g->name, (unsigned long long) status->term),
				 errdetail("It heard from no leader of term %llu (node %d) within kalam.election_timeout.",
						   (unsigned long long) was->term, was->leader_id)));
	else if (status->leader_id != 0)
		ereport(LOG,
				(errmsg("kalam Raft group \"%s\": node %d leads at term %llu%s",
						g->name, status->leader_id,
						(unsigned long long) status->term,
						status->is_leader ? " (this node)" : "")));
}

static void
publish_status(KalamGroup *g)
{
	KalamGroupStatus status;
	raft_id		leader;
	const char *address;

	memset(&status, 0, sizeof(status));
	raft_leader(&g->raft, &leader, &address);
	status.term = g->raft.current_term;
	status.commit_index = g->raft.commit_index;
	status.applied_index = applied_position(g);
	status.parked_entries = g->nparked;
	status.leader_id = (int) leader;
	if (address != NULL)
		strlcpy(status.leader_address, address, sizeof(status.leader_address));
	status.is_leader = (raft_state(&g->raft) == RAFT_LEADER);
	kalam_snapshot_progress(g, &status);
	log_leadership(g, &status);
	if (memcmp(&status, &g->published, sizeof(status)) != 0)
	{
		kalam_channel_publish_group(g->id, &status);
		g->published = status;
	}

	/* the meta group's leader knows which nodes answer; a few times a second */
	if (g->id == KALAM_GROUP_META &&
		uv_now(node_loop) >= g->reachable_published_at + 100)
	{
		unsigned	i;

		for (i = 0; i < g->raft.configuration.n; i++)
		{
			int			id = (int) g->raft.configuration.servers[i].id;

			if (id == kalam_node_id)
				continue;
			kalam_channel_publish_reachable(id, status.is_leader ?
											g->raft.leader_state.progress[i].recent_recv :
											id == status.leader_id);
		}
		g->reachable_published_at = uv_now(node_loop);
	}
}

/*
 * Remove the changes logged before cutoff from every data group's change
 * log (kalam.change_retention), a bounded number per call so that the loop
 * is never held long.  The purge is no log entry, so that readers do not
 * go on seeing what it removed it tells them to catch up.
 */
void
kalam_node_purge_changes(TimestampTz cutoff)
{
	bool		removed = false;
	int			i;

	for (i = 0; i < ngroups; i++)
	{
		char		errbuf[256];
		int			n = kalam_apply_purge_changes(&groups[i].applier, cutoff,
												  10000, errbuf,
												  sizeof(errbuf));

		if (n < 0)
			ereport(LOG,
					(errmsg("kalam could not purge the change log of group \"%s\": %s",
							groups[i].name, errbuf)));
		removed |= n > 0;
	}
	if (removed)
		kalam_channel_publish_log_purge();
}

/*
 * After a turn of the loop: write what the appliers staged, publish the
 * applied positions, then report the proposals that finished.
 */
void
kalam_node_finish_iteration(void)
{
	KalamStats *stats = kalam_channel_stats();
	KalamProposal *p;
	KalamProposal **pp;
	uint64		total = 0;
	uint64		rows = 0;
	uint64		failed = 0;
	uint64		applied;
	uint64		apply_us;
	int			i;

	register_client_address();
	kalam_handshake_report();

	if (kalam_debug_hold_meta_apply != meta_held)
	{
		meta_held = kalam_debug_hold_meta_apply;
		ereport(LOG,
				(errmsg(meta_held ?
						"kalam: holding back the meta group's entries on this node" :
						"kalam: applying the meta group's entries again on this node")));
	}

	/* the meta group first: the others' parked entries wait for it */
	for (i = 0; i < ngroups; i++)
		kalam_fsm_release_parked(&groups[i]);

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
	for (i = 0; i < ngroups; i++)
		propose_pending(&groups[i]);

	for (i = 0; i < ngroups; i++)
	{
		KalamGroup *g = &groups[i];
		char		errbuf[256];
		uint64		staged = g->applier.staged_index;

		/* a failure fails the applier: the worker stops (kalam_worker.c) */
		if (staged != g->applier.durable_index &&
			kalam_apply_flush(&g->applier, errbuf, sizeof(errbuf)))
			pg_atomic_fetch_add_u64(&stats->batches_written, 1);
		kalam_metrics_flushed(g->id);
		if (g->error[0] != '\0')
		{
			ereport(LOG,
					(errmsg("kalam Raft group \"%s\": %s", g->name, g->error)));
			g->error[0] = '\0';
		}
		if (g->notice[0] != '\0')
		{
			ereport(LOG,
					(errmsg("kalam Raft group \"%s\": %s", g->name, g->notice)));
			g->notice[0] = '\0';
		}
		total += g->applier.durable_index;
	}

	/*
	 * Readers catch up with storage when the applied counter moves: publish
	 * it before the groups' positions, so that whoever sees a position can
	 * read what was applied up to it.
	 */
	kalam_channel_publish_applied(total);
	for (i = 0; i < ngroups; i++)
		publish_status(&groups[i]);
	if (groups[KALAM_GROUP_META].published.applied_index != meta_index_seen)
	{
		meta_index_seen = groups[KALAM_GROUP_META].published.applied_index;
		kalam_channel_wake_jobs();
	}

	/*
	 * Forwarded commands that this node has now applied too, and fences
	 * whose read index it has reached (an index of any entry, a command's
	 * or not).
	 */
	pp = &awaiting_apply;
	while ((p = *pp) != NULL)
	{
		KalamGroup *g = &groups[p->group];

		if ((p->len == 0 ? applied_position(g) : g->applier.durable_index) >=
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
		g = (p->group >= 0 && p->group < ngroups) ? &groups[p->group] : NULL;
		finished = p->next;
		if (p->result.status == KALAM_APPLY_OK && g != NULL && p->len > 0 &&
			p->result.applied_index > g->applier.durable_index)
		{
			p->result.status = KALAM_APPLY_STORAGE_ERROR;
			strlcpy(p->result.message, "the applied entry could not be written",
					sizeof(p->result.message));
		}
		if (p->result.status == KALAM_APPLY_OK)
			rows += p->result.rows_written;
		else
			failed++;
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
	for (i = 0; i < ngroups; i++)
	{
		if (groups[i].push_commit)
			push_commit_index(&groups[i]);
		groups[i].proposed_in_turn = false;
	}

	kalam_fsm_take_apply_stats(&applied, &apply_us);
	pg_atomic_fetch_add_u64(&stats->commands_applied, applied);
	pg_atomic_fetch_add_u64(&stats->commands_failed, failed);
	pg_atomic_fetch_add_u64(&stats->rows_written, rows);
	pg_atomic_fetch_add_u64(&stats->apply_time_us, apply_us);
}

/*
 * Did a group's applier fail to write what it applied?  Then the name of
 * the first such group and the RocksDB error.
 */
bool
kalam_node_storage_failed(char *group_name, char *errbuf, size_t errlen)
{
	int			i;

	for (i = 0; i < ngroups; i++)
		if (groups[i].applier.failed)
		{
			strlcpy(group_name, groups[i].name, KALAM_GROUP_NAME_LEN);
			strlcpy(errbuf, groups[i].applier.failure, errlen);
			return true;
		}
	return false;
}

static void
group_closed(struct raft *r)
{
	KalamGroup *g = (KalamGroup *) r->data;

	kalam_transport_release(&g->transport);
	g->closed = true;
}

/* Stops the drain of kalam_node_stop: a handle that never closes */
static void
drain_deadline(uv_timer_t *timer)
{
	*(bool *) timer->data = true;
}

/* Close the groups and let the loop finish their I/O. */
void
kalam_node_stop(void)
{
	int			i;
	bool		all_closed;
	uv_timer_t	deadline;
	bool		timed_out = false;

	kalam_forward_stop();
	kalam_snapshot_stop();
	kalam_fsm_stop();
	uv_close((uv_handle_t *) &retry_timer, NULL);
	uv_close((uv_handle_t *) &push_timer, NULL);
	uv_close((uv_handle_t *) &tick_timer, NULL);
	for (i = 0; i < ngroups; i++)
	{
		if (!groups[i].started)
		{
			groups[i].closed = true;
			continue;
		}
		groups[i].raft.data = &groups[i];
		raft_close(&groups[i].raft, group_closed);
	}
	do
	{
		uv_run(node_loop, UV_RUN_ONCE);
		all_closed = true;
		for (i = 0; i < ngroups; i++)
			all_closed &= groups[i].closed;
	} while (!all_closed);

	/*
	 * libraft may still be closing the writer of a finalized open segment
	 * (see group_io_close): run the loop until nothing is left on it, and
	 * only then free libraft's I/O.  Bounded: if something never closes, the
	 * process exits with libraft's I/O allocated, which is harmless.
	 */
	uv_timer_init(node_loop, &deadline);
	deadline.data = &timed_out;
	uv_timer_start(&deadline, drain_deadline, 5000, 0);
	uv_unref((uv_handle_t *) &deadline);
	while (!timed_out && uv_loop_alive(node_loop))
		uv_run(node_loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *) &deadline, NULL);
	uv_run(node_loop, UV_RUN_NOWAIT);
	for (i = 0; i < ngroups; i++)
		if (groups[i].started && !timed_out)
			raft_uv_close(&groups[i].io);
	if (timed_out)
		elog(LOG, "kalam: the Raft log I/O did not finish closing within 5 s");

	for (i = 0; i < ngroups; i++)
	{
		kalam_fsm_drop_parked(&groups[i]);
		free(groups[i].results);
		kalam_apply_destroy(&groups[i].applier);
	}
}
