/*-------------------------------------------------------------------------
 *
 * payload.c
 *	  Reading the change log, and a logged change as JSON: the notifier's
 *	  payloads and the rows of kalam.changes.
 *
 * The change log holds row keys and stored row payloads; listeners want
 * the table's columns by name.  The row and the key become JSON through
 * PostgreSQL's own row_to_json (the key through a blessed row type of the
 * primary key columns), so every type prints as PostgreSQL prints it in
 * JSON; only the envelope around them is assembled here, its strings
 * escaped by escape_json.  A notification payload must stay under
 * PostgreSQL's 8000 bytes: a larger one drops the row and says
 * "truncated": true, and the client reads the row by its key (a key too
 * long to fit is dropped as well: kalam.changes from the position before
 * has it).
 *
 * A position is "group:index:n" (codec/change.h), the same on every node.
 *
 * src/live/payload.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/hsearch.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "kv/rocks.h"
#include "kv/row.h"
#include "live/live.h"

/* PostgreSQL refuses payloads of NOTIFY_PAYLOAD_MAX_LENGTH (8000) bytes */
#define PAYLOAD_MAX		7999

static HTAB *tables = NULL;
static MemoryContext tables_context = NULL;

/* What a read of the log collects */
typedef struct LogRead
{
	KalamChangePos after;		/* skip this position itself */
	const char *row_prefix;		/* only changes of row keys under it */
	size_t		row_prefixlen;
	KalamLoggedChange *changes;
	int			n;
	int			allocated;
	int			max;
} LogRead;

static bool
collect_change(const char *key, size_t keylen, const char *value,
			   size_t vallen, void *arg)
{
	LogRead    *r = (LogRead *) arg;
	KalamChangePos pos;
	KalamChangeHeader header;
	KalamLoggedChange *lc;

	if (kalam_change_read_key(key, keylen, &pos) &&
		kalam_change_pos_cmp(&pos, &r->after) <= 0)
		return true;
	/* the row key follows the head: compare before copying anything */
	if (r->row_prefix != NULL &&
		(vallen < sizeof(header) ||
		 (memcpy(&header, value, sizeof(header)),
		  header.keylen > vallen - sizeof(header)) ||
		 !kalam_key_has_prefix(value + sizeof(header), header.keylen,
							   r->row_prefix, r->row_prefixlen)))
		return true;
	if (r->n >= r->max)
		return false;
	if (r->n >= r->allocated)
	{
		r->allocated *= 2;
		r->changes = repalloc(r->changes,
							  sizeof(KalamLoggedChange) * r->allocated);
	}
	lc = &r->changes[r->n++];
	lc->key = palloc(keylen);
	memcpy(lc->key, key, keylen);
	lc->keylen = keylen;
	lc->value = palloc(vallen);
	memcpy(lc->value, value, vallen);
	lc->vallen = vallen;
	return true;
}

/*
 * Read from this node's storage up to max changes of a group's log after a
 * position, those of row keys under row_prefix if it is not NULL, into a
 * palloc'd array.  Returns how many.
 */
int
kalam_live_read_log(const KalamChangePos *after, const char *row_prefix,
					size_t row_prefixlen, int max, KalamLoggedChange **changes)
{
	char		prefix[KALAM_CHANGE_PREFIX_LEN];
	char		start[KALAM_CHANGE_KEY_LEN];
	char		errbuf[256];
	LogRead		r;

	r.after = *after;
	r.row_prefix = row_prefix;
	r.row_prefixlen = row_prefixlen;
	r.n = 0;
	r.allocated = 64;
	r.changes = palloc(sizeof(KalamLoggedChange) * r.allocated);
	r.max = max;
	kalam_change_prefix(prefix, after->group);
	kalam_change_key(start, after);
	errbuf[0] = '\0';
	if (!kalam_rocks_scan_prefix_from(prefix, sizeof(prefix),
									  start, sizeof(start),
									  collect_change, &r, errbuf, sizeof(errbuf)) &&
		errbuf[0] != '\0')
		ereport(ERROR,
				(errcode(ERRCODE_IO_ERROR),
				 errmsg("kalam could not read the change log: %s", errbuf)));
	*changes = r.changes;
	return r.n;
}

