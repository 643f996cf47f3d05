/*-------------------------------------------------------------------------
 *
 * txn_apply.c
 *	  Apply of transactions across groups: prepare, commit, decide and
 *	  resolve (codec/txn.h), and the locks that prepared intents hold.
 *
 * PREPARE runs the transaction's writes to the group exactly as an
 * ordinary command would (the same checks: duplicate keys, versions read,
 * locks of other transactions), then rolls them back and keeps the
 * command as the transaction's intent, with a lock on every row it writes
 * and on every table it deletes a range of.  Until the intent is resolved,
 * any other command that writes a locked row, or deletes a range holding
 * one, fails with KALAM_APPLY_LOCKED (40001 for the client); ttl expiry
 * passes locked rows over.  Readers do not see intents.
 *
 * COMMIT, in the coordinator, applies the coordinator's own writes and
 * writes the record "committed" in the same batch, unless a record exists:
 * "aborted" (recovery gave up on the transaction) fails it, "committed"
 * (the same COMMIT proposed twice) does nothing.  DECIDE writes "aborted"
 * unless a record exists and reports the record.  RESOLVE drops an intent
 * and its locks and, to commit, applies the writes it holds: no check can
 * fail there, since the locks kept every other command off those rows
 * since the prepare checked them (the writes are forced: a row the ttl
 * purge removed meanwhile is written anyway).  A RESOLVE that finds no
 * intent does nothing, so resolving twice is harmless.
 *
 * FORGET removes an old record (txn/recovery.c collects them).  A
 * transaction's commands are each proposed once (a forwarded command that
 * may have reached a leader is never sent again, cluster/node.c), so a
 * prepare cannot arrive after its own resolution.
 *
 * Every verdict reads only what the previous commands left, so every node
 * reaches the same one.  The applier counts the locks held (rebuilt from
 * the store at start and after a snapshot) so that, while no transaction
 * is prepared, ordinary commands pay nothing for all this.
 *
 * Nothing here calls palloc or ereport (see apply.c).
 *
 * src/kv/txn_apply.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "codec/group.h"
#include "codec/key.h"
#include "codec/txn.h"
#include "kv/prefix_scan.h"
#include "kv/txn_apply.h"

/* Lock keys up to this size are built on the stack */
#define LOCK_KEY_INLINE		512

/*
 * The value stored under key, through the staged batch and the database:
 * 1 and a value to rocksdb_free if found, 0 if absent, -1 on an error.
 */
static int
get_value(KalamApplier *applier, const char *key, size_t keylen,
		  char **value, size_t *vallen, KalamApplyResult *result)
{
	char	   *err = NULL;

	*value = rocksdb_writebatch_wi_get_from_batch_and_db(applier->batch,
														 applier->db,
														 applier->read_options,
														 key, keylen,
														 vallen, &err);
	if (err != NULL)
	{
		kalam_apply_set_error(result, KALAM_APPLY_STORAGE_ERROR, err);
		rocksdb_free(err);
		return -1;
	}
	return *value != NULL ? 1 : 0;
}

/* Is key stored (through the batch)?  1, 0, or -1 on an error. */
static int
key_exists(KalamApplier *applier, const char *key, size_t keylen,
		   KalamApplyResult *result)
{
	char	   *value;
	size_t		vallen;
	int			found = get_value(applier, key, keylen, &value, &vallen, result);

	if (found > 0)
		rocksdb_free(value);
	return found;
}

/*
 * Build the lock key of a row into buf (LOCK_KEY_INLINE bytes) or, if it
 * does not fit, into a malloc'd buffer; NULL if out of memory.
 */
static char *
row_lock_key(int group, const char *key, size_t keylen, char *buf,
			 size_t *lockkeylen)
{
	char	   *lockkey = buf;

	*lockkeylen = KALAM_LOCK_PREFIX_LEN + keylen;
	if (*lockkeylen > LOCK_KEY_INLINE && (lockkey = malloc(*lockkeylen)) == NULL)
		return NULL;
	kalam_txn_lock_prefix(lockkey, group);
	memcpy(lockkey + KALAM_LOCK_PREFIX_LEN, key, keylen);
	return lockkey;
}

