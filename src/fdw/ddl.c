/*-------------------------------------------------------------------------
 *
 * ddl.c
 *	  DDL on kalam tables: table ids, checks of what may change, and the
 *	  removal of a dropped table's rows.
 *
 * CREATE FOREIGN TABLE ... SERVER kalam gets a table id, stored as the
 * table's option "table_id": the next value of kalam.table_id_seq shifted
 * left by 8 bits, with this node's id in the low bits, so that nodes never
 * hand out the same id.  Every key of the table's rows contains it.
 * Options that decide where rows are stored (type, primary_key, table_id)
 * and column types cannot change afterwards.  DROP deletes the table's rows
 * when the dropping transaction commits, as part of its command.
 *
 * Every DDL statement on a kalam table (CREATE, ALTER, RENAME, SET SCHEMA,
 * DROP, GRANT and REVOKE) is also written into the meta group's log as
 * part of the transaction, as a record (codec/ddl_record.c) naming its
 * kind, the table's id, the role that ran it and the search_path it ran
 * under; a DROP, GRANT or REVOKE of several kalam tables (or of all the
 * tables of a schema) writes one record per kalam table.  So does every
 * kalam table that another statement drops (DROP SCHEMA ... CASCADE, DROP
 * OWNED BY, DROP SERVER ... CASCADE): its record says DROP FOREIGN TABLE,
 * with that statement's CASCADE or RESTRICT.  Before, only DROP FOREIGN
 * TABLE was written: such a drop deleted the rows on every node (they are
 * a command of the transaction) and left the table, empty, on the others.
 * A REASSIGN OWNED writes an ALTER FOREIGN TABLE ... OWNER TO record per
 * kalam table it gives away: else the old owner kept, on the other nodes,
 * the right to alter and drop it (and its DDL reaches every node).  A DROP
 * OWNED also writes a REVOKE ALL ... CASCADE record per kalam table that
 * grants one of its roles something: else the role kept those privileges
 * on the other nodes.
 * The kalam jobs worker of every other node runs it again
 * (jobs/ddl_replay.c).  While it
 * does, kalam_ddl_replaying is set: the table id comes from the log and
 * nothing is written back to it.
 *
 * src/fdw/ddl.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/skey.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_class.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "commands/sequence.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "port/pg_bswap.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "cluster/node.h"
#include "codec/ddl_record.h"
#include "codec/group.h"
#include "fdw/kalam_fdw.h"
#include "kalam.h"
#include "kv/keys.h"

bool		kalam_ddl_replaying = false;
uint32		kalam_ddl_replay_table_id = 0;

static ProcessUtility_hook_type prev_ProcessUtility = NULL;
static uint32 ddl_counter = 0;
static object_access_hook_type prev_object_access_hook = NULL;

/* A kalam table, for a record written after the statement ran */
typedef struct NamedTable
{
	uint32		table_id;
	char	   *name;			/* schema-qualified, quoted */
} NamedTable;

/* A record of a statement, worked out before the statement runs */
typedef struct PlannedRecord
{
	KalamDdlKind kind;
	uint32		table_id;
	char	   *statement;
} PlannedRecord;

/*
 * The kalam tables that the running utility statement dropped, noted by
 * the object access hook (in TopTransactionContext) for a DROP record
 * each once the statement is done.
 */
static List *dropped_tables = NIL;

/* Is the named server one of the kalam foreign-data wrapper? */
bool
kalam_server_is_kalam(const char *servername)
{
	ForeignServer *server = GetForeignServerByName(servername, true);

	return server != NULL &&
		strcmp(GetForeignDataWrapper(server->fdwid)->fdwname, "kalam") == 0;
}

static uint32
assign_table_id(CreateForeignTableStmt *stmt)
{
	ListCell   *lc;
	Oid			seqid;
	int64		id;

	/* the replay took any table_id option out, having checked it */
	if (kalam_ddl_replaying)
		id = kalam_ddl_replay_table_id;
	else
	{
		foreach(lc, stmt->options)
		{
			DefElem    *def = (DefElem *) lfirst(lc);

			if (strcmp(def->defname, "table_id") != 0)
				continue;
			if (!superuser())
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("option \"table_id\" is assigned by kalam"),
						 errhint("Remove the option; only superusers may set it, to re-create a table over its stored rows.")));
			return (uint32) strtoul(defGetString(def), NULL, 10);
		}
		seqid = get_relname_relid("table_id_seq", get_namespace_oid("kalam", false));
		id = (nextval_internal(seqid, false) << 8) | kalam_node_id;
		if (id > PG_INT32_MAX)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("kalam has run out of table ids")));
	}
	stmt->options = lappend(stmt->options,
							makeDefElem("table_id",
										(Node *) makeString(psprintf(INT64_FORMAT, id)),
										-1));
	return (uint32) id;
}