/* Decode a change read from the log; a malformed one is an ERROR. */
void
kalam_live_read_change(const KalamLoggedChange *lc, KalamChange *change)
{
	const char *error;

	if (!kalam_change_read(lc->key, lc->keylen, lc->value, lc->vallen,
						   change, &error))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("kalam change log holds a malformed change: %s", error)));
}

/* Forget what is known of kalam tables (after DDL). */
void
kalam_live_forget_tables(void)
{
	if (tables_context != NULL)
		MemoryContextReset(tables_context);
	tables = NULL;
}

/* The relation of a kalam table id, by kalam.tables; InvalidOid if none. */
static Oid
relid_of(uint32 table_id)
{
	Oid			argtypes[1] = {INT4OID};
	Datum		args[1] = {Int32GetDatum((int32) table_id)};
	Oid			relid = InvalidOid;

	SPI_connect();
	if (SPI_execute_with_args("SELECT \"table\"::oid FROM kalam.tables WHERE id = $1",
							  1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "kalam could not look up table id %u", table_id);
	if (SPI_processed == 1)
	{
		bool		isnull;

		relid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0],
											   SPI_tuptable->tupdesc, 1,
											   &isnull));
	}
	SPI_finish();
	return relid;
}

/*
 * What the notifier needs of a kalam table, by its id, cached for the life
 * of the process until kalam_live_forget_tables; NULL if no table has the
 * id here (dropped, or its DDL not replayed yet).  An entry whose
 * relation could not be opened stays with an invalid relid and is looked
 * up again.
 */
