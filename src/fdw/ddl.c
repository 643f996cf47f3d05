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
 * Every DDL statement on a kalam table is also written, with the
 * search_path it ran under, into the meta group's log as part of the
 * transaction; the kalam jobs worker of every other node runs it again
 * (jobs/ddl_replay.c).  While it does, kalam_ddl_replaying is set: the table
 * id comes from the log and nothing is written back to it.
 *
 * src/fdw/ddl.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
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
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "fdw/kalam_fdw.h"
#include "kalam.h"
#include "raft/group.h"
#include "raft/node.h"
#include "storage/keys.h"

bool		kalam_ddl_replaying = false;
uint32		kalam_ddl_replay_table_id = 0;

static ProcessUtility_hook_type prev_ProcessUtility = NULL;
static uint32 ddl_counter = 0;
static object_access_hook_type prev_object_access_hook = NULL;

static bool
server_is_kalam(const char *servername)
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

	if (kalam_ddl_replaying)
		id = kalam_ddl_replay_table_id;
	else
	{
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
 * Write the statement into the meta group's log, as part of the
 * transaction, for the other nodes to run.  The record: the table's id (4;
 * 0 for a DROP), then search_path, the schema to create if missing, and the
 * statement, each NUL-terminated.  The key orders nothing: replay follows
 * the log positions stored with the rows.
 */
static void
record_ddl(PlannedStmt *pstmt, const char *queryString, uint32 table_id,
		   const char *schema)
{
	StringInfoData key;
	StringInfoData value;
	int			location = Max(pstmt->stmt_location, 0);
	int			len = pstmt->stmt_len > 0 ? pstmt->stmt_len : (int) strlen(queryString + location);
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

	initStringInfo(&value);
	appendBinaryStringInfo(&value, (char *) &table_id, 4);
	appendStringInfoString(&value, namespace_search_path);
	appendStringInfoChar(&value, '\0');
	appendStringInfoString(&value, schema ? schema : "");
	appendStringInfoChar(&value, '\0');
	appendBinaryStringInfo(&value, queryString + location, len);
	appendStringInfoChar(&value, '\0');

	kalam_writeset_put(InvalidOid, key.data, key.len, false, 0, false,
					   value.data, value.len);
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

/* Does a DROP name a kalam table? */
static bool
drops_kalam_table(DropStmt *stmt)
{
	ListCell   *lc;

	if (stmt->removeType != OBJECT_FOREIGN_TABLE)
		return false;
	foreach(lc, stmt->objects)
	{
		RangeVar   *rv = makeRangeVarFromNameList((List *) lfirst(lc));

		if (OidIsValid(kalam_relation(rv)))
			return true;
	}
	return false;
}

static uint32 stored_identity(Oid relid, KalamTableType *type);

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

static void
kalam_process_utility(PlannedStmt *pstmt, const char *queryString,
					  bool readOnlyTree, ProcessUtilityContext context,
					  ParamListInfo params, QueryEnvironment *queryEnv,
					  DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;
	RangeVar   *validate = NULL;
	bool		replicate = false;
	uint32		table_id = 0;
	const char *schema = NULL;
	Oid			relid;
	KalamTableType type;

	if (IsA(parsetree, CreateForeignTableStmt) &&
		server_is_kalam(((CreateForeignTableStmt *) parsetree)->servername))
	{
		if (readOnlyTree)
		{
			pstmt = copyObject(pstmt);
			parsetree = pstmt->utilityStmt;
			readOnlyTree = false;
		}
		table_id = assign_table_id((CreateForeignTableStmt *) parsetree);
		validate = ((CreateForeignTableStmt *) parsetree)->base.relation;
		schema = validate->schemaname;
		replicate = true;
	}
	else if (IsA(parsetree, AlterTableStmt) &&
			 OidIsValid(relid = kalam_relation(((AlterTableStmt *) parsetree)->relation)))
	{
		check_alter_table((AlterTableStmt *) parsetree);
		validate = ((AlterTableStmt *) parsetree)->relation;
		table_id = stored_identity(relid, &type);
		replicate = true;
	}
	else if (IsA(parsetree, RenameStmt) && ((RenameStmt *) parsetree)->relation &&
			 OidIsValid(relid = kalam_relation(((RenameStmt *) parsetree)->relation)))
	{
		check_rename((RenameStmt *) parsetree, relid);
		table_id = stored_identity(relid, &type);
		replicate = true;
	}
	else if (IsA(parsetree, DropStmt) && drops_kalam_table((DropStmt *) parsetree))
		replicate = true;
	else if (IsA(parsetree, CreateExtensionStmt) &&
			 strcmp(((CreateExtensionStmt *) parsetree)->extname, "kalam") == 0 &&
			 strcmp(get_database_name(MyDatabaseId), kalam_database) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("kalam can only be created in database \"%s\"", kalam_database),
				 errdetail("kalam's storage serves one database, set by kalam.database."),
				 errhint("Connect to \"%s\", or set kalam.database and restart the server.",
						 kalam_database)));

	if (prev_ProcessUtility)
		prev_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
							queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);

	if (validate != NULL)
		validate_table(RangeVarGetRelid(validate, NoLock, false));
	if (replicate && !kalam_ddl_replaying)
		record_ddl(pstmt, queryString, table_id, schema);
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
			kalam_delete_table_rows(type, table_id);
	}
}

void
kalam_ddl_install_hooks(void)
{
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = kalam_process_utility;
	prev_object_access_hook = object_access_hook;
	object_access_hook = kalam_object_access;
}
