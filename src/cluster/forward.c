/*-------------------------------------------------------------------------
 *
 * forward.c
 *	  Forwarding of commands from a follower's worker to the leader's.
 *
 * Each node's worker listens on its forwarding port (kalam.raft_address's
 * port plus the number of groups).  A follower sends a command it cannot
 * propose to the group leader's worker; the leader proposes it and answers
 * with the outcome of the apply, which the follower hands to its backend
 * once it has applied the entry itself.
 *
 * Every connection authenticates first (handshake.c): nothing is read
 * from a peer that has not proved it is a node of kalam.peers holding the
 * cluster's secret.  Then frames (codec/frame.c writes and checks them):
 * requests carry a group and a command, replies an outcome; fetches and
 * chunks carry snapshot transfers (snapshot.c).  Requests, questions and
 * fetches are taken only on connections a peer opened, their answers only
 * on those this node opened, and a reply only for a request sent to that node (proposal.c matches
 * the pair; request ids start at random each start, so a reply meant for
 * an earlier incarnation matches nothing).  An answer goes back on the
 * connection its request came on, found by an id never reused, so a peer
 * that reconnects into the same slot never receives another's answer.  A
 * frame that breaks these rules closes the connection.  Nodes of a cluster share an architecture.
 *
 * The listener never stops accepting: when every slot is taken, the
 * oldest connection still authenticating is dropped for the new one, or
 * the new one is closed.
 *
 * Everything runs in libuv callbacks on the worker's main thread: no
 * PostgreSQL function is called here and memory comes from malloc.
 *
 * src/cluster/forward.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "cluster/forward.h"
#include "cluster/handshake.h"
#include "codec/frame.h"

#define MAX_CONNS		64
#define READ_CHUNK		65536

typedef struct PendingFrame
{
	char	   *data;
	size_t		len;
	struct PendingFrame *next;
} PendingFrame;

typedef struct ForwardConn
{
	uv_tcp_t	tcp;
	uv_connect_t connect;
	int			slot;			/* index in conns */
	int			node_id;		/* outgoing: the peer; incoming: 0 */
	int			peer_id;		/* incoming: the peer, once authenticated */
	uint64		id;				/* unique for the worker's life: never reused */
	KalamHandshake *hs;			/* while authenticating */
	bool		connected;		/* authenticated: frames may flow */
	bool		closing;
	char	   *rbuf;
	size_t		rlen;
	size_t		rcap;
	PendingFrame *pending;		/* frames waiting for the connection */
} ForwardConn;

static uv_loop_t *fwd_loop = NULL;
static uv_tcp_t listener;
static bool listening = false;
static ForwardConn *conns[MAX_CONNS];
static uint64 last_conn_id = 0;
static KalamForwardCallbacks cbs;

static void conn_close(ForwardConn *c);

/*
 * A free slot; when there is none, that of the oldest incoming connection
 * still authenticating, which is closed.  -1 if every slot is in use by
 * authenticated connections or outgoing ones.
 */
static int
free_slot(void)
{
	ForwardConn *oldest = NULL;
	int			i;

	for (i = 0; i < MAX_CONNS; i++)
	{
		if (conns[i] == NULL)
			return i;
		if (conns[i]->node_id == 0 && !conns[i]->connected &&
			(oldest == NULL || conns[i]->id < oldest->id))
			oldest = conns[i];
	}
	if (oldest == NULL)
		return -1;
	i = oldest->slot;
	conn_close(oldest);
	return i;
}

static ForwardConn *
conn_new(int node_id)
{
	int			i = free_slot();
	ForwardConn *c;

	if (i < 0 || (c = calloc(1, sizeof(ForwardConn))) == NULL)
		return NULL;
	c->slot = i;
	c->node_id = node_id;
	c->id = ++last_conn_id;
	c->tcp.data = c;
	uv_tcp_init(fwd_loop, &c->tcp);
	conns[i] = c;
	return c;
}

static void
conn_freed(uv_handle_t *handle)
{
	ForwardConn *c = (ForwardConn *) handle->data;

	while (c->pending != NULL)
	{
		PendingFrame *f = c->pending;

		c->pending = f->next;
		free(f->data);
		free(f);
	}
	free(c->rbuf);
	free(c);
}

static void
conn_close(ForwardConn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	if (c->hs != NULL)
		kalam_handshake_cancel(c->hs);
	conns[c->slot] = NULL;
	if (c->node_id != 0 && cbs.lost != NULL)
		cbs.lost(c->node_id, c->connected);
	uv_close((uv_handle_t *) &c->tcp, conn_freed);
}