KalamLiveTable *
kalam_live_table(uint32 table_id)
{
	KalamLiveTable *entry;
	bool		found;
	Relation	rel;
	KalamTable *table;
	MemoryContext old;
	Oid			relid;
	int			i;

	if (tables == NULL)
	{
		HASHCTL		ctl;

		if (tables_context == NULL)
			tables_context = AllocSetContextCreate(TopMemoryContext,
												   "kalam live tables",
												   ALLOCSET_SMALL_SIZES);
		ctl.keysize = sizeof(uint32);
		ctl.entrysize = sizeof(KalamLiveTable);
		ctl.hcxt = tables_context;
		tables = hash_create("kalam live tables", 64, &ctl,
							 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	entry = hash_search(tables, &table_id, HASH_FIND, NULL);
	if (entry != NULL && OidIsValid(entry->relid))
		return entry;

	/* not cached when missing: its DDL may be replayed here any moment */
	relid = relid_of(table_id);
	if (!OidIsValid(relid))
		return NULL;
	entry = hash_search(tables, &table_id, HASH_ENTER, &found);
	entry->relid = InvalidOid;

	rel = relation_open(relid, AccessShareLock);
	table = kalam_get_table(rel);
	old = MemoryContextSwitchTo(tables_context);
	entry->type = table->type;
	entry->name = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
											 RelationGetRelationName(rel));
	entry->nkeys = table->nkeys;
	entry->key_desc = CreateTemplateTupleDesc(table->nkeys);
	for (i = 0; i < table->nkeys; i++)
	{
		Form_pg_attribute att = TupleDescAttr(RelationGetDescr(rel),
											  table->key_attnums[i] - 1);

		entry->key_attnums[i] = table->key_attnums[i];
		TupleDescInitEntry(entry->key_desc, (AttrNumber) (i + 1),
						   NameStr(att->attname), att->atttypid,
						   att->atttypmod, 0);
	}
	entry->key_desc = BlessTupleDesc(entry->key_desc);
	MemoryContextSwitchTo(old);
	entry->relid = relid;
	relation_close(rel, AccessShareLock);
	return entry;
}

char *
kalam_live_pos_text(const KalamChangePos *pos)
{
	return psprintf("%d:" UINT64_FORMAT ":%u", pos->group, pos->index, pos->n);
}

/* Parse "group:index:n"; false if text is no position. */
bool
kalam_live_parse_pos(const char *text, KalamChangePos *pos)
{
	char	   *end;
	long		group;
	unsigned long long index;
	unsigned long n;

	errno = 0;
	group = strtol(text, &end, 10);
	if (errno != 0 || end == text || *end != ':' || group < 0 ||
		group >= KALAM_MAX_GROUPS)
		return false;
	text = end + 1;
	index = strtoull(text, &end, 10);
	if (errno != 0 || end == text || *end != ':' || *text == '-')
		return false;
	text = end + 1;
	n = strtoul(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0' || *text == '-' ||
		n > PG_UINT32_MAX)
		return false;
	pos->group = (int) group;
	pos->index = (uint64) index;
	pos->n = (uint32) n;
	return true;
}

const char *
kalam_live_op_name(const KalamChange *change)
{
	switch (change->op)
	{
		case KALAM_CHANGE_INSERT:
			return "insert";
		case KALAM_CHANGE_UPDATE:
			return "update";
		case KALAM_CHANGE_DELETE:
			return "delete";
		case KALAM_CHANGE_TRUNCATE:
			return "truncate";
	}
	return "unknown";
}

/* The change's row (new, or deleted) as the relation's columns */
void
kalam_live_decode(Relation rel, const KalamChange *change, Datum *values,
				  bool *isnull)
{
	kalam_row_decode(change->row, change->rowlen, RelationGetDescr(rel),
					 values, isnull);
}

/* The primary key columns of a decoded row, as a JSON object */
char *
kalam_live_key_json(const KalamLiveTable *table, TupleDesc desc,
					const Datum *values, const bool *isnull)
{
	Datum		key_values[INDEX_MAX_KEYS];
	bool		key_isnull[INDEX_MAX_KEYS];
	HeapTuple	tuple;
	int			i;

	for (i = 0; i < table->nkeys; i++)
	{
		key_values[i] = values[table->key_attnums[i] - 1];
		key_isnull[i] = isnull[table->key_attnums[i] - 1];
	}
	tuple = heap_form_tuple(table->key_desc, key_values, key_isnull);
	return text_to_cstring(DatumGetTextPP(DirectFunctionCall1(row_to_json,
															  HeapTupleGetDatum(tuple))));
}

/* A decoded row as a JSON object of its columns */
char *
kalam_live_row_json(Relation rel, const Datum *values, const bool *isnull)
{
	HeapTuple	tuple = heap_form_tuple(RelationGetDescr(rel),
										(Datum *) values, (bool *) isnull);

	return text_to_cstring(DatumGetTextPP(DirectFunctionCall1(row_to_json,
															  HeapTupleGetDatum(tuple))));
}

static void
append_field(StringInfo buf, const char *name, const char *json)
{
	appendStringInfoString(buf, buf->len > 1 ? ",\"" : "\"");
	appendStringInfoString(buf, name);
	appendStringInfoString(buf, "\":");
	appendStringInfoString(buf, json);
}

static void
append_string_field(StringInfo buf, const char *name, const char *value)
{
	StringInfoData escaped;

	initStringInfo(&escaped);
	escape_json(&escaped, value);
	append_field(buf, name, escaped.data);
	pfree(escaped.data);
}

static void
build_payload(StringInfo buf, const KalamLiveTable *table,
			  const KalamChange *change, const char *user,
			  const char *key_json, const char *row_json, bool truncated)
{
	resetStringInfo(buf);
	appendStringInfoChar(buf, '{');
	append_string_field(buf, "op", kalam_live_op_name(change));
	append_string_field(buf, "table", table->name);
	if (user != NULL)
		append_string_field(buf, "user", user);
	if (key_json != NULL)
		append_field(buf, "key", key_json);
	if (row_json != NULL && !truncated)
		append_field(buf, "row", row_json);
	if (change->expired)
		append_field(buf, "expired", "true");
	if (truncated)
		append_field(buf, "truncated", "true");
	append_string_field(buf, "pos", kalam_live_pos_text(&change->pos));
	appendStringInfoChar(buf, '}');
}

/*
 * The notification of a change: {"op", "table", "user" (user and stream
 * tables), "key", "row" (insert and update), "expired" (a ttl delete),
 * "pos"}; without "row" and with "truncated": true when it would not fit.
 */
char *
kalam_live_payload(const KalamLiveTable *table, const KalamChange *change,
				   const char *user, const char *key_json,
				   const char *row_json)
{
	StringInfoData buf;

	initStringInfo(&buf);
	build_payload(&buf, table, change, user, key_json, row_json, false);
	if (buf.len > PAYLOAD_MAX)
		build_payload(&buf, table, change, user, key_json, row_json, true);
	/* a key too long to send: the position still says where to read */
	if (buf.len > PAYLOAD_MAX)
		build_payload(&buf, table, change, user, NULL, NULL, true);
	return buf.data;
}
