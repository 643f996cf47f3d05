/*-------------------------------------------------------------------------
 *
 * handshake.c
 *	  Mutual authentication of the nodes of a cluster on every TCP
 *	  connection between their workers, before any other byte is read.
 *
 * libraft's TCP transport and kalam's forwarding port took whoever
 * connected: a forged RequestVote moved every group's term, a forged
 * forwarded command became DDL run as superuser on every node.  Now every
 * connection first proves, in both directions, that each end holds the
 * cluster's secret (kalam.cluster_secret_file) and is the node it claims:
 *
 *	 server -> client: magic (8), server nonce (32)
 *	 client -> server: magic (8), client node id (4), channel (4), client
 *					   nonce (32), HMAC-SHA256(secret, "kalam client" |
 *					   server nonce | client nonce | client id | server id |
 *					   channel)
 *	 server -> client: HMAC-SHA256(secret, "kalam server" | client nonce |
 *					   server nonce | server id | client id | channel)
 *
 * Integers are big endian.  Fresh random nonces on both sides make a
 * recorded handshake useless on another connection; the node ids and the
 * channel (the Raft group, or forwarding) in the MAC stop a proof from
 * serving another node or port.  Node ids must be in kalam.peers.  Reads
 * are of exactly the bytes the step expects, so nothing of the protocol
 * that follows is consumed here.  The client sends nothing after its proof
 * until it has checked the server's.
 *
 * A handshake that does not finish within HANDSHAKE_TIMEOUT_MS fails, and
 * when more than MAX_PENDING incoming ones wait, the oldest fails: idle
 * connections cannot hold a port.  Traffic after the handshake is not
 * encrypted (TLS is not built yet): run the cluster on a trusted network.
 *
 * Everything runs in libuv callbacks on the worker's main thread: no
 * palloc and no ereport there.  Refusals are queued and logged by
 * kalam_handshake_report from the worker's loop.
 *
 * src/cluster/handshake.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "port/pg_bswap.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "cluster/handshake.h"
#include "cluster/node.h"

#define MAGIC				"KLMAUTH1"
#define MAGIC_LEN			8
#define NONCE_LEN			32
#define MAC_LEN				32
#define SERVER_HELLO_LEN	(MAGIC_LEN + NONCE_LEN)
#define CLIENT_PROOF_LEN	(MAGIC_LEN + 4 + 4 + NONCE_LEN + MAC_LEN)
#define SERVER_PROOF_LEN	MAC_LEN
#define HANDSHAKE_TIMEOUT_MS 5000
#define MAX_PENDING			64
#define SECRET_MIN_LEN		16
#define SECRET_MAX_LEN		1024
#define REPORT_LINES		8
#define REPORT_INTERVAL_MS	10000

char	   *kalam_cluster_secret_file = NULL;

static unsigned char secret[SECRET_MAX_LEN];
static size_t secret_len = 0;
static bool (*is_member) (int node_id) = NULL;

struct KalamHandshake
{
	uv_tcp_t   *tcp;
	void	   *tcp_data;		/* the caller's, given back at the end */
	uv_timer_t	timer;
	bool		server;
	int			channel;
	int			peer_id;		/* client: the node it meant to reach */
	size_t		need;			/* bytes the current step reads */
	size_t		got;
	unsigned char own_nonce[NONCE_LEN];
	unsigned char peer_nonce[NONCE_LEN];
	unsigned char buf[CLIENT_PROOF_LEN];
	char		peer[64];		/* ip:port, for messages */
	KalamHandshakeCb cb;
	void	   *arg;
	KalamHandshake *prev;		/* incoming ones, oldest first */
	KalamHandshake *next;
};

static KalamHandshake *pending_head = NULL;
static KalamHandshake *pending_tail = NULL;
static int	npending = 0;

/* refusals waiting to be logged */
static char report_lines[REPORT_LINES][320];
static int	nreport = 0;
static uint64 report_dropped = 0;
static TimestampTz reported_at = 0;

