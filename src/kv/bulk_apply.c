/*-------------------------------------------------------------------------
 *
 * bulk_apply.c
 *	  Commands applied with a batch of their own, each alone in its log
 *	  entry: bulk inserts, prefix deletions, and splits.
 *
 * apply.c stages a log entry's commands into the group's indexed batch,
 * which costs a search per key and holds the other groups' writes behind
 * one memtable write.  The commands here are alone in their entry, with
 * what was staged before them written first, so each goes to RocksDB in a
 * plain batch of its own (or, for a large bulk split, SST files) with the
 * group's applied index, and reads only the database: a bulk insert's one
 * forward pass of an iterator, a TRUNCATE's range tombstones, a split's
 * parts read back in order.  The verdicts are apply.c's, operation by
 * operation, so every node reaches the same.
 *
 * Nothing here calls palloc or ereport: a split runs on libuv's thread
 * pool (cluster/fsm.c), the rest inside libraft's callbacks.
 *
 * src/kv/bulk_apply.c
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
#include "kv/transfer.h"
#include "kv/txn_apply.h"

/*
 * A bulk split's SST files (kv/transfer.h): one sink for its changes
 * (keys of table id 0, all at the split's position, in order), one for
 * its rows (in order, after those); ingested together at the end.
 */
typedef struct KalamSplitFiles
{
	KalamTransferSink changes;
	KalamTransferSink rows;
	char	   *value;			/* a put's value, assembled */
	size_t		value_cap;
	bool		failed;
	char		error[256];
} KalamSplitFiles;

/*
 * A bulk split goes to RocksDB as one batch up to this size, as SST files
 * beyond: a file for every split would leave thousands of small files (a
 * 10M-row load of 20,000-row splits ran the kalam worker out of file
 * descriptors), and a batch of every size would hold the other groups'
 * writes behind its memtable write (a 1M-row one, 150 MB, held them for
 * seconds).
 */
#define SPLIT_FILES_BYTES	(32 * 1024 * 1024)

static size_t
batch_size(rocksdb_writebatch_t *batch)
{
	size_t		size;

	(void) rocksdb_writebatch_data(batch, &size);
	return size;
}

/* Put a key into the split's files; on a failure, remember the first */
void
kalam_apply_files_putv(KalamSplitFiles *files, const char *key,
					   size_t keylen, int nparts, const char *const *parts,
					   const size_t *sizes)
{
	size_t		len = 0;
	int			i;

	if (files->failed)
		return;
	for (i = 0; i < nparts; i++)
		len += sizes[i];
	if (len > files->value_cap)
	{
		char	   *bigger = realloc(files->value, Max(len, 2 * files->value_cap));

		if (bigger == NULL)
		{
			files->failed = true;
			strlcpy(files->error, "out of memory", sizeof(files->error));
			return;
		}
		files->value = bigger;
		files->value_cap = Max(len, 2 * files->value_cap);
	}
	len = 0;
	for (i = 0; i < nparts; i++)
	{
		memcpy(files->value + len, parts[i], sizes[i]);
		len += sizes[i];
	}
	if (!kalam_transfer_sink_put(kalam_key_table(key, keylen) == 0 ?
								 &files->changes : &files->rows,
								 key, keylen, files->value, len,
								 files->error, sizeof(files->error)))
		files->failed = true;
}

/*
 * Write a command's own batch (applier->bulk: a bulk insert's, or range
 * deletions') with the group's applied index if the command succeeded, and
 * free it.  The command is alone in its log entry, so the index covers it
 * whole.  A failed write fails the applier, as a failed flush does: nothing
 * later may be written over it.  Returns whether the command is applied.
 */
static bool
write_own_batch(KalamApplier *applier, uint64 index, bool ok,
				KalamApplyResult *result)
{
	char	   *err = NULL;

	if (ok && kalam_debug_fail_apply_write)
		err = strdup("write failure injected by kalam.debug_fail_apply_write");
	else if (ok)
	{
		rocksdb_writebatch_put(applier->bulk, applier->applied_key,
							   applier->applied_keylen,
							   (const char *) &index, sizeof(uint64));
		rocksdb_write(applier->db, applier->write_options, applier->bulk, &err);
	}
	rocksdb_writebatch_destroy(applier->bulk);
	applier->bulk = NULL;
	if (err != NULL)
	{
		kalam_apply_fail(applier, err);
		free(err);
		kalam_apply_set_error(result, KALAM_APPLY_STORAGE_ERROR, applier->failure);
		return false;
	}
	if (ok)
		applier->durable_index = index;
	return ok;
}

