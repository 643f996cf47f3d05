/*-------------------------------------------------------------------------
 *
 * apply.h
 *	  The deterministic apply function: commands into RocksDB.
 *
 * src/kv/apply.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KALAM_APPLY_H
#define KALAM_APPLY_H

#include <rocksdb/c.h>

#include "codec/change.h"
#include "codec/result.h"

/* kalam.debug_fail_apply_write (registered in kalam.c): fail batch writes */
extern bool kalam_debug_fail_apply_write;

/* Prefix deletions a prepare's check remembers instead of staging */
#define KALAM_VALIDATED_PREFIXES	8

/* The apply state of one Raft group */
typedef struct KalamApplier
{
	int			group;
	bool		log_changes;	/* keep a change log (codec/change.h) */
	char		applied_key[32];	/* where the applied index is stored */
	size_t		applied_keylen;
	rocksdb_t  *db;
	rocksdb_writebatch_wi_t *batch;
	rocksdb_readoptions_t *read_options;
	rocksdb_writeoptions_t *write_options;
	uint64		durable_index;	/* applied index stored in RocksDB */
	uint64		staged_index;	/* applied index once the batch is written */
	uint64		staged_rows;
	uint64		command_index;	/* the command being applied: its position, */
	TimestampTz command_time;	/* timestamp */
	uint32		command_changes;	/* and changes logged at that position so
									 * far (by every command of its entry) */
	KalamChangePos purged;		/* the last change the purge removed */
	uint64		locks;			/* locks prepared transactions hold */
	uint64		table_locks;	/* of them, on whole tables */
	bool		forcing;		/* applying a resolved transaction's writes */
	rocksdb_writebatch_t *bulk;	/* a bulk insert's own batch, while applied */
	struct KalamSplitFiles *files;	/* a bulk split's SST files, while applied */
	char		split_dir[MAXPGPATH];	/* where they are written */
	/* a prepare's check: prefixes its earlier operations deleted */
	bool		validating;
	int			nvalidated_prefixes;
	const char *validated_prefixes[KALAM_VALIDATED_PREFIXES];
	size_t		validated_prefixlens[KALAM_VALIDATED_PREFIXES];
	bool		failed;			/* a batch write failed: stage nothing more */
	char		failure[256];	/* and why */
} KalamApplier;

extern bool kalam_apply_init(KalamApplier *applier, rocksdb_t *db, int group,
							 bool log_changes, const char *split_dir,
							 char *errbuf, size_t errlen);
extern void kalam_apply_command(KalamApplier *applier, uint64 index,
								const char *command, size_t length,
								KalamApplyResult *result);
extern bool kalam_apply_flush(KalamApplier *applier, char *errbuf,
							  size_t errlen);
extern void kalam_apply_discard(KalamApplier *applier);
extern void kalam_apply_fail(KalamApplier *applier, const char *why);
extern int	kalam_apply_purge_changes(KalamApplier *applier,
									  TimestampTz cutoff, int limit,
									  char *errbuf, size_t errlen);
extern void kalam_apply_fork(const KalamApplier *applier, KalamApplier *fork);
extern void kalam_apply_join(KalamApplier *applier, KalamApplier *fork);
extern void kalam_apply_destroy(KalamApplier *applier);
extern bool kalam_apply_reload(KalamApplier *applier, char *errbuf,
							   size_t errlen);
extern bool kalam_apply_sync(KalamApplier *applier, char *errbuf, size_t errlen);

#endif							/* KALAM_APPLY_H */