/*
 * Write a DDL record into the meta group's log, as part of the
 * transaction, under a key of this node (origin) that no other record
 * has.  The key orders nothing: replay follows the log positions stored
 * with the rows.
 */
static void
put_ddl_record(const char *record, size_t len)
{
	StringInfoData key;
	uint32		be;
	int64		now_be;

	initStringInfo(&key);
	kalam_key_ddl_prefix(&key);
	be = pg_hton32((uint32) kalam_node_id);
	appendBinaryStringInfo(&key, (char *) &be, 4);
	now_be = pg_hton64((uint64) GetCurrentTimestamp());
	appendBinaryStringInfo(&key, (char *) &now_be, 8);
	be = pg_hton32((uint32) MyProcPid);
	appendBinaryStringInfo(&key, (char *) &be, 4);
	be = pg_hton32(++ddl_counter);
	appendBinaryStringInfo(&key, (char *) &be, 4);

	kalam_writeset_put(InvalidOid, key.data, key.len, false, 0, false,
					   record, len);
}

/*
 * Record a statement that ran on a kalam table, for the other nodes to
 * run: its kind, the table's id, the role that ran it, the search_path,
 * for a CREATE the table's schema, and the text of the one statement.
 */
static void
record_ddl(const char *statement, KalamDdlKind kind, uint32 table_id,
		   const char *schema)
{
	KalamDdlRecord record;
	char	   *data;
	size_t		size;

	record.kind = kind;
	record.table_id = table_id;
	record.role = GetUserNameFromId(GetUserId(), false);
	record.search_path = namespace_search_path;
	record.schema = schema ? schema : "";
	record.statement = statement;
	size = kalam_ddl_record_size(&record);
	data = palloc(size);
	kalam_ddl_record_encode(&record, data);
	put_ddl_record(data, size);
}

PG_FUNCTION_INFO_V1(kalam_debug_put_ddl_record);

/*
 * kalam.debug_put_ddl_record(bytea): write the bytes as a DDL record of
 * this node, as they are, for tests of what the other nodes refuse.
 * Superusers only, and only with the developer setting
 * kalam.debug_ddl_records on.
 */
Datum
kalam_debug_put_ddl_record(PG_FUNCTION_ARGS)
{
	bytea	   *record = PG_GETARG_BYTEA_PP(0);

	if (!kalam_debug_ddl_records)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("kalam.debug_put_ddl_record is disabled"),
				 errdetail("It writes unchecked records into the meta group's log, for tests."),
				 errhint("Set kalam.debug_ddl_records = on and restart the server, on a test cluster only.")));
	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only superusers may write DDL records"),
				 errdetail("kalam.debug_put_ddl_record is a developer function.")));
	put_ddl_record(VARDATA_ANY(record), VARSIZE_ANY_EXHDR(record));
	PG_RETURN_VOID();
}

static uint32 stored_identity(Oid relid, KalamTableType *type);

/* Kalam table relid, by id and name, palloc'd */
static NamedTable *
named_table(Oid relid)
{
	NamedTable *t = palloc(sizeof(NamedTable));
	KalamTableType type;

	t->table_id = stored_identity(relid, &type);
	t->name = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
										 get_rel_name(relid));
	return t;
}

static Oid
kalam_relation(RangeVar *rv)
{
	Oid			relid = RangeVarGetRelid(rv, NoLock, true);

	if (OidIsValid(relid) && get_rel_relkind(relid) == RELKIND_FOREIGN_TABLE &&
		kalam_is_kalam_table(relid))
		return relid;
	return InvalidOid;
}

/*
 * ids (a list of table ids, as OIDs) with the id of kalam table relid
 * appended; relid InvalidOid (what kalam_relation gives for any other
 * table) appends nothing
 */