void
kalam_handshake_define_gucs(void)
{
	DefineCustomStringVariable("kalam.cluster_secret_file",
							   "File holding the secret that every node of the cluster proves it has.",
							   "Required when kalam.peers is set.  A relative path is relative to the data directory; the file must be readable by the server's user only.",
							   &kalam_cluster_secret_file,
							   "",
							   PGC_POSTMASTER,
							   0,
							   NULL, NULL, NULL);
}

/*
 * Read the cluster's secret; at server start, so that a node without one
 * (or with one anybody may read) refuses to start rather than run a
 * cluster that strangers can join.  cluster: kalam.peers is set.
 */
void
kalam_handshake_load_secret(bool cluster)
{
	const char *path = kalam_cluster_secret_file;
	struct stat st;
	ssize_t		n;
	int			fd;

	secret_len = 0;
	if (path == NULL || path[0] == '\0')
	{
		if (cluster)
			ereport(ERROR,
					(errcode(ERRCODE_CONFIG_FILE_ERROR),
					 errmsg("kalam.peers is set but kalam.cluster_secret_file is not"),
					 errdetail("The nodes of a cluster prove to each other that they hold the same secret before any Raft or forwarded message is read; without one, any host that reaches their ports could join."),
					 errhint("Write a random secret into a file readable only by the server's user (openssl rand -hex 32 > kalam_secret; chmod 600 kalam_secret), copy it to every node and set kalam.cluster_secret_file to its path.")));
		return;
	}

	fd = open(path, O_RDONLY | PG_BINARY, 0);
	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open kalam.cluster_secret_file \"%s\": %m", path)));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
	{
		close(fd);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("kalam.cluster_secret_file \"%s\" is not a regular file", path)));
	}
	if (st.st_uid != geteuid() || (st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
	{
		close(fd);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("kalam.cluster_secret_file \"%s\" may be read by others", path),
				 errdetail("Whoever reads it can join the cluster."),
				 errhint("The file must be owned by the database user and have permissions u=rw (0600) or less.")));
	}
	n = read(fd, secret, sizeof(secret));
	close(fd);
	while (n > 0 && strchr(" \t\r\n", secret[n - 1]) != NULL)
		n--;
	if (n < SECRET_MIN_LEN || st.st_size > SECRET_MAX_LEN)
	{
		explicit_bzero(secret, sizeof(secret));
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("kalam.cluster_secret_file \"%s\" must hold between %d and %d bytes",
						path, SECRET_MIN_LEN, SECRET_MAX_LEN),
				 errhint("openssl rand -hex 32 writes a good one.")));
	}
	secret_len = (size_t) n;
}

/*
 * HMAC-SHA256 of msg under the cluster secret, for names that must be the
 * same on every node and unguessable without the secret (live/channels.c).
 * False when there is no secret (a single node) or OpenSSL failed.
 */
bool
kalam_handshake_mac(const void *msg, size_t len, unsigned char *mac)
{
	unsigned int maclen = MAC_LEN;

	if (secret_len == 0)
		return false;
	return HMAC(EVP_sha256(), secret, (int) secret_len, msg, len, mac,
				&maclen) != NULL && maclen == MAC_LEN;
}

/* Which node ids belong to the cluster (kalam.peers). */
void
kalam_handshake_set_members(bool (*member) (int node_id))
{
	is_member = member;
}

/* Socket options of every connection between workers. */
static void
prepare_socket(uv_tcp_t *tcp)
{
	(void) uv_tcp_nodelay(tcp, 1);
	(void) uv_tcp_keepalive(tcp, 1, 10);
}

static void
queue_report(const char *fmt,...)
{
	va_list		args;

	if (nreport == REPORT_LINES)
	{
		report_dropped++;
		return;
	}
	va_start(args, fmt);
	vsnprintf(report_lines[nreport++], sizeof(report_lines[0]), fmt, args);
	va_end(args);
}

/*
 * Log the refused handshakes since the last report; at most REPORT_LINES
 * every REPORT_INTERVAL_MS, so that a peer retrying every second, or a
 * flood of garbage, does not fill the log.  Called from the worker's loop.
 */