static int
table_locked(KalamApplier *applier, uint32 table_id, KalamApplyResult *result)
{
	char		tlock[KALAM_TABLE_LOCK_KEY_LEN];

	if (applier->table_locks == 0)
		return 0;
	kalam_txn_table_lock_key(tlock, applier->group, table_id);
	return key_exists(applier, tlock, sizeof(tlock), result);
}

/*
 * Is the row under key held by a prepared transaction, directly or through
 * its table?  1 yes, 0 no, -1 on an error (result says which).
 */
int
kalam_apply_row_locked(KalamApplier *applier, const char *key, size_t keylen,
					   KalamApplyResult *result)
{
	char		buf[LOCK_KEY_INLINE];
	char	   *lockkey;
	size_t		lockkeylen;
	int			found;

	if (applier->locks == 0 || applier->forcing)
		return 0;
	found = table_locked(applier, kalam_key_table(key, keylen), result);
	if (found != 0)
		return found;
	lockkey = row_lock_key(applier->group, key, keylen, buf, &lockkeylen);
	if (lockkey == NULL)
	{
		kalam_apply_set_error(result, KALAM_APPLY_STORAGE_ERROR, "out of memory");
		return -1;
	}
	found = key_exists(applier, lockkey, lockkeylen, result);
	if (lockkey != buf)
		free(lockkey);
	return found;
}

/* Stops at the first lock under the prefix: there is one */
static bool
found_lock(const char *key, size_t keylen, const char *value, size_t vallen,
		   void *arg)
{
	*(bool *) arg = true;
	return false;
}

/*
 * Does a prepared transaction hold the table of the range, or a row under
 * it?  Read from the database: a command that deletes a range has the
 * staged batch written first (apply.c).  1, 0 or -1 as above.
 */
int
kalam_apply_range_locked(KalamApplier *applier, const char *prefix,
						 size_t prefixlen, KalamApplyResult *result)
{
	char		buf[LOCK_KEY_INLINE];
	char	   *lockprefix;
	size_t		lockprefixlen;
	bool		found = false;
	int			locked;
	bool		ok;

	if (applier->locks == 0 || applier->forcing)
		return 0;
	locked = table_locked(applier, kalam_key_table(prefix, prefixlen), result);
	if (locked != 0)
		return locked;
	lockprefix = row_lock_key(applier->group, prefix, prefixlen, buf,
							  &lockprefixlen);
	if (lockprefix == NULL)
	{
		kalam_apply_set_error(result, KALAM_APPLY_STORAGE_ERROR, "out of memory");
		return -1;
	}
	ok = kalam_scan_prefix(applier->db, applier->read_options, lockprefix,
						   lockprefixlen, found_lock, &found, result->message,
						   sizeof(result->message));
	if (lockprefix != buf)
		free(lockprefix);
	if (!ok && !found)
	{
		result->status = KALAM_APPLY_STORAGE_ERROR;
		return -1;
	}
	return found ? 1 : 0;
}

static bool
count_key(const char *key, size_t keylen, const char *value, size_t vallen,
		  void *arg)
{
	(*(uint64 *) arg)++;
	return true;
}

/* Count the locks held in the group, from the database (start, restore). */
bool
kalam_apply_count_locks(KalamApplier *applier, char *errbuf, size_t errlen)
{
	char		prefix[KALAM_LOCK_PREFIX_LEN];
	char		tprefix[KALAM_TABLE_LOCK_PREFIX_LEN];
	uint64		rows = 0;
	uint64		tables = 0;

	errbuf[0] = '\0';
	kalam_txn_lock_prefix(prefix, applier->group);
	kalam_txn_table_lock_prefix(tprefix, applier->group);
	if (!kalam_scan_prefix(applier->db, applier->read_options, prefix,
						   sizeof(prefix), count_key, &rows, errbuf, errlen) ||
		!kalam_scan_prefix(applier->db, applier->read_options, tprefix,
						   sizeof(tprefix), count_key, &tables, errbuf, errlen))
		return errbuf[0] == '\0';
	applier->table_locks = tables;
	applier->locks = rows + tables;
	return true;
}

