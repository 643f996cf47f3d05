/*-------------------------------------------------------------------------
 *
 * scan.c
 *	  Reading a kalam table: point lookups, key ranges, and the merge of
 *	  the transaction's own writes over what is stored.
 *
 * A scan reads the backend's RocksDB secondary.  With equality on every key
 * column it looks up each key; otherwise it iterates one range per
 * combination of leading equality values, bounded by the range condition if
 * there is one, within the session's own key prefix (its user's rows, for
 * user and stream tables).  Stored rows that the transaction wrote are
 * skipped during the iteration and its own rows in the range are returned
 * after it.  Expired stream rows are never returned.
 *
 * src/fdw/scan.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/stratnum.h"
#include "access/table.h"
#include "commands/explain.h"
#include "executor/executor.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "codec/served.h"
#include "fdw/kalam_fdw.h"
#include "kv/keys.h"
#include "kv/rocks.h"
#include "kv/row.h"

typedef struct KalamKeyRange
{
	StringInfoData lower;		/* inclusive */
	StringInfoData upper;		/* exclusive */
} KalamKeyRange;

typedef struct KalamScanState
{
	KalamTable *table;
	TupleDesc	desc;
	List	   *conditions;		/* integer lists, see KALAM_COND_* */
	List	   *value_states;	/* ExprStates of the condition values */
	char	   *description;	/* pushed-down clauses, for EXPLAIN */
	int			ndecode;		/* columns the query needs: 1..ndecode */
	bool		point_lookup;	/* equality on every key column */

	bool		started;
	bool		is_stream;
	TimestampTz expire_before;
	List	   *keys;			/* point lookup: StringInfos */
	List	   *ranges;			/* otherwise: KalamKeyRanges */
	int			next;			/* next key or range */

	/* the range being read: with an iterator, or as the kalam reader sent */
	bool		range_open;
	rocksdb_iterator_t *iter;
	rocksdb_readoptions_t *read_options;
	char	   *served;			/* packed rows (codec/served.h) */
	size_t		served_len;
	size_t		served_pos;
	List	   *own_rows;		/* the transaction's rows in the range */
	int			next_own;

	uint64		keys_read;		/* stored entries looked at, for EXPLAIN */
	MemoryContext row_context;
} KalamScanState;

/* Destroy RocksDB objects of a scan, also when the query fails. */
static void
close_iterator(KalamScanState *state)
{
	state->range_open = false;
	if (state->served != NULL)
	{
		pfree(state->served);
		state->served = NULL;
	}
	if (state->iter != NULL)
	{
		kalam_rocks_reader_iterator_destroy(state->iter);
		state->iter = NULL;
	}
	if (state->read_options != NULL)
	{
		rocksdb_readoptions_destroy(state->read_options);
		state->read_options = NULL;
	}
}

static void
scan_context_reset(void *arg)
{
	close_iterator((KalamScanState *) arg);
}

void
kalam_begin_scan(ForeignScanState *node, int eflags)
{
	ForeignScan *plan = (ForeignScan *) node->ss.ps.plan;
	EState	   *estate = node->ss.ps.state;
	Relation	rel = node->ss.ss_currentRelation;
	KalamScanState *state = palloc0(sizeof(KalamScanState));
	MemoryContextCallback *cb;
	int			neq = 0;
	ListCell   *lc;

	node->fdw_state = state;
	state->table = kalam_get_table(rel);
	state->desc = RelationGetDescr(rel);
	state->description = strVal(linitial(plan->fdw_private));
	state->ndecode = intVal(lsecond(plan->fdw_private));
	if (state->ndecode < 0 || state->ndecode > state->desc->natts)
		state->ndecode = state->desc->natts;
	state->conditions = list_copy_tail(plan->fdw_private, 2);
	foreach(lc, state->conditions)
		if (KALAM_COND_STRATEGY((List *) lfirst(lc)) == BTEqualStrategyNumber)
			neq++;
	state->point_lookup = (neq == state->table->nkeys);
	state->is_stream = (state->table->type == KALAM_TABLE_STREAM);

	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;
	kalam_read_check(state->table);

	state->value_states = ExecInitExprList(plan->fdw_exprs, (PlanState *) node);
	state->row_context = AllocSetContextCreate(estate->es_query_cxt,
											   "kalam scan row",
											   ALLOCSET_DEFAULT_SIZES);
	cb = MemoryContextAlloc(estate->es_query_cxt, sizeof(MemoryContextCallback));
	cb->func = scan_context_reset;
	cb->arg = state;
	MemoryContextRegisterResetCallback(estate->es_query_cxt, cb);
}

