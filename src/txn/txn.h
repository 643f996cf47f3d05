/*-------------------------------------------------------------------------
 *
 * txn.h
 *	  Transactions across Raft groups: the two-phase commit that a
 *	  backend's COMMIT runs, and the recovery that the jobs worker runs.
 *
 * src/txn/txn.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KALAM_TXN_H
#define KALAM_TXN_H

#include "codec/result.h"
#include "codec/txn.h"
#include "lib/stringinfo.h"
#include "codec/group.h"

/* A transaction that writes several groups */
typedef struct KalamTxn
{
	char		id[KALAM_TXN_ID_LEN];
	int			coordinator;	/* the lowest group it writes */
	int			nparticipants;	/* the others */
	int			participants[KALAM_MAX_GROUPS];
} KalamTxn;

/* commit.c */
extern int	kalam_transaction_timeout;
extern int	kalam_debug_pause_after_prepare;
extern int	kalam_split_timeout;

extern void kalam_txn_define_gucs(void);
extern void kalam_txn_start(KalamTxn *txn, const bool *writes_group);
extern void kalam_txn_add_op(StringInfo buf, const KalamTxn *txn, int group);
extern int	kalam_txn_commit(const KalamTxn *txn, StringInfo commands,
							 uint64 *applied, KalamApplyResult *result);
extern KalamApplyStatus kalam_txn_decide(int coordinator, const char *txid,
										 uint64 *applied);
extern KalamApplyStatus kalam_txn_forget(int coordinator, const char *txid);
extern KalamApplyStatus kalam_txn_resolve(int group, const char *txid,
										  bool commit, bool ranges,
										  uint64 required_meta,
										  uint64 *applied);

/* recovery.c */
extern void kalam_txn_recover(void);

#endif							/* KALAM_TXN_H */
