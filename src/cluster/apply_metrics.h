/*-------------------------------------------------------------------------
 *
 * apply_metrics.h
 *	  Latency histograms and counters of each Raft group's apply path, in
 *	  shared memory, behind the view kalam.stat_apply.
 *
 * src/cluster/apply_metrics.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KALAM_APPLY_METRICS_H
#define KALAM_APPLY_METRICS_H

extern Size kalam_metrics_shmem_size(void);
extern void kalam_metrics_shmem_init(void);

/* the kalam worker's loop thread records; times in microseconds */
extern uint64 kalam_metrics_now_us(void);
extern void kalam_metrics_entry_arrived(int group);
extern void kalam_metrics_entry_applied(int group, uint64 apply_us,
										int commands, uint64 rows,
										size_t bytes);
extern void kalam_metrics_entry_parked(int group);
extern void kalam_metrics_parked_released(int group, uint64 waited_us);
extern void kalam_metrics_flushed(int group);
extern void kalam_metrics_proposal_committed(int group, uint64 proposed_us);
extern void kalam_metrics_forward_answered(int group, uint64 sent_us);

#endif							/* KALAM_APPLY_METRICS_H */