/*
 * A bulk insert's pass over the database: an iterator that stands on the
 * first stored key at or after the previous insert's.
 */
typedef struct BulkPass
{
	rocksdb_iterator_t *it;
	bool		seeked;
} BulkPass;

/* The version of the row the iterator stands on; 0 if it has no header */
static uint64
stored_version(rocksdb_iterator_t *it)
{
	KalamRowHeader header;
	size_t		vallen;
	const char *value = rocksdb_iter_value(it, &vallen);

	if (vallen < KALAM_ROW_HEADER_SIZE)
		return 0;
	kalam_row_read_header(value, &header);
	return header.version;
}

/*
 * One insert of a bulk insert, its key above the previous one's: stage it
 * unless its key is stored, then an INSERT fails the command (false) and
 * an INSERT_IF_ABSENT does nothing.
 */
static bool
bulk_insert_one(KalamApplier *applier, BulkPass *pass, uint64 index,
				TimestampTz timestamp, const KalamOp *op,
				KalamApplyResult *result)
{
	const char *key = NULL;
	size_t		keylen = 0;
	int			c = 1;

	if (rocksdb_iter_valid(pass->it))
	{
		key = rocksdb_iter_key(pass->it, &keylen);
		c = kalam_key_compare(key, keylen, op->key, op->keylen);
	}
	if (!pass->seeked || (key != NULL && c < 0))
	{
		rocksdb_iter_seek(pass->it, op->key, op->keylen);
		pass->seeked = true;
		c = 1;
		if (rocksdb_iter_valid(pass->it))
		{
			key = rocksdb_iter_key(pass->it, &keylen);
			c = (keylen == op->keylen && memcmp(key, op->key, keylen) == 0) ? 0 : 1;
		}
	}
	/* a row this very entry wrote before a crash (see kalam_apply_split) */
	if (c == 0 && stored_version(pass->it) == index)
		c = 1;
	if (c == 0 && op->kind == KALAM_OP_INSERT)
	{
		result->status = KALAM_APPLY_DUPLICATE_KEY;
		return false;
	}
	if (c != 0)
	{
		kalam_apply_put_row(applier, index, timestamp, op);
		kalam_apply_log_change(applier, KALAM_CHANGE_INSERT, 0, op->key,
							   op->keylen, op->value, op->vallen);
	}
	return true;
}

/* End a bulk pass; false, with the result's error, if the iterator failed */
static bool
bulk_pass_end(BulkPass *pass, KalamApplyResult *result)
{
	char	   *err = NULL;

	rocksdb_iter_get_error(pass->it, &err);
	rocksdb_iter_destroy(pass->it);
	if (err != NULL)
	{
		kalam_apply_set_error(result, KALAM_APPLY_STORAGE_ERROR, err);
		rocksdb_free(err);
		return false;
	}
	return true;
}

/*
 * Apply a bulk insert (codec/command.h): its keys are strictly increasing,
 * so none can meet another of the command, and the command is alone in its
 * log entry with what was staged before written: one forward pass of an
 * iterator over the database finds the keys that exist (one seek for an
 * empty range), and the rows, their changes and the group's applied index
 * go to RocksDB in one batch of their own, without the staged batch's
 * index, which costs a search per key.  The verdicts are those of
 * kalam_apply_op, key by key.  While a transaction across groups holds
 * locks, the ordinary path runs instead (it checks them).  False if the
 * command fails; nothing of it is written then.
 */
