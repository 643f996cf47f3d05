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
 * Nothing here calls palloc or ereport: errors become status codes, so the
 * function can run inside a libraft callback.
 *
 * src/storage/apply.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "port/pg_bswap.h"

#include "storage/apply.h"
#include "storage/command.h"
#include "storage/keys.h"
#include "storage/prefix_scan.h"
#include "storage/row.h"

static void
set_error(KalamApplyResult *result, KalamApplyStatus status, const char *msg)
{
	result->status = status;
	strlcpy(result->message, msg ? msg : "", sizeof(result->message));
}

/* Set up a group's applier; runs at worker start, outside any callback. */
bool
kalam_apply_init(KalamApplier *applier, rocksdb_t *db, int group,
				 char *errbuf, size_t errlen)
{
	char	   *err = NULL;
	char	   *value;
	size_t		vallen;
	StringInfoData key;

	memset(applier, 0, sizeof(KalamApplier));
	applier->group = group;
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

	value = rocksdb_get(db, applier->read_options, applier->applied_key,
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
 * Look a key up through the staged batch and the database.  Returns 1 and
 * the row header if found, 0 if absent, -1 on a storage error.
 */
static int
lookup_row(KalamApplier *applier, const char *key, size_t keylen,
		   KalamRowHeader *header, KalamApplyResult *result)
{
	char	   *err = NULL;
	size_t		vallen;
	char	   *value;

	value = rocksdb_writebatch_wi_get_from_batch_and_db(applier->batch,
														applier->db,
														applier->read_options,
														key, keylen,
														&vallen, &err);
	if (err != NULL)
	{
		set_error(result, KALAM_APPLY_STORAGE_ERROR, err);
		rocksdb_free(err);
		return -1;
	}
	if (value == NULL)
		return 0;
	if (vallen < KALAM_ROW_HEADER_SIZE)
	{
		rocksdb_free(value);
		set_error(result, KALAM_APPLY_STORAGE_ERROR, "stored row is shorter than its header");
		return -1;
	}
	kalam_row_read_header(value, header);
	rocksdb_free(value);
	return 1;
}

static void
put_row(KalamApplier *applier, uint64 index, TimestampTz timestamp,
		const KalamOp *op)
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
	rocksdb_writebatch_wi_putv(applier->batch, 1, &op->key, &op->keylen,
							   2, parts, sizes);
	applier->staged_rows++;
}

/* What delete_range's visitor needs */
typedef struct RangeDelete
{
	KalamApplier *applier;
	bool		expire;
	TimestampTz expire_before;
} RangeDelete;

static bool
delete_row(const char *key, size_t keylen, const char *value, size_t vallen,
		   void *arg)
{
	RangeDelete *rd = (RangeDelete *) arg;

	if (rd->expire)
	{
		KalamRowHeader header;

		if (vallen < KALAM_ROW_HEADER_SIZE)
			return true;
		kalam_row_read_header(value, &header);
		if (header.write_time >= rd->expire_before)
			return true;
	}
	rocksdb_writebatch_wi_delete(rd->applier->batch, key, keylen);
	rd->applier->staged_rows++;
	return true;
}

/*
 * Delete the rows under a prefix; with expire set, only those written
 * before the timestamp in the operation's value.  The range is read from
 * the database alone: the caller wrote the staged batch first.
 */
static bool
delete_range(KalamApplier *applier, const KalamOp *op, bool expire,
			 KalamApplyResult *result)
{
	RangeDelete rd;

	rd.applier = applier;
	rd.expire = expire;
	rd.expire_before = 0;
	if (expire)
	{
		if (op->vallen != sizeof(TimestampTz))
		{
			set_error(result, KALAM_APPLY_BAD_COMMAND, "expire operation without a timestamp");
			return false;
		}
		memcpy(&rd.expire_before, op->value, sizeof(TimestampTz));
	}
	if (!kalam_scan_prefix(applier->db, applier->read_options, op->key,
						   op->keylen, delete_row, &rd, result->message,
						   sizeof(result->message)))
	{
		result->status = KALAM_APPLY_STORAGE_ERROR;
		return false;
	}
	return true;
}

/* Execute one operation into the batch; false when the command must fail. */
static bool
apply_op(KalamApplier *applier, uint64 index, TimestampTz timestamp,
		 const KalamOp *op, KalamApplyResult *result)
{
	KalamRowHeader header;
	int			found;

	switch (op->kind)
	{
		case KALAM_OP_INSERT:
		case KALAM_OP_INSERT_IF_ABSENT:
			found = lookup_row(applier, op->key, op->keylen, &header, result);
			if (found < 0)
				return false;
			if (found)
			{
				if (op->kind == KALAM_OP_INSERT_IF_ABSENT)
					return true;
				result->status = KALAM_APPLY_DUPLICATE_KEY;
				return false;
			}
			put_row(applier, index, timestamp, op);
			return true;

		case KALAM_OP_UPDATE:
		case KALAM_OP_DELETE:
			found = lookup_row(applier, op->key, op->keylen, &header, result);
			if (found < 0)
				return false;
			if (!found || header.version != op->expected_version)
			{
				result->status = KALAM_APPLY_ROW_CHANGED;
				return false;
			}
			if (op->kind == KALAM_OP_UPDATE)
				put_row(applier, index, timestamp, op);
			else
			{
				rocksdb_writebatch_wi_delete(applier->batch, op->key, op->keylen);
				applier->staged_rows++;
			}
			return true;

		case KALAM_OP_PUT:
			put_row(applier, index, timestamp, op);
			return true;

		case KALAM_OP_DELETE_PREFIX:
			return delete_range(applier, op, false, result);

		case KALAM_OP_EXPIRE:
			return delete_range(applier, op, true, result);
	}
	set_error(result, KALAM_APPLY_BAD_COMMAND, "unknown operation");
	return false;
}

/*
 * Stage one command at the given position of the group's log.  A command
 * at or below the durable position was applied before a crash and is
 * skipped.
 */
void
kalam_apply_command(KalamApplier *applier, uint64 index, const char *command,
					size_t length, KalamApplyResult *result)
{
	KalamCommandReader reader;
	KalamOp		op;
	bool		corrupt = false;
	uint64		rows_before;
	char	   *err = NULL;

	memset(result, 0, sizeof(KalamApplyResult));
	result->applied_index = index;
	if (index <= applier->durable_index)
		return;

	if (!kalam_command_open(&reader, command, length))
	{
		set_error(result, KALAM_APPLY_BAD_COMMAND, "unknown command format");
		applier->staged_index = index;
		return;
	}

	/* range reads see only the database: write what is staged first */
	if (rocksdb_writebatch_wi_count(applier->batch) > 0 &&
		kalam_command_reads_ranges(command, length) &&
		!kalam_apply_flush(applier, result->message, sizeof(result->message)))
	{
		result->status = KALAM_APPLY_STORAGE_ERROR;
		return;
	}

	rows_before = applier->staged_rows;
	rocksdb_writebatch_wi_set_save_point(applier->batch);
	while (kalam_command_next(&reader, &op, &corrupt))
	{
		if (!apply_op(applier, index, reader.header.timestamp, &op, result))
			break;
		result->op_index++;
	}
	if (corrupt)
		set_error(result, KALAM_APPLY_BAD_COMMAND, "command is truncated");

	if (result->status != KALAM_APPLY_OK)
	{
		rocksdb_writebatch_wi_rollback_to_save_point(applier->batch, &err);
		if (err != NULL)
		{
			set_error(result, KALAM_APPLY_STORAGE_ERROR, err);
			rocksdb_free(err);
		}
		applier->staged_rows = rows_before;
	}
	else
		result->rows_written = applier->staged_rows - rows_before;
	applier->staged_index = index;
}

/* Write the staged commands and the applied index as one batch. */
bool
kalam_apply_flush(KalamApplier *applier, char *errbuf, size_t errlen)
{
	char	   *err = NULL;

	if (applier->staged_index == applier->durable_index)
		return true;
	rocksdb_writebatch_wi_put(applier->batch, applier->applied_key,
							  applier->applied_keylen,
							  (const char *) &applier->staged_index,
							  sizeof(uint64));
	rocksdb_write_writebatch_wi(applier->db, applier->write_options,
								applier->batch, &err);
	if (err != NULL)
	{
		strlcpy(errbuf, err, errlen);
		rocksdb_free(err);
		kalam_apply_discard(applier);
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

void
kalam_apply_destroy(KalamApplier *applier)
{
	rocksdb_writebatch_wi_destroy(applier->batch);
	rocksdb_readoptions_destroy(applier->read_options);
	rocksdb_writeoptions_destroy(applier->write_options);
}

/*
 * Snapshot format: magic 'S', format version 2, 6 reserved bytes, applied
 * index (8), row count (8), required meta index (8), then each row as key
 * length (4), key, value length (4), value.  It carries every key of the
 * group, applied index included, so that a node that missed compacted log
 * entries is rebuilt from it; and, like a command, the meta group position
 * that its rows' tables require.
 */
#define KALAM_SNAPSHOT_MAGIC	'S'
#define KALAM_SNAPSHOT_VERSION	2
#define KALAM_SNAPSHOT_HEADER	32

static void
group_prefix(int group, char *prefix)
{
	uint16		be = pg_hton16((uint16) group);

	memcpy(prefix, &be, KALAM_GROUP_PREFIX_LEN);
}

/* A snapshot being built, in a buffer that grows */
typedef struct SnapshotBuffer
{
	char	   *data;
	size_t		used;
	size_t		cap;
	uint64		count;
	uint64		(*required_of_table) (uint32 table_id);
	uint32		last_table;		/* rows come ordered by table */
	uint64		required;
} SnapshotBuffer;

static bool
append_row(const char *key, size_t keylen, const char *value, size_t vallen,
		   void *arg)
{
	SnapshotBuffer *sb = (SnapshotBuffer *) arg;
	uint32		klen32 = keylen;
	uint32		vlen32 = vallen;
	size_t		need = sb->used + 8 + keylen + vallen;

	if (need > sb->cap)
	{
		char	   *bigger;

		while (need > sb->cap)
			sb->cap *= 2;
		bigger = realloc(sb->data, sb->cap);
		if (bigger == NULL)
			return false;
		sb->data = bigger;
	}
	if (sb->count == 0 || kalam_key_table(key, keylen) != sb->last_table)
	{
		sb->last_table = kalam_key_table(key, keylen);
		sb->required = Max(sb->required, sb->required_of_table(sb->last_table));
	}
	memcpy(sb->data + sb->used, &klen32, 4);
	memcpy(sb->data + sb->used + 4, key, keylen);
	memcpy(sb->data + sb->used + 4 + keylen, &vlen32, 4);
	memcpy(sb->data + sb->used + 8 + keylen, value, vallen);
	sb->used = need;
	sb->count++;
	return true;
}

/*
 * Serialize the group's rows into a malloc'd buffer, after writing what is
 * staged so that the snapshot is the state at the last applied entry.
 * required_of_table gives the meta position that a table's rows require.
 */
bool
kalam_apply_snapshot(KalamApplier *applier,
					 uint64 (*required_of_table) (uint32 table_id),
					 char **data, size_t *len, char *errbuf, size_t errlen)
{
	char		prefix[KALAM_GROUP_PREFIX_LEN];
	SnapshotBuffer sb;

	if (!kalam_apply_flush(applier, errbuf, errlen))
		return false;
	memset(&sb, 0, sizeof(sb));
	sb.cap = 1024 * 1024;
	sb.used = KALAM_SNAPSHOT_HEADER;
	sb.required_of_table = required_of_table;
	sb.data = malloc(sb.cap);
	errbuf[0] = '\0';
	group_prefix(applier->group, prefix);
	if (sb.data == NULL ||
		!kalam_scan_prefix(applier->db, applier->read_options, prefix,
						   sizeof(prefix), append_row, &sb, errbuf, errlen))
	{
		if (errbuf[0] == '\0')
			strlcpy(errbuf, "out of memory", errlen);
		free(sb.data);
		return false;
	}

	memset(sb.data, 0, KALAM_SNAPSHOT_HEADER);
	sb.data[0] = KALAM_SNAPSHOT_MAGIC;
	sb.data[1] = KALAM_SNAPSHOT_VERSION;
	memcpy(sb.data + 8, &applier->durable_index, 8);
	memcpy(sb.data + 16, &sb.count, 8);
	memcpy(sb.data + 24, &sb.required, 8);
	*data = sb.data;
	*len = sb.used;
	return true;
}

/*
 * The meta group position that a snapshot's rows require; 0 if the buffer
 * is no snapshot (kalam_apply_restore reports that).
 */
uint64
kalam_apply_snapshot_required_meta_index(const char *data, size_t len)
{
	uint64		required;

	if (len < KALAM_SNAPSHOT_HEADER || data[0] != KALAM_SNAPSHOT_MAGIC ||
		data[1] != KALAM_SNAPSHOT_VERSION)
		return 0;
	memcpy(&required, data + 24, 8);
	return required;
}

/*
 * Replace the group's rows with a snapshot's, unless what is stored is
 * already as new (a restart loads the last snapshot even when RocksDB went
 * on past it).  Written synced: the log before the snapshot may be gone.
 */
bool
kalam_apply_restore(KalamApplier *applier, const char *data, size_t len,
					char *errbuf, size_t errlen)
{
	char		prefix[KALAM_GROUP_PREFIX_LEN];
	char		end[KALAM_GROUP_PREFIX_LEN];
	rocksdb_writebatch_t *batch;
	rocksdb_writeoptions_t *sync_options;
	uint64		index;
	uint64		count;
	uint64		i;
	size_t		pos = KALAM_SNAPSHOT_HEADER;
	char	   *err = NULL;

	if (len < KALAM_SNAPSHOT_HEADER || data[0] != KALAM_SNAPSHOT_MAGIC ||
		data[1] != KALAM_SNAPSHOT_VERSION)
	{
		strlcpy(errbuf, "unknown snapshot format", errlen);
		return false;
	}
	memcpy(&index, data + 8, 8);
	memcpy(&count, data + 16, 8);
	kalam_apply_discard(applier);
	if (index <= applier->durable_index)
		return true;

	group_prefix(applier->group, prefix);
	group_prefix(applier->group + 1, end);
	batch = rocksdb_writebatch_create();
	rocksdb_writebatch_delete_range(batch, prefix, sizeof(prefix), end, sizeof(end));
	for (i = 0; i < count; i++)
	{
		uint32		keylen;
		uint32		vallen;

		if (pos + 4 > len)
			break;
		memcpy(&keylen, data + pos, 4);
		if (pos + 8 + keylen > len)
			break;
		memcpy(&vallen, data + pos + 4 + keylen, 4);
		if (pos + 8 + keylen + vallen > len)
			break;
		rocksdb_writebatch_put(batch, data + pos + 4, keylen,
							   data + pos + 8 + keylen, vallen);
		pos += 8 + keylen + vallen;
	}
	if (i < count)
	{
		rocksdb_writebatch_destroy(batch);
		strlcpy(errbuf, "snapshot is truncated", errlen);
		return false;
	}

	sync_options = rocksdb_writeoptions_create();
	rocksdb_writeoptions_set_sync(sync_options, 1);
	rocksdb_write(applier->db, sync_options, batch, &err);
	rocksdb_writeoptions_destroy(sync_options);
	rocksdb_writebatch_destroy(batch);
	if (err != NULL)
	{
		strlcpy(errbuf, err, errlen);
		rocksdb_free(err);
		return false;
	}
	applier->durable_index = index;
	applier->staged_index = index;
	return true;
}