static void
write_done(uv_write_t *req, int status)
{
	ForwardConn *c = (ForwardConn *) req->handle->data;

	free(req->data);
	free(req);
	if (status != 0)
		conn_close(c);
}

static void
conn_write(ForwardConn *c, char *frame, size_t len)
{
	uv_write_t *req = malloc(sizeof(uv_write_t));
	uv_buf_t	buf = uv_buf_init(frame, len);

	if (req == NULL)
	{
		free(frame);
		conn_close(c);
		return;
	}
	req->data = frame;
	if (uv_write(req, (uv_stream_t *) &c->tcp, &buf, 1, write_done) != 0)
	{
		free(frame);
		free(req);
		conn_close(c);
	}
}

/*
 * Act on one frame; false if it breaks the protocol (the caller closes
 * the connection): requests only on connections a peer opened, replies
 * only on those this node opened.
 */
static bool
handle_frame(ForwardConn *c, const char *data, size_t len)
{
	KalamFrame	frame;
	const char *error;

	if (!kalam_frame_decode(data, len, &frame, &error))
		return false;
	if (c->node_id == 0)
	{
		if (frame.type == KALAM_FRAME_REQUEST)
			cbs.request(c->id, frame.request_id, frame.group, frame.command,
						frame.command_len);
		else if (frame.type == KALAM_FRAME_CONFIRM)
			cbs.confirm(c->id, c->peer_id, frame.request_id, frame.group,
						frame.term);
		else if (frame.type == KALAM_FRAME_FETCH)
			cbs.fetch(c->id, c->peer_id, frame.request_id, frame.group,
					  frame.session, frame.index);
		else
			return false;
	}
	else if (frame.type == KALAM_FRAME_CHUNK)
		cbs.chunk(c->node_id, frame.request_id, frame.command, frame.command_len);
	else if (frame.type == KALAM_FRAME_REPLY)
		cbs.reply(c->node_id, frame.request_id, &frame.result);
	else if (frame.type == KALAM_FRAME_CONFIRMED)
		cbs.confirmed(c->node_id, frame.request_id, frame.group, frame.term,
					  frame.confirmed);
	else
		return false;
	return true;
}

/*
 * Room for the next read: READ_CHUNK, or the rest of a frame whose length
 * was read (and checked: the connection closed if it was refused).
 */
static void
alloc_buffer(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
	ForwardConn *c = (ForwardConn *) handle->data;
	size_t		want = c->rlen + READ_CHUNK;
	size_t		frame_len;
	const char *error;

	if (kalam_frame_length(c->rbuf, c->rlen, &frame_len, &error))
		want = Max(want, frame_len);
	if (c->rcap < want)
	{
		size_t		cap = Max(want, c->rcap * 2);
		char	   *bigger = realloc(c->rbuf, cap);

		if (bigger == NULL)
		{
			*buf = uv_buf_init(NULL, 0);
			return;
		}
		c->rbuf = bigger;
		c->rcap = cap;
	}
	*buf = uv_buf_init(c->rbuf + c->rlen, c->rcap - c->rlen);
}

static void
read_done(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	ForwardConn *c = (ForwardConn *) stream->data;
	size_t		pos = 0;

	if (nread < 0)
	{
		conn_close(c);
		return;
	}
	c->rlen += nread;
	for (;;)
	{
		size_t		frame_len;
		const char *error;

		if (!kalam_frame_length(c->rbuf + pos, c->rlen - pos, &frame_len, &error))
		{
			if (error != NULL)
			{
				conn_close(c);
				return;
			}
			break;
		}
		if (c->rlen - pos < frame_len)
			break;
		if (!handle_frame(c, c->rbuf + pos, frame_len))
			conn_close(c);
		if (c->closing)
			return;
		pos += frame_len;
	}
	if (pos > 0)
	{
		memmove(c->rbuf, c->rbuf + pos, c->rlen - pos);
		c->rlen -= pos;
	}
	/* a large frame's buffer goes once the frame is handled */
	if (c->rcap > 4 * READ_CHUNK && c->rlen < READ_CHUNK)
	{
		char	   *smaller = realloc(c->rbuf, READ_CHUNK);

		if (smaller != NULL)
		{
			c->rbuf = smaller;
			c->rcap = READ_CHUNK;
		}
	}
}