static List *
append_table_id(List *ids, Oid relid)
{
	KalamTableType type;

	if (OidIsValid(relid))
		ids = lappend_oid(ids, (Oid) stored_identity(relid, &type));
	return ids;
}

/*
 * The kalam tables of this database (their OIDs): those in schema nspid
 * if it is valid, owned by one of owners if it is not NIL.
 */
static List *
kalam_tables_where(Oid nspid, List *owners)
{
	Relation	rel = table_open(RelationRelationId, AccessShareLock);
	ScanKeyData key[2];
	int			nkeys = 0;
	TableScanDesc scan;
	HeapTuple	tuple;
	List	   *relids = NIL;

	ScanKeyInit(&key[nkeys++], Anum_pg_class_relkind, BTEqualStrategyNumber,
				F_CHAREQ, CharGetDatum(RELKIND_FOREIGN_TABLE));
	if (OidIsValid(nspid))
		ScanKeyInit(&key[nkeys++], Anum_pg_class_relnamespace,
					BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(nspid));
	scan = table_beginscan_catalog(rel, nkeys, key);
	while ((tuple = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_class form = (Form_pg_class) GETSTRUCT(tuple);

		if ((owners == NIL || list_member_oid(owners, form->relowner)) &&
			kalam_is_kalam_table(form->oid))
			relids = lappend_oid(relids, form->oid);
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	return relids;
}

/* Append the ids of the kalam tables in schema nspid to ids */
static List *
kalam_tables_in_schema(Oid nspid, List *ids)
{
	ListCell   *lc;

	foreach(lc, kalam_tables_where(nspid, NIL))
		ids = append_table_id(ids, lfirst_oid(lc));
	return ids;
}

static PlannedRecord *
planned_record(KalamDdlKind kind, uint32 table_id, char *statement)
{
	PlannedRecord *r = palloc(sizeof(PlannedRecord));

	r->kind = kind;
	r->table_id = table_id;
	r->statement = statement;
	return r;
}

static List *
role_oids(List *rolespecs)
{
	List	   *oids = NIL;
	ListCell   *lc;

	foreach(lc, rolespecs)
		oids = lappend_oid(oids, get_rolespec_oid((RoleSpec *) lfirst(lc), false));
	return oids;
}

/*
 * Does the ACL of relation relid name role (as a grantee, or as a grantor,
 * whose REVOKE then does nothing)?
 */
static bool
acl_names(Oid relid, Oid role)
{
	HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	bool		found = false;
	bool		isnull;
	Datum		datum;

	if (!HeapTupleIsValid(tuple))
		return false;
	datum = SysCacheGetAttr(RELOID, tuple, Anum_pg_class_relacl, &isnull);
	if (!isnull)
	{
		Oid		   *members;
		int			n = aclmembers(DatumGetAclP(datum), &members);

		for (int i = 0; i < n && !found; i++)
			found = (members[i] == role);
	}
	ReleaseSysCache(tuple);
	return found;
}

/*
 * The records of a REASSIGN OWNED: an ALTER ... OWNER TO of each kalam
 * table it gives away, as they are before it runs.
 */
static List *
reassign_records(ReassignOwnedStmt *stmt)
{
	const char *owner = quote_identifier(get_rolespec_name(stmt->newrole));
	List	   *records = NIL;
	ListCell   *lc;

	foreach(lc, kalam_tables_where(InvalidOid, role_oids(stmt->roles)))
	{
		NamedTable *t = named_table(lfirst_oid(lc));

		records = lappend(records,
						  planned_record(KALAM_DDL_ALTER, t->table_id,
										 psprintf("ALTER FOREIGN TABLE %s OWNER TO %s",
												  t->name, owner)));
	}
	return records;
}

/*
 * The records of a DROP OWNED besides its drops (the object access hook
 * notes those): a REVOKE ALL ... CASCADE from each of its roles on each
 * kalam table that it does not drop and whose privileges name that role.
 */
static List *
drop_owned_records(DropOwnedStmt *stmt)
{
	List	   *roles = role_oids(stmt->roles);
	List	   *owned = kalam_tables_where(InvalidOid, roles);
	List	   *records = NIL;
	ListCell   *lc;
	ListCell   *lr;

	foreach(lc, kalam_tables_where(InvalidOid, NIL))
	{
		Oid			relid = lfirst_oid(lc);
		NamedTable *t = NULL;

		if (list_member_oid(owned, relid))
			continue;
		foreach(lr, roles)
		{
			if (!acl_names(relid, lfirst_oid(lr)))
				continue;
			if (t == NULL)
				t = named_table(relid);
			records = lappend(records,
							  planned_record(KALAM_DDL_GRANT, t->table_id,
											 psprintf("REVOKE ALL ON TABLE %s FROM %s CASCADE",
													  t->name,
													  quote_identifier(GetUserNameFromId(lfirst_oid(lr), false)))));
		}
	}
	return records;
}

/*
 * The ids of the kalam tables a GRANT or REVOKE on tables names, by name
 * or as all the tables of schemas
 */
static List *
granted_kalam_tables(GrantStmt *stmt)
{
	ListCell   *lc;
	List	   *ids = NIL;

	if (stmt->objtype != OBJECT_TABLE)
		return NIL;
	foreach(lc, stmt->objects)
	{
		if (stmt->targtype == ACL_TARGET_OBJECT)
			ids = append_table_id(ids, kalam_relation((RangeVar *) lfirst(lc)));
		else if (stmt->targtype == ACL_TARGET_ALL_IN_SCHEMA)
			ids = kalam_tables_in_schema(get_namespace_oid(strVal(lfirst(lc)), false),
										 ids);
	}
	return ids;
}

/*
 * The renames that are replicated: of the table, a column, a constraint
 * (those of triggers, rules and policies stay local, like those objects).
 */
static bool
replicated_rename(RenameStmt *stmt)
{
	return stmt->renameType == OBJECT_TABLE ||
		stmt->renameType == OBJECT_FOREIGN_TABLE ||
		stmt->renameType == OBJECT_COLUMN ||
		stmt->renameType == OBJECT_TABCONSTRAINT;
}

static const char *const fixed_options[] = {"type", "primary_key", "table_id", NULL};

/* Refuse ALTER TABLE commands that would strand the stored rows. */
static void
check_alter_table(AlterTableStmt *stmt)
{
	ListCell   *lc;

	foreach(lc, stmt->cmds)
	{
		AlterTableCmd *cmd = (AlterTableCmd *) lfirst(lc);

		if (cmd->subtype == AT_AlterColumnType)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot change the type of a column of kalam table \"%s\"",
							stmt->relation->relname),
					 errdetail("Stored rows keep the column's old binary form.")));
		if (cmd->subtype == AT_GenericOptions)
		{
			ListCell   *lo;

			foreach(lo, (List *) cmd->def)
			{
				DefElem    *def = (DefElem *) lfirst(lo);
				int			i;

				for (i = 0; fixed_options[i] != NULL; i++)
					if (strcmp(def->defname, fixed_options[i]) == 0)
						ereport(ERROR,
								(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
								 errmsg("cannot change option \"%s\" of kalam table \"%s\"",
										def->defname, stmt->relation->relname),
								 errdetail("The option decides where the table's rows are stored."),
								 errhint("Create a new table and copy the rows with INSERT ... SELECT.")));
			}
		}
	}
}

