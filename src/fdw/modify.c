/*-------------------------------------------------------------------------
 *
 * modify.c
 *	  INSERT, UPDATE, DELETE and TRUNCATE on kalam tables.
 *
 * Modifications go into the transaction's write set (writeset.c) and reach
 * the kalam worker at COMMIT.  UPDATE and DELETE find their row through
 * junk columns: the key columns, and the ctid, which carries the version of
 * the row as it was read, so the apply function can refuse the change if
 * another transaction changed the row since.  A duplicate key is reported
 * at the statement that inserts it, and checked again inside apply.
 *
 * src/fdw/modify.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/sysattr.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "nodes/makefuncs.h"
#include "optimizer/appendinfo.h"
#include "parser/analyze.h"
#include "parser/parsetree.h"
#include "utils/lsyscache.h"

#include "fdw/kalam_fdw.h"
#include "kv/keys.h"
#include "kv/row.h"

typedef struct KalamModifyState
{
	Relation	rel;
	KalamTable *table;
	TupleDesc	desc;
	bool		if_absent;		/* INSERT ... ON CONFLICT DO NOTHING */
	AttrNumber	ctid_attno;		/* junk attributes of UPDATE and DELETE */
	AttrNumber	key_attnos[INDEX_MAX_KEYS];
	StringInfoData key;
	StringInfoData old_key;
	StringInfoData row;
} KalamModifyState;

static post_parse_analyze_hook_type prev_post_parse_analyze_hook = NULL;

static char *
key_junk_name(int i)
{
	return psprintf("kalam_key_%d", i + 1);
}

void
kalam_add_update_targets(PlannerInfo *root, Index rtindex,
						 RangeTblEntry *target_rte, Relation target_relation)
{
	KalamTable *table = kalam_get_table(target_relation);
	TupleDesc	desc = RelationGetDescr(target_relation);
	Var		   *var;
	int			i;

	var = makeVar(rtindex, SelfItemPointerAttributeNumber, TIDOID, -1,
				  InvalidOid, 0);
	add_row_identity_var(root, var, rtindex, "ctid");

	for (i = 0; i < table->nkeys; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, table->key_attnums[i] - 1);

		var = makeVar(rtindex, att->attnum, att->atttypid, att->atttypmod,
					  att->attcollation, 0);
		add_row_identity_var(root, var, rtindex, key_junk_name(i));
	}
}

/*
 * Refuse the ON CONFLICT forms kalam does not support before the planner
 * looks for a unique index that a foreign table cannot have.
 */
static void
kalam_post_parse_analyze(ParseState *pstate, Query *query, JumbleState *jstate)
{
	if (prev_post_parse_analyze_hook)
		prev_post_parse_analyze_hook(pstate, query, jstate);

	if (query->commandType == CMD_INSERT && query->onConflict != NULL &&
		(query->onConflict->action == ONCONFLICT_UPDATE ||
		 query->onConflict->arbiterElems != NIL ||
		 OidIsValid(query->onConflict->constraint)))
	{
		RangeTblEntry *rte = rt_fetch(query->resultRelation, query->rtable);

		if (rte->relkind == RELKIND_FOREIGN_TABLE && kalam_is_kalam_table(rte->relid))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("only ON CONFLICT DO NOTHING without a conflict target is supported on kalam tables"),
					 errhint("Write INSERT ... ON CONFLICT DO NOTHING; it applies to the primary key.")));
	}
}

void
kalam_modify_install_hooks(void)
{
	prev_post_parse_analyze_hook = post_parse_analyze_hook;
	post_parse_analyze_hook = kalam_post_parse_analyze;
}

List *
kalam_plan_modify(PlannerInfo *root, ModifyTable *plan, Index resultRelation,
				  int subplan_index)
{
	return list_make1(makeInteger(plan->onConflictAction == ONCONFLICT_NOTHING));
}

static KalamModifyState *
create_modify_state(ResultRelInfo *rinfo, bool if_absent)
{
	KalamModifyState *state = palloc0(sizeof(KalamModifyState));

	state->rel = rinfo->ri_RelationDesc;
	state->table = kalam_get_table(state->rel);
	state->desc = RelationGetDescr(state->rel);
	state->if_absent = if_absent;
	initStringInfo(&state->key);
	initStringInfo(&state->old_key);
	initStringInfo(&state->row);
	rinfo->ri_FdwState = state;
	return state;
}

