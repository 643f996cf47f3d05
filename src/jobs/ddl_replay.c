/*-------------------------------------------------------------------------
 *
 * ddl_replay.c
 *	  Running the DDL that other nodes wrote into the meta group's log.
 *
 * Each DDL statement on a kalam table is a record in the meta group (see
 * fdw/ddl.c and codec/ddl_record.c), stored like any row with the log
 * position that wrote it.  When the meta group has applied more, the
 * kalam jobs worker reads the records past the one recorded in
 * kalam.replay_position and runs those of other nodes, in log order.
 *
 * A record is input from another machine, and the worker is a superuser:
 * it never runs the recorded text.  It decodes the record with the
 * validating decoder, parses the text, requires exactly one statement of
 * the recorded kind (CREATE FOREIGN TABLE on a server of kalam with the
 * recorded table id; ALTER, RENAME, SET SCHEMA or DROP of a table; GRANT
 * or REVOKE on tables), points the others than CREATE at the kalam table
 * that has the recorded id here, whatever its name (a GRANT on several
 * tables, or on all those of a schema, at that one table only), and runs
 * the parsed statement through ProcessUtility as the least role that may
 * do it: the table's owner here for an ALTER, RENAME or DROP; the recorded
 * role for a CREATE (which also creates the schema if missing, as that
 * role), a GRANT or REVOKE (its grantor), a SET SCHEMA and an ALTER that
 * changes the owner (which need rights on the schema or the new owner
 * beyond ownership); in a security-restricted operation under the
 * search_path of the origin.
 *
 * Each record runs in a subtransaction that also moves the position, so
 * each runs exactly once.  A record that can never run (malformed, of
 * another kind than it says, several statements, not a kalam table) is
 * refused: skipped with a WARNING and kept in kalam.replay_state as
 * 'skipped'.  A record that failed in a way that may pass later (a
 * conflicting local table, a missing role, a privilege) is kept there as
 * 'retrying' and tried again with a backoff of 1 s doubling up to 60 s;
 * the records after it wait for it, the worker's other work goes on.
 * kalam.replay_skip() lets an administrator skip such a record.
 *
 * src/jobs/ddl_replay.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parser.h"
#include "port/pg_bswap.h"
#include "tcop/dest.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#include "cluster/node.h"
#include "codec/ddl_record.h"
#include "codec/group.h"
#include "fdw/kalam_fdw.h"
#include "jobs/jobs_worker.h"
#include "kv/keys.h"
#include "kv/rocks.h"
#include "kv/row.h"
#include "worker/channel.h"

#define REPLAY_FIRST_DELAY_MS	1000
#define REPLAY_MAX_DELAY_MS		60000

/* A DDL record as stored, not yet decoded */
typedef struct StoredRecord
{
	uint64		position;		/* meta log position that wrote it */
	int			origin;			/* node that ran it first */
	char	   *key;			/* orders the records of one position */
	size_t		keylen;
	char	   *data;
	size_t		len;
} StoredRecord;

static int
compare_records(const void *a, const void *b)
{
	const StoredRecord *x = (const StoredRecord *) a;
	const StoredRecord *y = (const StoredRecord *) b;

	if (x->position != y->position)
		return x->position > y->position ? 1 : -1;
	return kalam_key_compare(x->key, x->keylen, y->key, y->keylen);
}

/* The DDL records being collected */
typedef struct RecordList
{
	StoredRecord after;			/* only those past this one */
	size_t		origin_offset;	/* where the origin node id is in a key */
	StoredRecord *records;
	int			n;
	int			cap;
} RecordList;