static void
check_rename(RenameStmt *stmt, Oid relid)
{
	Relation	rel;
	KalamTable *table;
	int			i;

	if (stmt->renameType != OBJECT_COLUMN)
		return;
	rel = table_open(relid, AccessShareLock);
	table = kalam_get_table(rel);
	for (i = 0; i < table->nkeys; i++)
		if (strcmp(NameStr(TupleDescAttr(RelationGetDescr(rel),
										 table->key_attnums[i] - 1)->attname),
				   stmt->subname) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot rename primary key column \"%s\" of kalam table \"%s\"",
							stmt->subname, RelationGetRelationName(rel))));
	table_close(rel, AccessShareLock);
}

/* Check that a kalam table's options still fit its columns. */
static void
validate_table(Oid relid)
{
	Relation	rel = table_open(relid, AccessShareLock);

	(void) kalam_get_table(rel);
	table_close(rel, AccessShareLock);
}

/* The text of the statement being run, palloc'd */
static char *
statement_text(PlannedStmt *pstmt, const char *queryString)
{
	int			location = Max(pstmt->stmt_location, 0);
	int			len = pstmt->stmt_len > 0 ? pstmt->stmt_len : (int) strlen(queryString + location);

	return pnstrdup(queryString + location, len);
}

/*
 * The statement of the DROP record of a kalam table that parsetree
 * dropped: its own text for a DROP FOREIGN TABLE, else DROP FOREIGN TABLE
 * of the table with parsetree's CASCADE or RESTRICT (the replay runs a
 * DROP FOREIGN TABLE only, on the table with the recorded id).
 */