/* The values of one condition: one, or the elements of an IN array. */
static List *
condition_values(KalamScanState *state, ExprContext *econtext, int i,
				 bool *has_null)
{
	List	   *cond = (List *) list_nth(state->conditions, i);
	ExprState  *expr = (ExprState *) list_nth(state->value_states, i);
	bool		isnull;
	Datum		value = ExecEvalExpr(expr, econtext, &isnull);
	List	   *values = NIL;

	*has_null = isnull;
	if (isnull)
		return NIL;
	if (KALAM_COND_IS_ARRAY(cond))
	{
		ArrayType  *array = DatumGetArrayTypeP(value);
		Oid			elemtype = ARR_ELEMTYPE(array);
		int16		elmlen;
		bool		elmbyval;
		char		elmalign;
		Datum	   *elems;
		bool	   *nulls;
		int			nelems;
		int			j;

		get_typlenbyvalalign(elemtype, &elmlen, &elmbyval, &elmalign);
		deconstruct_array(array, elemtype, elmlen, elmbyval, elmalign,
						  &elems, &nulls, &nelems);
		for (j = 0; j < nelems; j++)
			if (!nulls[j])
				values = lappend(values, (void *) DatumGetPointer(elems[j]));
		return values;
	}
	return list_make1((void *) DatumGetPointer(value));
}

static StringInfo
copy_key(StringInfo src)
{
	StringInfo	dst = makeStringInfo();

	appendBinaryStringInfo(dst, src->data, src->len);
	return dst;
}

/* The smallest key greater than every key that starts with buf. */
static void
make_prefix_successor(StringInfo buf)
{
	while (buf->len > 0 && (unsigned char) buf->data[buf->len - 1] == 0xFF)
		buf->len--;
	Assert(buf->len > 0);
	buf->data[buf->len - 1]++;
}

/*
 * Compute the keys or ranges to read from the condition values.  Returns
 * false when a condition can match no row (a NULL compared with the key).
 */
static bool
plan_reads(KalamScanState *state, ExprContext *econtext)
{
	KalamTable *table = state->table;
	StringInfoData prefix;
	List	   *bases;
	int			ncond = list_length(state->conditions);
	int			i;
	int			keycol = 0;
	ListCell   *lc;

	initStringInfo(&prefix);
	kalam_key_prefix(&prefix, table);
	bases = list_make1(copy_key(&prefix));

	/* equality conditions multiply the base keys */
	for (i = 0; i < ncond; i++)
	{
		List	   *cond = (List *) list_nth(state->conditions, i);
		List	   *values;
		List	   *next_bases = NIL;
		bool		has_null;
		ListCell   *lb;
		ListCell   *lv;

		if (KALAM_COND_STRATEGY(cond) != BTEqualStrategyNumber)
			break;
		values = condition_values(state, econtext, i, &has_null);
		if (has_null)
			return false;
		keycol = KALAM_COND_KEYCOL(cond);
		foreach(lb, bases)
		{
			foreach(lv, values)
			{
				StringInfo	key = copy_key((StringInfo) lfirst(lb));

				kalam_key_append_datum(key, table->key_types[keycol],
									   KALAM_COND_VALUETYPE(cond),
									   PointerGetDatum(lfirst(lv)));
				next_bases = lappend(next_bases, key);
			}
		}
		bases = next_bases;
	}

	if (state->point_lookup)
	{
		state->keys = bases;
		return true;
	}

	/* then at most one lower and one upper bound on the next column */
	foreach(lc, bases)
	{
		StringInfo	base = (StringInfo) lfirst(lc);
		KalamKeyRange *range = palloc0(sizeof(KalamKeyRange));
		int			j;

		initStringInfo(&range->lower);
		initStringInfo(&range->upper);
		appendBinaryStringInfo(&range->lower, base->data, base->len);
		appendBinaryStringInfo(&range->upper, base->data, base->len);
		make_prefix_successor(&range->upper);

		for (j = i; j < ncond; j++)
		{
			List	   *cond = (List *) list_nth(state->conditions, j);
			int			strategy = KALAM_COND_STRATEGY(cond);
			bool		has_null;
			List	   *values = condition_values(state, econtext, j, &has_null);
			StringInfo	bound;

			if (has_null)
				return false;
			keycol = KALAM_COND_KEYCOL(cond);
			bound = copy_key(base);
			kalam_key_append_datum(bound, table->key_types[keycol],
								   KALAM_COND_VALUETYPE(cond),
								   PointerGetDatum(linitial(values)));

			/* keys starting with bound are exactly those equal to the value */
			if (strategy == BTGreaterStrategyNumber ||
				strategy == BTLessEqualStrategyNumber)
				make_prefix_successor(bound);
			if (strategy == BTGreaterStrategyNumber ||
				strategy == BTGreaterEqualStrategyNumber)
			{
				resetStringInfo(&range->lower);
				appendBinaryStringInfo(&range->lower, bound->data, bound->len);
			}
			else
			{
				resetStringInfo(&range->upper);
				appendBinaryStringInfo(&range->upper, bound->data, bound->len);
			}
		}
		state->ranges = lappend(state->ranges, range);
	}
	return true;
}

