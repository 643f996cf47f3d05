/*-------------------------------------------------------------------------
 *
 * transport.c
 *	  libraft's transport for kalam: TCP connections that authenticate
 *	  (handshake.c) before libraft reads or writes a byte.
 *
 * libraft's own TCP transport (raft_uv_tcp) hands every accepted
 * connection to libraft after a handshake that only names a node id: a
 * stranger that reached a Raft port could send RequestVote with a term of
 * 10^9 and every group took it.  Its handshake also allocates whatever
 * address length the peer announces, and it leaves Nagle's algorithm on
 * (40 ms stalls under load, found with LIBRAFT_TRACE).  This transport
 * implements struct raft_uv_transport itself, without patching libraft:
 * it listens and connects with libuv, runs kalam's mutual authentication
 * on the new connection, sets TCP_NODELAY and keepalive, and only then
 * hands the stream to libraft, which from there on owns it (it closes it
 * and frees it with raft_free, so streams come from raft_malloc).
 *
 * libraft answers a message at the address its sender came with (not by
 * looking the id up in its configuration), so an accepted connection is
 * handed over with the peer's configured Raft address of the group, not
 * the ephemeral address it connected from.
 *
 * A one-node cluster's groups listen on no port.  A failed listen says
 * which address and why in the transport's errmsg, which libraft does not
 * pass on: node.c reports it.
 *
 * Runs in libuv callbacks on the worker's main thread: no palloc, no
 * ereport.
 *
 * src/cluster/transport.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "cluster/handshake.h"
#include "cluster/transport.h"

#define ADDRESS_LEN		64

typedef struct Transport Transport;

/* an outgoing connection, until libraft has it */
typedef struct Outgoing
{
	Transport  *t;
	struct raft_uv_connect *req;
	raft_uv_connect_cb cb;
	uv_tcp_t   *tcp;
	uv_connect_t connect;
	KalamHandshake *hs;
	raft_id		id;
	bool		canceled;		/* the transport closed while it connected */
	struct Outgoing *next;
} Outgoing;

/* an accepted connection, until it authenticated */
typedef struct Incoming
{
	Transport  *t;
	uv_tcp_t   *tcp;
	KalamHandshake *hs;
	struct Incoming *next;
} Incoming;

struct Transport
{
	uv_loop_t  *loop;
	int			group;
	raft_id		id;
	char		address[ADDRESS_LEN];
	bool		listen;			/* false in a one-node cluster */
	uv_tcp_t	listener;
	bool		listening;
	raft_uv_accept_cb accept_cb;
	KalamPeerAddressFn peer_address;
	Outgoing   *outgoing;
	Incoming   *incoming;
	int			nclosing;		/* handles whose close has not finished */
	bool		closing;
	struct raft_uv_transport *owner;
	raft_uv_transport_close_cb close_cb;
};

static bool
parse_address(const char *address, struct sockaddr_in *addr)
{
	char		host[ADDRESS_LEN];
	const char *colon = strrchr(address, ':');
	char	   *end;
	long		port;

	if (colon == NULL || colon - address >= ADDRESS_LEN)
		return false;
	memcpy(host, address, colon - address);
	host[colon - address] = '\0';
	port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || port < 0 || port > 65535)
		return false;
	return uv_ip4_addr(host, (int) port, addr) == 0;
}

static void
maybe_closed(Transport *t)
{
	if (t->closing && t->nclosing == 0 && t->close_cb != NULL)
	{
		raft_uv_transport_close_cb cb = t->close_cb;

		t->close_cb = NULL;
		cb(t->owner);
	}
}

static void
handle_closed(uv_handle_t *handle)
{
	Transport  *t = (Transport *) handle->data;

	if (handle != (uv_handle_t *) &t->listener)
		raft_free(handle);
	t->nclosing--;
	maybe_closed(t);
}

/* Close a connection that libraft will never own. */
static void
close_tcp(Transport *t, uv_tcp_t *tcp)
{
	tcp->data = t;
	t->nclosing++;
	uv_close((uv_handle_t *) tcp, handle_closed);
}