void
kalam_begin_modify(ModifyTableState *mtstate, ResultRelInfo *rinfo,
				   List *fdw_private, int subplan_index, int eflags)
{
	KalamModifyState *state;
	int			i;

	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;
	state = create_modify_state(rinfo, intVal(linitial(fdw_private)) != 0);

	if (mtstate->operation == CMD_UPDATE || mtstate->operation == CMD_DELETE)
	{
		List	   *tlist = outerPlanState(mtstate)->plan->targetlist;

		state->ctid_attno = ExecFindJunkAttributeInTlist(tlist, "ctid");
		for (i = 0; i < state->table->nkeys; i++)
			state->key_attnos[i] = ExecFindJunkAttributeInTlist(tlist, key_junk_name(i));
	}
}

/* COPY FROM and tuple routing insert without a ModifyTable plan. */
void
kalam_begin_insert(ModifyTableState *mtstate, ResultRelInfo *rinfo)
{
	bool		if_absent = false;

	if (mtstate != NULL && mtstate->ps.plan != NULL)
		if_absent = ((ModifyTable *) mtstate->ps.plan)->onConflictAction == ONCONFLICT_NOTHING;
	(void) create_modify_state(rinfo, if_absent);
}

/* kalam enforces NOT NULL itself: PostgreSQL does not for foreign tables. */
static void
check_not_null(KalamModifyState *state, TupleTableSlot *slot)
{
	int			i;

	for (i = 0; i < state->desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(state->desc, i);

		if (att->attnotnull && !att->attisdropped && slot->tts_isnull[i])
			ereport(ERROR,
					(errcode(ERRCODE_NOT_NULL_VIOLATION),
					 errmsg("null value in column \"%s\" of relation \"%s\" violates not-null constraint",
							NameStr(att->attname), RelationGetRelationName(state->rel))));
	}
}

/*
 * Must an insert read the store to find a duplicate now?  In a
 * single-statement transaction the same check inside apply reports it at
 * the same point, with the same error, so the read is skipped; not for ON
 * CONFLICT DO NOTHING, whose RETURNING and row count depend on it, nor for
 * stream tables, where a stored row may be an expired one to replace.
 */
static bool
insert_reads_store(KalamModifyState *state)
{
	return state->if_absent || state->table->type == KALAM_TABLE_STREAM ||
		IsTransactionBlock();
}

/*
 * Add a new row under state->key, or report the duplicate.  Returns false
 * when ON CONFLICT DO NOTHING skips it.
 */
static bool
insert_row(KalamModifyState *state, TupleTableSlot *slot)
{
	uint64		version = 0;
	bool		exists;

	if (insert_reads_store(state))
		exists = kalam_fetch_row(state->table, state->key.data, state->key.len,
								 NULL, NULL, NULL, &version);
	else
	{
		KalamWriteEntry *entry = kalam_writeset_lookup(state->key.data,
													   state->key.len);

		exists = (entry != NULL && entry->value != NULL);
	}
	if (exists)
	{
		if (state->if_absent)
			return false;
		ereport(ERROR,
				(errcode(ERRCODE_UNIQUE_VIOLATION),
				 errmsg("duplicate key value violates primary key of kalam table \"%s\"",
						RelationGetRelationName(state->rel)),
				 errdetail("Key %s already exists.",
						   kalam_format_key(state->table, state->desc,
											slot->tts_values, slot->tts_isnull))));
	}
	kalam_writeset_put(state->table->relid, state->key.data, state->key.len,
					   version != 0, version, state->if_absent,
					   state->row.data, state->row.len);
	return true;
}

/* Encode the new row in the slot into state->key and state->row. */
static void
encode_new_row(KalamModifyState *state, TupleTableSlot *slot)
{
	slot_getallattrs(slot);
	check_not_null(state, slot);
	resetStringInfo(&state->key);
	kalam_row_key(&state->key, state->table, state->rel, slot->tts_values,
				  slot->tts_isnull);
	resetStringInfo(&state->row);
	kalam_row_encode(&state->row, state->desc, slot->tts_values,
					 slot->tts_isnull);
}