/*
 * Store a decoded row in the slot, with its version in the ctid: the
 * columns the query needs, the others null.
 */
static TupleTableSlot *
store_row(KalamScanState *state, TupleTableSlot *slot, const char *payload,
		  size_t len, uint64 version)
{
	ExecClearTuple(slot);
	kalam_row_decode_columns(payload, len, state->desc, state->ndecode,
							 slot->tts_values, slot->tts_isnull);
	ExecStoreVirtualTuple(slot);
	kalam_version_to_tid(version, &slot->tts_tid);
	return slot;
}

/*
 * Look up one key as the transaction sees it.  Returns true when there is a
 * visible row, decoded into values/isnull when desc is given.  *version is
 * the version of the stored row, even an expired one, and 0 when nothing is
 * stored or the row is the transaction's own.
 */
bool
kalam_fetch_row(const KalamTable *table, const char *key, size_t keylen,
				TupleDesc desc, Datum *values, bool *isnull, uint64 *version)
{
	KalamWriteEntry *entry = kalam_writeset_lookup(key, keylen);
	KalamRowHeader header;
	char	   *stored;
	size_t		len;

	*version = 0;
	if (entry != NULL)
	{
		if (entry->value == NULL)
			return false;
		if (desc != NULL)
			kalam_row_decode(entry->value, entry->vallen, desc, values, isnull);
		return true;
	}
	if (kalam_writeset_prefix_deleted(key, keylen))
		return false;

	stored = kalam_rocks_get(key, keylen, &len);
	if (stored == NULL)
		return false;
	if (len < KALAM_ROW_HEADER_SIZE)
		elog(ERROR, "stored kalam row is shorter than its header");
	kalam_row_read_header(stored, &header);
	*version = header.version;
	if (table->type == KALAM_TABLE_STREAM &&
		header.write_time < kalam_expire_before(table))
	{
		pfree(stored);
		return false;
	}
	if (desc != NULL)
		kalam_row_decode(stored + KALAM_ROW_HEADER_SIZE,
						 len - KALAM_ROW_HEADER_SIZE, desc, values, isnull);
	pfree(stored);
	return true;
}

/*
 * Open a range: the rows the kalam reader sends if it can (a new session's
 * small ranges), or an iterator of the session's own reader.
 */
static void
open_range(KalamScanState *state, KalamKeyRange *range)
{
	state->range_open = true;
	state->own_rows = kalam_writeset_range(range->lower.data, range->lower.len,
										   range->upper.data, range->upper.len);
	state->next_own = 0;
	if (kalam_rocks_served_range(range->lower.data, range->lower.len,
								 range->upper.data, range->upper.len,
								 &state->served, &state->served_len))
	{
		state->served_pos = 0;
		return;
	}
	state->read_options = rocksdb_readoptions_create();
	rocksdb_readoptions_set_iterate_upper_bound(state->read_options,
												range->upper.data,
												range->upper.len);
	state->iter = kalam_rocks_reader_iterator(state->read_options);
	rocksdb_iter_seek(state->iter, range->lower.data, range->lower.len);
}

/*
 * Put a stored row into the slot, unless the transaction's writes hide it
 * or it expired (a stream's); false then.
 */
static bool
store_stored_row(KalamScanState *state, TupleTableSlot *slot,
				 const char *key, size_t keylen, const char *value,
				 size_t vallen)
{
	KalamRowHeader header;

	state->keys_read++;
	if (kalam_writeset_hides_store(key, keylen) ||
		vallen < KALAM_ROW_HEADER_SIZE)
		return false;
	kalam_row_read_header(value, &header);
	if (state->is_stream && header.write_time < state->expire_before)
		return false;
	store_row(state, slot, value + KALAM_ROW_HEADER_SIZE,
			  vallen - KALAM_ROW_HEADER_SIZE, header.version);
	return true;
}

