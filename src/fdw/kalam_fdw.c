/*-------------------------------------------------------------------------
 *
 * kalam_fdw.c
 *	  The foreign-data wrapper handler, planning, and the row identity and
 *	  key helpers that scans and modifications share.
 *
 * src/fdw/kalam_fdw.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/stratnum.h"
#include "access/sysattr.h"
#include "access/table.h"
#include "foreign/fdwapi.h"
#include "miscadmin.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/planmain.h"
#include "optimizer/restrictinfo.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "codec/group.h"
#include "fdw/kalam_fdw.h"
#include "kalam.h"
#include "kv/keys.h"

PG_FUNCTION_INFO_V1(kalam_fdw_handler);

/* planner's guess of a table's rows, as kalam keeps no statistics */
#define KALAM_DEFAULT_ROWS		1000.0

/* Whose rows of user and stream tables this session reads and writes. */
const char *
kalam_row_owner(void)
{
	if (kalam_as_user != NULL && kalam_as_user[0] != '\0')
		return kalam_as_user;
	return GetUserNameFromId(GetUserId(), false);
}

/*
 * The key prefix of the rows this session can see in the table: the group
 * (the shared group, or the owner's user shard), the table, the owner.
 */
void
kalam_key_prefix(StringInfo buf, const KalamTable *table)
{
	if (table->type == KALAM_TABLE_SHARED)
	{
		kalam_key_append_group(buf, KALAM_GROUP_SHARED);
		kalam_key_append_table(buf, table->table_id);
	}
	else
	{
		const char *owner = kalam_row_owner();

		kalam_key_append_group(buf, kalam_user_group(owner));
		kalam_key_append_table(buf, table->table_id);
		kalam_key_append_user(buf, owner);
	}
}

/*
 * Delete every row of a table in every group that can hold its rows (DROP
 * TABLE), as part of the transaction's writes.
 */
void
kalam_delete_table_rows(KalamTableType type, uint32 table_id)
{
	int			first = KALAM_GROUP_FIRST_USER;
	int			last = kalam_group_count() - 1;
	int			group;

	if (type == KALAM_TABLE_SHARED)
		first = last = KALAM_GROUP_SHARED;
	for (group = first; group <= last; group++)
	{
		StringInfoData prefix;

		initStringInfo(&prefix);
		kalam_key_append_group(&prefix, group);
		kalam_key_append_table(&prefix, table_id);
		kalam_writeset_delete_prefix(prefix.data, prefix.len);
	}
}

/* The full key of a row; a NULL key column is a not-null violation. */
void
kalam_row_key(StringInfo buf, const KalamTable *table, Relation rel,
			  const Datum *values, const bool *isnull)
{
	int			i;

	kalam_key_prefix(buf, table);
	for (i = 0; i < table->nkeys; i++)
	{
		int			att = table->key_attnums[i] - 1;

		if (isnull[att])
			ereport(ERROR,
					(errcode(ERRCODE_NOT_NULL_VIOLATION),
					 errmsg("null value in column \"%s\" of relation \"%s\" violates not-null constraint",
							NameStr(TupleDescAttr(RelationGetDescr(rel), att)->attname),
							RelationGetRelationName(rel)),
					 errdetail("The column is part of the kalam primary key.")));
		kalam_key_append_datum(buf, table->key_types[i], table->key_types[i],
							   values[att]);
	}
}

/* "(col1, col2)=(v1, v2)", as PostgreSQL shows keys in messages */
char *
kalam_format_key(const KalamTable *table, TupleDesc desc, const Datum *values,
				 const bool *isnull)
{
	StringInfoData names;
	StringInfoData vals;
	int			i;

	initStringInfo(&names);
	initStringInfo(&vals);
	for (i = 0; i < table->nkeys; i++)
	{
		int			att = table->key_attnums[i] - 1;
		Oid			outfunc;
		bool		varlena;

		if (i > 0)
		{
			appendStringInfoString(&names, ", ");
			appendStringInfoString(&vals, ", ");
		}
		appendStringInfoString(&names, NameStr(TupleDescAttr(desc, att)->attname));
		if (isnull[att])
		{
			appendStringInfoString(&vals, "null");
			continue;
		}
		getTypeOutputInfo(table->key_types[i], &outfunc, &varlena);
		appendStringInfoString(&vals, OidOutputFunctionCall(outfunc, values[att]));
	}
	return psprintf("(%s)=(%s)", names.data, vals.data);
}

/*
 * A row's version travels through the executor in its ctid, so that UPDATE
 * and DELETE can tell the apply function which version they read.
 */
void
kalam_version_to_tid(uint64 version, ItemPointer tid)
{
	ItemPointerSet(tid, (BlockNumber) (version >> 16),
				   (OffsetNumber) (version & 0xFFFF));
}

uint64
kalam_tid_to_version(ItemPointer tid)
{
	return ((uint64) ItemPointerGetBlockNumberNoCheck(tid) << 16) |
		ItemPointerGetOffsetNumberNoCheck(tid);
}

/* Rows of a stream table written before this are expired. */
TimestampTz
kalam_expire_before(const KalamTable *table)
{
	return DatumGetTimestampTz(DirectFunctionCall2(timestamptz_mi_interval,
												   TimestampTzGetDatum(GetCurrentTimestamp()),
												   IntervalPGetDatum(&table->ttl)));
}

/*
 * Planning: kalam has no statistics.  A lookup of one key returns at most
 * one row, a range a tenth of the default, a scan the default.
 */
typedef struct KalamPlanInfo
{
	KalamTable *table;
	List	   *conditions;		/* from kalam_key_conditions */
	List	   *pushed;			/* the restriction clauses they came from */
} KalamPlanInfo;