bool
kalam_apply_bulk_insert(KalamApplier *applier, uint64 index,
						KalamCommandReader *reader, KalamApplyResult *result)
{
	BulkPass	pass;
	uint64		rows_before = applier->staged_rows;
	KalamOp		op;
	const char *error;
	bool		ok = true;

	pass.it = rocksdb_create_iterator(applier->db, applier->read_options);
	pass.seeked = false;
	applier->bulk = rocksdb_writebatch_create();
	while (ok && kalam_command_next(reader, &op, &error))
	{
		ok = bulk_insert_one(applier, &pass, index, reader->header.timestamp,
							 &op, result);
		if (ok)
			result->op_index++;
	}
	if (!bulk_pass_end(&pass, result))
		ok = false;
	result->rows_written = ok ? applier->staged_rows - rows_before : 0;
	applier->staged_rows = rows_before;
	return write_own_batch(applier, index, ok, result);
}

/*
 * Apply a command of prefix deletions only (a TRUNCATE, or a DROP's rows in
 * a group): each is one range tombstone, written with the truncate change
 * and the group's applied index in a batch of its own, in constant time
 * whatever the table holds.  Deleting key by key through the staged batch
 * held the worker's loop, the thread that also sends heartbeats, for
 * 194 ms + 70 ms of writing per 200k rows; now 0.3 ms (TRUNCATE of 200k
 * rows on one node: 300 ms before, 35 ms now).  The command is alone in
 * its log entry, with what was staged before written
 * (kalam_command_needs_own_entry).  A range holding
 * rows of a prepared transaction fails it, as on the ordinary path.  False
 * if the command fails; nothing of it is written then.
 */
bool
kalam_apply_range_deletes(KalamApplier *applier, uint64 index,
						  KalamCommandReader *reader, KalamApplyResult *result)
{
	KalamOp		op;
	const char *error;
	bool		ok = true;

	applier->bulk = rocksdb_writebatch_create();
	while (kalam_command_next(reader, &op, &error))
	{
		size_t		upperlen;
		char	   *upper = kalam_apply_range_upper(applier->group, op.key,
													op.keylen, &upperlen);
		int			locked = kalam_apply_range_locked(applier, op.key,
													  op.keylen, result);

		if (locked != 0 || upper == NULL)
		{
			if (locked > 0)
				kalam_apply_set_error(result, KALAM_APPLY_LOCKED,
									  "a transaction across groups holds rows of the table");
			else if (locked == 0)
				kalam_apply_set_error(result, KALAM_APPLY_STORAGE_ERROR, "out of memory");
			free(upper);
			ok = false;
			break;
		}
		rocksdb_writebatch_delete_range(applier->bulk, op.key, op.keylen,
										upper, upperlen);
		free(upper);
		kalam_apply_log_change(applier, KALAM_CHANGE_TRUNCATE, 0, op.key,
							   op.keylen, NULL, 0);
		result->op_index++;
	}
	return write_own_batch(applier, index, ok, result);
}

/* A put of the bulk batch, moved into the files */
static void
move_put(void *arg, const char *key, size_t keylen, const char *value,
		 size_t vallen)
{
	size_t		len = vallen;

	kalam_apply_files_putv((KalamSplitFiles *) arg, key, keylen, 1, &value,
						   &len);
}

static void
move_delete(void *arg, const char *key, size_t keylen)
{
	KalamSplitFiles *files = (KalamSplitFiles *) arg;

	files->failed = true;
	strlcpy(files->error, "a bulk split's batch holds a deletion", sizeof(files->error));
}

/*
 * The bulk batch outgrew SPLIT_FILES_BYTES: begin the split's files, with
 * what the batch holds so far (its rows and changes, each in order).
 */
static bool
files_begin(KalamApplier *applier, char *errbuf, size_t errlen)
{
	KalamSplitFiles *files = calloc(1, sizeof(KalamSplitFiles));
	char		dir[MAXPGPATH + 8];

	if (files == NULL)
	{
		strlcpy(errbuf, "out of memory", errlen);
		return false;
	}
	applier->files = files;
	snprintf(dir, sizeof(dir), "%s/changes", applier->split_dir);
	if (!kalam_transfer_sink_begin(&files->changes, dir, errbuf, errlen))
		return false;
	snprintf(dir, sizeof(dir), "%s/rows", applier->split_dir);
	if (!kalam_transfer_sink_begin(&files->rows, dir, errbuf, errlen))
		return false;
	rocksdb_writebatch_iterate(applier->bulk, files, move_put, move_delete);
	rocksdb_writebatch_clear(applier->bulk);
	if (files->failed)
	{
		strlcpy(errbuf, files->error, errlen);
		return false;
	}
	return true;
}

