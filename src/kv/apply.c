/*-------------------------------------------------------------------------
 *
 * apply.c
 *	  The deterministic apply function: commands into RocksDB.
 *
 * Each Raft group has its own applier.  The group's log entries are staged
 * into one WriteBatchWithIndex and written together by kalam_apply_flush,
 * with the group's applied index in the same batch, so that a replay of the
 * Raft log after a crash skips what is already stored.  The Raft log is the
 * durable record; these writes are not synced.  Each
 * command is staged behind a save point: a command whose checks fail (a
 * duplicate key, a row changed since it was read) is rolled back alone and
 * its failure reported, and every node reaches the same verdict because the
 * checks read only the data the previous commands left.
 *
 * A command is decoded whole (codec/command.c) before anything is staged,
 * and every key it touches must be its group's own (codec/key.c): the
 * group's 2-byte prefix; in a data group a table id other than 0 (table id
 * 0 holds the group's own metadata, such as its applied index); in the
 * meta group only the two kinds of table id 0 row that kalam writes there,
 * DDL records and node client addresses.  A range deletion must name a
 * table.  A command that breaks a rule fails alone, with the same verdict
 * on every node.  The rows of a snapshot transfer are held to the same
 * rules (codec/snapshot.c), chunk by chunk, before anything is written.
 *
 * In a data group, every change to a table row is also staged into the
 * group's change log (codec/change.h), in the same batch: an insert or
 * update with its new row, a delete with the row it removed (a stream
 * row's ttl expiry marked as such), a prefix deletion as one truncate.
 * The notifier and kalam.changes read that log; since it is part of the
 * batch, it is exactly as durable as the rows and the same on every node.
 *
 * A failed batch write leaves the applier failed: it stages and writes
 * nothing more, so that no later entry is written over the lost ones (the
 * stored applied index would skip them), and the kalam worker stops with
 * FATAL; its restart replays the Raft log from the last written index.
 *
 * A command too large for one log entry comes as parts, stored as they
 * arrive, and a split that applies them as one command, on libuv's thread
 * pool with an applier of its own (kalam_apply_fork): a bulk split's rows
 * go to RocksDB as SST files, ingested in one step.  That, bulk inserts
 * and prefix deletions, each alone in its entry and written in a batch of
 * its own, are in bulk_apply.c.
 *
 * Nothing here calls palloc or ereport: errors become status codes, so the
 * function can run inside a libraft callback, or on the thread pool.
 *
 * src/kv/apply.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "codec/change.h"
#include "codec/command.h"
#include "codec/key.h"
#include "codec/row.h"
#include "kv/apply.h"
#include "kv/bulk_apply.h"
#include "kv/keys.h"
#include "kv/prefix_scan.h"
#include "kv/txn_apply.h"

bool		kalam_debug_fail_apply_write = false;


void
kalam_apply_set_error(KalamApplyResult *result, KalamApplyStatus status,
					  const char *msg)
{
	result->status = status;
	strlcpy(result->message, msg ? msg : "", sizeof(result->message));
}

/* The applied index stored with the group's rows: 0 if there is none */
static bool
read_durable_index(KalamApplier *applier, char *errbuf, size_t errlen)
{
	char	   *err = NULL;
	char	   *value;
	size_t		vallen;

	applier->durable_index = 0;
	value = rocksdb_get(applier->db, applier->read_options, applier->applied_key,
						applier->applied_keylen, &vallen, &err);
	if (err != NULL)
	{
		strlcpy(errbuf, err, errlen);
		rocksdb_free(err);
		return false;
	}
	if (value != NULL)
	{
		if (vallen == sizeof(uint64))
			memcpy(&applier->durable_index, value, sizeof(uint64));
		rocksdb_free(value);
	}
	applier->staged_index = applier->durable_index;
	return true;
}

/*
 * Where the change log's retention purge stopped last (stored with its
 * deletions): it goes on from there, not over the tombstones of what it
 * removed before.  False on a storage error (errbuf says which).
 */
static bool
load_purged_position(KalamApplier *applier, char *errbuf, size_t errlen)
{
	char		key[KALAM_CHANGE_PURGED_KEY_LEN];
	char	   *err = NULL;
	char	   *value;
	size_t		vallen;
	uint64		purged[2];

	memset(&applier->purged, 0, sizeof(applier->purged));
	if (!applier->log_changes)
		return true;
	kalam_change_purged_key(key, applier->group);
	value = rocksdb_get(applier->db, applier->read_options, key, sizeof(key),
						&vallen, &err);
	if (err != NULL)
	{
		strlcpy(errbuf, err, errlen);
		rocksdb_free(err);
		return false;
	}
	if (value != NULL && vallen == sizeof(purged))
	{
		memcpy(purged, value, sizeof(purged));
		applier->purged.group = applier->group;
		applier->purged.index = purged[0];
		applier->purged.n = (uint32) purged[1];
	}
	if (value != NULL)
		rocksdb_free(value);
	return true;
}

