/*-------------------------------------------------------------------------
 *
 * transport.h
 *	  libraft's transport for kalam: TCP connections that authenticate
 *	  before libraft reads a byte.
 *
 * src/cluster/transport.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KALAM_TRANSPORT_H
#define KALAM_TRANSPORT_H

#include <raft.h>
#include <raft/uv.h>

/* the Raft address of a node's group, as libraft's configuration has it */
typedef bool (*KalamPeerAddressFn) (int node_id, int group, char *address,
									size_t len);

extern int	kalam_transport_init(struct raft_uv_transport *t, uv_loop_t *loop,
								 int group, bool listen,
								 KalamPeerAddressFn peer_address);
extern void kalam_transport_release(struct raft_uv_transport *t);

#endif							/* KALAM_TRANSPORT_H */