static bool
collect_record(const char *key, size_t keylen, const char *value,
			   size_t vallen, void *arg)
{
	RecordList *list = (RecordList *) arg;
	KalamRowHeader header;
	StoredRecord *r;
	uint32		origin;

	if (keylen < list->origin_offset + 4 || vallen < KALAM_ROW_HEADER_SIZE)
		return true;
	kalam_row_read_header(value, &header);
	if (header.version < list->after.position)
		return true;
	if (list->n == list->cap)
	{
		list->cap = list->cap ? list->cap * 2 : 16;
		list->records = list->records ?
			repalloc(list->records, sizeof(StoredRecord) * list->cap) :
			palloc(sizeof(StoredRecord) * list->cap);
	}
	r = &list->records[list->n];
	r->position = header.version;
	memcpy(&origin, key + list->origin_offset, 4);
	r->origin = (int) pg_ntoh32(origin);
	r->key = palloc(keylen);
	memcpy(r->key, key, keylen);
	r->keylen = keylen;
	r->len = vallen - KALAM_ROW_HEADER_SIZE;
	r->data = palloc(r->len);
	memcpy(r->data, value + KALAM_ROW_HEADER_SIZE, r->len);
	if (compare_records(r, &list->after) > 0)
		list->n++;
	return true;
}

/* The DDL records stored past the one given, in log order. */
static StoredRecord *
read_records(const StoredRecord *after, int *count)
{
	StringInfoData prefix;
	RecordList	list;
	char		errbuf[256];

	initStringInfo(&prefix);
	kalam_key_ddl_prefix(&prefix);

	memset(&list, 0, sizeof(list));
	list.after = *after;
	list.origin_offset = prefix.len;
	if (!kalam_rocks_scan_prefix(prefix.data, prefix.len, collect_record,
								 &list, errbuf, sizeof(errbuf)))
		ereport(ERROR,
				(errcode(ERRCODE_IO_ERROR),
				 errmsg("could not read the replicated DDL: %s", errbuf)));
	if (list.n > 1)
		qsort(list.records, list.n, sizeof(StoredRecord), compare_records);
	*count = list.n;
	return list.records;
}

/* Run a statement of kalam's own through SPI. */
static void
run_sql(const char *sql, int nargs, Oid *types, Datum *values,
		const char *nulls)
{
	if (SPI_execute_with_args(sql, nargs, types, values, nulls, false, 0) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("kalam DDL replay could not run its bookkeeping statement"),
				 errdetail("Statement: %s", sql)));
}

static Datum
key_datum(const StoredRecord *r)
{
	bytea	   *key = palloc(VARHDRSZ + r->keylen);

	SET_VARSIZE(key, VARHDRSZ + r->keylen);
	memcpy(VARDATA(key), r->key, r->keylen);
	return PointerGetDatum(key);
}

/* The last record run or skipped, from kalam.replay_position. */
static void
read_position(StoredRecord *after)
{
	bool		isnull;
	bytea	   *key;

	if (SPI_execute("SELECT ddl_index, ddl_key FROM kalam.replay_position",
					true, 0) != SPI_OK_SELECT || SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("kalam.replay_position must hold one row"),
				 errhint("Restore its row from a node where it is intact.")));
	memset(after, 0, sizeof(*after));
	after->position = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
												  SPI_tuptable->tupdesc, 1, &isnull));
	key = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[0],
										SPI_tuptable->tupdesc, 2, &isnull));
	after->keylen = VARSIZE_ANY_EXHDR(key);
	after->key = palloc(after->keylen + 1);
	memcpy(after->key, VARDATA_ANY(key), after->keylen);
}

static void
advance_position(const StoredRecord *r)
{
	Oid			types[2] = {INT8OID, BYTEAOID};
	Datum		values[2];

	values[0] = Int64GetDatum((int64) r->position);
	values[1] = key_datum(r);
	run_sql("UPDATE kalam.replay_position SET ddl_index = $1, ddl_key = $2",
			2, types, values, NULL);
}

/*
 * Note the outcome of a record that did not simply run: its row in
 * kalam.replay_state, 'retrying' with the time of its next attempt or
 * 'skipped'.  rec is NULL for a record that could not be decoded.
 */