/* Next stored row of the open range, or NULL when it is exhausted. */
static TupleTableSlot *
next_stored_row(KalamScanState *state, TupleTableSlot *slot)
{
	char	   *err = NULL;
	const char *key;
	const char *value;
	size_t		keylen;
	size_t		vallen;

	if (state->served != NULL)
	{
		while (kalam_served_next(state->served, state->served_len,
								 &state->served_pos, &key, &keylen, &value,
								 &vallen))
			if (store_stored_row(state, slot, key, keylen, value, vallen))
				return slot;
		if (state->served_pos != state->served_len)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("the kalam reader sent rows of kalam table \"%s\" that do not read back",
							get_rel_name(state->table->relid)),
					 errdetail("%zu of %zu bytes read.", state->served_pos,
							   state->served_len),
					 errhint("Set kalam.served_reads to 0 to read without the kalam reader, and report the problem.")));
		return NULL;
	}
	while (rocksdb_iter_valid(state->iter))
	{
		bool		stored;

		key = rocksdb_iter_key(state->iter, &keylen);
		value = rocksdb_iter_value(state->iter, &vallen);
		stored = store_stored_row(state, slot, key, keylen, value, vallen);
		rocksdb_iter_next(state->iter);
		if (stored)
			return slot;
	}
	rocksdb_iter_get_error(state->iter, &err);
	if (err != NULL)
	{
		char	   *msg = pstrdup(err);

		rocksdb_free(err);
		ereport(ERROR,
				(errcode(ERRCODE_IO_ERROR),
				 errmsg("could not read kalam table \"%s\"",
						get_rel_name(state->table->relid)),
				 errdetail("RocksDB: %s", msg)));
	}
	return NULL;
}

TupleTableSlot *
kalam_iterate_scan(ForeignScanState *node)
{
	KalamScanState *state = (KalamScanState *) node->fdw_state;
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;
	MemoryContext old;

	MemoryContextReset(state->row_context);
	old = MemoryContextSwitchTo(state->row_context);

	if (!state->started)
	{
		MemoryContext query = MemoryContextSwitchTo(node->ss.ps.state->es_query_cxt);
		bool		any = plan_reads(state, node->ss.ps.ps_ExprContext);

		MemoryContextSwitchTo(query);
		state->started = true;
		state->next = 0;
		if (!any)
		{
			state->keys = NIL;
			state->ranges = NIL;
		}
		if (state->is_stream)
			state->expire_before = kalam_expire_before(state->table);
	}

	if (state->point_lookup)
	{
		while (state->next < list_length(state->keys))
		{
			StringInfo	key = (StringInfo) list_nth(state->keys, state->next++);
			uint64		version;

			state->keys_read++;
			ExecClearTuple(slot);
			if (kalam_fetch_row(state->table, key->data, key->len, state->desc,
								slot->tts_values, slot->tts_isnull, &version))
			{
				ExecStoreVirtualTuple(slot);
				kalam_version_to_tid(version, &slot->tts_tid);
				MemoryContextSwitchTo(old);
				return slot;
			}
		}
		MemoryContextSwitchTo(old);
		return ExecClearTuple(slot);
	}

	for (;;)
	{
		if (!state->range_open)
		{
			if (state->next >= list_length(state->ranges))
				break;
			MemoryContextSwitchTo(node->ss.ps.state->es_query_cxt);
			open_range(state, (KalamKeyRange *) list_nth(state->ranges, state->next++));
			MemoryContextSwitchTo(state->row_context);
		}
		if (next_stored_row(state, slot) != NULL)
		{
			MemoryContextSwitchTo(old);
			return slot;
		}
		if (state->next_own < list_length(state->own_rows))
		{
			KalamWriteEntry *entry = list_nth(state->own_rows, state->next_own++);

			store_row(state, slot, entry->value, entry->vallen, 0);
			MemoryContextSwitchTo(old);
			return slot;
		}
		close_iterator(state);
	}
	MemoryContextSwitchTo(old);
	return ExecClearTuple(slot);
}

void
kalam_rescan(ForeignScanState *node)
{
	KalamScanState *state = (KalamScanState *) node->fdw_state;

	close_iterator(state);
	state->started = false;
	state->keys = NIL;
	state->ranges = NIL;
}

void
kalam_end_scan(ForeignScanState *node)
{
	KalamScanState *state = (KalamScanState *) node->fdw_state;

	if (state != NULL)
		close_iterator(state);
}

void
kalam_explain_scan(ForeignScanState *node, ExplainState *es)
{
	KalamScanState *state = (KalamScanState *) node->fdw_state;
	const char *access;

	if (state->point_lookup)
		access = "point lookup";
	else if (state->conditions != NIL)
		access = "key range";
	else if (state->table->type == KALAM_TABLE_SHARED)
		access = "full scan";
	else
		access = "scan of the user's rows";
	ExplainPropertyText("Kalam Access", access, es);
	ExplainPropertyText("Kalam Read", kalam_read_level_name(), es);
	if (state->description[0] != '\0')
		ExplainPropertyText("Kalam Key Conditions", state->description, es);
	if (es->verbose && !state->point_lookup)
		ExplainPropertyInteger("Kalam Columns Decoded", NULL, state->ndecode, es);
	if (es->analyze)
		ExplainPropertyUInteger("Kalam Keys Read", NULL, state->keys_read, es);
}