/*
 * Stage, or with take set remove, the locks of an intent's writes: one per
 * row, one per table a range deletion names.  False if out of memory.
 */
static bool
stage_locks(KalamApplier *applier, KalamCommandReader *reader,
			const char *txid, bool take)
{
	KalamOp		op;
	const char *error;

	while (kalam_command_next(reader, &op, &error))
	{
		char		buf[LOCK_KEY_INLINE];
		char	   *lockkey = buf;
		size_t		lockkeylen;

		if (op.kind == KALAM_OP_DELETE_PREFIX)
		{
			kalam_txn_table_lock_key(buf, applier->group,
									 kalam_key_table(op.key, op.keylen));
			lockkeylen = KALAM_TABLE_LOCK_KEY_LEN;
			applier->table_locks += take ? 1 : -1;
		}
		else if ((lockkey = row_lock_key(applier->group, op.key, op.keylen,
										 buf, &lockkeylen)) == NULL)
			return false;
		if (take)
			rocksdb_writebatch_wi_put(applier->batch, lockkey, lockkeylen,
									  txid, KALAM_TXN_ID_LEN);
		else
			rocksdb_writebatch_wi_delete(applier->batch, lockkey, lockkeylen);
		applier->locks += take ? 1 : -1;
		if (lockkey != buf)
			free(lockkey);
	}
	return true;
}

/* Stage a "txn/" value: its header, then data */
static void
put_txn(KalamApplier *applier, const char *key, KalamTxnState state,
		int coordinator, int nparticipants, TimestampTz time,
		const char *data, size_t datalen)
{
	KalamTxnHeader header;
	const char *parts[2];
	size_t		sizes[2];
	size_t		keylen = KALAM_TXN_KEY_LEN;

	kalam_txn_header(&header, state, coordinator, nparticipants, time);
	parts[0] = (const char *) &header;
	sizes[0] = sizeof(header);
	parts[1] = data;
	sizes[1] = datalen;
	rocksdb_writebatch_wi_putv(applier->batch, 1, &key, &keylen,
							   datalen > 0 ? 2 : 1, parts, sizes);
}

/*
 * Read the "txn/" value under the transaction operation's key: 1 with
 * *record (whose pointers live in *value, to rocksdb_free), 0 if absent,
 * -1 if unreadable (result says why).
 */
static int
read_txn(KalamApplier *applier, const KalamOp *txn_op, char **value,
		 KalamTxnRecord *record, KalamApplyResult *result)
{
	size_t		vallen;
	const char *error;
	int			found = get_value(applier, txn_op->key, txn_op->keylen, value,
								  &vallen, result);

	if (found <= 0)
		return found;
	if (!kalam_txn_read(*value, vallen, record, &error))
	{
		rocksdb_free(*value);
		kalam_apply_set_error(result, KALAM_APPLY_STORAGE_ERROR, error);
		return -1;
	}
	return 1;
}

/* Run the writes that follow the transaction operation; false on a failure */
static bool
run_writes(KalamApplier *applier, uint64 index, KalamCommandReader *reader,
		   KalamApplyResult *result)
{
	KalamOp		op;
	const char *error;

	result->op_index = 1;
	while (kalam_command_next(reader, &op, &error))
	{
		if (!kalam_apply_op(applier, index, reader->header.timestamp, &op,
							result))
			return false;
		result->op_index++;
	}
	return true;
}