void
kalam_handshake_report(void)
{
	TimestampTz now;
	int			i;

	if (nreport == 0)
		return;
	now = GetCurrentTimestamp();
	if (!TimestampDifferenceExceeds(reported_at, now, REPORT_INTERVAL_MS))
		return;
	for (i = 0; i < nreport; i++)
		ereport(LOG,
				(errmsg("kalam: %s", report_lines[i])));
	if (report_dropped > 0)
		ereport(LOG,
				(errmsg("kalam: %llu more connections between nodes failed to authenticate",
						(unsigned long long) report_dropped)));
	nreport = 0;
	report_dropped = 0;
	reported_at = now;
}

static void
put32(unsigned char *p, uint32 v)
{
	v = pg_hton32(v);
	memcpy(p, &v, 4);
}

static uint32
get32(const unsigned char *p)
{
	uint32		v;

	memcpy(&v, p, 4);
	return pg_ntoh32(v);
}

/* HMAC-SHA256 of label | nonce_a | nonce_b | id_a | id_b | channel */
static bool
compute_mac(const char *label, const unsigned char *nonce_a,
			const unsigned char *nonce_b, int id_a, int id_b, int channel,
			unsigned char *mac)
{
	unsigned char msg[16 + 2 * NONCE_LEN + 12];
	size_t		labellen = strlen(label);
	unsigned int maclen = MAC_LEN;

	Assert(labellen <= 16);
	memcpy(msg, label, labellen);
	memcpy(msg + labellen, nonce_a, NONCE_LEN);
	memcpy(msg + labellen + NONCE_LEN, nonce_b, NONCE_LEN);
	put32(msg + labellen + 2 * NONCE_LEN, (uint32) id_a);
	put32(msg + labellen + 2 * NONCE_LEN + 4, (uint32) id_b);
	put32(msg + labellen + 2 * NONCE_LEN + 8, (uint32) channel);
	return HMAC(EVP_sha256(), secret, (int) secret_len, msg,
				labellen + 2 * NONCE_LEN + 12, mac, &maclen) != NULL &&
		maclen == MAC_LEN;
}

static void
timer_closed(uv_handle_t *handle)
{
	free(handle->data);
}

static void
unlink_pending(KalamHandshake *hs)
{
	if (!hs->server)
		return;
	if (hs->prev != NULL)
		hs->prev->next = hs->next;
	else
		pending_head = hs->next;
	if (hs->next != NULL)
		hs->next->prev = hs->prev;
	else
		pending_tail = hs->prev;
	npending--;
}

/* Give the connection back to its owner and free the handshake. */
static void
release(KalamHandshake *hs)
{
	(void) uv_read_stop((uv_stream_t *) hs->tcp);
	hs->tcp->data = hs->tcp_data;
	unlink_pending(hs);
	(void) uv_timer_stop(&hs->timer);
	uv_close((uv_handle_t *) &hs->timer, timer_closed);
}

static void
finish(KalamHandshake *hs, int peer_id, const char *error)
{
	uv_tcp_t   *tcp = hs->tcp;
	KalamHandshakeCb cb = hs->cb;
	void	   *arg = hs->arg;
	char		peer[sizeof(hs->peer)];

	if (error != NULL)
	{
		if (hs->server)
			queue_report("refused a connection from %s to %s %d: %s", hs->peer,
						 hs->channel == KALAM_CHANNEL_FORWARD ? "the forwarding port of node" : "a Raft port of node",
						 kalam_node_id, error);
		else
			queue_report("could not authenticate to node %d at %s: %s",
						 hs->peer_id, hs->peer, error);
		peer_id = 0;
	}
	strlcpy(peer, hs->peer, sizeof(peer));
	release(hs);
	cb(tcp, arg, peer_id, peer, error);
}

/* Cancel a handshake; its callback is not called. */
void
kalam_handshake_cancel(KalamHandshake *hs)
{
	release(hs);
}

static void
write_done(uv_write_t *req, int status)
{
	free(req);
}