/*
 * Set up a group's applier; runs at worker start, outside any callback.
 * log_changes: the group's changes go to its change log (data groups).
 */
bool
kalam_apply_init(KalamApplier *applier, rocksdb_t *db, int group,
				 bool log_changes, const char *split_dir, char *errbuf,
				 size_t errlen)
{
	StringInfoData key;

	memset(applier, 0, sizeof(KalamApplier));
	applier->group = group;
	applier->log_changes = log_changes;
	strlcpy(applier->split_dir, split_dir, sizeof(applier->split_dir));
	initStringInfo(&key);
	kalam_key_applied_index(&key, group);
	Assert(key.len <= sizeof(applier->applied_key));
	memcpy(applier->applied_key, key.data, key.len);
	applier->applied_keylen = key.len;
	pfree(key.data);

	applier->db = db;
	applier->batch = rocksdb_writebatch_wi_create(0, 1);
	applier->read_options = rocksdb_readoptions_create();
	applier->write_options = rocksdb_writeoptions_create();

	return read_durable_index(applier, errbuf, errlen) &&
		load_purged_position(applier, errbuf, errlen) &&
		kalam_apply_count_locks(applier, errbuf, errlen);
}

/*
 * Check every operation of a decoded command, and its place in a
 * transaction across groups (txn_op gets its transaction operation, if
 * any); false with *error if one fails.
 */
static bool
command_is_own(const KalamApplier *applier, const char *command,
			   size_t length, uint32 *op_index, KalamOp *txn_op,
			   const char **error)
{
	KalamCommandReader reader;
	KalamOp		op;

	*op_index = 0;
	if (!kalam_command_open(&reader, command, length, error))
		return false;
	while (kalam_command_next(&reader, &op, error))
	{
		KalamKeyUse use = KALAM_KEY_USE_ROW;

		if (op.kind == KALAM_OP_DELETE_PREFIX || op.kind == KALAM_OP_EXPIRE)
			use = KALAM_KEY_USE_RANGE;
		else if (KALAM_OP_IS_TXN(op.kind))
			use = KALAM_KEY_USE_TXN;
		else if (op.kind == KALAM_OP_PART || op.kind == KALAM_OP_SPLIT)
			use = KALAM_KEY_USE_SPLIT;
		if (!kalam_key_check_scope(applier->group, use, op.key, op.keylen,
								   error))
			return false;
		(*op_index)++;
	}
	if (*error != NULL)
		return false;
	*op_index = 0;
	return kalam_command_txn(command, length, txn_op, error);
}

/*
 * Is a split's part (codec/command.h) a command of this group's row
 * writes and prefix deletions only?  Checked when the part is stored and
 * again when it is applied: the database is a file, and what comes out of
 * it is checked like what comes from the network.
 */
bool
kalam_apply_part_is_valid(const KalamApplier *applier, const char *part,
						  size_t len, const char **error)
{
	KalamCommandReader reader;
	KalamOp		op;
	KalamOp		txn_op;
	uint32		bad_op;

	if (!command_is_own(applier, part, len, &bad_op, &txn_op, error))
		return false;
	(void) kalam_command_open(&reader, part, len, error);
	while (kalam_command_next(&reader, &op, error))
		if (KALAM_OP_IS_TXN(op.kind) || op.kind == KALAM_OP_PART ||
			op.kind == KALAM_OP_SPLIT || op.kind == KALAM_OP_EXPIRE)
		{
			*error = "a part of a split holds an operation other than a row write or a prefix deletion";
			return false;
		}
	return true;
}

/*
 * Look a key up through the staged batch and the database.  Returns 1 and
 * the row header if found, 0 if absent, -1 on a storage error.  With
 * stored set, a found row's whole value is left there and its length in
 * *storedlen, for the caller to rocksdb_free.
 */
