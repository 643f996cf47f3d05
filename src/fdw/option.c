/*-------------------------------------------------------------------------
 *
 * option.c
 *	  Validation of kalam table options and their reading into KalamTable.
 *
 * A kalam foreign table takes:
 *	 type			'user', 'shared' or 'stream' (required)
 *	 primary_key	'col' or 'col1,col2' (required)
 *	 ttl			an interval (stream tables only, required there)
 *	 table_id		assigned by kalam when the table is created
 * The wrapper, the server and user mappings take no options.
 *
 * src/fdw/option.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/reloptions.h"
#include "catalog/pg_foreign_table.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "foreign/foreign.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#include "fdw/kalam_fdw.h"
#include "kv/keys.h"

PG_FUNCTION_INFO_V1(kalam_fdw_validator);

static const char *const table_options[] = {"type", "primary_key", "ttl", "table_id", NULL};

static bool
is_table_option(const char *name)
{
	int			i;

	for (i = 0; table_options[i] != NULL; i++)
		if (strcmp(name, table_options[i]) == 0)
			return true;
	return false;
}

const char *
kalam_table_type_name(KalamTableType type)
{
	switch (type)
	{
		case KALAM_TABLE_USER:
			return "user";
		case KALAM_TABLE_SHARED:
			return "shared";
		case KALAM_TABLE_STREAM:
			return "stream";
	}
	return "unknown";
}

static KalamTableType
parse_table_type(const char *value)
{
	if (strcmp(value, "user") == 0)
		return KALAM_TABLE_USER;
	if (strcmp(value, "shared") == 0)
		return KALAM_TABLE_SHARED;
	if (strcmp(value, "stream") == 0)
		return KALAM_TABLE_STREAM;
	ereport(ERROR,
			(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
			 errmsg("invalid value for option \"type\": \"%s\"", value),
			 errhint("Valid types are \"user\", \"shared\" and \"stream\".")));
	return KALAM_TABLE_USER;	/* keep compiler quiet */
}

static Interval
parse_ttl(const char *value)
{
	Interval   *ttl;
	Interval	zero;

	ttl = DatumGetIntervalP(DirectFunctionCall3(interval_in,
												CStringGetDatum(value),
												ObjectIdGetDatum(InvalidOid),
												Int32GetDatum(-1)));
	memset(&zero, 0, sizeof(zero));
	if (DatumGetInt32(DirectFunctionCall2(interval_cmp,
											 IntervalPGetDatum(ttl),
											 IntervalPGetDatum(&zero))) <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("option \"ttl\" must be a positive interval"),
				 errdetail("Got \"%s\".", value)));
	return *ttl;
}

static uint32
parse_table_id(const char *value)
{
	char	   *end;
	long		id = strtol(value, &end, 10);

	if (*end != '\0' || id <= 0 || id > PG_INT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("invalid value for option \"table_id\": \"%s\"", value),
				 errhint("kalam assigns table ids itself; do not set this option.")));
	return (uint32) id;
}

Datum
kalam_fdw_validator(PG_FUNCTION_ARGS)
{
	List	   *options = untransformRelOptions(PG_GETARG_DATUM(0));
	Oid			catalog = PG_GETARG_OID(1);
	ListCell   *lc;
	const char *type = NULL;
	bool		has_key = false;
	bool		has_ttl = false;

	foreach(lc, options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);
		const char *value = defGetString(def);

		if (catalog != ForeignTableRelationId || !is_table_option(def->defname))
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
					 errmsg("invalid option \"%s\"", def->defname),
					 catalog == ForeignTableRelationId ?
					 errhint("Valid options for a kalam table are \"type\", \"primary_key\" and \"ttl\".") :
					 errhint("kalam takes options on foreign tables only.")));

		if (strcmp(def->defname, "type") == 0)
		{
			(void) parse_table_type(value);
			type = value;
		}
		else if (strcmp(def->defname, "primary_key") == 0)
		{
			if (value[0] == '\0')
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
						 errmsg("option \"primary_key\" must name at least one column")));
			has_key = true;
		}
		else if (strcmp(def->defname, "ttl") == 0)
		{
			(void) parse_ttl(value);
			has_ttl = true;
		}
		else
			(void) parse_table_id(value);
	}

	if (catalog != ForeignTableRelationId)
		PG_RETURN_VOID();

	if (type == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("kalam table needs option \"type\""),
				 errhint("Add OPTIONS (type 'user'), 'shared' or 'stream'.")));
	if (!has_key)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("kalam table needs option \"primary_key\""),
				 errhint("Add OPTIONS (primary_key 'col') or (primary_key 'col1,col2').")));
	if (strcmp(type, "stream") == 0 && !has_ttl)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("kalam stream table needs option \"ttl\""),
				 errhint("Add OPTIONS (ttl '1 hour'), how long rows stay visible.")));
	if (strcmp(type, "stream") != 0 && has_ttl)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("option \"ttl\" is only valid for stream tables")));

	PG_RETURN_VOID();
}

