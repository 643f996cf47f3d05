/*-------------------------------------------------------------------------
 *
 * commit.c
 *	  The two-phase commit of a transaction that writes several Raft
 *	  groups, as the committing backend runs it.
 *
 * Committing one command per group, one after the other, is not atomic:
 * when the second fails, the first is applied everywhere.  Measured before
 * this file existed: 6 clients moving units between a shared row and
 * their own user row, with the shared group's leader killed, ended with
 * the total off by 1 or 2 in three runs of four.  So a COMMIT that writes
 * several groups runs the protocol of Spanner and CockroachDB over the
 * groups' logs (README, "Transactions across groups"):
 *
 *	1. prepare: each group but the coordinator (the lowest group written)
 *	   gets its writes behind a PREPARE operation; apply checks them as if
 *	   they ran and keeps them as an intent that locks their rows
 *	   (kv/txn_apply.c).  A failed check fails the COMMIT: the
 *	   prepared groups drop their intents (RESOLVE abort).
 *	2. commit: the coordinator gets its own writes behind a COMMIT
 *	   operation: one entry applies them and records "committed", unless
 *	   recovery recorded "aborted" first.  This entry is the decision.
 *	3. resolve: each prepared group applies its intent (RESOLVE commit).
 *	   COMMIT returns once they have, so the transaction's writes are read
 *	   back on this node like a one-group commit's.  A resolution that
 *	   fails (no leader) is left to recovery: the transaction is committed.
 *
 * The origin may die anywhere in between: recovery (recovery.c) asks the
 * coordinator to decide (DECIDE: "aborted" unless "committed" is there)
 * for any intent older than kalam.transaction_timeout and resolves it so.
 * A COMMIT whose decision entry had an unknown outcome (leadership lost)
 * says so (KL003) and leaves the rest to recovery, which finds out.
 *
 * A transaction that writes one group never comes here: it stays one
 * command in one log entry.
 *
 * src/txn/commit.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "portability/instr_time.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "codec/command.h"
#include "kalam.h"
#include "txn/txn.h"
#include "worker/channel.h"

int			kalam_transaction_timeout = 5000;
int			kalam_debug_pause_after_prepare = 0;
int			kalam_split_timeout = 3600000;

void
kalam_txn_define_gucs(void)
{
	DefineCustomIntVariable("kalam.transaction_timeout",
							"Time after which a prepared transaction across groups is resolved by recovery.",
							"A transaction whose origin died between its phases keeps its rows locked this long; then the leader of each group that holds its intent asks the coordinator group for the outcome (aborted unless already committed) and resolves it.",
							&kalam_transaction_timeout,
							5000,
							100,
							INT_MAX / 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("kalam.split_timeout",
							"Age after which the parts of a large transaction that never committed are removed.",
							"A session that dies between sending its parts and its commit leaves them; the leader of their group removes them after this long, counted from the commit's start.  A commit still running then fails, applying nothing.",
							&kalam_split_timeout,
							3600000,
							1000,
							INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("kalam.debug_pause_after_prepare",
							"Makes a COMMIT across groups wait this long between its prepare and its decision.",
							"For tests of recovery: honoured only with kalam.debug_enable_hooks on.",
							&kalam_debug_pause_after_prepare,
							0,
							0,
							INT_MAX,
							PGC_SUSET,
							GUC_UNIT_MS | GUC_NOT_IN_SAMPLE,
							NULL, NULL, NULL);
}

/* A new transaction writing the groups marked in writes_group */
void
kalam_txn_start(KalamTxn *txn, const bool *writes_group)
{
	int			group;

	if (!pg_strong_random(txn->id, KALAM_TXN_ID_LEN))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random transaction id")));
	txn->coordinator = -1;
	txn->nparticipants = 0;
	for (group = 0; group < kalam_group_count(); group++)
	{
		if (!writes_group[group])
			continue;
		if (txn->coordinator < 0)
			txn->coordinator = group;
		else
			txn->participants[txn->nparticipants++] = group;
	}
}

/*
 * Add the transaction operation that a group's command starts with, right
 * after kalam_command_begin: the coordinator's COMMIT, another's PREPARE.
 */
void
kalam_txn_add_op(StringInfo buf, const KalamTxn *txn, int group)
{
	char		key[KALAM_TXN_KEY_LEN];
	uint16		groups[KALAM_MAX_GROUPS];
	int			i;

	kalam_txn_key(key, group, txn->id, group != txn->coordinator);
	if (group == txn->coordinator)
	{
		for (i = 0; i < txn->nparticipants; i++)
			groups[i] = (uint16) txn->participants[i];
		kalam_command_add(buf, KALAM_OP_TXN_COMMIT, 0, key, sizeof(key),
						  (const char *) groups,
						  txn->nparticipants * sizeof(uint16));
	}
	else
	{
		groups[0] = (uint16) txn->coordinator;
		kalam_command_add(buf, KALAM_OP_TXN_PREPARE, 0, key, sizeof(key),
						  (const char *) groups, sizeof(uint16));
	}
}

/* Submit a command made of one transaction operation */
static KalamApplyStatus
submit_txn_op(int group, KalamOpKind kind, const char *txid, const char *value,
			  size_t vallen, uint64 required_meta, uint64 *applied)
{
	StringInfoData buf;
	KalamApplyResult result;
	char		key[KALAM_TXN_KEY_LEN];

	kalam_txn_key(key, group, txid, kind == KALAM_OP_TXN_RESOLVE);
	initStringInfo(&buf);
	kalam_command_begin(&buf, GetCurrentTimestamp());
	kalam_command_add(&buf, kind, 0, key, sizeof(key), value, vallen);
	kalam_command_require_meta_index(&buf, required_meta);
	kalam_channel_submit(group, buf.data, buf.len, &result);
	pfree(buf.data);
	*applied = result.applied_index;
	return result.status;
}

