/*-------------------------------------------------------------------------
 *
 * snapshot.c
 *	  Raft snapshots of a group as small descriptors, and the transfers
 *	  that install one on a node that needs the group's rows.
 *
 * libraft 0.15 builds a snapshot in one buffer on the loop thread, keeps
 * it whole on disk and sends it whole to a follower.  Serialising every
 * row of a group that way cost more as the group grew: a 1.5M-row shard
 * (issue 12) put 1.4-1.8 GB in every node's worker, stalled the loop
 * through 24-39 elections per group and brought 8 clients from 2,983 to
 * 244 tps.  So the snapshot that libraft sees is a 24-byte descriptor
 * (codec/snapshot.h): the group and its applied index, taken in no time
 * after RocksDB's WAL is synced (fsm.c).  The rows stay where they are.
 *
 * A node whose log is behind a descriptor libraft restores (sent by the
 * leader, or its own after a crash that lost the rows) installs the group
 * from another node, out of band, as TiKV sends SST files beside its Raft
 * messages:
 *   - It asks a follower of the group first, then the leader, in turn
 *     (the leader's loop commits every write of the group), for the group
 *     over the forwarding connection, which is authenticated
 *     (handshake.c).  The source opens a RocksDB snapshot of the group, at
 *     least at the descriptor's index, and answers each fetch with the
 *     next chunk of at most kalam.snapshot_chunk_size, read on libuv's
 *     thread pool rather than on its loop.
 *   - Each chunk is checked (codec/snapshot.c: sizes, every key the
 *     group's, strictly ascending) on the loop, then written into SST files
 *     on libuv's thread pool (kv/transfer.c) while the next chunk is
 *     fetched: at most two chunks are in memory, whatever the group's size.
 *   - Once the last chunk is written and the meta group here has applied
 *     the DDL the rows need, the files replace the group's rows (a synced
 *     range deletion, then one atomic ingestion), on the pool too.  A node
 *     killed at any point finds, at restart, either its old rows, or an
 *     empty group at index 0, or the new rows: the descriptor that libraft
 *     reloads makes it fetch again in the first two cases.
 * The installer paces its fetches to kalam.snapshot_transfer_rate (32 MB/s
 * by default, CockroachDB's default rate for snapshots): on 2 cores shared
 * by three nodes, an unpaced transfer of a 10M-row shard (5.2 GB at 84
 * MB/s) raised the leader's p50 2.2x and its p99 2.1x while it ran.
 * Meanwhile the group's committed entries park behind the install (fsm.c)
 * and apply after it, those the transfer already holds skipped.  Failures
 * (a source that is behind, a lost connection, a bad chunk, a timeout)
 * start the transfer over after RETRY_MS.  kalam.groups shows the phase,
 * the source and the rows and bytes received; the log says when it ends.
 *
 * A source serves at most MAX_SOURCES transfers at once, each for one
 * node and group, and forgets one left idle for SOURCE_IDLE_MS.
 *
 * Snapshots are taken every kalam.snapshot_threshold entries, or sooner
 * when the entries since the last one reach kalam.snapshot_log_size
 * (libraft counts only entries; the threshold is lowered for the one
 * snapshot).  libraft keeps entries after a snapshot in memory and on disk
 * (its trailing count): the count is set at each snapshot so that they
 * hold about half of kalam.snapshot_log_size, within [TRAILING_MIN, twice
 * the threshold].  The floor was 64 at first: with the 20,000-row entries
 * of bench/scale.sh's load (about 5 MB each) that kept some 300 MB in every
 * worker, and its RSS stayed there.
 *
 * Everything here runs on the worker's loop thread, in libuv and libraft
 * callbacks: no ereport, no palloc; messages go to the group's error or
 * notice text, which node.c logs after the turn.  The pool's functions
 * call kv/transfer.c only.
 *
 * src/cluster/snapshot.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <raft.h>

#include "utils/guc.h"

#include "cluster/forward.h"
#include "cluster/meta_watermark.h"
#include "cluster/node.h"
#include "cluster/node_internal.h"
#include "cluster/snapshot.h"
#include "codec/frame.h"
#include "codec/snapshot.h"
#include "kalam.h"
#include "kv/transfer.h"

int			kalam_snapshot_threshold = 8192;
int			kalam_snapshot_log_size = 65536;	/* kB */
int			kalam_snapshot_chunk_size = 1024;	/* kB */
int			kalam_snapshot_transfer_rate = 32768;	/* kB per second */
bool		kalam_debug_pause_install = false;