static int
lookup_row(KalamApplier *applier, const char *key, size_t keylen,
		   KalamRowHeader *header, char **stored, size_t *storedlen,
		   KalamApplyResult *result)
{
	char	   *err = NULL;
	size_t		vallen;
	char	   *value;
	int			i;

	for (i = 0; i < applier->nvalidated_prefixes; i++)
		if (kalam_key_has_prefix(key, keylen, applier->validated_prefixes[i],
								 applier->validated_prefixlens[i]))
			return 0;
	value = rocksdb_writebatch_wi_get_from_batch_and_db(applier->batch,
														applier->db,
														applier->read_options,
														key, keylen,
														&vallen, &err);
	if (err != NULL)
	{
		kalam_apply_set_error(result, KALAM_APPLY_STORAGE_ERROR, err);
		rocksdb_free(err);
		return -1;
	}
	if (value == NULL)
		return 0;
	if (vallen < KALAM_ROW_HEADER_SIZE)
	{
		rocksdb_free(value);
		kalam_apply_set_error(result, KALAM_APPLY_STORAGE_ERROR, "stored row is shorter than its header");
		return -1;
	}
	kalam_row_read_header(value, header);
	if (stored != NULL)
	{
		*stored = value;
		*storedlen = vallen;
	}
	else
		rocksdb_free(value);
	return 1;
}

/* Stage a put into a bulk split's files, a bulk batch or the staged batch */
static void
stage_putv(KalamApplier *applier, const char *key, size_t keylen,
		   int nparts, const char *const *parts, const size_t *sizes)
{
	if (applier->files != NULL)
		kalam_apply_files_putv(applier->files, key, keylen, nparts, parts,
							   sizes);
	else if (applier->bulk != NULL)
		rocksdb_writebatch_putv(applier->bulk, 1, &key, &keylen, nparts,
								parts, sizes);
	else
		rocksdb_writebatch_wi_putv(applier->batch, 1, &key, &keylen, nparts,
								   parts, sizes);
}

/*
 * The first key after every key under a prefix, into a malloc'd *upper
 * (NULL if out of memory); past the group's keys if the prefix is all 0xFF
 * after them.
 */
char *
kalam_apply_range_upper(int group, const char *prefix, size_t prefixlen,
						size_t *upperlen)
{
	char	   *upper = malloc(Max(prefixlen, KALAM_GROUP_PREFIX_LEN));

	if (upper == NULL)
		return NULL;
	memcpy(upper, prefix, prefixlen);
	*upperlen = prefixlen;
	while (*upperlen > 0 && (unsigned char) upper[*upperlen - 1] == 0xFF)
		(*upperlen)--;
	if (*upperlen > 0)
		upper[*upperlen - 1]++;
	else
	{
		kalam_key_group_prefix(group + 1, upper);
		*upperlen = KALAM_GROUP_PREFIX_LEN;
	}
	return upper;
}

/*
 * Stage a change into the group's change log: the command's position and
 * the change's number at that position (counted across the commands of
 * one log entry), the row key and the row payload (without its stored
 * header).
 */
void
kalam_apply_log_change(KalamApplier *applier, KalamChangeOp op, uint8 flags,
					   const char *key, size_t keylen, const char *row,
					   size_t rowlen)
{
	char		change_key[KALAM_CHANGE_KEY_LEN];
	KalamChangePos pos;
	KalamChangeHeader header;
	const char *parts[3];
	size_t		sizes[3];

	if (!applier->log_changes)
		return;
	pos.group = applier->group;
	pos.index = applier->command_index;
	pos.n = applier->command_changes++;
	kalam_change_key(change_key, &pos);
	kalam_change_header(&header, op, flags, keylen, applier->command_time);
	parts[0] = (const char *) &header;
	sizes[0] = sizeof(header);
	parts[1] = key;
	sizes[1] = keylen;
	parts[2] = row;
	sizes[2] = rowlen;
	stage_putv(applier, change_key, sizeof(change_key), row != NULL ? 3 : 2,
			   parts, sizes);
}

void
kalam_apply_put_row(KalamApplier *applier, uint64 index,
					TimestampTz timestamp, const KalamOp *op)
{
	KalamRowHeader header;
	const char *parts[2];
	size_t		sizes[2];

	header.version = index;
	header.write_time = timestamp;
	parts[0] = (const char *) &header;
	sizes[0] = sizeof(header);
	parts[1] = op->value;
	sizes[1] = op->vallen;
	stage_putv(applier, op->key, op->keylen, 2, parts, sizes);
	applier->staged_rows++;
}