/* A peer proved it is a node of the cluster: read its requests. */
static void
incoming_authenticated(uv_tcp_t *tcp, void *arg, int peer_id, const char *peer,
					   const char *error)
{
	ForwardConn *c = (ForwardConn *) arg;

	c->hs = NULL;
	if (error != NULL)
	{
		conn_close(c);
		return;
	}
	c->peer_id = peer_id;
	c->connected = true;
	uv_read_start((uv_stream_t *) &c->tcp, alloc_buffer, read_done);
}

static void
refused_closed(uv_handle_t *handle)
{
	free(handle);
}

static void
accepted(uv_stream_t *server, int status)
{
	ForwardConn *c;

	if (status != 0)
		return;
	c = conn_new(0);
	if (c == NULL)
	{
		/* accept it anyway, or libuv stops accepting on the listener */
		uv_tcp_t   *refused = malloc(sizeof(uv_tcp_t));

		if (refused == NULL)
			return;
		uv_tcp_init(fwd_loop, refused);
		(void) uv_accept(server, (uv_stream_t *) refused);
		uv_close((uv_handle_t *) refused, refused_closed);
		return;
	}
	if (uv_accept(server, (uv_stream_t *) &c->tcp) != 0 ||
		(c->hs = kalam_handshake_accept(&c->tcp, KALAM_CHANNEL_FORWARD,
										incoming_authenticated, c)) == NULL)
		conn_close(c);
}

/* Listen for other workers; 0, or libuv's error if the port cannot be bound. */
int
kalam_forward_start(uv_loop_t *loop, const char *host, int port,
					const KalamForwardCallbacks *callbacks)
{
	struct sockaddr_in addr;
	int			rv;

	fwd_loop = loop;
	cbs = *callbacks;
	if ((rv = uv_ip4_addr(host, port, &addr)) != 0)
		return rv;
	uv_tcp_init(loop, &listener);
	if ((rv = uv_tcp_bind(&listener, (const struct sockaddr *) &addr, 0)) != 0 ||
		(rv = uv_listen((uv_stream_t *) &listener, 64, accepted)) != 0)
	{
		uv_close((uv_handle_t *) &listener, NULL);
		return rv;
	}
	listening = true;
	return 0;
}

/* This node proved itself to the leader, and the leader to it. */
static void
outgoing_authenticated(uv_tcp_t *tcp, void *arg, int peer_id,
					   const char *peer, const char *error)
{
	ForwardConn *c = (ForwardConn *) arg;

	c->hs = NULL;
	if (error != NULL)
	{
		conn_close(c);
		return;
	}
	c->connected = true;
	uv_read_start((uv_stream_t *) &c->tcp, alloc_buffer, read_done);
	while (c->pending != NULL && !c->closing)
	{
		PendingFrame *f = c->pending;

		c->pending = f->next;
		conn_write(c, f->data, f->len);
		free(f);
	}
}

static void
connected(uv_connect_t *req, int status)
{
	ForwardConn *c = (ForwardConn *) req->handle->data;

	if (status != 0 ||
		(c->hs = kalam_handshake_connect(&c->tcp, KALAM_CHANNEL_FORWARD,
										 c->node_id, outgoing_authenticated,
										 c)) == NULL)
		conn_close(c);
}

/*
 * The connection to a node's worker, connecting if there is none; NULL
 * (with the node reported lost) if it cannot be opened.
 */
static ForwardConn *
conn_to(int node_id, const char *host, int port)
{
	ForwardConn *c;
	struct sockaddr_in addr;
	int			i;

	for (i = 0; i < MAX_CONNS; i++)
		if (conns[i] != NULL && conns[i]->node_id == node_id)
			return conns[i];
	if (uv_ip4_addr(host, port, &addr) != 0 || (c = conn_new(node_id)) == NULL)
	{
		cbs.lost(node_id, false);
		return NULL;
	}
	c->connect.data = c;
	if (uv_tcp_connect(&c->connect, &c->tcp, (const struct sockaddr *) &addr,
					   connected) != 0)
	{
		conn_close(c);
		return NULL;
	}
	return c;
}

/* Send a malloc'd frame, or queue it until the connection is ready. */
static void
send_frame(ForwardConn *c, char *frame, size_t len)
{
	PendingFrame *f;
	PendingFrame **tail = &c->pending;

	if (c->connected)
	{
		conn_write(c, frame, len);
		return;
	}
	f = malloc(sizeof(PendingFrame));
	if (f == NULL)
	{
		free(frame);
		conn_close(c);
		return;
	}
	f->data = frame;
	f->len = len;
	f->next = NULL;
	while (*tail != NULL)
		tail = &(*tail)->next;
	*tail = f;
}