/* Remove a bulk split's files that were not ingested, and forget them */
static void
files_end(KalamApplier *applier)
{
	KalamSplitFiles *files = applier->files;

	if (files == NULL)
		return;
	kalam_transfer_sink_end(&files->changes);
	kalam_transfer_sink_end(&files->rows);
	free(files->value);
	free(files);
	applier->files = NULL;
}

/*
 * A bulk split's files, if it has some, are whole: finish them, and ingest
 * them as one.
 */
static bool
files_ingest(KalamApplier *applier, char *errbuf, size_t errlen)
{
	KalamSplitFiles *files = applier->files;
	KalamTransferSink *sinks[2];

	if (files == NULL)
		return true;
	sinks[0] = &files->changes;
	sinks[1] = &files->rows;
	return kalam_transfer_sink_finish(&files->changes, errbuf, errlen) &&
		kalam_transfer_sink_finish(&files->rows, errbuf, errlen) &&
		kalam_transfer_ingest(sinks, 2, applier->db, errbuf, errlen);
}

/*
 * Apply a split (codec/command.h): read its parts back from the database
 * in order, one at a time, and apply them as one command, all or nothing;
 * then remove the parts, with the group's applied index in the same write,
 * whether the command succeeded or failed (a missing part fails it).
 *
 * A split marked bulk whose parts hold nothing but inserts in strictly
 * increasing key order (any other operation there fails it, on every node
 * alike) is checked as a bulk insert is.  Its rows and changes go into a
 * plain batch, written with the parts' removal and the applied index; once
 * the batch holds SPLIT_FILES_BYTES, into SST files instead, which RocksDB
 * ingests in one step, and then one small batch removes the parts and
 * writes the applied index.  No batch holds a large split's rows in
 * memory, and no memtable write holds the other groups' writes behind it
 * (a 1M-row split written as one batch set off elections in
 * t/015_split.pl).  Neither file's keys meet what the memtable holds in a
 * load (changes at a new position, rows of a new key range), so RocksDB
 * ingests them without flushing it first (kv/transfer.c).  A crash
 * between ingesting and the small batch leaves the rows and changes
 * without the applied index: the split is applied again at restart, and a
 * stored row whose version is the split's own position is taken for what
 * it is, not a duplicate.  The others go through the staged batch,
 * written here.
 *
 * cluster/fsm.c runs this on libuv's thread pool with an applier of its own
 * (kalam_apply_fork), the group's later entries parked meanwhile; it calls
 * RocksDB and libc only.  A storage error fails the applier, as a failed
 * write does: the worker stops and replays the split at restart.
 */
