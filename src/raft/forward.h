/*-------------------------------------------------------------------------
 *
 * forward.h
 *	  Forwarding of commands from a follower's worker to the leader's.
 *
 * src/raft/forward.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KALAM_FORWARD_H
#define KALAM_FORWARD_H

#include <uv.h>

#include "worker/channel.h"

/* a request arrived from another node's worker (leader side) */
typedef void (*KalamForwardRequestCb) (int conn_id, uint64 request_id,
									   int group, const char *command,
									   size_t length);
/* node_id answered a request this node sent it */
typedef void (*KalamForwardReplyCb) (int node_id, uint64 request_id,
									 const KalamApplyResult *result);
/*
 * The connection to a node failed.  If it had been established, requests
 * sent on it are in doubt; if not, they were never sent.
 */
typedef void (*KalamForwardLostCb) (int node_id, bool was_connected);

extern int	kalam_forward_start(uv_loop_t *loop, const char *host, int port,
								KalamForwardRequestCb on_request,
								KalamForwardReplyCb on_reply,
								KalamForwardLostCb on_lost);
extern void kalam_forward_request(int node_id, const char *host, int port,
								  uint64 request_id, int group,
								  const char *command, size_t length);
extern void kalam_forward_reply(int conn_id, uint64 request_id,
								const KalamApplyResult *result);
extern void kalam_forward_stop(void);

#endif							/* KALAM_FORWARD_H */