static void
note_outcome(const StoredRecord *r, const KalamDdlRecord *rec,
			 const char *state, const char *error, TimestampTz next_attempt)
{
	Oid			types[9] = {INT8OID, BYTEAOID, INT4OID, INT8OID, TEXTOID,
	TEXTOID, TEXTOID, TEXTOID, TIMESTAMPTZOID};
	Datum		values[9];
	char		nulls[9];

	memset(nulls, ' ', sizeof(nulls));
	values[0] = Int64GetDatum((int64) r->position);
	values[1] = key_datum(r);
	values[2] = Int32GetDatum(r->origin);
	if (rec != NULL)
	{
		values[3] = Int64GetDatum((int64) rec->table_id);
		values[4] = CStringGetTextDatum(kalam_ddl_kind_name(rec->kind));
		values[5] = CStringGetTextDatum(rec->role);
	}
	else
		nulls[3] = nulls[4] = nulls[5] = 'n';
	values[6] = CStringGetTextDatum(state);
	values[7] = CStringGetTextDatum(error);
	values[8] = TimestampTzGetDatum(next_attempt);
	if (next_attempt == 0)
		nulls[8] = 'n';
	run_sql("INSERT INTO kalam.replay_state AS s (position, record_key, origin,"
			" table_id, kind, role, state, attempts, last_error, last_attempt,"
			" next_attempt)"
			" VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, clock_timestamp(), $9)"
			" ON CONFLICT (position, record_key) DO UPDATE SET"
			" state = EXCLUDED.state, attempts = s.attempts + 1,"
			" last_error = EXCLUDED.last_error,"
			" last_attempt = EXCLUDED.last_attempt,"
			" next_attempt = EXCLUDED.next_attempt"
			" WHERE s.state = 'retrying'",
			9, types, values, nulls);
}

/* A record that failed before now ran: it is no longer pending. */
static void
forget_failures(const StoredRecord *r)
{
	Oid			types[2] = {INT8OID, BYTEAOID};
	Datum		values[2];

	values[0] = Int64GetDatum((int64) r->position);
	values[1] = key_datum(r);
	run_sql("DELETE FROM kalam.replay_state"
			" WHERE position = $1 AND record_key = $2 AND state = 'retrying'",
			2, types, values, NULL);
	if (SPI_processed > 0)
		ereport(LOG,
				(errmsg("kalam: DDL of node %d at meta position " UINT64_FORMAT " ran after failing before",
						r->origin, r->position)));
}

/*
 * The kalam table with the given id here, and its owner; InvalidOid if
 * there is none.
 */
static Oid
table_by_id(uint32 table_id, Oid *owner)
{
	Oid			type = INT8OID;
	Datum		value = Int64GetDatum((int64) table_id);
	bool		isnull;
	Oid			relid;

	run_sql("SELECT c.oid, c.relowner FROM kalam.tables t"
			" JOIN pg_class c ON c.oid = t.\"table\" WHERE t.id = $1",
			1, &type, &value, NULL);
	if (SPI_processed == 0)
		return InvalidOid;
	relid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0],
										   SPI_tuptable->tupdesc, 1, &isnull));
	if (SPI_processed > 1)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("several kalam tables have table id %u on this node", table_id),
				 errdetail("The replicated DDL acts on the table by its id."),
				 errhint("Drop the tables that should not have it, such as \"%s\"; the replay is retried.",
						 get_rel_name(relid))));
	*owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0],
											SPI_tuptable->tupdesc, 2, &isnull));
	return relid;
}

/*
 * The role that ran the record's statement at its origin, which its replay
 * runs as; roles are not replicated, so it may be missing for a while.
 */
static Oid
recorded_role(const KalamDdlRecord *rec, const char *statement)
{
	Oid			role = get_role_oid(rec->role, true);

	if (!OidIsValid(role))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("role \"%s\" does not exist on this node", rec->role),
				 errdetail("The replicated %s runs as the role that ran it, and roles are not replicated.",
						   statement),
				 errhint("Create the role on this node; the replay is retried.")));
	return role;
}