static int
transport_init(struct raft_uv_transport *rt, raft_id id, const char *address)
{
	Transport  *t = (Transport *) rt->impl;

	t->id = id;
	if (strlcpy(t->address, address, sizeof(t->address)) >= sizeof(t->address))
	{
		snprintf(rt->errmsg, RAFT_ERRMSG_BUF_SIZE, "address \"%s\" is too long", address);
		return RAFT_NAMETOOLONG;
	}
	return 0;
}

static void
incoming_done(uv_tcp_t *tcp, void *arg, int peer_id, const char *peer,
			  const char *error)
{
	Incoming   *in = (Incoming *) arg;
	Transport  *t = in->t;
	Incoming  **pp;
	char		address[ADDRESS_LEN];

	for (pp = &t->incoming; *pp != in; pp = &(*pp)->next)
		;
	*pp = in->next;
	free(in);
	if (error != NULL ||
		!t->peer_address(peer_id, t->group, address, sizeof(address)))
		close_tcp(t, tcp);
	else
		t->accept_cb(t->owner, (raft_id) peer_id, address, (uv_stream_t *) tcp);
}

static void
accepted(uv_stream_t *server, int status)
{
	Transport  *t = (Transport *) server->data;
	uv_tcp_t   *tcp;
	Incoming   *in;

	if (status != 0 || t->closing)
		return;
	tcp = raft_malloc(sizeof(uv_tcp_t));
	if (tcp == NULL)
		return;
	uv_tcp_init(t->loop, tcp);
	in = calloc(1, sizeof(Incoming));
	if (in == NULL || uv_accept(server, (uv_stream_t *) tcp) != 0)
	{
		free(in);
		close_tcp(t, tcp);
		return;
	}
	in->t = t;
	in->tcp = tcp;
	tcp->data = in;
	in->hs = kalam_handshake_accept(tcp, t->group, incoming_done, in);
	if (in->hs == NULL)
	{
		free(in);
		close_tcp(t, tcp);
		return;
	}
	in->next = t->incoming;
	t->incoming = in;
}

static int
transport_listen(struct raft_uv_transport *rt, raft_uv_accept_cb cb)
{
	Transport  *t = (Transport *) rt->impl;
	struct sockaddr_in addr;
	int			rv;

	t->accept_cb = cb;
	if (!t->listen)
		return 0;
	if (!parse_address(t->address, &addr))
	{
		snprintf(rt->errmsg, RAFT_ERRMSG_BUF_SIZE,
				 "\"%s\" is not an IPv4 address and port", t->address);
		return RAFT_INVALID;
	}
	uv_tcp_init(t->loop, &t->listener);
	t->listener.data = t;
	t->listening = true;
	if ((rv = uv_tcp_bind(&t->listener, (const struct sockaddr *) &addr, 0)) != 0 ||
		(rv = uv_listen((uv_stream_t *) &t->listener, 64, accepted)) != 0)
	{
		snprintf(rt->errmsg, RAFT_ERRMSG_BUF_SIZE, "could not listen on %s: %s",
				 t->address, uv_strerror(rv));
		return RAFT_IOERR;
	}
	return 0;
}

static void
outgoing_unlink(Outgoing *out)
{
	Outgoing  **pp;

	for (pp = &out->t->outgoing; *pp != out; pp = &(*pp)->next)
		;
	*pp = out->next;
}

/* An outgoing connection failed: libraft tries again later. */
static void
outgoing_failed(Outgoing *out)
{
	struct raft_uv_connect *req = out->req;
	raft_uv_connect_cb cb = out->cb;

	outgoing_unlink(out);
	close_tcp(out->t, out->tcp);
	free(out);
	cb(req, NULL, RAFT_NOCONNECTION);
}

static void
outgoing_done(uv_tcp_t *tcp, void *arg, int peer_id, const char *peer,
			  const char *error)
{
	Outgoing   *out = (Outgoing *) arg;
	struct raft_uv_connect *req = out->req;
	raft_uv_connect_cb cb = out->cb;

	out->hs = NULL;
	if (error != NULL)
	{
		outgoing_failed(out);
		return;
	}
	outgoing_unlink(out);
	free(out);
	cb(req, (uv_stream_t *) tcp, 0);
}