/* Send bytes; they live with the write request until it is done. */
static bool
send_bytes(KalamHandshake *hs, const unsigned char *data, size_t len)
{
	uv_write_t *req = malloc(sizeof(uv_write_t) + len);
	uv_buf_t	buf;

	if (req == NULL)
		return false;
	memcpy(req + 1, data, len);
	buf = uv_buf_init((char *) (req + 1), len);
	if (uv_write(req, (uv_stream_t *) hs->tcp, &buf, 1, write_done) != 0)
	{
		free(req);
		return false;
	}
	return true;
}

/* The server checks the client's proof and answers with its own. */
static void
server_check_proof(KalamHandshake *hs)
{
	unsigned char expected[MAC_LEN];
	unsigned char proof[MAC_LEN];
	int			client_id = (int) get32(hs->buf + MAGIC_LEN);
	int			channel = (int) get32(hs->buf + MAGIC_LEN + 4);
	char		reason[128];

	memcpy(hs->peer_nonce, hs->buf + MAGIC_LEN + 8, NONCE_LEN);
	if (memcmp(hs->buf, MAGIC, MAGIC_LEN) != 0)
	{
		finish(hs, 0, "not a kalam node (wrong protocol)");
		return;
	}
	if (channel != hs->channel)
	{
		finish(hs, 0, "the peer meant another port");
		return;
	}
	if (client_id == kalam_node_id || is_member == NULL || !is_member(client_id))
	{
		snprintf(reason, sizeof(reason), "node id %d is not in kalam.peers",
				 client_id);
		finish(hs, 0, reason);
		return;
	}
	if (!compute_mac("kalam client", hs->own_nonce, hs->peer_nonce, client_id,
					 kalam_node_id, channel, expected) ||
		CRYPTO_memcmp(expected, hs->buf + MAGIC_LEN + 8 + NONCE_LEN, MAC_LEN) != 0)
	{
		finish(hs, 0, "wrong cluster secret");
		return;
	}
	if (!compute_mac("kalam server", hs->peer_nonce, hs->own_nonce,
					 kalam_node_id, client_id, channel, proof) ||
		!send_bytes(hs, proof, MAC_LEN))
	{
		finish(hs, 0, "could not answer");
		return;
	}
	finish(hs, client_id, NULL);
}

/* The client read the server's hello: send its proof. */
static void
client_send_proof(KalamHandshake *hs)
{
	unsigned char msg[CLIENT_PROOF_LEN];

	if (memcmp(hs->buf, MAGIC, MAGIC_LEN) != 0)
	{
		finish(hs, 0, "not a kalam node (wrong protocol)");
		return;
	}
	memcpy(hs->peer_nonce, hs->buf + MAGIC_LEN, NONCE_LEN);
	memcpy(msg, MAGIC, MAGIC_LEN);
	put32(msg + MAGIC_LEN, (uint32) kalam_node_id);
	put32(msg + MAGIC_LEN + 4, (uint32) hs->channel);
	memcpy(msg + MAGIC_LEN + 8, hs->own_nonce, NONCE_LEN);
	if (!compute_mac("kalam client", hs->peer_nonce, hs->own_nonce,
					 kalam_node_id, hs->peer_id, hs->channel,
					 msg + MAGIC_LEN + 8 + NONCE_LEN) ||
		!send_bytes(hs, msg, CLIENT_PROOF_LEN))
	{
		finish(hs, 0, "could not send the proof");
		return;
	}
	hs->need = SERVER_PROOF_LEN;
	hs->got = 0;
}

/* The client checks the server's proof. */
static void
client_check_proof(KalamHandshake *hs)
{
	unsigned char expected[MAC_LEN];

	if (!compute_mac("kalam server", hs->own_nonce, hs->peer_nonce,
					 hs->peer_id, kalam_node_id, hs->channel, expected) ||
		CRYPTO_memcmp(expected, hs->buf, MAC_LEN) != 0)
	{
		finish(hs, 0, "the peer does not hold the cluster secret, or is not that node");
		return;
	}
	finish(hs, hs->peer_id, NULL);
}

static void
alloc_step(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
	KalamHandshake *hs = (KalamHandshake *) handle->data;

	*buf = uv_buf_init((char *) hs->buf + hs->got, hs->need - hs->got);
}

