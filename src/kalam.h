/*-------------------------------------------------------------------------
 *
 * kalam.h
 *	  Settings and process-wide declarations shared by every part of kalam.
 *
 * src/kalam.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KALAM_H
#define KALAM_H

/* GUCs (kalam.c) */
extern char *kalam_data_dir;
extern char *kalam_database;
extern char *kalam_as_user;
extern int	kalam_ttl_purge_interval;
extern int	kalam_ttl_purge_batch;
extern int	kalam_change_retention;
extern int	kalam_flush_interval;
extern int	kalam_flush_min_size;
extern int	kalam_manifest_size_limit;
extern int	kalam_worker_wait_timeout;
extern bool kalam_debug_ddl_records;

/* developer settings (debug_hooks.c) */
extern bool kalam_debug_enable_hooks;
extern void kalam_debug_pause(int ms);

/* SQLSTATE for "the outcome of this commit is unknown" */
#define ERRCODE_KALAM_OUTCOME_UNKNOWN	MAKE_SQLSTATE('K','L','0','0','3')

/* SQLSTATE for "this node does not lead the Raft group" */
#define ERRCODE_KALAM_NOT_LEADER	MAKE_SQLSTATE('K','L','0','0','2')

/* SQLSTATE for "this node does not lead the group: read on the leader" */
#define ERRCODE_KALAM_LEADER_ELSEWHERE	MAKE_SQLSTATE('K','L','0','0','4')

/* SQLSTATE for "the changes asked for are older than the change log keeps" */
#define ERRCODE_KALAM_CHANGES_GONE	MAKE_SQLSTATE('K','L','0','0','5')

/* SQLSTATE for "the kalam worker is not available" */
#define ERRCODE_KALAM_WORKER_UNAVAILABLE	MAKE_SQLSTATE('K','L','0','0','1')

extern void kalam_require_preload(void);
extern char *kalam_data_path(const char *sub);

#endif							/* KALAM_H */