static bool
apply_prepare(KalamApplier *applier, uint64 index, KalamCommandReader *reader,
			  const KalamOp *txn_op, const char *command, size_t length,
			  KalamApplyResult *result)
{
	const char *txid = txn_op->key + KALAM_TXN_PREFIX_LEN;
	uint64		rows_before = applier->staged_rows;
	uint32		changes_before = applier->command_changes;
	KalamCommandReader locks;
	KalamOp		first;
	const char *error;
	uint16		coordinator;
	char	   *err = NULL;
	bool		ok;
	int			found;

	memcpy(&coordinator, txn_op->value, sizeof(coordinator));
	if (coordinator >= KALAM_MAX_GROUPS || coordinator == applier->group)
	{
		kalam_apply_set_error(result, KALAM_APPLY_BAD_COMMAND,
							  "prepare names an impossible coordinator group");
		return false;
	}
	/* the same prepare proposed twice keeps its first intent */
	found = key_exists(applier, txn_op->key, txn_op->keylen, result);
	if (found != 0)
		return found > 0;

	/*
	 * Check the writes as if they ran, then take them back; a range
	 * deletion is remembered rather than staged row by row
	 */
	rocksdb_writebatch_wi_set_save_point(applier->batch);
	applier->validating = true;
	ok = run_writes(applier, index, reader, result);
	applier->validating = false;
	applier->nvalidated_prefixes = 0;
	rocksdb_writebatch_wi_rollback_to_save_point(applier->batch, &err);
	applier->staged_rows = rows_before;
	applier->command_changes = changes_before;
	if (err != NULL)
	{
		kalam_apply_set_error(result, KALAM_APPLY_STORAGE_ERROR, err);
		rocksdb_free(err);
		return false;
	}
	if (!ok)
		return false;
	result->op_index = 0;

	put_txn(applier, txn_op->key, KALAM_TXN_PREPARED, coordinator, 0,
			reader->header.timestamp, command, length);
	(void) kalam_command_open(&locks, command, length, &error);
	(void) kalam_command_next(&locks, &first, &error);
	if (!stage_locks(applier, &locks, txid, true))
	{
		kalam_apply_set_error(result, KALAM_APPLY_STORAGE_ERROR, "out of memory");
		return false;
	}
	return true;
}

static bool
apply_commit(KalamApplier *applier, uint64 index, KalamCommandReader *reader,
			 const KalamOp *txn_op, KalamApplyResult *result)
{
	KalamTxnRecord record;
	char	   *value;
	int			found = read_txn(applier, txn_op, &value, &record, result);
	int			n = (int) (txn_op->vallen / sizeof(uint16));
	int			i;

	if (found < 0)
		return false;
	if (found > 0)
	{
		KalamTxnState state = record.state;

		rocksdb_free(value);
		if (state == KALAM_TXN_COMMITTED)
			return true;		/* proposed twice: applied the first time */
		if (state == KALAM_TXN_ABORTED)
			kalam_apply_set_error(result, KALAM_APPLY_TXN_ABORTED,
								  "the transaction was aborted by recovery before its commit arrived");
		else
			kalam_apply_set_error(result, KALAM_APPLY_BAD_COMMAND,
								  "commit in a group that holds the transaction's intent");
		return false;
	}
	for (i = 0; i < n; i++)
	{
		uint16		group;

		memcpy(&group, txn_op->value + i * sizeof(uint16), sizeof(uint16));
		if (group >= KALAM_MAX_GROUPS || group == applier->group)
		{
			kalam_apply_set_error(result, KALAM_APPLY_BAD_COMMAND,
								  "commit names an impossible participant group");
			return false;
		}
	}
	if (!run_writes(applier, index, reader, result))
		return false;
	result->op_index = 0;
	put_txn(applier, txn_op->key, KALAM_TXN_COMMITTED, applier->group, n,
			reader->header.timestamp, txn_op->value, txn_op->vallen);
	return true;
}

static bool
apply_decide(KalamApplier *applier, const KalamCommandReader *reader,
			 const KalamOp *txn_op, KalamApplyResult *result)
{
	KalamTxnRecord record;
	char	   *value;
	int			found = read_txn(applier, txn_op, &value, &record, result);
	KalamTxnState state = KALAM_TXN_ABORTED;

	if (found < 0)
		return false;
	if (found > 0)
	{
		state = record.state;
		rocksdb_free(value);
	}
	else
		put_txn(applier, txn_op->key, KALAM_TXN_ABORTED, applier->group, 0,
				reader->header.timestamp, NULL, 0);
	switch (state)
	{
		case KALAM_TXN_COMMITTED:
			return true;
		case KALAM_TXN_ABORTED:
			/* staged: the command succeeds, and says the outcome */
			kalam_apply_set_error(result, KALAM_APPLY_TXN_ABORTED,
								  "the transaction is aborted");
			return found == 0;
		case KALAM_TXN_PREPARED:
			break;
	}
	kalam_apply_set_error(result, KALAM_APPLY_BAD_COMMAND,
						  "decision asked of a group that holds the transaction's intent");
	return false;
}