TupleTableSlot *
kalam_exec_insert(EState *estate, ResultRelInfo *rinfo, TupleTableSlot *slot,
				  TupleTableSlot *planSlot)
{
	KalamModifyState *state = (KalamModifyState *) rinfo->ri_FdwState;

	encode_new_row(state, slot);
	return insert_row(state, slot) ? slot : NULL;
}

/*
 * Read the identity of the row being updated or deleted from the junk
 * columns: its key into state->old_key, and the version it was read at.
 */
static uint64
old_row_identity(KalamModifyState *state, TupleTableSlot *planSlot)
{
	KalamTable *table = state->table;
	Datum		values[INDEX_MAX_KEYS];
	bool		isnull[INDEX_MAX_KEYS];
	Datum		tid;
	bool		tid_null;
	int			i;

	tid = ExecGetJunkAttribute(planSlot, state->ctid_attno, &tid_null);
	if (tid_null)
		elog(ERROR, "kalam row identity is null");

	resetStringInfo(&state->old_key);
	kalam_key_prefix(&state->old_key, table);
	for (i = 0; i < table->nkeys; i++)
	{
		values[i] = ExecGetJunkAttribute(planSlot, state->key_attnos[i], &isnull[i]);
		if (isnull[i])
			elog(ERROR, "kalam row identity is null");
		kalam_key_append_datum(&state->old_key, table->key_types[i],
							   table->key_types[i], values[i]);
	}
	return kalam_tid_to_version((ItemPointer) DatumGetPointer(tid));
}

TupleTableSlot *
kalam_exec_update(EState *estate, ResultRelInfo *rinfo, TupleTableSlot *slot,
				  TupleTableSlot *planSlot)
{
	KalamModifyState *state = (KalamModifyState *) rinfo->ri_FdwState;
	uint64		version = old_row_identity(state, planSlot);

	encode_new_row(state, slot);
	if (state->key.len == state->old_key.len &&
		memcmp(state->key.data, state->old_key.data, state->key.len) == 0)
	{
		kalam_writeset_put(state->table->relid, state->key.data,
						   state->key.len, true, version, false,
						   state->row.data, state->row.len);
		return slot;
	}

	/* the key changed: the row moves */
	kalam_writeset_delete(state->table->relid, state->old_key.data,
						  state->old_key.len, version);
	(void) insert_row(state, slot);
	return slot;
}

TupleTableSlot *
kalam_exec_delete(EState *estate, ResultRelInfo *rinfo, TupleTableSlot *slot,
				  TupleTableSlot *planSlot)
{
	KalamModifyState *state = (KalamModifyState *) rinfo->ri_FdwState;
	uint64		version = old_row_identity(state, planSlot);

	/* RETURNING needs the old row, which the junk columns do not hold */
	if (rinfo->ri_projectReturning != NULL)
	{
		uint64		ignored;

		ExecClearTuple(slot);
		if (kalam_fetch_row(state->table, state->old_key.data,
							state->old_key.len, state->desc,
							slot->tts_values, slot->tts_isnull, &ignored))
			ExecStoreVirtualTuple(slot);
	}
	kalam_writeset_delete(state->table->relid, state->old_key.data,
						  state->old_key.len, version);
	return slot;
}

int
kalam_is_updatable(Relation rel)
{
	return (1 << CMD_INSERT) | (1 << CMD_UPDATE) | (1 << CMD_DELETE);
}

/* TRUNCATE deletes every row the session can see in each table. */
void
kalam_exec_truncate(List *rels, DropBehavior behavior, bool restart_seqs)
{
	ListCell   *lc;

	foreach(lc, rels)
	{
		Relation	rel = (Relation) lfirst(lc);
		StringInfoData prefix;

		initStringInfo(&prefix);
		kalam_key_prefix(&prefix, kalam_get_table(rel));
		kalam_writeset_delete_prefix(prefix.data, prefix.len);
	}
}
