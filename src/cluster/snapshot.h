/*-------------------------------------------------------------------------
 *
 * snapshot.h
 *	  Settings of Raft snapshots and of the transfers that install them.
 *
 * src/cluster/snapshot.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KALAM_RAFT_SNAPSHOT_H
#define KALAM_RAFT_SNAPSHOT_H

extern int	kalam_snapshot_threshold;
extern int	kalam_snapshot_log_size;
extern int	kalam_snapshot_chunk_size;
extern int	kalam_snapshot_transfer_rate;
extern bool kalam_debug_pause_install;

extern void kalam_snapshot_define_gucs(void);

#endif							/* KALAM_RAFT_SNAPSHOT_H */
