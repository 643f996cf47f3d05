/*-------------------------------------------------------------------------
 *
 * peers.c
 *	  The nodes of the cluster: kalam.peers and kalam.raft_address checked
 *	  at server start, the addresses of the nodes' Raft groups, and the
 *	  client addresses that each node writes into the meta group.
 *
 * Split out of node.c, which runs the groups: this is what every part of
 * the worker (groups, transport, handshake, forwarding) and the backends
 * (kalam.nodes, the leader's address in KL004) ask about the nodes.
 * Group N of a node listens on its kalam.raft_address port + N, its
 * forwarding on port + the number of groups.
 *
 * src/cluster/peers.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "postmaster/postmaster.h"
#include "port/pg_bswap.h"

#include "cluster/handshake.h"
#include "cluster/node.h"
#include "cluster/node_internal.h"
#include "codec/group.h"
#include "codec/row.h"
#include "kv/keys.h"
#include "kv/rocks.h"

static KalamPeer peers[KALAM_MAX_NODES];
static int	npeers = 0;

static void warn_if_ephemeral(int port);

/* "host:port" into its parts; false if it is not that */
static bool
parse_address(const char *address, char *host, int *port)
{
	const char *colon = strrchr(address, ':');
	char	   *end;
	long		p;

	if (colon == NULL || colon == address || colon - address >= KALAM_ADDRESS_LEN)
		return false;
	p = strtol(colon + 1, &end, 10);
	if (*end != '\0' || p < 0 || p > 65535)
		return false;
	memcpy(host, address, colon - address);
	host[colon - address] = '\0';
	*port = (int) p;
	return true;
}

/* A node of kalam.peers; NULL if it is none. */
const KalamPeer *
kalam_peer_find(int node_id)
{
	int			i;

	for (i = 0; i < npeers; i++)
		if (peers[i].id == (raft_id) node_id)
			return &peers[i];
	return NULL;
}

/*
 * Check kalam.node_id, kalam.raft_address and kalam.peers together, at
 * server start, and remember the peers.
 */
void
kalam_node_check_settings(void)
{
	char	   *list = pstrdup(kalam_peers);
	char	   *item;
	char	   *save;
	bool		self_found = false;

	npeers = 0;
	for (item = strtok_r(list, ",", &save); item != NULL;
		 item = strtok_r(NULL, ",", &save))
	{
		char	   *at = strchr(item, '@');
		KalamPeer  *peer = &peers[npeers];
		char	   *end;

		while (*item == ' ')
			item++;
		if (npeers == KALAM_MAX_NODES)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("kalam.peers lists more than %d nodes", KALAM_MAX_NODES)));
		if (at == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid entry \"%s\" in kalam.peers", item),
					 errhint("Write each node as id@host:port, e.g. '1@127.0.0.1:7101,2@127.0.0.1:7201'.")));
		*at = '\0';
		peer->id = strtoul(item, &end, 10);
		if (*end != '\0' || peer->id == 0 || !parse_address(at + 1, peer->host, &peer->port))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid entry \"%s@%s\" in kalam.peers", item, at + 1),
					 errhint("Write each node as id@host:port, with an id above 0.")));
		if (peer->id == (raft_id) kalam_node_id)
		{
			char		host[KALAM_ADDRESS_LEN];
			int			port;

			if (!parse_address(kalam_raft_address, host, &port) ||
				strcmp(host, peer->host) != 0 || port != peer->port)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("kalam.peers gives node %d the address %s:%d, but kalam.raft_address is \"%s\"",
								kalam_node_id, peer->host, peer->port, kalam_raft_address)));
			self_found = true;
		}
		npeers++;
	}
	if (npeers > 0 && !self_found)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("kalam.peers does not list this node (kalam.node_id = %d)", kalam_node_id),
				 errhint("List every initial voter in kalam.peers, this node included.")));
	pfree(list);
	kalam_handshake_load_secret(npeers > 0);
	if (npeers > 0)
		warn_if_ephemeral(kalam_peer_find(kalam_node_id)->port);
}

/*
 * Ports of Linux's ephemeral range (ip_local_port_range) can be held by
 * any outgoing connection or TIME_WAIT socket: a node restarted on one may
 * find it taken and fail to start its groups until it is free again.
 */