/*
 * A malloc'd frame of len bytes to fill and hand to send_frame, with the
 * connection to a node's worker in *c (connecting if there is none); NULL
 * if either cannot be had (a connection is then closed).
 */
static char *
frame_to(int node_id, const char *host, int port, size_t len,
		 ForwardConn **c)
{
	char	   *frame;

	*c = conn_to(node_id, host, port);
	if (*c == NULL)
		return NULL;
	frame = malloc(len);
	if (frame == NULL)
		conn_close(*c);
	return frame;
}

/* Send a command to a node's worker, connecting first if need be. */
void
kalam_forward_request(int node_id, const char *host, int port,
					  uint64 request_id, int group, const char *command,
					  size_t length)
{
	size_t		len = kalam_frame_size(KALAM_FRAME_REQUEST, length);
	ForwardConn *c;
	char	   *frame = frame_to(node_id, host, port, len, &c);

	if (frame == NULL)
		return;
	kalam_frame_write_request(frame, request_id, group, command, length);
	send_frame(c, frame, len);
}

/* Ask a node whether it follows this node in the group and term. */
void
kalam_forward_ask_confirm(int node_id, const char *host, int port,
						  uint64 request_id, int group, uint64 term)
{
	size_t		len = kalam_frame_size(KALAM_FRAME_CONFIRM, 0);
	ForwardConn *c;
	char	   *frame = frame_to(node_id, host, port, len, &c);

	if (frame == NULL)
		return;
	kalam_frame_write_confirm(frame, KALAM_FRAME_CONFIRM, request_id, group,
							  term, false);
	send_frame(c, frame, len);
}

/* Ask a node for the next chunk of a snapshot transfer (snapshot.c). */
void
kalam_forward_fetch(int node_id, const char *host, int port,
					uint64 request_id, int group, uint64 session, uint64 index)
{
	ForwardConn *c;
	char	   *frame = frame_to(node_id, host, port, KALAM_FRAME_FETCH_SIZE,
								 &c);

	if (frame == NULL)
		return;
	kalam_frame_write_fetch(frame, request_id, group, session, index);
	send_frame(c, frame, KALAM_FRAME_FETCH_SIZE);
}

/*
 * The connection a request came on, by its id: NULL once it closed, even
 * if another connection took its slot.
 */
static ForwardConn *
conn_by_id(uint64 conn_id)
{
	int			i;

	for (i = 0; i < MAX_CONNS; i++)
		if (conns[i] != NULL && conns[i]->id == conn_id && !conns[i]->closing)
			return conns[i];
	return NULL;
}

/* Answer a leader's question; dropped if its connection is gone. */
void
kalam_forward_answer_confirm(uint64 conn_id, uint64 request_id, int group,
							 uint64 term, bool yes)
{
	ForwardConn *c = conn_by_id(conn_id);
	size_t		len = kalam_frame_size(KALAM_FRAME_CONFIRMED, 0);
	char	   *frame;

	if (c == NULL || (frame = malloc(len)) == NULL)
		return;
	kalam_frame_write_confirm(frame, KALAM_FRAME_CONFIRMED, request_id, group,
							  term, yes);
	conn_write(c, frame, len);
}

/* Answer a request; dropped if its connection is gone. */
void
kalam_forward_reply(uint64 conn_id, uint64 request_id,
					const KalamApplyResult *result)
{
	ForwardConn *c = conn_by_id(conn_id);
	size_t		len = kalam_frame_size(KALAM_FRAME_REPLY, sizeof(KalamApplyResult));
	char	   *frame;

	if (c == NULL)
		return;
	frame = malloc(len);
	if (frame == NULL)
	{
		conn_close(c);
		return;
	}
	kalam_frame_write_reply(frame, request_id, result);
	conn_write(c, frame, len);
}

/*
 * Send a whole malloc'd frame (which this takes) on the connection a
 * request came on; dropped if it is gone.
 */
void
kalam_forward_send(uint64 conn_id, char *frame, size_t len)
{
	ForwardConn *c = conn_by_id(conn_id);

	if (c == NULL)
	{
		free(frame);
		return;
	}
	conn_write(c, frame, len);
}

void
kalam_forward_stop(void)
{
	int			i;

	cbs.lost = NULL;
	for (i = 0; i < MAX_CONNS; i++)
		if (conns[i] != NULL)
			conn_close(conns[i]);
	if (listening)
	{
		uv_close((uv_handle_t *) &listener, NULL);
		listening = false;
	}
}
