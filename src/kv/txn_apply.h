/*-------------------------------------------------------------------------
 *
 * txn_apply.h
 *	  Apply of the operations of transactions across groups, and the apply
 *	  internals it shares with apply.c.
 *
 * Private to src/kv: apply.c dispatches a command whose first
 * operation is a transaction operation (codec/command.h) to
 * kalam_apply_txn, and asks txn_apply.c whether a row or range is held by
 * a prepared transaction; txn_apply.c runs the ordinary operations
 * through kalam_apply_op.
 *
 * src/kv/txn_apply.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KALAM_TXN_APPLY_H
#define KALAM_TXN_APPLY_H

#include "codec/command.h"
#include "kv/apply.h"

/* apply.c */
extern bool kalam_apply_op(KalamApplier *applier, uint64 index,
						   TimestampTz timestamp, const KalamOp *op,
						   KalamApplyResult *result);
extern void kalam_apply_set_error(KalamApplyResult *result,
								  KalamApplyStatus status, const char *msg);

/* txn_apply.c */
extern bool kalam_apply_txn(KalamApplier *applier, uint64 index,
							KalamCommandReader *reader, const KalamOp *txn_op,
							const char *command, size_t length,
							KalamApplyResult *result);
extern int	kalam_apply_row_locked(KalamApplier *applier, const char *key,
								   size_t keylen, KalamApplyResult *result);
extern int	kalam_apply_range_locked(KalamApplier *applier, const char *prefix,
									 size_t prefixlen, KalamApplyResult *result);
extern bool kalam_apply_count_locks(KalamApplier *applier, char *errbuf,
									size_t errlen);

#endif							/* KALAM_TXN_APPLY_H */
