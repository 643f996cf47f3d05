/*-------------------------------------------------------------------------
 *
 * pushdown.c
 *	  Finding the conditions on the primary key that a scan can seek on.
 *
 * Equality (=, IN) on leading key columns, then a range (<, <=, >, >=,
 * BETWEEN) on the next one, are turned into seeks.  A condition qualifies
 * when one side is a key column and the other can be computed before the
 * scan starts (constants, parameters, stable functions), when its operator
 * belongs to the column type's default btree family, and when byte order of
 * the key encoding agrees with the operator: equality under a deterministic
 * collation, ranges on text only under the C collation.  Every condition is
 * still checked on each row, so pushdown narrows what is read and never
 * decides the answer alone.
 *
 * src/fdw/pushdown.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/stratnum.h"
#include "catalog/pg_am.h"
#include "commands/defrem.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/clauses.h"
#include "optimizer/optimizer.h"
#include "rewrite/rewriteManip.h"
#include "utils/lsyscache.h"
#include "utils/ruleutils.h"

#include "fdw/kalam_fdw.h"
#include "kv/keys.h"

typedef struct KeyCondition
{
	Expr	   *clause;			/* the restriction clause */
	Expr	   *value;			/* the side computed at scan start */
	int			strategy;
	bool		is_array;
	Oid			valuetype;
} KeyCondition;

static int
key_column_of(Node *node, Index varno, const KalamTable *table)
{
	Var		   *var;
	int			i;

	while (IsA(node, RelabelType))
		node = (Node *) ((RelabelType *) node)->arg;
	if (!IsA(node, Var))
		return -1;
	var = (Var *) node;
	if (var->varno != (int) varno || var->varlevelsup != 0)
		return -1;
	for (i = 0; i < table->nkeys; i++)
		if (table->key_attnums[i] == var->varattno)
			return i;
	return -1;
}

static bool
computable_at_scan_start(Node *node)
{
	return !contain_var_clause(node) &&
		!contain_volatile_functions(node) &&
		!contain_subplans(node);
}

/*
 * Match one clause against the key.  Returns the key column, or -1 when the
 * clause cannot be pushed down.
 */
static int
match_clause(Expr *clause, Index varno, const KalamTable *table,
			 KeyCondition *cond)
{
	Oid			opno;
	Oid			collid;
	Node	   *left;
	Node	   *right;
	int			keycol;
	Oid			opfamily;
	Oid			lefttype;
	int			strategy;

	if (IsA(clause, OpExpr) && list_length(((OpExpr *) clause)->args) == 2)
	{
		OpExpr	   *op = (OpExpr *) clause;

		opno = op->opno;
		collid = op->inputcollid;
		left = linitial(op->args);
		right = lsecond(op->args);
		cond->is_array = false;
		if (key_column_of(left, varno, table) < 0)
		{
			Node	   *tmp = left;

			left = right;
			right = tmp;
			opno = get_commutator(opno);
			if (!OidIsValid(opno))
				return -1;
		}
	}
	else if (IsA(clause, ScalarArrayOpExpr) && ((ScalarArrayOpExpr *) clause)->useOr)
	{
		ScalarArrayOpExpr *op = (ScalarArrayOpExpr *) clause;

		opno = op->opno;
		collid = op->inputcollid;
		left = linitial(op->args);
		right = lsecond(op->args);
		cond->is_array = true;
	}
	else
		return -1;

	keycol = key_column_of(left, varno, table);
	if (keycol < 0 || !computable_at_scan_start(right))
		return -1;

	opfamily = get_opclass_family(GetDefaultOpClass(table->key_types[keycol],
													BTREE_AM_OID));
	if (!OidIsValid(opfamily) || !op_in_opfamily(opno, opfamily))
		return -1;
	get_op_opfamily_properties(opno, opfamily, false, &strategy, &lefttype,
							   &cond->valuetype);
	if (!kalam_key_value_type_supported(table->key_types[keycol],
										cond->valuetype))
		return -1;
	if (cond->is_array && strategy != BTEqualStrategyNumber)
		return -1;
	if (OidIsValid(collid) && !get_collation_isdeterministic(collid))
		return -1;
	if (strategy != BTEqualStrategyNumber &&
		!kalam_key_byte_order_is_sql_order(table->key_types[keycol], collid))
		return -1;

	cond->clause = clause;
	cond->value = (Expr *) right;
	cond->strategy = strategy;
	return keycol;
}

static List *
condition_entry(int keycol, const KeyCondition *cond)
{
	return list_make2(cond->value,
					  list_make4_int(keycol, cond->strategy, cond->is_array,
									 (int) cond->valuetype));
}

/*
 * The key conditions of a scan, in the order the scan uses them: equality
 * on key columns 0..m-1, then at most a lower and an upper bound on column
 * m.  Each is a two-element list: the value expression and an integer list
 * (see KALAM_COND_* in kalam_fdw.h).  *pushed gets the clauses used.
 */
List *
kalam_key_conditions(PlannerInfo *root, RelOptInfo *baserel,
					 const KalamTable *table, List **pushed)
{
	KeyCondition eq[INDEX_MAX_KEYS];
	KeyCondition lower[INDEX_MAX_KEYS];
	KeyCondition upper[INDEX_MAX_KEYS];
	List	   *result = NIL;
	ListCell   *lc;
	int			k;

	memset(eq, 0, sizeof(eq));
	memset(lower, 0, sizeof(lower));
	memset(upper, 0, sizeof(upper));
	*pushed = NIL;

	foreach(lc, baserel->baserestrictinfo)
	{
		RestrictInfo *rinfo = lfirst_node(RestrictInfo, lc);
		KeyCondition cond;
		int			keycol;

		keycol = match_clause(rinfo->clause, baserel->relid, table, &cond);
		if (keycol < 0)
			continue;
		switch (cond.strategy)
		{
			case BTEqualStrategyNumber:
				if (eq[keycol].clause == NULL)
					eq[keycol] = cond;
				break;
			case BTGreaterStrategyNumber:
			case BTGreaterEqualStrategyNumber:
				if (lower[keycol].clause == NULL)
					lower[keycol] = cond;
				break;
			default:
				if (upper[keycol].clause == NULL)
					upper[keycol] = cond;
				break;
		}
	}

	for (k = 0; k < table->nkeys; k++)
	{
		if (eq[k].clause != NULL)
		{
			result = lappend(result, condition_entry(k, &eq[k]));
			*pushed = lappend(*pushed, eq[k].clause);
			continue;
		}
		if (lower[k].clause != NULL)
		{
			result = lappend(result, condition_entry(k, &lower[k]));
			*pushed = lappend(*pushed, lower[k].clause);
		}
		if (upper[k].clause != NULL)
		{
			result = lappend(result, condition_entry(k, &upper[k]));
			*pushed = lappend(*pushed, upper[k].clause);
		}
		break;
	}
	return result;
}

/* The pushed-down clauses as SQL, for EXPLAIN. */
char *
kalam_describe_pushdown(List *pushed, Index varno, Oid relid)
{
	List	   *context;
	StringInfoData buf;
	ListCell   *lc;

	if (pushed == NIL)
		return "";
	context = deparse_context_for(get_rel_name(relid), relid);
	initStringInfo(&buf);
	foreach(lc, pushed)
	{
		Node	   *clause = copyObject((Node *) lfirst(lc));

		ChangeVarNodes(clause, varno, 1, 0);
		if (buf.len > 0)
			appendStringInfoString(&buf, " AND ");
		appendStringInfoString(&buf, deparse_expression(clause, context, false, false));
	}
	return buf.data;
}