/* Stage the deletion of a row that delete_range's scan visits */
static bool
delete_row(const char *key, size_t keylen, const char *value, size_t vallen,
		   void *arg)
{
	KalamApplier *applier = (KalamApplier *) arg;

	rocksdb_writebatch_wi_delete(applier->batch, key, keylen);
	applier->staged_rows++;
	return true;
}

/*
 * A resolved transaction's range deletion: one range tombstone, written at
 * once.  The resolution is alone in its entry with what was staged before
 * written (KALAM_TXN_RESOLVE_RANGES), and its forced writes cannot fail
 * but on a storage error, which stops the worker: replayed, the entry
 * writes the same tombstone again, so writing it before the rest of the
 * entry is safe.  Later writes of the same command, staged, land after it.
 */
static bool
force_range_delete(KalamApplier *applier, const KalamOp *op,
				   KalamApplyResult *result)
{
	rocksdb_writebatch_t *batch;
	size_t		upperlen;
	char	   *upper = kalam_apply_range_upper(applier->group, op->key,
												op->keylen, &upperlen);
	char	   *err = NULL;

	if (upper == NULL)
	{
		kalam_apply_set_error(result, KALAM_APPLY_STORAGE_ERROR, "out of memory");
		return false;
	}
	batch = rocksdb_writebatch_create();
	rocksdb_writebatch_delete_range(batch, op->key, op->keylen, upper, upperlen);
	rocksdb_write(applier->db, applier->write_options, batch, &err);
	rocksdb_writebatch_destroy(batch);
	free(upper);
	if (err != NULL)
	{
		kalam_apply_fail(applier, err);
		rocksdb_free(err);
		kalam_apply_set_error(result, KALAM_APPLY_STORAGE_ERROR, applier->failure);
		return false;
	}
	kalam_apply_log_change(applier, KALAM_CHANGE_TRUNCATE, 0, op->key,
						   op->keylen, NULL, 0);
	return true;
}

/*
 * Delete the rows under a prefix.  The range is read from the database
 * alone: the caller wrote the staged batch first.
 */
static bool
delete_range(KalamApplier *applier, const KalamOp *op,
			 KalamApplyResult *result)
{
	int			locked;

	if ((locked = kalam_apply_range_locked(applier, op->key, op->keylen,
										   result)) != 0)
	{
		if (locked > 0)
			kalam_apply_set_error(result, KALAM_APPLY_LOCKED,
								  "a transaction across groups holds rows of the table");
		return false;
	}
	if (applier->validating &&
		applier->nvalidated_prefixes < KALAM_VALIDATED_PREFIXES)
	{
		/* a prepare's check: later lookups treat the range as deleted */
		applier->validated_prefixes[applier->nvalidated_prefixes] = op->key;
		applier->validated_prefixlens[applier->nvalidated_prefixes++] = op->keylen;
		return true;
	}
	if (applier->forcing)
		return force_range_delete(applier, op, result);
	if (!kalam_scan_prefix(applier->db, applier->read_options, op->key,
						   op->keylen, delete_row, applier, result->message,
						   sizeof(result->message)))
	{
		result->status = KALAM_APPLY_STORAGE_ERROR;
		return false;
	}
	kalam_apply_log_change(applier, KALAM_CHANGE_TRUNCATE, 0, op->key,
						   op->keylen, NULL, 0);
	return true;
}

/*
 * Delete the expired rows of an expiry's range (codec/command.h), each
 * logged as an expired delete.  At most max_rows stored rows of the range
 * are examined, in key order, so the entry's work is bounded however large
 * the table; rows beyond are left to a later expiry.  Rows written at or
 * after the cut-off stay, and so do rows a prepared transaction holds
 * (until a later round).  The range is read from the database alone: the
 * command is alone in its entry, written after what was staged before, so
 * every node examines the same rows.
 */
