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
 * Frames on the TCP stream: length (4 bytes, of what follows), type (1),
 * request id (8), then for a request the group (2) and the command, for a
 * reply the KalamApplyResult.  Nodes of a cluster share an architecture.
 *
 * Everything runs in libuv callbacks on the worker's main thread: no
 * PostgreSQL function is called here and memory comes from malloc.
 *
 * src/raft/forward.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "raft/forward.h"

#define FRAME_REQUEST	1
#define FRAME_REPLY		2
#define FRAME_HEADER	(4 + 1 + 8)
#define MAX_CONNS		64

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
	int			id;				/* index in conns + 1 */
	int			node_id;		/* outgoing: the peer; incoming: 0 */
	bool		connected;
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
static KalamForwardRequestCb request_cb;
static KalamForwardReplyCb reply_cb;
static KalamForwardLostCb lost_cb;

static void conn_close(ForwardConn *c);

static ForwardConn *
conn_new(int node_id)
{
	int			i;

	for (i = 0; i < MAX_CONNS; i++)
	{
		if (conns[i] == NULL)
		{
			ForwardConn *c = calloc(1, sizeof(ForwardConn));

			if (c == NULL)
				return NULL;
			c->id = i + 1;
			c->node_id = node_id;
			c->tcp.data = c;
			uv_tcp_init(fwd_loop, &c->tcp);
			uv_tcp_nodelay(&c->tcp, 1);
			conns[i] = c;
			return c;
		}
	}
	return NULL;
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
	conns[c->id - 1] = NULL;
	if (c->node_id != 0 && lost_cb != NULL)
		lost_cb(c->node_id, c->connected);
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

static char *
make_frame(int type, uint64 request_id, size_t body_len, size_t *len)
{
	char	   *frame = malloc(FRAME_HEADER + body_len);
	uint32		length = 1 + 8 + body_len;

	if (frame == NULL)
		return NULL;
	memcpy(frame, &length, 4);
	frame[4] = (char) type;
	memcpy(frame + 5, &request_id, 8);
	*len = FRAME_HEADER + body_len;
	return frame;
}

static void
handle_frame(ForwardConn *c, const char *frame, size_t len)
{
	uint64		request_id;
	int			type = frame[0];

	if (len < 9)
		return;
	memcpy(&request_id, frame + 1, 8);
	if (type == FRAME_REQUEST && len >= 11)
	{
		uint16		group;

		memcpy(&group, frame + 9, 2);
		request_cb(c->id, request_id, group, frame + 11, len - 11);
	}
	else if (type == FRAME_REPLY && len >= 9 + sizeof(KalamApplyResult))
	{
		KalamApplyResult result;

		memcpy(&result, frame + 9, sizeof(result));
		reply_cb(request_id, &result);
	}
}

static void
alloc_buffer(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
	ForwardConn *c = (ForwardConn *) handle->data;

	if (c->rcap - c->rlen < suggested)
	{
		char	   *bigger = realloc(c->rbuf, c->rlen + suggested);

		if (bigger == NULL)
		{
			*buf = uv_buf_init(NULL, 0);
			return;
		}
		c->rbuf = bigger;
		c->rcap = c->rlen + suggested;
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
	while (c->rlen - pos >= 4)
	{
		uint32		length;

		memcpy(&length, c->rbuf + pos, 4);
		if (c->rlen - pos - 4 < length)
			break;
		handle_frame(c, c->rbuf + pos + 4, length);
		if (c->closing)
			return;
		pos += 4 + length;
	}
	if (pos > 0)
	{
		memmove(c->rbuf, c->rbuf + pos, c->rlen - pos);
		c->rlen -= pos;
	}
}

static void
accepted(uv_stream_t *server, int status)
{
	ForwardConn *c;

	if (status != 0 || (c = conn_new(0)) == NULL)
		return;
	if (uv_accept(server, (uv_stream_t *) &c->tcp) != 0)
	{
		conn_close(c);
		return;
	}
	c->connected = true;
	uv_read_start((uv_stream_t *) &c->tcp, alloc_buffer, read_done);
}

/* Listen for other workers; false if the port cannot be bound. */
bool
kalam_forward_start(uv_loop_t *loop, const char *host, int port,
					KalamForwardRequestCb on_request,
					KalamForwardReplyCb on_reply,
					KalamForwardLostCb on_lost)
{
	struct sockaddr_in addr;

	fwd_loop = loop;
	request_cb = on_request;
	reply_cb = on_reply;
	lost_cb = on_lost;
	if (uv_ip4_addr(host, port, &addr) != 0)
		return false;
	uv_tcp_init(loop, &listener);
	if (uv_tcp_bind(&listener, (const struct sockaddr *) &addr, 0) != 0 ||
		uv_listen((uv_stream_t *) &listener, 64, accepted) != 0)
	{
		uv_close((uv_handle_t *) &listener, NULL);
		return false;
	}
	listening = true;
	return true;
}

static void
connected(uv_connect_t *req, int status)
{
	ForwardConn *c = (ForwardConn *) req->handle->data;

	if (status != 0)
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

/* Send a command to a node's worker, connecting first if need be. */
void
kalam_forward_request(int node_id, const char *host, int port,
					  uint64 request_id, int group, const char *command,
					  size_t length)
{
	ForwardConn *c = NULL;
	size_t		len;
	char	   *frame;
	uint16		group16 = (uint16) group;
	int			i;

	for (i = 0; i < MAX_CONNS && c == NULL; i++)
		if (conns[i] != NULL && conns[i]->node_id == node_id)
			c = conns[i];
	if (c == NULL)
	{
		struct sockaddr_in addr;

		if (uv_ip4_addr(host, port, &addr) != 0 || (c = conn_new(node_id)) == NULL)
		{
			lost_cb(node_id, false);
			return;
		}
		c->connect.data = c;
		if (uv_tcp_connect(&c->connect, &c->tcp, (const struct sockaddr *) &addr,
						   connected) != 0)
		{
			conn_close(c);
			return;
		}
	}

	frame = make_frame(FRAME_REQUEST, request_id, 2 + length, &len);
	if (frame == NULL)
	{
		conn_close(c);
		return;
	}
	memcpy(frame + FRAME_HEADER, &group16, 2);
	memcpy(frame + FRAME_HEADER + 2, command, length);
	if (c->connected)
		conn_write(c, frame, len);
	else
	{
		PendingFrame *f = malloc(sizeof(PendingFrame));
		PendingFrame **tail = &c->pending;

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
}

/* Answer a request; dropped if its connection is gone. */
void
kalam_forward_reply(int conn_id, uint64 request_id,
					const KalamApplyResult *result)
{
	ForwardConn *c = (conn_id >= 1 && conn_id <= MAX_CONNS) ? conns[conn_id - 1] : NULL;
	size_t		len;
	char	   *frame;

	if (c == NULL || c->closing)
		return;
	frame = make_frame(FRAME_REPLY, request_id, sizeof(KalamApplyResult), &len);
	if (frame == NULL)
	{
		conn_close(c);
		return;
	}
	memcpy(frame + FRAME_HEADER, result, sizeof(KalamApplyResult));
	conn_write(c, frame, len);
}

void
kalam_forward_stop(void)
{
	int			i;

	lost_cb = NULL;
	for (i = 0; i < MAX_CONNS; i++)
		if (conns[i] != NULL)
			conn_close(conns[i]);
	if (listening)
	{
		uv_close((uv_handle_t *) &listener, NULL);
		listening = false;
	}
}