static char *
drop_statement(Node *parsetree, PlannedStmt *pstmt, const char *queryString,
			   const char *name)
{
	DropBehavior behavior = DROP_RESTRICT;

	if (IsA(parsetree, DropStmt))
	{
		if (((DropStmt *) parsetree)->removeType == OBJECT_FOREIGN_TABLE)
			return statement_text(pstmt, queryString);
		behavior = ((DropStmt *) parsetree)->behavior;
	}
	else if (IsA(parsetree, DropOwnedStmt))
		behavior = ((DropOwnedStmt *) parsetree)->behavior;
	return psprintf("DROP FOREIGN TABLE %s%s", name,
					behavior == DROP_CASCADE ? " CASCADE" : "");
}

/*
 * Run the statement; returns the kalam tables it dropped (NamedTable),
 * each noted by the object access hook.  The list of an enclosing
 * statement is kept aside meanwhile.
 */
static List *
run_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
			ProcessUtilityContext context, ParamListInfo params,
			QueryEnvironment *queryEnv, DestReceiver *dest,
			QueryCompletion *qc)
{
	List	   *outer = dropped_tables;
	List	   *dropped;

	dropped_tables = NIL;
	PG_TRY();
	{
		if (prev_ProcessUtility)
			prev_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);
		else
			standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
									params, queryEnv, dest, qc);
	}
	PG_CATCH();
	{
		dropped_tables = outer;
		PG_RE_THROW();
	}
	PG_END_TRY();
	dropped = dropped_tables;
	dropped_tables = outer;
	return dropped;
}

static void
kalam_process_utility(PlannedStmt *pstmt, const char *queryString,
					  bool readOnlyTree, ProcessUtilityContext context,
					  ParamListInfo params, QueryEnvironment *queryEnv,
					  DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;
	RangeVar   *validate = NULL;
	bool		replicate = false;
	KalamDdlKind kind = KALAM_DDL_CREATE;
	uint32		table_id = 0;
	List	   *each_table = NIL;	/* a record per table: GRANT */
	List	   *planned = NIL;	/* REASSIGN OWNED's, DROP OWNED's */
	List	   *dropped;
	Oid			relid = InvalidOid;
	KalamTableType type;
	ListCell   *lc;

	if (IsA(parsetree, CreateForeignTableStmt) &&
		kalam_server_is_kalam(((CreateForeignTableStmt *) parsetree)->servername))
	{
		if (readOnlyTree)
		{
			pstmt = copyObject(pstmt);
			parsetree = pstmt->utilityStmt;
			readOnlyTree = false;
		}
		table_id = assign_table_id((CreateForeignTableStmt *) parsetree);
		validate = ((CreateForeignTableStmt *) parsetree)->base.relation;
		replicate = true;
	}
	else if (IsA(parsetree, AlterTableStmt) &&
			 OidIsValid(relid = kalam_relation(((AlterTableStmt *) parsetree)->relation)))
	{
		check_alter_table((AlterTableStmt *) parsetree);
		validate = ((AlterTableStmt *) parsetree)->relation;
		kind = KALAM_DDL_ALTER;
		table_id = stored_identity(relid, &type);
		replicate = true;
	}
	else if (IsA(parsetree, RenameStmt) && ((RenameStmt *) parsetree)->relation &&
			 OidIsValid(relid = kalam_relation(((RenameStmt *) parsetree)->relation)))
	{
		check_rename((RenameStmt *) parsetree, relid);
		kind = KALAM_DDL_RENAME;
		table_id = stored_identity(relid, &type);
		replicate = replicated_rename((RenameStmt *) parsetree);
	}
	else if (IsA(parsetree, AlterObjectSchemaStmt) &&
			 ((AlterObjectSchemaStmt *) parsetree)->relation &&
			 OidIsValid(relid = kalam_relation(((AlterObjectSchemaStmt *) parsetree)->relation)))
	{
		kind = KALAM_DDL_SET_SCHEMA;
		table_id = stored_identity(relid, &type);
		replicate = true;
	}
	else if (IsA(parsetree, GrantStmt))
	{
		each_table = granted_kalam_tables((GrantStmt *) parsetree);
		kind = KALAM_DDL_GRANT;
	}
	else if (IsA(parsetree, ReassignOwnedStmt))
		planned = reassign_records((ReassignOwnedStmt *) parsetree);
	else if (IsA(parsetree, DropOwnedStmt))
		planned = drop_owned_records((DropOwnedStmt *) parsetree);
	else if (IsA(parsetree, CreateExtensionStmt) &&
			 strcmp(((CreateExtensionStmt *) parsetree)->extname, "kalam") == 0 &&
			 strcmp(get_database_name(MyDatabaseId), kalam_database) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("kalam can only be created in database \"%s\"", kalam_database),
				 errdetail("kalam's storage serves one database, set by kalam.database."),
				 errhint("Connect to \"%s\", or set kalam.database and restart the server.",
						 kalam_database)));

	dropped = run_utility(pstmt, queryString, readOnlyTree, context, params,
						  queryEnv, dest, qc);

	if (validate != NULL)
	{
		relid = RangeVarGetRelid(validate, NoLock, false);
		validate_table(relid);
	}
	if (kalam_ddl_replaying)
		return;
	if (replicate && kind == KALAM_DDL_CREATE)
		record_ddl(statement_text(pstmt, queryString), kind, table_id,
				   get_namespace_name(get_rel_namespace(relid)));
	else if (replicate)
		record_ddl(statement_text(pstmt, queryString), kind, table_id, NULL);
	foreach(lc, each_table)
		record_ddl(statement_text(pstmt, queryString), kind,
				   (uint32) lfirst_oid(lc), NULL);
	foreach(lc, planned)
	{
		PlannedRecord *r = (PlannedRecord *) lfirst(lc);

		record_ddl(r->statement, r->kind, r->table_id, NULL);
	}
	foreach(lc, dropped)
	{
		NamedTable *d = (NamedTable *) lfirst(lc);

		record_ddl(drop_statement(parsetree, pstmt, queryString, d->name),
				   KALAM_DDL_DROP, d->table_id, NULL);
	}
}