static bool
expire_range(KalamApplier *applier, const KalamOp *op,
			 KalamApplyResult *result)
{
	KalamExpireHeader expire;
	const char *end;
	size_t		endlen;
	char	   *table_end = NULL;
	rocksdb_readoptions_t *options;
	rocksdb_iterator_t *it;
	uint32		examined;
	char	   *err = NULL;
	bool		ok = true;

	kalam_command_expire_range(op, &expire, &end, &endlen);
	if (endlen == 0)
	{
		table_end = kalam_apply_range_upper(applier->group, op->key,
								KALAM_TABLE_PREFIX_LEN, &endlen);
		if (table_end == NULL)
		{
			kalam_apply_set_error(result, KALAM_APPLY_STORAGE_ERROR, "out of memory");
			return false;
		}
		end = table_end;
	}
	/* the bound also keeps the iterator from stepping over what follows */
	options = rocksdb_readoptions_create();
	rocksdb_readoptions_set_iterate_upper_bound(options, end, endlen);
	it = rocksdb_create_iterator(applier->db, options);
	for (rocksdb_iter_seek(it, op->key, op->keylen), examined = 0;
		 examined < expire.max_rows && rocksdb_iter_valid(it);
		 rocksdb_iter_next(it), examined++)
	{
		size_t		keylen;
		size_t		vallen;
		const char *key = rocksdb_iter_key(it, &keylen);
		const char *value = rocksdb_iter_value(it, &vallen);
		KalamRowHeader header;
		int			locked;

		if (vallen < KALAM_ROW_HEADER_SIZE)
			continue;
		kalam_row_read_header(value, &header);
		if (header.write_time >= expire.cutoff)
			continue;
		locked = kalam_apply_row_locked(applier, key, keylen, result);
		if (locked < 0)
		{
			ok = false;
			break;
		}
		if (locked > 0)
			continue;
		rocksdb_writebatch_wi_delete(applier->batch, key, keylen);
		applier->staged_rows++;
		kalam_apply_log_change(applier, KALAM_CHANGE_DELETE,
							   KALAM_CHANGE_EXPIRED, key, keylen,
							   value + KALAM_ROW_HEADER_SIZE,
							   vallen - KALAM_ROW_HEADER_SIZE);
	}
	rocksdb_iter_get_error(it, &err);
	rocksdb_iter_destroy(it);
	rocksdb_readoptions_destroy(options);
	free(table_end);
	if (err != NULL)
	{
		kalam_apply_set_error(result, KALAM_APPLY_STORAGE_ERROR, err);
		rocksdb_free(err);
		ok = false;
	}
	return ok;
}

/* Fail the command if a prepared transaction holds the operation's row */
static bool
check_row_lock(KalamApplier *applier, const KalamOp *op,
			   KalamApplyResult *result)
{
	int			locked = kalam_apply_row_locked(applier, op->key, op->keylen,
												result);

	if (locked > 0)
		kalam_apply_set_error(result, KALAM_APPLY_LOCKED,
							  "a transaction across groups holds the row");
	return locked == 0;
}

/*
 * Execute one operation into the batch; false when the command must fail.
 * A transaction's resolution forces its writes (applier->forcing): the
 * checks ran at its prepare, and its locks kept every other write off
 * those rows since.
 */
bool
kalam_apply_op(KalamApplier *applier, uint64 index, TimestampTz timestamp,
			   const KalamOp *op, KalamApplyResult *result)
{
	KalamRowHeader header;
	char	   *stored = NULL;
	size_t		storedlen = 0;
	int			found;

	switch (op->kind)
	{
		case KALAM_OP_INSERT:
		case KALAM_OP_INSERT_IF_ABSENT:
			if (!check_row_lock(applier, op, result))
				return false;
			found = lookup_row(applier, op->key, op->keylen, &header, NULL,
							   NULL, result);
			if (found < 0)
				return false;
			if (found && !applier->forcing)
			{
				if (op->kind == KALAM_OP_INSERT_IF_ABSENT)
					return true;
				result->status = KALAM_APPLY_DUPLICATE_KEY;
				return false;
			}
			kalam_apply_put_row(applier, index, timestamp, op);
			kalam_apply_log_change(applier,
								   found ? KALAM_CHANGE_UPDATE : KALAM_CHANGE_INSERT,
								   0, op->key, op->keylen, op->value, op->vallen);
			return true;

		case KALAM_OP_UPDATE:
		case KALAM_OP_DELETE:
			if (!check_row_lock(applier, op, result))
				return false;
			found = lookup_row(applier, op->key, op->keylen, &header,
							   op->kind == KALAM_OP_DELETE ? &stored : NULL,
							   &storedlen, result);
			if (found < 0)
				return false;
			if (!applier->forcing &&
				(!found || header.version != op->expected_version))
			{
				if (stored != NULL)
					rocksdb_free(stored);
				result->status = KALAM_APPLY_ROW_CHANGED;
				return false;
			}
			if (op->kind == KALAM_OP_UPDATE)
			{
				kalam_apply_put_row(applier, index, timestamp, op);
				kalam_apply_log_change(applier,
									   found ? KALAM_CHANGE_UPDATE : KALAM_CHANGE_INSERT,
									   0, op->key, op->keylen, op->value,
									   op->vallen);
			}
			else if (found)
			{
				rocksdb_writebatch_wi_delete(applier->batch, op->key, op->keylen);
				applier->staged_rows++;
				kalam_apply_log_change(applier, KALAM_CHANGE_DELETE, 0,
									   op->key, op->keylen,
									   stored + KALAM_ROW_HEADER_SIZE,
									   storedlen - KALAM_ROW_HEADER_SIZE);
				rocksdb_free(stored);
			}
			return true;

		case KALAM_OP_PUT:
			kalam_apply_put_row(applier, index, timestamp, op);
			return true;

		case KALAM_OP_DELETE_PREFIX:
			return delete_range(applier, op, result);

		case KALAM_OP_PART:
			{
				const char *error;

				if (!kalam_apply_part_is_valid(applier, op->value, op->vallen,
											   &error))
				{
					kalam_apply_set_error(result, KALAM_APPLY_BAD_COMMAND, error);
					return false;
				}
				rocksdb_writebatch_wi_put(applier->batch, op->key, op->keylen,
										  op->value, op->vallen);
				return true;
			}

		case KALAM_OP_EXPIRE:
			return expire_range(applier, op, result);

		default:
			break;
	}
	kalam_apply_set_error(result, KALAM_APPLY_BAD_COMMAND, "unknown operation");
	return false;
}

