/*-------------------------------------------------------------------------
 *
 * node.c
 *	  This node's Raft groups, run by the kalam worker on its libuv loop.
 *
 * Each group (see group.h) is its own libraft instance with its own log
 * directory and port (kalam.raft_address's port plus the group number), all
 * on the worker's loop.  This file starts and stops them, answers the
 * other nodes' questions about them (does this node follow a leader, for
 * a read fence), publishes their status, and runs the end of each turn of
 * the loop: release what is parked (fsm.c), propose the turn's commands
 * (proposal.c), write what the appliers staged, publish the applied
 * positions, and only then report the outcomes (proposal.c), so a backend
 * that is told "done" can read its write.
 *
 * Everything here runs on the worker's main thread.  libraft's callbacks
 * must not raise errors: they record what went wrong in the group, and
 * kalam_node_finish_iteration logs it.
 *
 * With kalam.peers empty, every group is a one-voter cluster that listens
 * on no port (transport.c): there is no peer to hear from.
 *
 * src/cluster/node.c
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

#include "cluster/apply_metrics.h"
#include "cluster/forward.h"
#include "cluster/handshake.h"
#include "cluster/meta_watermark.h"
#include "cluster/node.h"
#include "cluster/node_internal.h"
#include "cluster/snapshot.h"
#include "cluster/transport.h"
#include "codec/group.h"
#include "kalam.h"
#include "kv/parked.h"
#include "kv/rocks.h"
#include "kv/transfer.h"

int			kalam_node_id = 1;
char	   *kalam_raft_address = NULL;
char	   *kalam_peers = NULL;
int			kalam_election_timeout = 1000;
int			kalam_leader_wait_timeout = 5000;
bool		kalam_debug_hold_meta_apply = false;
char	   *kalam_client_address = NULL;

static KalamGroup *groups = NULL;
static int	ngroups = 0;
static uv_loop_t *node_loop = NULL;
static uint64 next_request_id = 0;
static uint64 meta_index_seen = 0;	/* meta group's applied index, last turn */
static uint64 applied_total = 0;	/* the groups' applied indexes, summed */
static bool meta_held = false;	/* kalam.debug_hold_meta_apply, last turn */
static uv_timer_t tick_timer;

