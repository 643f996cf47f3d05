/*-------------------------------------------------------------------------
 *
 * forward.h
 *	  Forwarding of commands from a follower's worker to the leader's.
 *
 * src/cluster/forward.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KALAM_FORWARD_H
#define KALAM_FORWARD_H

#include <uv.h>

#include "worker/channel.h"

typedef struct KalamForwardCallbacks
{
	/* a request arrived from another node's worker (leader side) */
	void		(*request) (uint64 conn_id, uint64 request_id, int group,
							const char *command, size_t length);
	/* node_id answered a request this node sent it */
	void		(*reply) (int node_id, uint64 request_id,
						  const KalamApplyResult *result);

	/*
	 * The connection to a node failed.  If it had been established,
	 * requests sent on it are in doubt; if not, they were never sent.
	 */
	void		(*lost) (int node_id, bool was_connected);
	/* leader node_id asks whether this node follows it in a term */
	void		(*confirm) (uint64 conn_id, int node_id, uint64 request_id,
							int group, uint64 term);
	/* node_id answered such a question of this node */
	void		(*confirmed) (int node_id, uint64 request_id, int group,
							  uint64 term, bool yes);
	/* node_id asks for the next chunk of a snapshot transfer (snapshot.c) */
	void		(*fetch) (uint64 conn_id, int node_id, uint64 request_id,
						  int group, uint64 session, uint64 index);
	/* node_id sent such a chunk to this node; data is unchecked */
	void		(*chunk) (int node_id, uint64 request_id, const char *data,
						  size_t len);
} KalamForwardCallbacks;

extern int	kalam_forward_start(uv_loop_t *loop, const char *host, int port,
								const KalamForwardCallbacks *callbacks);
extern void kalam_forward_request(int node_id, const char *host, int port,
								  uint64 request_id, int group,
								  const char *command, size_t length);
extern void kalam_forward_reply(uint64 conn_id, uint64 request_id,
								const KalamApplyResult *result);
extern void kalam_forward_ask_confirm(int node_id, const char *host, int port,
									  uint64 request_id, int group,
									  uint64 term);
extern void kalam_forward_answer_confirm(uint64 conn_id, uint64 request_id,
										 int group, uint64 term, bool yes);
extern void kalam_forward_fetch(int node_id, const char *host, int port,
								uint64 request_id, int group, uint64 session,
								uint64 index);
extern void kalam_forward_send(uint64 conn_id, char *frame, size_t len);
extern void kalam_forward_stop(void);

#endif							/* KALAM_FORWARD_H */