static bool
apply_resolve(KalamApplier *applier, uint64 index, const KalamOp *txn_op,
			  KalamApplyResult *result)
{
	const char *txid = txn_op->key + KALAM_TXN_PREFIX_LEN;
	KalamTxnRecord record;
	KalamCommandReader held;
	KalamOp		first;
	const char *error;
	char	   *value;
	int			found = read_txn(applier, txn_op, &value, &record, result);
	bool		ok = true;

	if (found <= 0)
		return found == 0;		/* resolved before: nothing to do */
	if (record.state != KALAM_TXN_PREPARED)
	{
		rocksdb_free(value);
		kalam_apply_set_error(result, KALAM_APPLY_BAD_COMMAND,
							  "resolution sent to the transaction's coordinator");
		return false;
	}
	(void) kalam_command_open(&held, record.command, record.commandlen, &error);
	(void) kalam_command_next(&held, &first, &error);
	if (!stage_locks(applier, &held, txid, false))
	{
		rocksdb_free(value);
		kalam_apply_set_error(result, KALAM_APPLY_STORAGE_ERROR, "out of memory");
		return false;
	}
	if ((txn_op->value[0] & KALAM_TXN_RESOLVE_COMMIT) != 0 &&
		(txn_op->value[0] & KALAM_TXN_RESOLVE_RANGES) == 0 &&
		kalam_command_reads_ranges(record.command, record.commandlen))
	{
		/* its range deletions would read a database missing staged writes */
		rocksdb_free(value);
		kalam_apply_set_error(result, KALAM_APPLY_BAD_COMMAND,
							  "resolution of an intent that deletes ranges does not say so");
		return false;
	}
	if ((txn_op->value[0] & KALAM_TXN_RESOLVE_COMMIT) != 0)
	{
		(void) kalam_command_open(&held, record.command, record.commandlen,
								  &error);
		(void) kalam_command_next(&held, &first, &error);
		applier->forcing = true;
		ok = run_writes(applier, index, &held, result);
		applier->forcing = false;
		result->op_index = 0;
	}
	rocksdb_free(value);
	rocksdb_writebatch_wi_delete(applier->batch, txn_op->key, txn_op->keylen);
	return ok;
}

static bool
apply_forget(KalamApplier *applier, const KalamOp *txn_op,
			 KalamApplyResult *result)
{
	KalamTxnRecord record;
	char	   *value;
	int			found = read_txn(applier, txn_op, &value, &record, result);

	if (found <= 0)
		return found == 0;
	rocksdb_free(value);
	rocksdb_writebatch_wi_delete(applier->batch, txn_op->key, txn_op->keylen);
	return true;
}

/*
 * Apply a command whose first operation (txn_op, already read from reader)
 * is a transaction operation.  False when the command fails: the caller
 * rolls back what it staged.  The coordinator's DECIDE that finds no record
 * succeeds in writing "aborted" yet reports KALAM_APPLY_TXN_ABORTED.
 */
bool
kalam_apply_txn(KalamApplier *applier, uint64 index,
				KalamCommandReader *reader, const KalamOp *txn_op,
				const char *command, size_t length, KalamApplyResult *result)
{
	switch (txn_op->kind)
	{
		case KALAM_OP_TXN_PREPARE:
			return apply_prepare(applier, index, reader, txn_op, command,
								 length, result);
		case KALAM_OP_TXN_COMMIT:
			return apply_commit(applier, index, reader, txn_op, result);
		case KALAM_OP_TXN_DECIDE:
			return apply_decide(applier, reader, txn_op, result);
		case KALAM_OP_TXN_RESOLVE:
			return apply_resolve(applier, index, txn_op, result);
		case KALAM_OP_TXN_FORGET:
			return apply_forget(applier, txn_op, result);
		default:
			break;
	}
	kalam_apply_set_error(result, KALAM_APPLY_BAD_COMMAND,
						  "not a transaction operation");
	return false;
}