/* Does an ALTER TABLE change the table's owner? */
static bool
changes_owner(AlterTableStmt *alter)
{
	ListCell   *lc;

	foreach(lc, alter->cmds)
		if (((AlterTableCmd *) lfirst(lc))->subtype == AT_ChangeOwner)
			return true;
	return false;
}

/*
 * Check a CREATE against its record and point it at the recorded schema
 * and table id.  Returns why it is refused, or NULL; raises an error for
 * what may pass later.
 */
static const char *
prepare_create(const KalamDdlRecord *rec, Node *stmt, Oid *role)
{
	CreateForeignTableStmt *create = (CreateForeignTableStmt *) stmt;
	RangeVar   *rv;
	ForeignServer *server;
	ListCell   *lc;
	Oid			owner;
	Oid			existing;

	if (!IsA(stmt, CreateForeignTableStmt))
		return "the statement of a create record is not CREATE FOREIGN TABLE";
	server = GetForeignServerByName(create->servername, true);
	if (server != NULL && !kalam_server_is_kalam(create->servername))
		return psprintf("server \"%s\" is not a server of kalam", create->servername);
	if (server == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("server \"%s\" does not exist on this node", create->servername),
				 errdetail("The replicated CREATE FOREIGN TABLE names it."),
				 errhint("Create the server with FOREIGN DATA WRAPPER kalam; the replay is retried.")));

	rv = create->base.relation;
	if (rv->catalogname != NULL ||
		(rv->schemaname != NULL && strcmp(rv->schemaname, rec->schema) != 0))
		return "the statement names another schema than its record";
	if (rv->relpersistence != RELPERSISTENCE_PERMANENT)
		return "the statement creates a temporary or unlogged table";
	foreach(lc, create->options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		if (strcmp(def->defname, "table_id") != 0)
			continue;
		if (strtoul(defGetString(def), NULL, 10) != rec->table_id)
			return "the statement's table_id option is not the record's table id";
		create->options = foreach_delete_current(create->options, lc);
	}
	rv->schemaname = pstrdup(rec->schema);
	create->base.if_not_exists = false;

	existing = table_by_id(rec->table_id, &owner);
	if (OidIsValid(existing))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("kalam table \"%s\" already has table id %u on this node",
						get_rel_name(existing), rec->table_id),
				 errdetail("The replicated CREATE FOREIGN TABLE gives the new table that id."),
				 errhint("Drop the table that should not have it; the replay is retried.")));

	*role = recorded_role(rec, "CREATE FOREIGN TABLE");
	return NULL;
}

/*
 * Check an ALTER, RENAME, SET SCHEMA, DROP, GRANT or REVOKE against its
 * record and point it at the kalam table with the recorded id (a GRANT or
 * REVOKE on several tables, or on all the tables of a schema, at that one
 * table only), to run as that table's owner, or as the role that ran it
 * for what ownership does not allow: a GRANT or REVOKE (whose grantor it
 * is), a SET SCHEMA (which needs CREATE on the schema) and a change of
 * owner (which needs membership in the new owner).  Returns why it is
 * refused, or NULL; *role is InvalidOid when there is nothing to do.
 * Raises an error for what may pass later.
 */