void
kalam_apply_split(KalamApplier *applier, uint64 index, TimestampTz timestamp,
				  const KalamOp *split_op, KalamApplyResult *result)
{
	KalamSplitHeader split;
	const char *split_id = split_op->key + KALAM_PARTS_PREFIX_LEN;
	char		key[KALAM_PART_KEY_LEN];
	char		errbuf[256] = "";
	BulkPass	pass;
	char	   *prev_part = NULL;
	const char *prev_key = NULL;
	size_t		prev_keylen = 0;
	uint64		rows_before = applier->staged_rows;
	uint64		rows;
	bool		bulk;
	bool		ok = true;
	uint32		seq;

	memcpy(&split, split_op->value, sizeof(split));
	bulk = (split.flags & KALAM_SPLIT_BULK) != 0 &&
		(split.flags & KALAM_SPLIT_ABORT) == 0 && applier->locks == 0;
	if (bulk)
	{
		pass.it = rocksdb_create_iterator(applier->db, applier->read_options);
		pass.seeked = false;
		applier->bulk = rocksdb_writebatch_create();
	}
	else
		rocksdb_writebatch_wi_set_save_point(applier->batch);

	for (seq = 0; ok && (split.flags & KALAM_SPLIT_ABORT) == 0 &&
		 seq < split.nparts; seq++)
	{
		KalamCommandReader reader;
		KalamOp		op;
		const char *error = NULL;
		char	   *err = NULL;
		char	   *part;
		size_t		partlen;

		kalam_command_part_key(key, applier->group, split_id, seq);
		part = rocksdb_get(applier->db, applier->read_options, key,
						   sizeof(key), &partlen, &err);
		if (err != NULL)
		{
			strlcpy(errbuf, err, sizeof(errbuf));
			rocksdb_free(err);
			ok = false;
			break;
		}
		if (part == NULL ||
			!kalam_apply_part_is_valid(applier, part, partlen, &error))
		{
			kalam_apply_set_error(result, KALAM_APPLY_BAD_COMMAND,
								  part == NULL ? "a part of the split is missing" : error);
			if (part != NULL)
				rocksdb_free(part);
			ok = false;
			break;
		}
		(void) kalam_command_open(&reader, part, partlen, &error);
		while (ok && kalam_command_next(&reader, &op, &error))
		{
			if (!bulk)
				ok = kalam_apply_op(applier, index, timestamp, &op, result);
			else if ((op.kind != KALAM_OP_INSERT &&
					  op.kind != KALAM_OP_INSERT_IF_ABSENT) ||
					 (prev_key != NULL &&
					  kalam_key_compare(prev_key, prev_keylen, op.key,
										op.keylen) >= 0))
			{
				kalam_apply_set_error(result, KALAM_APPLY_BAD_COMMAND,
									  "a bulk split holds an operation other than an insert, or keys out of order");
				ok = false;
			}
			else
			{
				ok = bulk_insert_one(applier, &pass, index, timestamp, &op,
									 result);
				prev_key = op.key;
				prev_keylen = op.keylen;
				if (applier->files != NULL && applier->files->failed)
				{
					strlcpy(errbuf, applier->files->error, sizeof(errbuf));
					ok = false;
				}
			}
			if (ok)
				result->op_index++;
		}
		/* the previous key points into this part now, if anywhere */
		if (prev_part != NULL)
			rocksdb_free(prev_part);
		prev_part = part;
		if (ok && bulk && applier->files == NULL &&
			batch_size(applier->bulk) >= SPLIT_FILES_BYTES &&
			!files_begin(applier, errbuf, sizeof(errbuf)))
			ok = false;
	}
	if (bulk && !bulk_pass_end(&pass, result))
	{
		strlcpy(errbuf, result->message, sizeof(errbuf));
		ok = false;
	}
	if (prev_part != NULL)
		rocksdb_free(prev_part);
	if (ok && bulk && !files_ingest(applier, errbuf, sizeof(errbuf)))
		ok = false;
	files_end(applier);
	rows = applier->staged_rows - rows_before;
	applier->staged_rows = rows_before;

	/* a failure of this node's storage, not a verdict: stop, and replay */
	if (errbuf[0] != '\0')
	{
		if (bulk)
		{
			rocksdb_writebatch_destroy(applier->bulk);
			applier->bulk = NULL;
		}
		kalam_apply_fail(applier, errbuf);
		kalam_apply_set_error(result, KALAM_APPLY_STORAGE_ERROR, applier->failure);
		return;
	}
	if (ok && (split.flags & KALAM_SPLIT_ABORT) == 0)
		result->rows_written = rows;
	else if (!bulk)
	{
		char	   *err = NULL;

		rocksdb_writebatch_wi_rollback_to_save_point(applier->batch, &err);
		if (err != NULL)
		{
			kalam_apply_fail(applier, err);
			rocksdb_free(err);
			kalam_apply_set_error(result, KALAM_APPLY_STORAGE_ERROR, applier->failure);
			return;
		}
	}

	/* the parts go, whatever became of the command */
	if (bulk && !ok)
		rocksdb_writebatch_clear(applier->bulk);
	for (seq = 0; seq < split.nparts; seq++)
	{
		kalam_command_part_key(key, applier->group, split_id, seq);
		if (bulk)
			rocksdb_writebatch_delete(applier->bulk, key, sizeof(key));
		else
			rocksdb_writebatch_wi_delete(applier->batch, key, sizeof(key));
	}
	if (bulk)
		(void) write_own_batch(applier, index, true, result);
	else
	{
		applier->staged_index = index;
		if (!kalam_apply_flush(applier, result->message, sizeof(result->message)))
			result->status = KALAM_APPLY_STORAGE_ERROR;
	}
}