static void
connected(uv_connect_t *connect, int status)
{
	Outgoing   *out = (Outgoing *) connect->data;

	if (out->canceled)
	{
		free(out);				/* its handle is closing with the transport */
		return;
	}
	if (status == 0)
		out->hs = kalam_handshake_connect(out->tcp, out->t->group,
										  (int) out->id, outgoing_done, out);
	if (out->hs == NULL)
		outgoing_failed(out);
}

static int
transport_connect(struct raft_uv_transport *rt, struct raft_uv_connect *req,
				  raft_id id, const char *address, raft_uv_connect_cb cb)
{
	Transport  *t = (Transport *) rt->impl;
	struct sockaddr_in addr;
	Outgoing   *out;

	if (!parse_address(address, &addr))
	{
		snprintf(rt->errmsg, RAFT_ERRMSG_BUF_SIZE,
				 "\"%s\" is not an IPv4 address and port", address);
		return RAFT_NOCONNECTION;
	}
	out = calloc(1, sizeof(Outgoing));
	if (out == NULL)
		return RAFT_NOMEM;
	out->tcp = raft_malloc(sizeof(uv_tcp_t));
	if (out->tcp == NULL)
	{
		free(out);
		return RAFT_NOMEM;
	}
	out->t = t;
	out->req = req;
	out->cb = cb;
	out->id = id;
	uv_tcp_init(t->loop, out->tcp);
	out->tcp->data = out;
	out->connect.data = out;
	if (uv_tcp_connect(&out->connect, out->tcp, (const struct sockaddr *) &addr,
					   connected) != 0)
	{
		t->nclosing++;
		out->tcp->data = t;
		uv_close((uv_handle_t *) out->tcp, handle_closed);
		free(out);
		return RAFT_NOCONNECTION;
	}
	out->next = t->outgoing;
	t->outgoing = out;
	return 0;
}

/*
 * Stop listening, drop connections that are not libraft's yet and fail
 * pending connects with RAFT_CANCELED; cb once every handle is closed.
 */
static void
transport_close(struct raft_uv_transport *rt, raft_uv_transport_close_cb cb)
{
	Transport  *t = (Transport *) rt->impl;

	t->closing = true;
	t->close_cb = cb;
	if (t->listening)
	{
		t->listening = false;
		t->nclosing++;
		uv_close((uv_handle_t *) &t->listener, handle_closed);
	}
	while (t->incoming != NULL)
	{
		Incoming   *in = t->incoming;

		t->incoming = in->next;
		kalam_handshake_cancel(in->hs);
		close_tcp(t, in->tcp);
		free(in);
	}
	while (t->outgoing != NULL)
	{
		Outgoing   *out = t->outgoing;
		struct raft_uv_connect *req = out->req;
		raft_uv_connect_cb connect_cb = out->cb;

		t->outgoing = out->next;
		if (out->hs != NULL)
		{
			kalam_handshake_cancel(out->hs);
			free(out);
		}
		else
			out->canceled = true;	/* connected() frees it */
		close_tcp(t, out->tcp);
		connect_cb(req, NULL, RAFT_CANCELED);
	}
	maybe_closed(t);
}

/*
 * Set up the transport of one group; kalam_transport_release frees it.
 * Without listen it opens no port: a one-node cluster has no peer that
 * could authenticate, so no one to hear from.
 */
int
kalam_transport_init(struct raft_uv_transport *rt, uv_loop_t *loop, int group,
					 bool listen, KalamPeerAddressFn peer_address)
{
	Transport  *t = calloc(1, sizeof(Transport));

	memset(rt, 0, sizeof(struct raft_uv_transport));
	if (t == NULL)
		return RAFT_NOMEM;
	t->loop = loop;
	t->group = group;
	t->listen = listen;
	t->peer_address = peer_address;
	t->owner = rt;
	rt->impl = t;
	rt->init = transport_init;
	rt->listen = transport_listen;
	rt->connect = transport_connect;
	rt->close = transport_close;
	return 0;
}

/* After libraft closed the transport. */
void
kalam_transport_release(struct raft_uv_transport *rt)
{
	free(rt->impl);
	rt->impl = NULL;
}
