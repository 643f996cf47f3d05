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
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "port/pg_bswap.h"
#include "utils/builtins.h"
#include "utils/snapmgr.h"

#include "fdw/kalam_fdw.h"
#include "jobs/jobs_worker.h"
#include "raft/group.h"
#include "raft/node.h"
#include "storage/keys.h"
#include "storage/prefix_scan.h"
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

/* The DDL records being collected */
typedef struct RecordList
{
	uint64		after;			/* only those past this log position */
	size_t		origin_offset;	/* where the origin node id is in a key */
	DdlRecord  *records;
	int			n;
	int			cap;
} RecordList;

static bool
collect_record(const char *key, size_t keylen, const char *value,
			   size_t vallen, void *arg)
{
	RecordList *list = (RecordList *) arg;
	const char *payload = value + KALAM_ROW_HEADER_SIZE;
	size_t		paylen = vallen - KALAM_ROW_HEADER_SIZE;
	KalamRowHeader header;
	DdlRecord  *r;
	uint32		origin;

	if (keylen < list->origin_offset + 4 || vallen < KALAM_ROW_HEADER_SIZE + 4)
		return true;
	kalam_row_read_header(value, &header);
	if (header.version <= list->after)
		return true;
	if (list->n == list->cap)
	{
		list->cap = list->cap ? list->cap * 2 : 16;
		list->records = list->records ?
			repalloc(list->records, sizeof(DdlRecord) * list->cap) :
			palloc(sizeof(DdlRecord) * list->cap);
	}
	r = &list->records[list->n++];
	r->position = header.version;
	memcpy(&origin, key + list->origin_offset, 4);
	r->origin = (int) pg_ntoh32(origin);
	memcpy(&r->table_id, payload, 4);

	/* three NUL-terminated strings: copy them whole */
	r->search_path = palloc(paylen - 4 + 1);
	memcpy(r->search_path, payload + 4, paylen - 4);
	r->search_path[paylen - 4] = '\0';
	r->schema = r->search_path + strlen(r->search_path) + 1;
	r->statement = r->schema + strlen(r->schema) + 1;
	return true;
}

/* The DDL records stored past a position, in log order. */
static DdlRecord *
read_records(uint64 after, int *count)
{
	StringInfoData prefix;
	RecordList	list;
	rocksdb_t  *db = kalam_rocks_reader();
	char		errbuf[256];

	initStringInfo(&prefix);
	kalam_key_ddl_prefix(&prefix);

	memset(&list, 0, sizeof(list));
	list.after = after;
	list.origin_offset = prefix.len;
	if (!kalam_scan_prefix(db, kalam_rocks_read_options(), prefix.data,
						   prefix.len, collect_record, &list, errbuf,
						   sizeof(errbuf)))
		ereport(ERROR,
				(errcode(ERRCODE_IO_ERROR),
				 errmsg("could not read the replicated DDL: %s", errbuf)));
	if (list.n > 1)
		qsort(list.records, list.n, sizeof(DdlRecord), compare_records);
	*count = list.n;
	return list.records;
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
	Oid			argtype = TEXTOID;
	Datum		path = CStringGetTextDatum(r->search_path);

	/* the value as the origin had it, passed as a value, not spliced into SQL */
	if (SPI_execute_with_args("SELECT set_config('search_path', $1, true)",
							  1, &argtype, &path, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "kalam DDL replay: could not set search_path");
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

/* The meta group's applied position that the last replay read through */
static uint64 replayed_through = 0;

/*
 * Run the DDL of other nodes that the meta group applied past the position
 * in kalam.replay_state.  Called by the kalam jobs worker, outside a
 * transaction, when the meta group moved and on every purge round, so that
 * a missed wake-up costs one round at most.  Nothing to do (and no storage
 * catch-up, which replays every write since the last one) while the meta
 * group stays where the last replay read it.
 */
void
kalam_replay_ddl(void)
{
	KalamGroupStatus meta;
	DdlRecord  *records;
	uint64		position;
	bool		isnull;
	int			n;
	int			i;

	if (!kalam_channel_group_status(KALAM_GROUP_META, &meta))
		return;				/* the kalam worker has not started the groups */
	if (meta.applied_index == replayed_through)
		return;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());

	position = 0;
	if (OidIsValid(get_extension_oid("kalam", true)))
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
	replayed_through = meta.applied_index;
}
