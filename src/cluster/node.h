/*-------------------------------------------------------------------------
 *
 * node.h
 *	  This node's Raft groups, run by the kalam worker on its libuv loop.
 *
 * src/cluster/node.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KALAM_NODE_H
#define KALAM_NODE_H

#include <rocksdb/c.h>
#include <uv.h>

#include "datatype/timestamp.h"
#include "worker/channel.h"

/* settings (kalam.c) */
extern int	kalam_node_id;
extern char *kalam_raft_address;
extern char *kalam_peers;
extern int	kalam_election_timeout;
extern char *kalam_client_address;
extern int	kalam_leader_wait_timeout;
extern bool kalam_debug_hold_meta_apply;
extern int	kalam_parked_memory;

/* a node of kalam.peers (or this node alone) */
typedef struct KalamNodeInfo
{
	int			id;
	char		raft_address[64];
} KalamNodeInfo;

extern int	kalam_node_count(void);
extern void kalam_node_info(int i, KalamNodeInfo *info);
extern const char *kalam_node_client_address(int node_id);

extern void kalam_node_check_settings(void);
extern void kalam_fsm_define_gucs(void);
extern void kalam_node_start(uv_loop_t *loop, rocksdb_t *db);
extern void kalam_node_propose(const KalamPendingCommand *command);
extern void kalam_node_finish_iteration(void);
extern void kalam_node_purge_changes(TimestampTz cutoff);
extern bool kalam_node_storage_failed(char *group_name, char *errbuf,
									  size_t errlen);
extern bool kalam_node_storage_busy(void);
extern void kalam_node_set_storage(rocksdb_t *db);
extern void kalam_node_stop(void);

#endif							/* KALAM_NODE_H */