/*
 * Stage one command at the given position of the group's log.  A command
 * at or below the durable position was applied before a crash and is
 * skipped; one that cannot be decoded, or touches a key that is not its
 * group's, fails alone; after a failed write nothing is staged.  A command
 * that starts with a transaction operation goes to txn_apply.c.
 */
void
kalam_apply_command(KalamApplier *applier, uint64 index, const char *command,
					size_t length, KalamApplyResult *result)
{
	KalamCommandReader reader;
	KalamOp		op;
	KalamOp		txn_op;
	const char *error = NULL;
	uint32		bad_op;
	uint64		rows_before;
	uint64		locks_before;
	uint64		table_locks_before;
	char	   *err = NULL;
	bool		ok = true;
	bool		own_entry;

	memset(result, 0, sizeof(KalamApplyResult));
	result->applied_index = index;
	if (index <= applier->durable_index)
		return;
	if (applier->failed)
	{
		kalam_apply_set_error(result, KALAM_APPLY_STORAGE_ERROR, applier->failure);
		return;
	}

	if (!command_is_own(applier, command, length, &bad_op, &txn_op, &error))
	{
		kalam_apply_set_error(result, KALAM_APPLY_BAD_COMMAND, error);
		result->op_index = bad_op;
		applier->staged_index = index;
		return;
	}
	own_entry = kalam_command_needs_own_entry(command, length);
	if (own_entry && index == applier->staged_index)
	{
		/* the batch written before it would claim the whole entry */
		kalam_apply_set_error(result, KALAM_APPLY_BAD_COMMAND,
							  "a command that must be alone in its log entry is not first in it");
		applier->staged_index = index;
		return;
	}

	/*
	 * Range reads and bulk inserts see only the database: write what is
	 * staged first (a resolution may run a range deletion it holds); such
	 * a command is alone in its entry, so the entries staged before are
	 * whole.
	 */
	if (own_entry && rocksdb_writebatch_wi_count(applier->batch) > 0 &&
		!kalam_apply_flush(applier, result->message, sizeof(result->message)))
	{
		result->status = KALAM_APPLY_STORAGE_ERROR;
		return;
	}

	(void) kalam_command_open(&reader, command, length, &error);
	/* the commands of one log entry share its index: number on across them */
	if (index != applier->command_index)
		applier->command_changes = 0;
	applier->command_index = index;
	applier->command_time = reader.header.timestamp;
	rows_before = applier->staged_rows;
	locks_before = applier->locks;
	table_locks_before = applier->table_locks;
	rocksdb_writebatch_wi_set_save_point(applier->batch);
	if (txn_op.kind != 0)
	{
		(void) kalam_command_next(&reader, &op, &error);
		ok = kalam_apply_txn(applier, index, &reader, &txn_op, command,
							 length, result);
	}
	else if (own_entry && applier->locks == 0 &&
			 kalam_command_is_bulk_insert(command, length))
	{
		ok = kalam_apply_bulk_insert(applier, index, &reader, result);
		if (ok || applier->failed)
		{
			applier->staged_index = index;
			return;
		}
	}
	else if (own_entry && kalam_command_is_split(command, length))
	{
		(void) kalam_command_next(&reader, &op, &error);
		kalam_apply_split(applier, index, reader.header.timestamp, &op,
						  result);
		applier->staged_index = index;
		return;
	}
	else if (own_entry && kalam_command_only_deletes_ranges(command, length))
	{
		ok = kalam_apply_range_deletes(applier, index, &reader, result);
		if (ok || applier->failed)
		{
			applier->staged_index = index;
			return;
		}
	}
	else
		while (kalam_command_next(&reader, &op, &error))
		{
			if (!kalam_apply_op(applier, index, reader.header.timestamp, &op,
								result))
			{
				ok = false;
				break;
			}
			result->op_index++;
		}

	if (!ok)
	{
		rocksdb_writebatch_wi_rollback_to_save_point(applier->batch, &err);
		if (err != NULL)
		{
			kalam_apply_set_error(result, KALAM_APPLY_STORAGE_ERROR, err);
			rocksdb_free(err);
		}
		applier->staged_rows = rows_before;
		applier->locks = locks_before;
		applier->table_locks = table_locks_before;
	}
	else
		result->rows_written = applier->staged_rows - rows_before;
	applier->staged_index = index;
}