static void node_tick(uv_timer_t *timer);
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
								   kalam_peer_count() > 0,
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

	/* entries parked in storage by the last run are in the Raft log too */
	if (!kalam_parked_clear(db, -1, errbuf, sizeof(errbuf)))
		ereport(FATAL,
				(errcode(ERRCODE_IO_ERROR),
				 errmsg("kalam could not remove the parked entries of its last run"),
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

	kalam_proposal_start(loop);
	uv_timer_init(loop, &tick_timer);
	uv_timer_start(&tick_timer, node_tick, 100, 100);
	if (kalam_peer_count() > 0)
	{
		const KalamPeer *self = kalam_peer_find(kalam_node_id);
		static const KalamForwardCallbacks callbacks = {
			.request = kalam_proposal_forwarded_request,
			.reply = kalam_proposal_forwarded_reply,
			.lost = kalam_proposal_forward_lost,
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

/*
 * The log position up to which this node applied a group and wrote it:
 * libraft's, but a parked entry is not applied yet.  After a turn's
 * flush, readers see everything up to it.
 */
uint64
kalam_node_applied_position(KalamGroup *g)
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
 * Ten times a second: read fences and snapshot transfers that wait, and
 * commands forwarded to a leader that has not answered within
 * kalam.leader_wait_timeout (they were sent, so they may still commit).
 */
static void
node_tick(uv_timer_t *timer)
{
	int			i;

	for (i = 0; i < ngroups; i++)
		kalam_fence_tick(&groups[i]);
	kalam_snapshot_tick();
	kalam_proposal_expire_forwarded(uv_now(node_loop));
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
	bool		new_term = was->term != 0 && status->term != was->term;
	bool		new_leader = was->term != 0 && status->leader_id != 0 &&
		status->leader_id != was->leader_id;

	if (new_term && raft_state(&g->raft) == RAFT_CANDIDATE)
		ereport(LOG,
				(errmsg("kalam Raft group \"%s\": this node stands for election at term %llu",
						g->name, (unsigned long long) status->term),
				 was->leader_id != 0 ?
				 errdetail("It heard from no leader within kalam.election_timeout; the last it knew was node %d, at term %llu.",
						   was->leader_id, (unsigned long long) was->term) : 0));
	else if ((new_term || new_leader) && status->leader_id != 0)
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
	status.applied_index = kalam_node_applied_position(g);
	status.parked_entries = g->nparked;
	status.parked_on_disk = g->parked_on_disk;
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
 * The change log's purge runs on libuv's pool: under bench/scale.sh's
 * 10M-row load, its seek waited on RocksDB's database mutex 0.4-0.7 s at a
 * time (22 turns in one run), with nothing yet to purge, and held the loop
 * and its heartbeats meanwhile.  Groups installing a snapshot sit it out,
 * and a group's ingestion waits for it (snapshot.c), so that the purge's
 * deletions and stored position are never those of the rows an install
 * replaced; a new MANIFEST waits for it too (kalam_node_storage_busy).
 */
static uv_work_t purge_work;
static bool purge_running = false;
static TimestampTz purge_cutoff;

/* On a thread of libuv's pool: RocksDB only */
static void
purge_run(uv_work_t *req)
{
	int			i;

	kalam_fsm_lower_pool_priority();
	for (i = 0; i < ngroups; i++)
		if (groups[i].purging)
			groups[i].purge_removed =
				kalam_apply_purge_changes(&groups[i].applier, purge_cutoff,
										  10000, groups[i].purge_error,
										  sizeof(groups[i].purge_error));
}

static void
purge_done(uv_work_t *req, int status)
{
	bool		removed = false;
	int			i;

	purge_running = false;
	for (i = 0; i < ngroups; i++)
	{
		if (!groups[i].purging)
			continue;
		groups[i].purging = false;
		if (status != 0)
			continue;
		if (groups[i].purge_removed < 0)
			ereport(LOG,
					(errmsg("kalam could not purge the change log of group \"%s\": %s",
							groups[i].name, groups[i].purge_error)));
		removed |= groups[i].purge_removed > 0;
	}
	if (removed)
		kalam_rocks_publish_change();
}

/*
 * Remove the changes logged before cutoff from every data group's change
 * log (kalam.change_retention), a bounded number per group at a time, on
 * the pool, unless the last purge still runs.  The purge is no log entry,
 * so that readers do not go on seeing what it removed it tells them to
 * catch up.
 */
void
kalam_node_purge_changes(TimestampTz cutoff)
{
	int			i;

	if (purge_running)
		return;
	for (i = 0; i < ngroups; i++)
		groups[i].purging = groups[i].started && groups[i].install == NULL;
	purge_cutoff = cutoff;
	if (uv_queue_work(node_loop, &purge_work, purge_run, purge_done) == 0)
		purge_running = true;
	else
		for (i = 0; i < ngroups; i++)
			groups[i].purging = false;
}

/*
 * After a turn of the loop: write what the appliers staged, publish the
 * applied positions, then report the proposals that finished.
 */
void
kalam_node_finish_iteration(void)
{
	KalamStats *stats = kalam_channel_stats();
	uint64		total = 0;
	uint64		rows = 0;
	uint64		failed = 0;
	uint64		applied;
	uint64		apply_us;
	int			i;

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

	kalam_proposal_propose_turn();

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
	 * Readers catch up with storage when it changed: say so before the
	 * groups' positions are published, so that whoever sees a position can
	 * read what was applied up to it.
	 */
	if (total != applied_total)
	{
		kalam_rocks_publish_change();
		applied_total = total;
	}
	kalam_channel_publish_applied(total);
	for (i = 0; i < ngroups; i++)
		publish_status(&groups[i]);
	if (groups[KALAM_GROUP_META].published.applied_index != meta_index_seen)
	{
		meta_index_seen = groups[KALAM_GROUP_META].published.applied_index;
		kalam_channel_wake_jobs();
	}

	kalam_proposal_report_turn(&rows, &failed);

	kalam_fsm_take_apply_stats(&applied, &apply_us);
	pg_atomic_fetch_add_u64(&stats->commands_applied, applied);
	pg_atomic_fetch_add_u64(&stats->commands_failed, failed);
	pg_atomic_fetch_add_u64(&stats->rows_written, rows);
	pg_atomic_fetch_add_u64(&stats->apply_time_us, apply_us);
}

/*
 * Does anything but the loop's own calls hold the database: a split
 * applied or the change log purged on the pool, a transfer served or
 * installed?  The worker opens its storage again only when nothing does.
 */
bool
kalam_node_storage_busy(void)
{
	return kalam_fsm_job_running() || kalam_snapshot_transfer_open() ||
		purge_running;
}

/* The worker opened its storage again: the groups apply to db now. */
void
kalam_node_set_storage(rocksdb_t *db)
{
	for (int i = 0; i < ngroups; i++)
		groups[i].applier.db = db;
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
	kalam_proposal_stop();
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
