/*-------------------------------------------------------------------------
 *
 * ddl_replay.c
 *	  Running the DDL that other nodes wrote into the meta group's log.
 *
 * Each DDL statement on a kalam table is a row of the meta group (see
 * fdw/ddl.c), stored like any row with the log position that wrote it.
 * When the meta group has applied more, the kalam jobs worker reads the
 * statements past the position recorded in kalam.replay_state and runs
 * those of other nodes, in log order, under the search_path they ran with,
 * and records the new position in the same transaction: each runs exactly
 * once.  A statement that fails stops the replay; the worker tries again
 * on its next round.
 *
 * src/jobs/ddl_replay.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "port/pg_bswap.h"
#include "utils/builtins.h"
#include "utils/snapmgr.h"

#include "fdw/kalam_fdw.h"
#include "jobs/jobs_worker.h"
#include "raft/group.h"
#include "raft/node.h"
#include "storage/keys.h"
#include "storage/rocks.h"
#include "storage/row.h"
#include "worker/channel.h"

typedef struct DdlRecord
{
	uint64		position;		/* meta log position that wrote it */
	int			origin;			/* node that ran it first */
	uint32		table_id;
	char	   *search_path;
	char	   *schema;
	char	   *statement;
} DdlRecord;

static int
compare_records(const void *a, const void *b)
{
	const DdlRecord *x = (const DdlRecord *) a;
	const DdlRecord *y = (const DdlRecord *) b;

	return (x->position > y->position) - (x->position < y->position);
}

/* The DDL records stored past a position, in log order. */
static DdlRecord *
read_records(uint64 after, int *count)
{
	StringInfoData prefix;
	rocksdb_t  *db;
	rocksdb_iterator_t *it;
	DdlRecord  *records = NULL;
	int			n = 0;
	int			cap = 0;

	initStringInfo(&prefix);
	kalam_key_append_group(&prefix, KALAM_GROUP_META);
	kalam_key_append_table(&prefix, 0);
	appendStringInfoString(&prefix, KALAM_DDL_KEY_PREFIX);

	db = kalam_rocks_reader();
	it = rocksdb_create_iterator(db, kalam_rocks_read_options());
	for (rocksdb_iter_seek(it, prefix.data, prefix.len);
		 rocksdb_iter_valid(it);
		 rocksdb_iter_next(it))
	{
		size_t		keylen;
		size_t		vallen;
		const char *key = rocksdb_iter_key(it, &keylen);
		const char *value = rocksdb_iter_value(it, &vallen);
		const char *payload;
		KalamRowHeader header;
		DdlRecord  *r;
		uint32		origin;

		if (!kalam_key_has_prefix(key, keylen, prefix.data, prefix.len))
			break;
		if (keylen < (size_t) prefix.len + 4 || vallen < KALAM_ROW_HEADER_SIZE + 4)
			continue;
		kalam_row_read_header(value, &header);
		if (header.version <= after)
			continue;
		if (n == cap)
		{
			cap = cap ? cap * 2 : 16;
			records = records ? repalloc(records, sizeof(DdlRecord) * cap) :
				palloc(sizeof(DdlRecord) * cap);
		}
		r = &records[n++];
		r->position = header.version;
		memcpy(&origin, key + prefix.len, 4);
		r->origin = (int) pg_ntoh32(origin);
		payload = value + KALAM_ROW_HEADER_SIZE;
		memcpy(&r->table_id, payload, 4);
		/* three NUL-terminated strings: copy them whole */
		r->search_path = palloc(vallen - KALAM_ROW_HEADER_SIZE - 4 + 1);
		memcpy(r->search_path, payload + 4, vallen - KALAM_ROW_HEADER_SIZE - 4);
		r->search_path[vallen - KALAM_ROW_HEADER_SIZE - 4] = '\0';
		r->schema = r->search_path + strlen(r->search_path) + 1;
		r->statement = r->schema + strlen(r->schema) + 1;
	}
	rocksdb_iter_destroy(it);
	if (n > 1)
		qsort(records, n, sizeof(DdlRecord), compare_records);
	*count = n;
	return records;
}

static void
run_sql(const char *sql)
{
	int			ret = SPI_execute(sql, false, 0);

	if (ret < 0)
		elog(ERROR, "kalam DDL replay: SPI_execute failed for \"%s\": %d", sql, ret);
}

static void
replay_record(const DdlRecord *r)
{
	run_sql(psprintf("SET LOCAL search_path TO %s",
					 r->search_path[0] ? r->search_path : "DEFAULT"));
	if (r->schema[0] != '\0')
		run_sql(psprintf("CREATE SCHEMA IF NOT EXISTS %s", quote_identifier(r->schema)));

	kalam_ddl_replaying = true;
	kalam_ddl_replay_table_id = r->table_id;
	PG_TRY();
	{
		run_sql(r->statement);
	}
	PG_FINALLY();
	{
		kalam_ddl_replaying = false;
		kalam_ddl_replay_table_id = 0;
	}
	PG_END_TRY();
}

/*
 * Run the DDL of other nodes that the meta group applied since the last
 * round.  Called by the kalam jobs worker outside a transaction.
 */
void
kalam_replay_ddl(void)
{
	static uint64 seen_meta_index = 0;
	KalamGroupStatus meta;
	DdlRecord  *records;
	uint64		position;
	bool		isnull;
	int			n;
	int			i;

	if (!kalam_channel_group_status(KALAM_GROUP_META, &meta) ||
		meta.applied_index <= seen_meta_index)
		return;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());

	position = 0;
	if (SPI_execute("SELECT 1 FROM pg_extension WHERE extname = 'kalam'", true, 1) != SPI_OK_SELECT)
		elog(ERROR, "kalam DDL replay: could not look for the kalam extension");
	if (SPI_processed == 1)
	{
		if (SPI_execute("SELECT ddl_index FROM kalam.replay_state", true, 1) != SPI_OK_SELECT ||
			SPI_processed != 1)
			elog(ERROR, "kalam DDL replay: kalam.replay_state must hold one row");
		position = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
											   SPI_tuptable->tupdesc, 1, &isnull));
		records = read_records(position, &n);
	}
	else
	{
		/* another node's DDL needs the extension here too */
		records = read_records(0, &n);
		for (i = 0; i < n && records[i].origin == kalam_node_id; i++)
			;
		if (i == n)
			n = 0;
		else
			run_sql("CREATE EXTENSION kalam");
	}

	for (i = 0; i < n; i++)
	{
		if (records[i].origin != kalam_node_id)
		{
			ereport(LOG,
					(errmsg("kalam: running DDL of node %d: %s",
							records[i].origin, records[i].statement)));
			replay_record(&records[i]);
		}
		position = records[i].position;
	}
	if (n > 0)
		run_sql(psprintf("UPDATE kalam.replay_state SET ddl_index = " UINT64_FORMAT,
						 position));

	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	seen_meta_index = meta.applied_index;
}