static const char *
prepare_change(const KalamDdlRecord *rec, Node *stmt, Oid *role)
{
	RangeVar  **target = NULL;
	RangeVar   *rv;
	Oid			relid;
	Oid			as_role = InvalidOid;
	char	   *schema;
	char	   *name;
	const char *statement = NULL;

	switch (rec->kind)
	{
		case KALAM_DDL_ALTER:
			{
				AlterTableStmt *alter = (AlterTableStmt *) stmt;

				if (!IsA(stmt, AlterTableStmt) ||
					(alter->objtype != OBJECT_TABLE &&
					 alter->objtype != OBJECT_FOREIGN_TABLE))
					return "the statement of an alter record is not ALTER TABLE or ALTER FOREIGN TABLE";
				alter->missing_ok = false;
				target = &alter->relation;
				statement = "ALTER";
				if (changes_owner(alter))
					as_role = recorded_role(rec, "ALTER ... OWNER TO");
				break;
			}
		case KALAM_DDL_RENAME:
			{
				RenameStmt *rename = (RenameStmt *) stmt;

				if (!IsA(stmt, RenameStmt) || rename->relation == NULL ||
					!(rename->renameType == OBJECT_TABLE ||
					  rename->renameType == OBJECT_FOREIGN_TABLE ||
					  ((rename->renameType == OBJECT_COLUMN ||
						rename->renameType == OBJECT_TABCONSTRAINT) &&
					   (rename->relationType == OBJECT_TABLE ||
						rename->relationType == OBJECT_FOREIGN_TABLE))))
					return "the statement of a rename record is not a rename of a table, column or constraint";
				rename->missing_ok = false;
				target = &rename->relation;
				statement = "RENAME";
				break;
			}
		case KALAM_DDL_SET_SCHEMA:
			{
				AlterObjectSchemaStmt *move = (AlterObjectSchemaStmt *) stmt;

				if (!IsA(stmt, AlterObjectSchemaStmt) || move->relation == NULL ||
					(move->objectType != OBJECT_TABLE &&
					 move->objectType != OBJECT_FOREIGN_TABLE))
					return "the statement of a set schema record is not ALTER TABLE ... SET SCHEMA";
				move->missing_ok = false;
				target = &move->relation;
				statement = "SET SCHEMA";
				as_role = recorded_role(rec, statement);
				break;
			}
		case KALAM_DDL_DROP:
			if (!IsA(stmt, DropStmt) ||
				((DropStmt *) stmt)->removeType != OBJECT_FOREIGN_TABLE)
				return "the statement of a drop record is not DROP FOREIGN TABLE";
			break;
		case KALAM_DDL_GRANT:
			{
				GrantStmt  *grant = (GrantStmt *) stmt;

				if (!IsA(stmt, GrantStmt) || grant->objtype != OBJECT_TABLE ||
					(grant->targtype != ACL_TARGET_OBJECT &&
					 grant->targtype != ACL_TARGET_ALL_IN_SCHEMA))
					return "the statement of a grant record is not GRANT or REVOKE on tables";
				statement = grant->is_grant ? "GRANT" : "REVOKE";
				as_role = recorded_role(rec, statement);
				break;
			}
		case KALAM_DDL_CREATE:
			return "a create record is not a change";
	}

	*role = InvalidOid;
	relid = table_by_id(rec->table_id, role);
	if (!OidIsValid(relid) && rec->kind == KALAM_DDL_DROP)
	{
		ereport(LOG,
				(errmsg("kalam: no kalam table has table id %u on this node: nothing to drop",
						rec->table_id)));
		return NULL;
	}
	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("no kalam table has table id %u on this node", rec->table_id),
				 errdetail("The replicated %s acts on the table with that id.",
						   statement),
				 errhint("Re-create the table with that table_id; the replay is retried.")));

	if (OidIsValid(as_role))
		*role = as_role;
	schema = get_namespace_name(get_rel_namespace(relid));
	name = get_rel_name(relid);
	if (rec->kind == KALAM_DDL_DROP)
	{
		DropStmt   *drop = (DropStmt *) stmt;

		drop->objects = list_make1(list_make2(makeString(schema), makeString(name)));
		drop->missing_ok = false;
		drop->concurrent = false;
	}
	else if (rec->kind == KALAM_DDL_GRANT)
	{
		GrantStmt  *grant = (GrantStmt *) stmt;

		grant->targtype = ACL_TARGET_OBJECT;
		grant->objects = list_make1(makeRangeVar(schema, name, -1));
	}
	else
	{
		rv = makeRangeVar(schema, name, -1);
		rv->inh = (*target)->inh;
		*target = rv;
	}
	return NULL;
}