#define MAX_SOURCES			4
#define SOURCE_IDLE_MS		30000
#define FETCH_TIMEOUT_MS	30000
#define RETRY_MS			500
#define TRAILING_MIN		8

/*
 * A transfer this node serves.  Each chunk is read on libuv's thread pool,
 * one at a time; a source closed meanwhile (id 0, busy) is released when
 * its read returns.
 */
typedef struct Source
{
	uint64		id;				/* 0 and not busy: the slot is free */
	int			group;
	int			peer_id;
	uint64		used_at;		/* loop time (ms) */
	KalamTransferSource view;
	/* the read on the pool, and where its chunk goes */
	uv_work_t	work;
	bool		busy;
	uint64		conn_id;
	uint64		request_id;
	uint64		asked_session;	/* the session the fetch named */
	size_t		max_bytes;
	KalamChunkWriter writer;
	bool		done;
	bool		read_ok;
	char		errbuf[256];
} Source;

typedef enum InstallPhase
{
	PHASE_FETCHING = 1,
	PHASE_WAITING_META,
	PHASE_INGESTING
} InstallPhase;

/* An install of a group on this node */
typedef struct KalamInstall
{
	KalamGroup *g;
	uint64		target;			/* the descriptor's applied index */
	InstallPhase phase;
	int			source;			/* the node asked; 0 between attempts */
	int			next_peer;		/* the next follower to ask */
	int			attempts;		/* begun so far */
	uint64		session;		/* the source's id of the transfer, once known */
	uint64		source_index;	/* the applied index the source sends */
	uint64		required_meta_index;	/* of the rows received */
	uint64		request_id;		/* the fetch awaited; 0 if none */
	uint64		sent_at;		/* loop time (ms) it was sent */
	uint64		retry_at;		/* loop time (ms) of the next attempt */
	bool		last_received;
	char	   *last_key;		/* the last key received (malloc'd) */
	size_t		last_keylen;
	KalamTransferSink sink;
	bool		sink_open;
	uint64		chunks;
	uint64		rows;
	uint64		bytes;
	uint64		started_at;		/* loop time (ms) of the attempt's start */
	uint64		ingest_at;		/* loop time (ms) its ingestion began */
	/* the thread pool's work: one at a time */
	uv_work_t	work;
	bool		busy;
	bool		ingest;			/* the work ingests; else it writes a chunk */
	char	   *chunk;			/* the chunk it writes */
	size_t		chunk_len;
	bool		chunk_last;
	char	   *queued;			/* a chunk received while it runs */
	size_t		queued_len;
	bool		queued_last;
	bool		work_ok;
	char		work_error[256];
	bool		restart;		/* start over once the work returns */
	bool		abandoned;		/* the worker stops: end once it returns */
} KalamInstall;

static uv_loop_t *snapshot_loop;
static Source sources[MAX_SOURCES];

/* asks for the chunks that kalam.snapshot_transfer_rate held back */
static uv_timer_t pace_timer;
static uint64 pace_due;			/* loop time (ms) it fires at; 0: idle */

static void dispatch(KalamInstall *inst);