/* Mark the applier failed: it stages and writes nothing more. */
void
kalam_apply_fail(KalamApplier *applier, const char *why)
{
	strlcpy(applier->failure, why, sizeof(applier->failure));
	applier->failed = true;
	kalam_apply_discard(applier);
}

/*
 * Write the staged commands and the applied index as one batch.  On a
 * failure the applier is failed for good (see the file header).
 */
bool
kalam_apply_flush(KalamApplier *applier, char *errbuf, size_t errlen)
{
	char	   *err = NULL;

	if (applier->failed)
	{
		strlcpy(errbuf, applier->failure, errlen);
		return false;
	}
	if (applier->staged_index == applier->durable_index)
		return true;
	if (kalam_debug_fail_apply_write)
	{
		kalam_apply_fail(applier, "write failure injected by kalam.debug_fail_apply_write");
		strlcpy(errbuf, applier->failure, errlen);
		return false;
	}
	rocksdb_writebatch_wi_put(applier->batch, applier->applied_key,
							  applier->applied_keylen,
							  (const char *) &applier->staged_index,
							  sizeof(uint64));
	rocksdb_write_writebatch_wi(applier->db, applier->write_options,
								applier->batch, &err);
	if (err != NULL)
	{
		kalam_apply_fail(applier, err);
		rocksdb_free(err);
		strlcpy(errbuf, applier->failure, errlen);
		return false;
	}
	rocksdb_writebatch_wi_clear(applier->batch);
	applier->durable_index = applier->staged_index;
	applier->staged_rows = 0;
	return true;
}

/* Forget what is staged, after a failed write. */
void
kalam_apply_discard(KalamApplier *applier)
{
	rocksdb_writebatch_wi_clear(applier->batch);
	applier->staged_index = applier->durable_index;
	applier->staged_rows = 0;
}

/*
 * An applier of its own for a command applied off the worker's loop (a
 * split, cluster/fsm.c): the same group, database and position, with a batch
 * of its own, so that the loop may go on writing the group's staged batch
 * and nothing is shared but RocksDB's thread-safe handles.  What is staged
 * must be written first.
 */
void
kalam_apply_fork(const KalamApplier *applier, KalamApplier *fork)
{
	Assert(applier->staged_index == applier->durable_index);
	memcpy(fork, applier, sizeof(KalamApplier));
	fork->batch = rocksdb_writebatch_wi_create(0, 1);
	fork->bulk = NULL;
}

/*
 * Take back what the fork applied: its position, and its failure if its
 * write failed; then free its batch.
 */
void
kalam_apply_join(KalamApplier *applier, KalamApplier *fork)
{
	applier->durable_index = fork->durable_index;
	applier->staged_index = fork->staged_index;
	applier->command_index = fork->command_index;
	applier->command_time = fork->command_time;
	applier->command_changes = fork->command_changes;
	if (fork->failed)
	{
		applier->failed = true;
		strlcpy(applier->failure, fork->failure, sizeof(applier->failure));
	}
	rocksdb_writebatch_wi_destroy(fork->batch);
	fork->batch = NULL;
}

void
kalam_apply_destroy(KalamApplier *applier)
{
	rocksdb_writebatch_wi_destroy(applier->batch);
	rocksdb_readoptions_destroy(applier->read_options);
	rocksdb_writeoptions_destroy(applier->write_options);
}