/* Run a parsed utility statement, as the current user. */
static void
run_utility(Node *stmt, const char *text, int location, int len)
{
	PlannedStmt *pstmt = makeNode(PlannedStmt);

	pstmt->commandType = CMD_UTILITY;
	pstmt->canSetTag = false;
	pstmt->utilityStmt = stmt;
	pstmt->stmt_location = location;
	pstmt->stmt_len = len;
	ProcessUtility(pstmt, text, false, PROCESS_UTILITY_QUERY, NULL, NULL,
				   None_Receiver, NULL);
	CommandCounterIncrement();
}

/*
 * Run the checked statement as role, in a security-restricted operation,
 * under the origin's search_path; a CREATE first creates its schema if
 * missing, as the same role (which needs CREATE on the database for it).
 */
static void
run_as(Oid role, const KalamDdlRecord *rec, RawStmt *raw)
{
	Oid			save_userid;
	int			save_sec_context;
	int			save_nestlevel;

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", rec->search_path, PGC_SUSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	SetUserIdAndSecContext(role, save_sec_context |
						   SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	kalam_ddl_replaying = true;
	kalam_ddl_replay_table_id = rec->table_id;
	PG_TRY();
	{
		if (rec->kind == KALAM_DDL_CREATE &&
			!OidIsValid(get_namespace_oid(rec->schema, true)))
		{
			CreateSchemaStmt *schema = makeNode(CreateSchemaStmt);

			schema->schemaname = pstrdup(rec->schema);
			schema->if_not_exists = true;
			run_utility((Node *) schema,
						psprintf("CREATE SCHEMA IF NOT EXISTS %s",
								 quote_identifier(rec->schema)), -1, 0);
		}
		run_utility(raw->stmt, rec->statement, raw->stmt_location,
					raw->stmt_len);
	}
	PG_FINALLY();
	{
		kalam_ddl_replaying = false;
		kalam_ddl_replay_table_id = 0;
		SetUserIdAndSecContext(save_userid, save_sec_context);
	}
	PG_END_TRY();
	AtEOXact_GUC(false, save_nestlevel);
}

/*
 * Check a decoded record and run it.  Returns why it is refused, or NULL
 * once it ran; raises an error if it failed.  *refusable is true while
 * an error can only mean that the record can never run (its text does not
 * parse).
 */
static const char *
run_record(const KalamDdlRecord *rec, volatile bool *refusable)
{
	List	   *parsed;
	List	   *path;
	RawStmt    *raw;
	const char *refusal;
	Oid			role = InvalidOid;

	if (!SplitIdentifierString(pstrdup(rec->search_path), ',', &path))
		return "the record's search_path is not a list of names";
	*refusable = true;
	parsed = raw_parser(rec->statement, RAW_PARSE_DEFAULT);
	*refusable = false;
	if (list_length(parsed) != 1)
		return psprintf("the record holds %d statements, not one", list_length(parsed));
	raw = linitial_node(RawStmt, parsed);

	if (rec->kind == KALAM_DDL_CREATE)
		refusal = prepare_create(rec, raw->stmt, &role);
	else
		refusal = prepare_change(rec, raw->stmt, &role);
	if (refusal == NULL && OidIsValid(role))
		run_as(role, rec, raw);
	return refusal;
}

/* the next attempt at a record that failed, and the wait before it */
static TimestampTz retry_at = 0;
static int	retry_delay_ms = 0;

/* Skip a record that can never run, saying why. */
static void
refuse_record(const StoredRecord *r, const KalamDdlRecord *rec,
			  const char *why)
{
	ereport(WARNING,
			(errcode(ERRCODE_DATA_EXCEPTION),
			 errmsg("kalam: refused the DDL record of node %d at meta position " UINT64_FORMAT,
					r->origin, r->position),
			 errdetail("%s", why),
			 errhint("The record is skipped; kalam.replay_state keeps it.")));
	note_outcome(r, rec, "skipped", why, 0);
	advance_position(r);
}

/*
 * Replay one record of another node in a subtransaction that also moves
 * kalam.replay_position past it.  Returns false if it failed and is to be
 * retried: the records after it wait.
 */