static void
warn_if_ephemeral(int port)
{
	FILE	   *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
	int			low;
	int			high;
	int			last = port + kalam_group_count();

	if (f == NULL)
		return;
	if (fscanf(f, "%d %d", &low, &high) == 2 && port <= high && last >= low)
		ereport(WARNING,
				(errmsg("kalam's ports %d to %d lie in the ephemeral port range %d-%d",
						port, last, low, high),
				 errdetail("An outgoing connection may hold one of them when the server restarts, and the node cannot rejoin until it is free."),
				 errhint("Choose a kalam.raft_address port below %d.", low - kalam_group_count())));
	fclose(f);
}

/* Is the node one of kalam.peers? */
bool
kalam_peer_is_member(int node_id)
{
	return kalam_peer_find(node_id) != NULL;
}

int
kalam_node_count(void)
{
	return npeers == 0 ? 1 : npeers;
}

void
kalam_node_info(int i, KalamNodeInfo *info)
{
	if (npeers == 0)
	{
		info->id = kalam_node_id;
		strlcpy(info->raft_address, kalam_raft_address, sizeof(info->raft_address));
		return;
	}
	info->id = (int) peers[i].id;
	snprintf(info->raft_address, sizeof(info->raft_address), "%s:%d",
			 peers[i].host, peers[i].port);
}

/* Where a node's client address is kept in the meta group. */
void
kalam_peer_client_address_key(StringInfo key, int node_id)
{
	uint32		be = pg_hton32((uint32) node_id);

	kalam_key_node_prefix(key);
	appendBinaryStringInfo(key, (char *) &be, sizeof(be));
}

/* This node's client address: kalam.client_address, or listen address and port */
const char *
kalam_peer_own_client_address(void)
{
	static char derived[KALAM_ADDRESS_LEN];
	char	   *first;

	if (kalam_client_address[0] != '\0')
		return kalam_client_address;
	first = pstrdup(ListenAddresses);
	first[strcspn(first, ", ")] = '\0';
	snprintf(derived, sizeof(derived), "%s:%d",
			 (first[0] == '\0' || strcmp(first, "*") == 0) ? "localhost" : first,
			 PostPortNumber);
	pfree(first);
	return derived;
}

/*
 * How clients reach a node's PostgreSQL, as the node wrote it into the
 * meta group; empty if unknown.  Backends only.
 */
const char *
kalam_node_client_address(int node_id)
{
	StringInfoData key;
	size_t		len;
	char	   *value;
	char	   *address;

	if (node_id == kalam_node_id)
		return kalam_peer_own_client_address();
	if (node_id <= 0)
		return "";
	initStringInfo(&key);
	kalam_peer_client_address_key(&key, node_id);
	value = kalam_rocks_get(key.data, key.len, &len);
	if (value == NULL || len <= KALAM_ROW_HEADER_SIZE)
		return "";
	address = pnstrdup(value + KALAM_ROW_HEADER_SIZE, len - KALAM_ROW_HEADER_SIZE);
	pfree(value);
	return address;
}


/* The address of a group of the node at host:port. */
void
kalam_peer_group_address(int group, const char *host, int port, char *out)
{
	snprintf(out, KALAM_ADDRESS_LEN, "%s:%d", host, port == 0 ? 0 : port + group);
}

/* The Raft address of a peer's group; false if the node is no peer. */
bool
kalam_peer_raft_address(int node_id, int group, char *address, size_t len)
{
	const KalamPeer *peer = kalam_peer_find(node_id);

	Assert(len >= KALAM_ADDRESS_LEN);
	if (peer == NULL)
		return false;
	kalam_peer_group_address(group, peer->host, peer->port, address);
	return true;
}

/*
 * The address of a group of this node in a one-node cluster: on
 * kalam.raft_address, or loopback port 0.  It only names the node in the
 * group's configuration: a one-node cluster listens on no port.
 */
void
kalam_peer_self_address(int group, char *out)
{
	char		host[KALAM_ADDRESS_LEN] = "127.0.0.1";
	int			port = 0;

	if (kalam_raft_address[0] != '\0')
		(void) parse_address(kalam_raft_address, host, &port);
	kalam_peer_group_address(group, host, port, out);
}

/* The peers of kalam.peers; none in a one-node cluster. */
int
kalam_peer_count(void)
{
	return npeers;
}

const KalamPeer *
kalam_peer_at(int i)
{
	Assert(i >= 0 && i < npeers);
	return &peers[i];
}