/*
 * The table id and type of a kalam table, read without resolving its
 * columns (a table being dropped may have lost them).
 */
static uint32
stored_identity(Oid relid, KalamTableType *type)
{
	ListCell   *lc;
	uint32		table_id = 0;

	*type = KALAM_TABLE_USER;
	foreach(lc, GetForeignTable(relid)->options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		if (strcmp(def->defname, "table_id") == 0)
			table_id = (uint32) strtoul(defGetString(def), NULL, 10);
		else if (strcmp(def->defname, "type") == 0 &&
				 strcmp(defGetString(def), "shared") == 0)
			*type = KALAM_TABLE_SHARED;
	}
	return table_id;
}

static void
kalam_object_access(ObjectAccessType access, Oid classId, Oid objectId,
					int subId, void *arg)
{
	if (prev_object_access_hook)
		prev_object_access_hook(access, classId, objectId, subId, arg);

	if (access == OAT_DROP && classId == RelationRelationId && subId == 0 &&
		get_rel_relkind(objectId) == RELKIND_FOREIGN_TABLE &&
		kalam_is_kalam_table(objectId))
	{
		KalamTableType type;
		uint32		table_id = stored_identity(objectId, &type);

		/* on replay, the dropping node's command deletes the rows */
		if (table_id != 0 && !kalam_ddl_replaying)
		{
			MemoryContext oldcxt = MemoryContextSwitchTo(TopTransactionContext);

			kalam_delete_table_rows(type, table_id);
			dropped_tables = lappend(dropped_tables, named_table(objectId));
			MemoryContextSwitchTo(oldcxt);
		}
	}
}

/*
 * A table dropped outside a utility statement (an extension's own
 * deletion) has no statement to record it after: forget it with its
 * transaction.
 */
static void
ddl_xact_callback(XactEvent event, void *arg)
{
	dropped_tables = NIL;
}

void
kalam_ddl_install_hooks(void)
{
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = kalam_process_utility;
	prev_object_access_hook = object_access_hook;
	object_access_hook = kalam_object_access;
	RegisterXactCallback(ddl_xact_callback, NULL);
}