static bool
replay_record(const StoredRecord *r)
{
	MemoryContext context = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	KalamDdlRecord rec;
	const char *decode_error;
	volatile bool refusable = false;
	ErrorData  *volatile edata = NULL;

	decode_error = kalam_ddl_record_decode(r->data, r->len, &rec);
	if (decode_error == NULL)
		ereport(LOG,
				(errmsg("kalam: running DDL of node %d at meta position " UINT64_FORMAT " (%s, table id %u): %s",
						r->origin, r->position, kalam_ddl_kind_name(rec.kind),
						rec.table_id, rec.statement)));

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(context);
	PG_TRY();
	{
		const char *refusal = decode_error;

		if (refusal == NULL)
			refusal = run_record(&rec, &refusable);
		if (refusal != NULL)
			refuse_record(r, decode_error == NULL ? &rec : NULL, refusal);
		else
		{
			forget_failures(r);
			advance_position(r);
		}
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(context);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(context);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(context);
		CurrentResourceOwner = owner;
	}
	PG_END_TRY();

	if (edata == NULL)
	{
		retry_delay_ms = 0;
		retry_at = 0;
		return true;
	}
	if (refusable)
	{
		refuse_record(r, &rec, edata->message);
		return true;
	}

	retry_delay_ms = retry_delay_ms == 0 ? REPLAY_FIRST_DELAY_MS :
		Min(retry_delay_ms * 2, REPLAY_MAX_DELAY_MS);
	retry_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), retry_delay_ms);
	ereport(LOG,
			(errmsg("kalam: DDL of node %d at meta position " UINT64_FORMAT " failed, retrying in %d ms: %s",
					r->origin, r->position, retry_delay_ms, edata->message),
			 edata->detail ? errdetail("%s", edata->detail) : 0,
			 edata->hint ? errhint("%s", edata->hint) : 0));
	note_outcome(r, decode_error == NULL ? &rec : NULL, "retrying",
				 edata->message, retry_at);
	return false;
}

/* When the jobs worker is to retry a failed record; 0 if none failed. */
TimestampTz
kalam_replay_retry_at(void)
{
	return retry_at;
}

/* The meta group's applied position that the last replay read through */
static uint64 replayed_through = 0;

/*
 * Run the DDL of other nodes that the meta group applied past the record
 * in kalam.replay_position.  Called by the kalam jobs worker, outside a
 * transaction, when the meta group moved and on every purge round, so that
 * a missed wake-up costs one round at most.  Nothing to do (and no storage
 * catch-up, which replays every write since the last one) while the meta
 * group stays where the last replay read it and no failed record waits
 * for its next attempt; nothing either before that attempt is due.
 */
void
kalam_replay_ddl(void)
{
	KalamGroupStatus meta;
	StoredRecord after;
	StoredRecord *records;
	bool		done = true;
	int			n = 0;
	int			i;

	if (!kalam_channel_group_status(KALAM_GROUP_META, &meta))
		return;				/* the kalam worker has not started the groups */
	if (retry_at != 0 ? GetCurrentTimestamp() < retry_at :
		meta.applied_index == replayed_through)
		return;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());

	memset(&after, 0, sizeof(after));
	if (!OidIsValid(get_extension_oid("kalam", true)))
	{
		/* another node's DDL needs the extension here too */
		records = read_records(&after, &n);
		for (i = 0; i < n && records[i].origin == kalam_node_id; i++)
			;
		if (i < n)
			run_sql("CREATE EXTENSION kalam", 0, NULL, NULL, NULL);
	}
	if (OidIsValid(get_extension_oid("kalam", true)))
	{
		read_position(&after);
		records = read_records(&after, &n);
		for (i = 0; i < n && done; i++)
		{
			if (records[i].origin == kalam_node_id)
				advance_position(&records[i]);
			else
				done = replay_record(&records[i]);
		}
	}

	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	if (done)
		replayed_through = meta.applied_index;
}