/* Resolve the primary_key option against the relation's columns. */
static void
resolve_primary_key(KalamTable *table, Relation rel, const char *value)
{
	TupleDesc	desc = RelationGetDescr(rel);
	char	   *copy = pstrdup(value);
	List	   *names;
	ListCell   *lc;

	if (!SplitIdentifierString(copy, ',', &names))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("invalid value for option \"primary_key\": \"%s\"", value),
				 errhint("List column names separated by commas.")));
	if (list_length(names) > INDEX_MAX_KEYS)
		ereport(ERROR,
				(errcode(ERRCODE_TOO_MANY_COLUMNS),
				 errmsg("a kalam primary key has at most %d columns", INDEX_MAX_KEYS)));

	table->nkeys = 0;
	foreach(lc, names)
	{
		const char *name = (const char *) lfirst(lc);
		AttrNumber	attnum = InvalidAttrNumber;
		Form_pg_attribute att = NULL;
		int			i;

		for (i = 0; i < desc->natts; i++)
		{
			att = TupleDescAttr(desc, i);
			if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
			{
				attnum = att->attnum;
				break;
			}
		}
		if (attnum == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("primary key column \"%s\" of kalam table \"%s\" does not exist",
							name, RelationGetRelationName(rel))));
		for (i = 0; i < table->nkeys; i++)
			if (table->key_attnums[i] == attnum)
				ereport(ERROR,
						(errcode(ERRCODE_DUPLICATE_COLUMN),
						 errmsg("column \"%s\" appears twice in the primary key", name)));
		if (!kalam_key_type_supported(att->atttypid))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("column \"%s\" of type %s cannot be part of a kalam primary key",
							name, format_type_be(att->atttypid)),
					 errhint("Key columns may be smallint, integer, bigint, oid, boolean, date, time, timestamp, timestamptz, uuid, text, varchar or bytea.")));
		if (OidIsValid(att->attcollation) &&
			!get_collation_isdeterministic(att->attcollation))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("primary key column \"%s\" uses a nondeterministic collation", name),
					 errdetail("kalam compares keys byte by byte.")));
		table->key_attnums[table->nkeys] = attnum;
		table->key_types[table->nkeys] = att->atttypid;
		table->key_collations[table->nkeys] = att->attcollation;
		table->nkeys++;
	}
}

/* Read a kalam table's options; errors if they do not fit its columns. */
KalamTable *
kalam_get_table(Relation rel)
{
	ForeignTable *ft = GetForeignTable(RelationGetRelid(rel));
	KalamTable *table = palloc0(sizeof(KalamTable));
	const char *primary_key = NULL;
	ListCell   *lc;

	table->relid = RelationGetRelid(rel);
	foreach(lc, ft->options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		if (strcmp(def->defname, "type") == 0)
			table->type = parse_table_type(defGetString(def));
		else if (strcmp(def->defname, "primary_key") == 0)
			primary_key = defGetString(def);
		else if (strcmp(def->defname, "ttl") == 0)
			table->ttl = parse_ttl(defGetString(def));
		else if (strcmp(def->defname, "table_id") == 0)
			table->table_id = parse_table_id(defGetString(def));
	}
	if (table->table_id == 0 || primary_key == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("foreign table \"%s\" has no kalam table id",
						RelationGetRelationName(rel)),
				 errhint("Create kalam tables with CREATE FOREIGN TABLE ... SERVER kalam while the kalam extension is loaded.")));
	resolve_primary_key(table, rel, primary_key);
	return table;
}

/* Is relid a foreign table whose server uses the kalam wrapper? */
bool
kalam_is_kalam_table(Oid relid)
{
	HeapTuple	tuple;
	Oid			serverid;
	ForeignServer *server;

	tuple = SearchSysCache1(FOREIGNTABLEREL, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tuple))
		return false;
	serverid = ((Form_pg_foreign_table) GETSTRUCT(tuple))->ftserver;
	ReleaseSysCache(tuple);
	server = GetForeignServer(serverid);
	return strcmp(GetForeignDataWrapper(server->fdwid)->fdwname, "kalam") == 0;
}