/*
 * Ask the coordinator for the transaction's outcome, recording "aborted"
 * if it has none: KALAM_APPLY_OK (committed), KALAM_APPLY_TXN_ABORTED, or
 * another status when the coordinator could not be asked.
 */
KalamApplyStatus
kalam_txn_decide(int coordinator, const char *txid, uint64 *applied)
{
	return submit_txn_op(coordinator, KALAM_OP_TXN_DECIDE, txid, NULL, 0, 0,
						 applied);
}

/* Remove the coordinator's record of the transaction */
KalamApplyStatus
kalam_txn_forget(int coordinator, const char *txid)
{
	uint64		applied;

	return submit_txn_op(coordinator, KALAM_OP_TXN_FORGET, txid, NULL, 0, 0,
						 &applied);
}

/*
 * Apply (commit) or drop the transaction's intent in a group; ranges says
 * that its writes delete a range; required_meta is the meta position they
 * need (their tables' DDL, and the decision itself when the meta group
 * coordinates).
 */
KalamApplyStatus
kalam_txn_resolve(int group, const char *txid, bool commit, bool ranges,
				  uint64 required_meta, uint64 *applied)
{
	char		how = commit ? KALAM_TXN_RESOLVE_COMMIT : KALAM_TXN_RESOLVE_ABORT;

	if (ranges)
		how |= KALAM_TXN_RESOLVE_RANGES;

	return submit_txn_op(group, KALAM_OP_TXN_RESOLVE, txid, &how, 1,
						 required_meta, applied);
}

/* The meta position a command requires, from its header */
static uint64
required_meta_of(const StringInfo command)
{
	KalamCommandReader reader;
	const char *error;

	if (!kalam_command_open(&reader, command->data, command->len, &error))
		return 0;
	return reader.header.required_meta_index;
}

/* Drop the intents of the first n participants (they are prepared) */
static void
abort_prepared(const KalamTxn *txn, int n)
{
	int			i;
	uint64		applied;

	for (i = 0; i < n; i++)
		(void) kalam_txn_resolve(txn->participants[i], txn->id, false, false,
								 0, &applied);
	pg_atomic_fetch_add_u64(&kalam_channel_stats()->multi_group_aborted, 1);
}

/*
 * Commit the transaction: commands[g] is group g's command, started with
 * kalam_txn_add_op, for every group it writes.  applied[g] gets the
 * position at which each group applied its part.  Returns -1 once it is
 * committed, or the group whose command failed, with *result saying how;
 * the transaction is then aborted everywhere, except when the decision's
 * outcome is unknown (recovery settles it).
 */
int
kalam_txn_commit(const KalamTxn *txn, StringInfo commands, uint64 *applied,
				 KalamApplyResult *result)
{
	KalamStats *stats = kalam_channel_stats();
	int			coordinator = txn->coordinator;
	uint64		meta_decision = 0;
	instr_time	start;
	instr_time	end;
	int			i;

	INSTR_TIME_SET_CURRENT(start);
	for (i = 0; i < txn->nparticipants; i++)
	{
		int			group = txn->participants[i];

		kalam_channel_submit(group, commands[group].data, commands[group].len,
							 result);
		if (result->status != KALAM_APPLY_OK)
		{
			abort_prepared(txn, i);
			return group;
		}
	}
	kalam_debug_pause(kalam_debug_pause_after_prepare);

	kalam_channel_submit(coordinator, commands[coordinator].data,
						 commands[coordinator].len, result);
	if (result->status != KALAM_APPLY_OK)
	{
		/* a decision that may have been written is recovery's to read */
		if (result->status != KALAM_APPLY_OUTCOME_UNKNOWN &&
			result->status != KALAM_APPLY_LOST)
			abort_prepared(txn, txn->nparticipants);
		return coordinator;
	}
	applied[coordinator] = result->applied_index;
	if (coordinator == KALAM_GROUP_META)
		meta_decision = result->applied_index;

	for (i = 0; i < txn->nparticipants; i++)
	{
		int			group = txn->participants[i];
		KalamApplyStatus status;
		char		name[KALAM_GROUP_NAME_LEN];

		status = kalam_txn_resolve(group, txn->id, true,
								   kalam_command_reads_ranges(commands[group].data,
															  commands[group].len),
								   Max(meta_decision,
									   required_meta_of(&commands[group])),
								   &applied[group]);
		if (status == KALAM_APPLY_OK)
			continue;
		kalam_group_name(group, name);
		ereport(WARNING,
				(errmsg("transaction committed, but group \"%s\" has not applied its part yet",
						name),
				 errdetail("Resolving the transaction's intent failed with status %d; the group's leader resolves it within kalam.transaction_timeout (%d ms).",
						   (int) status, kalam_transaction_timeout),
				 errhint("Until then the transaction's rows in that group keep their old values and cannot be written.")));
	}
	INSTR_TIME_SET_CURRENT(end);
	INSTR_TIME_SUBTRACT(end, start);
	pg_atomic_fetch_add_u64(&stats->multi_group_committed, 1);
	pg_atomic_fetch_add_u64(&stats->multi_group_commit_us,
							INSTR_TIME_GET_MICROSEC(end));
	return -1;
}