static void
read_step(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	KalamHandshake *hs = (KalamHandshake *) stream->data;

	if (nread < 0)
	{
		finish(hs, 0, nread == UV_EOF ? "closed by the peer" : uv_strerror((int) nread));
		return;
	}
	hs->got += nread;
	if (hs->got < hs->need)
		return;
	if (hs->server)
		server_check_proof(hs);
	else if (hs->need == SERVER_HELLO_LEN)
		client_send_proof(hs);
	else
		client_check_proof(hs);
}

static void
timed_out(uv_timer_t *timer)
{
	finish((KalamHandshake *) timer->data, 0, "no authentication within 5 s");
}

static KalamHandshake *
start(uv_tcp_t *tcp, bool server, int channel, int peer_id,
	  KalamHandshakeCb cb, void *arg)
{
	KalamHandshake *hs;
	struct sockaddr_storage addr;
	int			addrlen = sizeof(addr);

	if (secret_len == 0)
		return NULL;
	hs = calloc(1, sizeof(KalamHandshake));
	if (hs == NULL)
		return NULL;
	if (!pg_strong_random(hs->own_nonce, NONCE_LEN))
	{
		free(hs);
		return NULL;
	}
	hs->tcp = tcp;
	hs->tcp_data = tcp->data;
	hs->server = server;
	hs->channel = channel;
	hs->peer_id = peer_id;
	hs->cb = cb;
	hs->arg = arg;
	strlcpy(hs->peer, "an unknown address", sizeof(hs->peer));
	if (uv_tcp_getpeername(tcp, (struct sockaddr *) &addr, &addrlen) == 0 &&
		addr.ss_family == AF_INET)
	{
		char		ip[INET_ADDRSTRLEN];

		if (uv_ip4_name((struct sockaddr_in *) &addr, ip, sizeof(ip)) == 0)
			snprintf(hs->peer, sizeof(hs->peer), "%s:%d", ip,
					 ntohs(((struct sockaddr_in *) &addr)->sin_port));
	}

	prepare_socket(tcp);
	tcp->data = hs;
	uv_timer_init(tcp->loop, &hs->timer);
	hs->timer.data = hs;
	if (server)
	{
		unsigned char hello[SERVER_HELLO_LEN];

		memcpy(hello, MAGIC, MAGIC_LEN);
		memcpy(hello + MAGIC_LEN, hs->own_nonce, NONCE_LEN);
		hs->need = CLIENT_PROOF_LEN;
		hs->prev = pending_tail;
		if (pending_tail != NULL)
			pending_tail->next = hs;
		else
			pending_head = hs;
		pending_tail = hs;
		npending++;
		if (!send_bytes(hs, hello, SERVER_HELLO_LEN))
		{
			release(hs);
			return NULL;
		}
	}
	else
		hs->need = SERVER_HELLO_LEN;
	if (uv_read_start((uv_stream_t *) tcp, alloc_step, read_step) != 0)
	{
		release(hs);
		return NULL;
	}
	uv_timer_start(&hs->timer, timed_out, HANDSHAKE_TIMEOUT_MS, 0);

	/* too many strangers waiting: the oldest goes */
	if (server && npending > MAX_PENDING)
		finish(pending_head, 0, "too many connections waiting to authenticate");
	return hs;
}

/*
 * Authenticate the peer of an accepted connection.  NULL if the handshake
 * cannot start (no secret: this node accepts no peers); the caller closes
 * the connection then.  Otherwise cb runs once, later.
 */
KalamHandshake *
kalam_handshake_accept(uv_tcp_t *tcp, int channel, KalamHandshakeCb cb,
					   void *arg)
{
	return start(tcp, true, channel, 0, cb, arg);
}

/* Authenticate ourselves to node peer_id, and it to us, on a connection. */
KalamHandshake *
kalam_handshake_connect(uv_tcp_t *tcp, int channel, int peer_id,
						KalamHandshakeCb cb, void *arg)
{
	return start(tcp, false, channel, peer_id, cb, arg);
}