/*
 * Remove the oldest changes of the group's log, those logged before cutoff,
 * and record the position of the last one removed.  It examines at most
 * limit keys, from where it stopped last, so that a call is bounded.
 * RocksDB and libc only: it runs on a thread of libuv's pool, while the
 * loop applies to the same group (different keys).  The log is in commit
 * order and command timestamps come from the committing nodes' clocks, so
 * the purge stops at the first change at or after cutoff: a change is kept
 * at least until cutoff passes it.  Returns the number removed, -1 on a
 * storage error (errbuf says which).
 */
int
kalam_apply_purge_changes(KalamApplier *applier, TimestampTz cutoff,
						  int limit, char *errbuf, size_t errlen)
{
	char		prefix[KALAM_CHANGE_PREFIX_LEN];
	char		purged_key[KALAM_CHANGE_PURGED_KEY_LEN];
	rocksdb_iterator_t *it;
	rocksdb_writebatch_t *batch;
	KalamChangePos last;
	int			examined;
	int			removed = 0;
	char	   *err = NULL;

	if (!applier->log_changes || applier->failed)
		return 0;
	kalam_change_prefix(prefix, applier->group);
	batch = rocksdb_writebatch_create();
	it = rocksdb_create_iterator(applier->db, applier->read_options);
	/* from where the last purge stopped: not over its deletions again */
	if (applier->purged.index > 0)
	{
		char		start[KALAM_CHANGE_KEY_LEN];

		kalam_change_key(start, &applier->purged);
		rocksdb_iter_seek(it, start, sizeof(start));
	}
	else
		rocksdb_iter_seek(it, prefix, sizeof(prefix));
	for (examined = 0;
		 examined < limit && rocksdb_iter_valid(it);
		 rocksdb_iter_next(it), examined++)
	{
		size_t		keylen;
		size_t		vallen;
		const char *key = rocksdb_iter_key(it, &keylen);
		const char *value = rocksdb_iter_value(it, &vallen);
		KalamChange change;
		const char *error;

		if (!kalam_key_has_prefix(key, keylen, prefix, sizeof(prefix)))
			break;
		/* a malformed change is removed as an expired one would be */
		if (kalam_change_read(key, keylen, value, vallen, &change, &error) &&
			change.time >= cutoff)
			break;
		if (!kalam_change_read_key(key, keylen, &last))
			continue;
		rocksdb_writebatch_delete(batch, key, keylen);
		removed++;
	}
	rocksdb_iter_get_error(it, &err);
	rocksdb_iter_destroy(it);
	if (err == NULL && removed > 0)
	{
		uint64		purged[2] = {last.index, last.n};

		kalam_change_purged_key(purged_key, applier->group);
		rocksdb_writebatch_put(batch, purged_key, sizeof(purged_key),
							   (const char *) purged, sizeof(purged));
		rocksdb_write(applier->db, applier->write_options, batch, &err);
		if (err == NULL)
			applier->purged = last;
	}
	rocksdb_writebatch_destroy(batch);
	if (err != NULL)
	{
		strlcpy(errbuf, err, errlen);
		rocksdb_free(err);
		return -1;
	}
	return removed;
}

/*
 * Make what the group applied durable: write what is staged, then sync
 * RocksDB's WAL.  A snapshot descriptor (cluster/fsm.c) names durable_index
 * afterwards, and libraft may then drop the log entries up to it: the
 * rows must not be lost with them.
 */
bool
kalam_apply_sync(KalamApplier *applier, char *errbuf, size_t errlen)
{
	char	   *err = NULL;

	if (!kalam_apply_flush(applier, errbuf, errlen))
		return false;
	rocksdb_flush_wal(applier->db, 1, &err);
	if (err != NULL)
	{
		strlcpy(errbuf, err, errlen);
		rocksdb_free(err);
		return false;
	}
	return true;
}

/*
 * Read the group's stored state again, after a snapshot transfer replaced
 * its rows (kv/transfer.c): what is staged is dropped, the applied
 * index, the change log purge's position and the locks are the stored
 * ones.
 */
bool
kalam_apply_reload(KalamApplier *applier, char *errbuf, size_t errlen)
{
	if (applier->failed)
	{
		strlcpy(errbuf, applier->failure, errlen);
		return false;
	}
	kalam_apply_discard(applier);
	return read_durable_index(applier, errbuf, errlen) &&
		load_purged_position(applier, errbuf, errlen) &&
		kalam_apply_count_locks(applier, errbuf, errlen);
}
