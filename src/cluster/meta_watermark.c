/*-------------------------------------------------------------------------
 *
 * meta_watermark.c
 *	  The meta group's log position of the last DDL of each kalam table.
 *
 * Every data command carries required_meta_index: the position in the meta
 * group's log of the last DDL of the tables it writes.  A node applies the
 * command only once its own meta group has applied that far (cluster/fsm.c
 * parks it until then), so a node that rejoins never stores rows of a
 * table before the CREATE or ALTER that shaped them.
 *
 * The kalam worker notes each DDL record as the meta group applies it (and
 * those already stored, at start or from a snapshot); backends read the
 * positions when they build a command.  The positions live in a fixed
 * array of slots in shared memory, a table's slot chosen by a hash of its
 * id.  Tables that share a slot share the later position: a node that is
 * behind may then wait for a DDL it did not need, never skip one it
 * needed.
 *
 * src/cluster/meta_watermark.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "port/atomics.h"
#include "storage/shmem.h"

#include "cluster/meta_watermark.h"
#include "codec/command.h"
#include "codec/ddl_record.h"
#include "codec/row.h"
#include "kv/keys.h"
#include "kv/prefix_scan.h"

#define KALAM_WATERMARK_SLOTS	4096

static pg_atomic_uint64 *watermark_slots = NULL;

/* the DDL rows' key prefix, built before any libraft callback needs it */
static char ddl_prefix[16];
static size_t ddl_prefix_len = 0;

Size
kalam_watermark_shmem_size(void)
{
	return mul_size(KALAM_WATERMARK_SLOTS, sizeof(pg_atomic_uint64));
}

void
kalam_watermark_shmem_init(void)
{
	bool		found;
	int			i;

	watermark_slots = ShmemInitStruct("kalam meta watermark",
									  kalam_watermark_shmem_size(), &found);
	if (!found)
		for (i = 0; i < KALAM_WATERMARK_SLOTS; i++)
			pg_atomic_init_u64(&watermark_slots[i], 0);
}

static pg_atomic_uint64 *
slot_of(uint32 table_id)
{
	return &watermark_slots[hash_bytes_uint32(table_id) % KALAM_WATERMARK_SLOTS];
}

/* Raise a table's position; positions only grow. */
static void
note(uint32 table_id, uint64 meta_index)
{
	pg_atomic_uint64 *slot = slot_of(table_id);
	uint64		seen = pg_atomic_read_u64(slot);

	while (seen < meta_index &&
		   !pg_atomic_compare_exchange_u64(slot, &seen, meta_index))
		;
}

/* The kalam worker, at start: remember the DDL rows' key prefix. */
void
kalam_watermark_prepare(void)
{
	StringInfoData prefix;

	initStringInfo(&prefix);
	kalam_key_ddl_prefix(&prefix);
	Assert(prefix.len <= sizeof(ddl_prefix));
	memcpy(ddl_prefix, prefix.data, prefix.len);
	ddl_prefix_len = prefix.len;
	pfree(prefix.data);
}

static bool
note_stored_record(const char *key, size_t keylen, const char *value,
				   size_t vallen, void *arg)
{
	KalamRowHeader header;
	KalamDdlRecord record;

	if (vallen < KALAM_ROW_HEADER_SIZE ||
		kalam_ddl_record_decode(value + KALAM_ROW_HEADER_SIZE,
								vallen - KALAM_ROW_HEADER_SIZE, &record) != NULL)
		return true;
	kalam_row_read_header(value, &header);
	note(record.table_id, header.version);
	return true;
}

/*
 * The kalam worker, at start and after restoring a snapshot of the meta
 * group: note the DDL records stored (each row's version is the log
 * position that wrote it).  No palloc, no ereport.
 */
bool
kalam_watermark_load(rocksdb_t *db, char *errbuf, size_t errlen)
{
	rocksdb_readoptions_t *options = rocksdb_readoptions_create();
	bool		ok;

	ok = kalam_scan_prefix(db, options, ddl_prefix, ddl_prefix_len,
						   note_stored_record, NULL, errbuf, errlen);
	rocksdb_readoptions_destroy(options);
	return ok;
}

/*
 * The kalam worker, in the meta group's apply: note the DDL records of a
 * command that was applied at meta_index.  No palloc, no ereport.
 */
void
kalam_watermark_note_command(const char *command, size_t length,
							 uint64 meta_index)
{
	KalamCommandReader reader;
	KalamOp		op;
	const char *error;
	KalamDdlRecord record;

	if (!kalam_command_open(&reader, command, length, &error))
		return;
	while (kalam_command_next(&reader, &op, &error))
	{
		if (op.kind == KALAM_OP_DELETE || op.kind == KALAM_OP_DELETE_PREFIX ||
			op.kind == KALAM_OP_EXPIRE ||
			!kalam_key_has_prefix(op.key, op.keylen, ddl_prefix, ddl_prefix_len) ||
			kalam_ddl_record_decode(op.value, op.vallen, &record) != NULL)
			continue;
		note(record.table_id, meta_index);
	}
}

/* The meta position a command writing this table requires (backends). */
uint64
kalam_watermark_of(uint32 table_id)
{
	return pg_atomic_read_u64(slot_of(table_id));
}
