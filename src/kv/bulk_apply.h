/*-------------------------------------------------------------------------
 *
 * bulk_apply.h
 *	  Between apply.c and bulk_apply.c: the commands applied with a batch
 *	  of their own, and the staging helpers they share with apply.c.
 *
 * src/kv/bulk_apply.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KALAM_BULK_APPLY_H
#define KALAM_BULK_APPLY_H

#include "codec/command.h"
#include "kv/apply.h"

/* apply.c */
extern void kalam_apply_put_row(KalamApplier *applier, uint64 index,
								TimestampTz timestamp, const KalamOp *op);
extern void kalam_apply_log_change(KalamApplier *applier, KalamChangeOp op,
								   uint8 flags, const char *key, size_t keylen,
								   const char *row, size_t rowlen);
extern char *kalam_apply_range_upper(int group, const char *prefix,
									 size_t prefixlen, size_t *upperlen);
extern bool kalam_apply_part_is_valid(const KalamApplier *applier,
									  const char *part, size_t len,
									  const char **error);

/* bulk_apply.c */
extern void kalam_apply_files_putv(struct KalamSplitFiles *files,
								   const char *key, size_t keylen, int nparts,
								   const char *const *parts,
								   const size_t *sizes);
extern bool kalam_apply_bulk_insert(KalamApplier *applier, uint64 index,
									KalamCommandReader *reader,
									KalamApplyResult *result);
extern bool kalam_apply_range_deletes(KalamApplier *applier, uint64 index,
									  KalamCommandReader *reader,
									  KalamApplyResult *result);
extern void kalam_apply_split(KalamApplier *applier, uint64 index,
							  TimestampTz timestamp, const KalamOp *split_op,
							  KalamApplyResult *result);

#endif							/* KALAM_BULK_APPLY_H */