/* Does every key column have one equality condition, none an IN list? */
static bool
is_single_key_lookup(KalamPlanInfo *info)
{
	ListCell   *lc;
	int			neq = 0;

	foreach(lc, info->conditions)
	{
		List	   *cond = (List *) lsecond((List *) lfirst(lc));

		if (KALAM_COND_STRATEGY(cond) != BTEqualStrategyNumber ||
			KALAM_COND_IS_ARRAY(cond))
			return false;
		neq++;
	}
	return neq == info->table->nkeys;
}

static void
kalam_get_rel_size(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	KalamPlanInfo *info = palloc0(sizeof(KalamPlanInfo));
	Relation	rel = table_open(foreigntableid, NoLock);
	Selectivity sel;

	info->table = kalam_get_table(rel);
	table_close(rel, NoLock);
	info->conditions = kalam_key_conditions(root, baserel, info->table,
											&info->pushed);
	baserel->fdw_private = info;

	sel = clauselist_selectivity(root, baserel->baserestrictinfo, 0,
								 JOIN_INNER, NULL);
	baserel->rows = clamp_row_est(KALAM_DEFAULT_ROWS * sel);
	if (info->pushed != NIL)
		baserel->rows = Min(baserel->rows, KALAM_DEFAULT_ROWS / 10);
	if (is_single_key_lookup(info))
		baserel->rows = 1;
}

static void
kalam_get_paths(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	KalamPlanInfo *info = (KalamPlanInfo *) baserel->fdw_private;
	Cost		startup = 1.0;
	Cost		total;

	/* a seek reads what it returns; a scan reads the user's whole range */
	if (info->pushed != NIL)
		total = startup + baserel->rows * cpu_tuple_cost * 2;
	else
		total = startup + KALAM_DEFAULT_ROWS * cpu_tuple_cost * 2;

	add_path(baserel, (Path *)
			 create_foreignscan_path(root, baserel, NULL, baserel->rows,
									 startup, total, NIL, NULL, NULL, NIL));
}

/*
 * How many leading columns a scan of the relation must decode: up to the
 * last one the query reads (its targets and quals), none for count(*); all
 * of them for a whole-row reference, for a locking SELECT, and in any
 * statement but a SELECT (an UPDATE builds its new row from the scanned
 * one).
 */
static int
columns_to_decode(PlannerInfo *root, RelOptInfo *baserel)
{
	Bitmapset  *attrs = NULL;
	ListCell   *lc;
	int			ncolumns = 0;
	int			x = -1;

	if (root->parse->commandType != CMD_SELECT || root->parse->rowMarks != NIL)
		return -1;
	pull_varattnos((Node *) baserel->reltarget->exprs, baserel->relid, &attrs);
	foreach(lc, baserel->baserestrictinfo)
		pull_varattnos((Node *) ((RestrictInfo *) lfirst(lc))->clause,
					   baserel->relid, &attrs);
	while ((x = bms_next_member(attrs, x)) >= 0)
	{
		AttrNumber	attno = x + FirstLowInvalidHeapAttributeNumber;

		if (attno == InvalidAttrNumber)
			return -1;
		ncolumns = Max(ncolumns, attno);
	}
	return ncolumns;
}

static ForeignScan *
kalam_get_plan(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid,
			   ForeignPath *best_path, List *tlist, List *scan_clauses,
			   Plan *outer_plan)
{
	KalamPlanInfo *info = (KalamPlanInfo *) baserel->fdw_private;
	List	   *exprs = NIL;
	List	   *private = NIL;
	ListCell   *lc;

	/*
	 * Every qual is also checked locally: the pushed-down conditions only
	 * narrow what is read.
	 */
	scan_clauses = extract_actual_clauses(scan_clauses, false);

	/*
	 * fdw_private: a string describing the pushdown, the columns to decode
	 * (-1: all), then one int list per condition
	 */
	foreach(lc, info->conditions)
	{
		List	   *cond = (List *) lfirst(lc);

		exprs = lappend(exprs, linitial(cond));
		private = lappend(private, lsecond(cond));
	}
	private = lcons(makeInteger(columns_to_decode(root, baserel)), private);
	private = lcons(makeString(kalam_describe_pushdown(info->pushed,
													   baserel->relid,
													   foreigntableid)),
					private);

	return make_foreignscan(tlist, scan_clauses, baserel->relid, exprs,
							private, NIL, NIL, outer_plan);
}

Datum
kalam_fdw_handler(PG_FUNCTION_ARGS)
{
	FdwRoutine *routine = makeNode(FdwRoutine);

	routine->GetForeignRelSize = kalam_get_rel_size;
	routine->GetForeignPaths = kalam_get_paths;
	routine->GetForeignPlan = kalam_get_plan;
	routine->BeginForeignScan = kalam_begin_scan;
	routine->IterateForeignScan = kalam_iterate_scan;
	routine->ReScanForeignScan = kalam_rescan;
	routine->EndForeignScan = kalam_end_scan;
	routine->ExplainForeignScan = kalam_explain_scan;

	routine->AddForeignUpdateTargets = kalam_add_update_targets;
	routine->PlanForeignModify = kalam_plan_modify;
	routine->BeginForeignModify = kalam_begin_modify;
	routine->ExecForeignInsert = kalam_exec_insert;
	routine->ExecForeignUpdate = kalam_exec_update;
	routine->ExecForeignDelete = kalam_exec_delete;
	routine->BeginForeignInsert = kalam_begin_insert;
	routine->IsForeignRelUpdatable = kalam_is_updatable;
	routine->ExecForeignTruncate = kalam_exec_truncate;

	PG_RETURN_POINTER(routine);
}

void
kalam_fdw_install_hooks(void)
{
	kalam_writeset_init();
	kalam_ddl_install_hooks();
	kalam_modify_install_hooks();
}