void
kalam_snapshot_define_gucs(void)
{
	DefineCustomIntVariable("kalam.snapshot_threshold",
							"Raft log entries of a group between two snapshots.",
							"A snapshot is a descriptor of the group's applied index: taking one costs no more as the group grows.",
							&kalam_snapshot_threshold,
							8192,
							4,
							INT_MAX / 2,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("kalam.snapshot_log_size",
							"Bytes of Raft log entries of a group after which a snapshot is taken, whatever their count.",
							"Bounds each group's log on disk and in the kalam worker's memory.",
							&kalam_snapshot_log_size,
							65536,
							64,
							INT_MAX / 2,
							PGC_SIGHUP,
							GUC_UNIT_KB,
							NULL, NULL, NULL);
	DefineCustomIntVariable("kalam.snapshot_chunk_size",
							"Bytes of rows in each chunk of a snapshot transfer between nodes.",
							"A node that installs a snapshot holds about two chunks in memory.",
							&kalam_snapshot_chunk_size,
							1024,
							1,
							1024 * 1024,
							PGC_SIGHUP,
							GUC_UNIT_KB,
							NULL, NULL, NULL);
	DefineCustomIntVariable("kalam.snapshot_transfer_rate",
							"Bytes per second at most that a snapshot transfer brings to this node; 0 for no limit.",
							"The transfer's reading, sending and writing take CPU and disk from the nodes that keep committing.",
							&kalam_snapshot_transfer_rate,
							32768,
							0,
							INT_MAX / 1024,
							PGC_SIGHUP,
							GUC_UNIT_KB,
							NULL, NULL, NULL);
	DefineCustomBoolVariable("kalam.debug_pause_install",
							 "Holds this node's snapshot installs after the chunk being fetched.",
							 "For tests that stop a node in the middle of an install; honoured only with kalam.debug_enable_hooks.",
							 &kalam_debug_pause_install,
							 false,
							 PGC_SIGHUP,
							 GUC_NOT_IN_SAMPLE,
							 NULL, NULL, NULL);
}

/* Does kalam.debug_pause_install hold installs? */
static bool
install_paused(void)
{
	return kalam_debug_enable_hooks && kalam_debug_pause_install;
}

void
kalam_snapshot_start(uv_loop_t *loop)
{
	snapshot_loop = loop;
	uv_timer_init(loop, &pace_timer);
	pace_due = 0;
}

/*
 * Count an applied entry of the group's log; once the entries since the
 * last snapshot reach kalam.snapshot_log_size, libraft takes one after
 * this entry.
 */
void
kalam_snapshot_note_entry(KalamGroup *g, size_t len)
{
	g->log_bytes += len;
	g->log_entries++;
	if (!g->snapshot_by_size &&
		g->log_bytes >= (uint64) kalam_snapshot_log_size * 1024)
	{
		g->snapshot_by_size = true;
		raft_set_snapshot_threshold(&g->raft, 1);
	}
}

/*
 * libraft takes a snapshot: count afresh, and keep about half of
 * kalam.snapshot_log_size of entries behind it.
 */
void
kalam_snapshot_taken(KalamGroup *g)
{
	uint64		keep = (uint64) kalam_snapshot_log_size * 1024 / 2;
	uint64		trailing = (uint64) kalam_snapshot_threshold * 2;

	if (g->log_entries > 0)
		trailing = Min(trailing, keep / Max(g->log_bytes / g->log_entries, 1));
	raft_set_snapshot_trailing(&g->raft, (unsigned) Max(trailing, TRAILING_MIN));
	if (g->snapshot_by_size)
		raft_set_snapshot_threshold(&g->raft, kalam_snapshot_threshold);
	g->snapshot_by_size = false;
	g->log_bytes = 0;
	g->log_entries = 0;
}

/* The group's install, as kalam.groups shows it */
void
kalam_snapshot_progress(KalamGroup *g, KalamGroupStatus *status)
{
	KalamInstall *inst = g->install;

	if (inst == NULL)
		return;
	status->install_phase = (int) inst->phase;
	status->install_source = inst->source;
	status->install_rows = inst->rows;
	status->install_bytes = inst->bytes;
}

/* End a transfer served; one whose read runs ends when it returns */
static void
close_source(Source *s)
{
	s->id = 0;
	if (s->busy)
		return;
	kalam_chunk_abandon(&s->writer);
	kalam_transfer_source_close(&s->view);
}

/*
 * Serving: a node asks for the next chunk of a group.  Session 0 opens a
 * transfer of the group as applied here, if that is at least index.
 */
static Source *
open_source(KalamGroup *g, int peer_id, char *errbuf, size_t errlen)
{
	Source	   *s = NULL;
	int			i;

	for (i = 0; i < MAX_SOURCES; i++)
	{
		/* a node that starts over needs its old transfer no more */
		if (sources[i].id != 0 && sources[i].peer_id == peer_id &&
			sources[i].group == g->id)
			close_source(&sources[i]);
		if (sources[i].id == 0 && !sources[i].busy && s == NULL)
			s = &sources[i];
	}
	if (s == NULL)
	{
		strlcpy(errbuf, "this node serves as many snapshot transfers as it may", errlen);
		return NULL;
	}
	if (!kalam_transfer_source_open(&s->view, &g->applier, kalam_watermark_of,
									errbuf, errlen))
	{
		close_source(s);
		return NULL;
	}
	s->id = kalam_node_new_request_id();
	s->group = g->id;
	s->peer_id = peer_id;
	return s;
}

static void
send_refusal(uint64 conn_id, uint64 request_id, uint64 session,
			 uint64 applied_index, uint32 flags)
{
	KalamChunkWriter writer;
	KalamChunkHeader header;

	if (!kalam_chunk_begin(&writer, KALAM_FRAME_HEADER, 0))
		return;
	memset(&header, 0, sizeof(header));
	header.session = session;
	header.applied_index = applied_index;
	header.flags = flags;
	kalam_chunk_finish(&writer, &header);
	kalam_frame_write_chunk_header(writer.data, request_id,
								   writer.used - KALAM_FRAME_HEADER);
	kalam_forward_send(conn_id, writer.data, writer.used);
}

/* A read failed: say why, end the transfer and refuse the fetch */
static void
serve_failed(Source *s, KalamGroup *g)
{
	snprintf(g->error, sizeof(g->error),
			 "could not read the group for node %d's snapshot transfer: %s",
			 s->peer_id, s->errbuf);
	send_refusal(s->conn_id, s->request_id, s->asked_session, 0,
				 KALAM_CHUNK_REFUSED);
	close_source(s);
}

/*
 * On the pool: the next chunk of the view.  A RocksDB snapshot's iterator
 * may be used by any one thread at a time; the watermarks it reads are
 * atomics in shared memory.  On the loop, a 10M-row transfer's 5,066 reads
 * held the loop of the follower that the leader needed for its majority;
 * with them here (and the files ingested into the last level,
 * kv/transfer.c) the leader's p99 while a node caught up went from
 * 3.6x to 2.1x that of the run (bench/scale.sh).
 */
static void
source_read(uv_work_t *req)
{
	Source	   *s = (Source *) req->data;

	kalam_fsm_lower_pool_priority();
	s->errbuf[0] = '\0';
	s->read_ok = kalam_transfer_source_read(&s->view, &s->writer, s->max_bytes,
											&s->done, s->errbuf,
											sizeof(s->errbuf));
}

/* Back on the loop: send the chunk read */
static void
source_read_done(uv_work_t *req, int status)
{
	Source	   *s = (Source *) req->data;
	KalamGroup *g = kalam_node_group(s->group);
	KalamChunkHeader header;

	s->busy = false;
	if (s->id == 0)
	{
		close_source(s);		/* closed while it read */
		return;
	}
	if (status != 0 || !s->read_ok)
	{
		if (status != 0)
			strlcpy(s->errbuf, "the thread pool did not run the work",
					sizeof(s->errbuf));
		serve_failed(s, g);
		return;
	}
	header.session = s->id;
	header.applied_index = s->view.applied_index;
	header.required_meta_index = s->view.required_meta_index;
	header.flags = s->done ? KALAM_CHUNK_LAST : 0;
	kalam_chunk_finish(&s->writer, &header);
	kalam_frame_write_chunk_header(s->writer.data, s->request_id,
								   s->writer.used - KALAM_FRAME_HEADER);
	kalam_forward_send(s->conn_id, s->writer.data, s->writer.used);
	memset(&s->writer, 0, sizeof(s->writer));
	s->used_at = uv_now(snapshot_loop);
	if (s->done)
		close_source(s);
}

void
kalam_snapshot_serve(uint64 conn_id, int peer_id, uint64 request_id,
					 int group, uint64 session, uint64 index)
{
	KalamGroup *g = kalam_node_group(group);
	Source	   *s = NULL;
	char		errbuf[256];
	int			i;

	if (g == NULL)
	{
		send_refusal(conn_id, request_id, session, 0, KALAM_CHUNK_REFUSED);
		return;
	}
	if (session == 0)
	{
		/*
		 * What this node applied, parked entries excluded, is the view; not
		 * while a split's write may land in it (fsm.c)
		 */
		if (g->install != NULL || g->job_running ||
			g->applier.staged_index < index)
		{
			send_refusal(conn_id, request_id, 0, g->applier.staged_index,
						 KALAM_CHUNK_BEHIND);
			return;
		}
		if ((s = open_source(g, peer_id, errbuf, sizeof(errbuf))) == NULL)
		{
			snprintf(g->error, sizeof(g->error),
					 "could not serve a snapshot transfer to node %d: %s",
					 peer_id, errbuf);
			send_refusal(conn_id, request_id, 0, 0, KALAM_CHUNK_REFUSED);
			return;
		}
	}
	else
		for (i = 0; i < MAX_SOURCES; i++)
			if (sources[i].id == session && sources[i].peer_id == peer_id &&
				sources[i].group == group)
				s = &sources[i];
	if (s == NULL)
	{
		send_refusal(conn_id, request_id, session, 0, KALAM_CHUNK_REFUSED);
		return;
	}

	if (s->busy)
	{
		/* one fetch at a time: this one came before the last was answered */
		send_refusal(conn_id, request_id, session, 0, KALAM_CHUNK_REFUSED);
		return;
	}
	s->used_at = uv_now(snapshot_loop);
	s->conn_id = conn_id;
	s->request_id = request_id;
	s->asked_session = session;
	s->max_bytes = (size_t) kalam_snapshot_chunk_size * 1024;
	if (!kalam_chunk_begin(&s->writer, KALAM_FRAME_HEADER, s->max_bytes + 4096))
	{
		strlcpy(s->errbuf, "out of memory", sizeof(s->errbuf));
		serve_failed(s, g);
		return;
	}
	s->busy = true;
	s->work.data = s;
	if (uv_queue_work(snapshot_loop, &s->work, source_read, source_read_done) != 0)
	{
		s->busy = false;
		strlcpy(s->errbuf, "the thread pool refused the work", sizeof(s->errbuf));
		serve_failed(s, g);
	}
}

/* Installing */

/* Drop what an attempt holds; the work, if running, keeps its chunk */
static void
reset_attempt(KalamInstall *inst)
{
	if (inst->sink_open)
		kalam_transfer_sink_end(&inst->sink);
	inst->sink_open = false;
	free(inst->queued);
	inst->queued = NULL;
	free(inst->last_key);
	inst->last_key = NULL;
	inst->last_keylen = 0;
	inst->phase = PHASE_FETCHING;
	inst->source = 0;
	inst->session = 0;
	inst->source_index = 0;
	inst->required_meta_index = 0;
	inst->request_id = 0;
	inst->last_received = false;
	inst->chunks = 0;
	inst->rows = 0;
	inst->bytes = 0;
}

/* The attempt failed: say why (unless it is routine), and try again later */
static void
fail_attempt(KalamInstall *inst, const char *why)
{
	if (why != NULL)
		snprintf(inst->g->error, sizeof(inst->g->error),
				 "snapshot transfer from node %d failed, trying again: %s",
				 inst->source, why);
	inst->retry_at = uv_now(snapshot_loop) + RETRY_MS;
	if (inst->busy)
	{
		inst->restart = true;
		inst->request_id = 0;
		return;
	}
	reset_attempt(inst);
}

static void
send_fetch(KalamInstall *inst)
{
	const KalamPeer *peer = kalam_peer_find(inst->source);

	if (peer == NULL)
	{
		fail_attempt(inst, "the node is not in kalam.peers");
		return;
	}
	inst->request_id = kalam_node_new_request_id();
	inst->sent_at = uv_now(snapshot_loop);
	kalam_forward_fetch(inst->source, peer->host,
						peer->port + kalam_group_count(), inst->request_id,
						inst->g->id, inst->session, inst->target);
}

static void pace_fire(uv_timer_t *timer);

/*
 * Ask for the next chunk if there is room for it (one chunk written on the
 * pool, one awaited) and kalam.snapshot_transfer_rate allows it by now;
 * if the rate does not yet, the pace timer asks when it does.
 */
static void
fetch_if_due(KalamInstall *inst)
{
	uint64		now = uv_now(snapshot_loop);
	uint64		due = inst->started_at;

	if (inst->phase != PHASE_FETCHING || inst->source == 0 ||
		inst->request_id != 0 || inst->queued != NULL ||
		inst->last_received || inst->abandoned || install_paused())
		return;
	if (kalam_snapshot_transfer_rate > 0)
		due += inst->bytes * 1000 / ((uint64) kalam_snapshot_transfer_rate * 1024);
	if (due <= now)
	{
		send_fetch(inst);
		return;
	}
	if (pace_due == 0 || due < pace_due)
	{
		pace_due = due;
		uv_timer_start(&pace_timer, pace_fire, due - now, 0);
	}
}

static void
pace_fire(uv_timer_t *timer)
{
	int			i;

	pace_due = 0;
	for (i = 0; i < kalam_group_count(); i++)
		if (kalam_node_group(i)->install != NULL)
			fetch_if_due(kalam_node_group(i)->install);
}

/* Begin an attempt: ask the leader, or the next other node */
static void
start_attempt(KalamInstall *inst)
{
	KalamGroup *g = inst->g;
	raft_id		leader;
	const char *address;
	char		errbuf[256];
	int			n = kalam_peer_count();
	int			i;

	raft_leader(&g->raft, &leader, &address);
	inst->source = 0;

	/*
	 * A source reads the group on its worker's loop, and the leader's loop
	 * commits every write of the group: every other attempt asks a
	 * follower, the others the leader (a follower may be behind).
	 */
	for (i = 0; inst->attempts % 2 == 0 && inst->source == 0 && i < n; i++)
	{
		const KalamPeer *peer = kalam_peer_at(inst->next_peer++ % n);

		if (peer->id != (raft_id) kalam_node_id && peer->id != leader)
			inst->source = (int) peer->id;
	}
	inst->attempts++;
	if (inst->source == 0 && leader != 0 && leader != (raft_id) kalam_node_id)
		inst->source = (int) leader;
	for (i = 0; inst->source == 0 && i < n; i++)
	{
		const KalamPeer *peer = kalam_peer_at(inst->next_peer++ % n);

		if (peer->id != (raft_id) kalam_node_id)
			inst->source = (int) peer->id;
	}
	if (inst->source == 0)
	{
		inst->retry_at = uv_now(snapshot_loop) + RETRY_MS;
		return;
	}
	if (!kalam_transfer_sink_begin(&inst->sink, g->install_dir, errbuf,
								   sizeof(errbuf)))
	{
		kalam_transfer_sink_end(&inst->sink);
		fail_attempt(inst, errbuf);
		return;
	}
	inst->sink_open = true;
	inst->started_at = uv_now(snapshot_loop);
	send_fetch(inst);
}

/*
 * libraft restored a descriptor of index target that this node's rows are
 * behind: install the group from another node (the caller parked its
 * entries).  An install already running starts over for the new target.
 */
bool
kalam_snapshot_install(KalamGroup *g, uint64 target)
{
	KalamInstall *inst = g->install;

	if (inst == NULL)
	{
		if ((inst = calloc(1, sizeof(KalamInstall))) == NULL)
			return false;
		inst->g = g;
		inst->work.data = inst;
		inst->phase = PHASE_FETCHING;
		g->install = inst;
	}
	else
		fail_attempt(inst, NULL);
	inst->target = target;
	inst->retry_at = 0;
	return true;
}

/* The install is over: the group's parked entries may go */
static void
end_install(KalamInstall *inst)
{
	inst->g->install = NULL;
	reset_attempt(inst);
	free(inst);
}

/* On the pool: write a chunk, or ingest the files */
static void
work_run(uv_work_t *req)
{
	KalamInstall *inst = (KalamInstall *) req->data;

	kalam_fsm_lower_pool_priority();
	inst->work_error[0] = '\0';
	if (inst->ingest)
		inst->work_ok = kalam_transfer_sink_ingest(&inst->sink, inst->g->applier.db,
												   inst->g->id, inst->work_error,
												   sizeof(inst->work_error));
	else
		inst->work_ok =
			kalam_transfer_sink_add(&inst->sink, inst->chunk, inst->chunk_len,
									inst->work_error, sizeof(inst->work_error)) &&
			(!inst->chunk_last ||
			 kalam_transfer_sink_finish(&inst->sink, inst->work_error,
										sizeof(inst->work_error)));
}

/* The ingestion is done: read the group again */
static void
installed(KalamInstall *inst)
{
	KalamGroup *g = inst->g;
	char		errbuf[256];

	if (!kalam_apply_reload(&g->applier, errbuf, sizeof(errbuf)) ||
		(g->id == KALAM_GROUP_META &&
		 !kalam_watermark_load(g->applier.db, errbuf, sizeof(errbuf))))
	{
		fail_attempt(inst, errbuf);
		return;
	}
	if (g->applier.durable_index < inst->target)
	{
		snprintf(errbuf, sizeof(errbuf),
				 "the rows installed are at index " UINT64_FORMAT ", not " UINT64_FORMAT,
				 g->applier.durable_index, inst->target);
		fail_attempt(inst, errbuf);
		return;
	}
	snprintf(g->notice, sizeof(g->notice),
			 "installed a snapshot from node %d at index " UINT64_FORMAT
			 ": " UINT64_FORMAT " rows, " UINT64_FORMAT " kB in " UINT64_FORMAT
			 " chunks and %d files, in " UINT64_FORMAT " ms (" UINT64_FORMAT
			 " ms of them replacing the rows)",
			 inst->source, g->applier.durable_index, inst->rows,
			 inst->bytes / 1024, inst->chunks, inst->sink.nfiles,
			 uv_now(snapshot_loop) - inst->started_at,
			 uv_now(snapshot_loop) - inst->ingest_at);
	end_install(inst);
}

/*
 * Ingest once the meta group here has applied what the rows need, and
 * neither a split (fsm.c) nor the change log's purge (node.c) writes to the
 * group from the pool
 */
static void
try_ingest(KalamInstall *inst)
{
	if (inst->phase != PHASE_WAITING_META || inst->busy ||
		inst->g->job_running || inst->g->purging ||
		!kalam_fsm_may_apply(inst->g, inst->required_meta_index))
		return;
	inst->phase = PHASE_INGESTING;
	inst->ingest_at = uv_now(snapshot_loop);
	inst->ingest = true;
	dispatch(inst);
}

static void
work_done(uv_work_t *req, int status)
{
	KalamInstall *inst = (KalamInstall *) req->data;

	inst->busy = false;
	free(inst->chunk);
	inst->chunk = NULL;
	if (inst->abandoned)
	{
		end_install(inst);
		return;
	}
	if (inst->restart)
	{
		inst->restart = false;
		reset_attempt(inst);
		return;
	}
	if (status != 0 || !inst->work_ok)
	{
		fail_attempt(inst, inst->work_error[0] ? inst->work_error :
					 "the thread pool did not run the work");
		return;
	}
	if (inst->ingest)
	{
		installed(inst);
		return;
	}
	if (inst->queued != NULL)
	{
		inst->chunk = inst->queued;
		inst->chunk_len = inst->queued_len;
		inst->chunk_last = inst->queued_last;
		inst->queued = NULL;
		dispatch(inst);
		fetch_if_due(inst);
		return;
	}
	if (inst->last_received)
	{
		inst->phase = PHASE_WAITING_META;
		try_ingest(inst);
	}
}

static void
dispatch(KalamInstall *inst)
{
	inst->busy = true;
	if (uv_queue_work(snapshot_loop, &inst->work, work_run, work_done) != 0)
	{
		inst->busy = false;
		free(inst->chunk);
		inst->chunk = NULL;
		fail_attempt(inst, "the thread pool refused the work");
	}
}

/*
 * A chunk arrived from node_id, the answer to a fetch of request_id: check
 * it, hand it to the pool (or queue it behind the chunk the pool writes),
 * and fetch the next.
 */
void
kalam_snapshot_chunk(int node_id, uint64 request_id, const char *data,
					 size_t len)
{
	KalamInstall *inst = NULL;
	KalamChunkHeader header;
	const char *last_key;
	size_t		last_keylen;
	const char *error;
	char	   *copy;
	int			i;

	for (i = 0; i < kalam_group_count() && inst == NULL; i++)
	{
		KalamGroup *g = kalam_node_group(i);

		if (g->install != NULL && g->install->request_id == request_id &&
			g->install->source == node_id)
			inst = g->install;
	}
	if (inst == NULL)
		return;					/* the answer to an attempt given up */
	inst->request_id = 0;
	if (!kalam_chunk_check(data, len, inst->g->id, inst->last_key,
						   inst->last_keylen, &header, &last_key, &last_keylen,
						   &error))
	{
		fail_attempt(inst, error);
		return;
	}
	if ((header.flags & (KALAM_CHUNK_BEHIND | KALAM_CHUNK_REFUSED)) != 0)
	{
		/* routine while the source catches up or is busy: ask again */
		fail_attempt(inst, NULL);
		return;
	}
	if ((inst->session != 0 && (header.session != inst->session ||
								header.applied_index != inst->source_index)) ||
		header.session == 0 || header.applied_index < inst->target)
	{
		fail_attempt(inst, "the chunk does not belong to the transfer");
		return;
	}
	/* a chunk with rows has its own last key, inside data */
	if (last_key != inst->last_key)
	{
		char	   *key = realloc(inst->last_key, last_keylen);

		if (key == NULL)
		{
			fail_attempt(inst, "out of memory");
			return;
		}
		memcpy(key, last_key, last_keylen);
		inst->last_key = key;
		inst->last_keylen = last_keylen;
	}
	if ((copy = malloc(len)) == NULL)
	{
		fail_attempt(inst, "out of memory");
		return;
	}
	memcpy(copy, data, len);
	inst->session = header.session;
	inst->source_index = header.applied_index;
	inst->required_meta_index = header.required_meta_index;
	inst->last_received = (header.flags & KALAM_CHUNK_LAST) != 0;
	inst->chunks++;
	inst->rows += header.count;
	inst->bytes += len;
	if (inst->busy)
	{
		inst->queued = copy;
		inst->queued_len = len;
		inst->queued_last = inst->last_received;
		return;
	}
	inst->chunk = copy;
	inst->chunk_len = len;
	inst->chunk_last = inst->last_received;
	inst->ingest = false;
	dispatch(inst);
	fetch_if_due(inst);
}

/* The connection to a node broke: a fetch awaited from it is lost */
void
kalam_snapshot_peer_lost(int node_id)
{
	int			i;

	for (i = 0; i < kalam_group_count(); i++)
	{
		KalamInstall *inst = kalam_node_group(i)->install;

		if (inst != NULL && inst->source == node_id && inst->request_id != 0)
			fail_attempt(inst, "the connection broke");
	}
}

/* A few times a second: attempts to begin, fetches that time out, idle sources */
void
kalam_snapshot_tick(void)
{
	uint64		now = uv_now(snapshot_loop);
	int			i;

	for (i = 0; i < kalam_group_count(); i++)
	{
		KalamInstall *inst = kalam_node_group(i)->install;

		if (inst == NULL || inst->busy)
			continue;
		if (inst->phase == PHASE_FETCHING && inst->source == 0 &&
			now >= inst->retry_at)
			start_attempt(inst);
		else if (inst->phase == PHASE_FETCHING && inst->source != 0 &&
				 inst->request_id == 0 && inst->queued == NULL &&
				 !inst->last_received)
			fetch_if_due(inst); /* kalam.debug_pause_install held it */
		else if (inst->request_id != 0 && now >= inst->sent_at + FETCH_TIMEOUT_MS)
			fail_attempt(inst, "the source did not answer in time");
		else
			try_ingest(inst);
	}
	for (i = 0; i < MAX_SOURCES; i++)
		if (sources[i].id != 0 && !sources[i].busy &&
			now >= sources[i].used_at + SOURCE_IDLE_MS)
			close_source(&sources[i]);
}

/*
 * Does a transfer hold the database: one served (a snapshot of it, read on
 * the pool) or installed?
 */
bool
kalam_snapshot_transfer_open(void)
{
	int			i;

	for (i = 0; i < MAX_SOURCES; i++)
		if (sources[i].id != 0 || sources[i].busy)
			return true;
	for (i = 0; i < kalam_group_count(); i++)
		if (kalam_node_group(i)->install != NULL)
			return true;
	return false;
}

/* The worker stops: end every transfer, waiting for the pool's work */
void
kalam_snapshot_stop(void)
{
	bool		running;
	int			i;

	for (i = 0; i < MAX_SOURCES; i++)
		if (sources[i].id != 0)
			close_source(&sources[i]);
	for (i = 0; i < kalam_group_count(); i++)
	{
		KalamInstall *inst = kalam_node_group(i)->install;

		if (inst != NULL && inst->busy)
			inst->abandoned = true;
		else if (inst != NULL)
			end_install(inst);
	}
	do
	{
		running = false;
		for (i = 0; i < kalam_group_count(); i++)
			running |= kalam_node_group(i)->install != NULL;
		for (i = 0; i < MAX_SOURCES; i++)
			running |= sources[i].busy;
		if (running)
			uv_run(snapshot_loop, UV_RUN_ONCE);
	} while (running);
	uv_close((uv_handle_t *) &pace_timer, NULL);
}
