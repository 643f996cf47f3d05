/*-------------------------------------------------------------------------
 *
 * changes.c
 *	  kalam.changes(table, since): the calling user's changes of a table
 *	  after a commit position, from this node's change log.
 *
 * A client that lost its connection (its node died, or it was away) does
 * not know what it missed; NOTIFY keeps nothing for it.  Every node keeps
 * the same change log (codec/change.h) for kalam.change_retention, so the
 * client reconnects to any node, LISTENs again, then asks for the changes
 * after the last position it handled: it gets every one it missed, and
 * skips notifications at or before the last position it has (they may
 * arrive twice in the instant between LISTEN and this read).
 *
 * The read is local by design (any node can serve it); it first waits
 * until this node applied the position asked for, so that no change
 * before it can turn up later.  A position older than what the log still
 * holds is KL005: the client reloads the table instead.
 *
 * src/live/changes.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "kalam.h"
#include "kv/rocks.h"
#include "live/live.h"

PG_FUNCTION_INFO_V1(kalam_changes);

static Datum
json_to_jsonb(const char *json)
{
	return DirectFunctionCall1(jsonb_in, CStringGetDatum(json));
}

/*
 * The position of the last change of the group that the retention purge
 * removed from this node's log; false if it removed none.
 */
static bool
purged_position(int group, KalamChangePos *last)
{
	char		key[KALAM_CHANGE_PURGED_KEY_LEN];
	size_t		vallen;
	char	   *value;
	uint64		purged[2];

	kalam_change_purged_key(key, group);
	value = kalam_rocks_get(key, sizeof(key), &vallen);
	if (value == NULL || vallen != sizeof(purged))
		return false;
	memcpy(purged, value, sizeof(purged));
	last->group = group;
	last->index = purged[0];
	last->n = (uint32) purged[1];
	return true;
}

/*
 * kalam.changes(table regclass, since text) returns setof (pos text, op
 * text, key jsonb, row jsonb)
 */
Datum
kalam_changes(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	KalamTable *table;
	Relation	rel = kalam_live_open_table(kalam_live_table_arg(fcinfo), &table);
	KalamLiveTable *live_table;
	StringInfoData row_prefix;
	KalamChangePos after;
	KalamChangePos purged;
	KalamLoggedChange *changes;
	int			nchanges;
	int			group;
	int			i;
	int			natts = RelationGetDescr(rel)->natts;
	Datum	   *values = palloc(sizeof(Datum) * natts);
	bool	   *isnull = palloc(sizeof(bool) * natts);

	InitMaterializedSRF(fcinfo, 0);
	group = table->type == KALAM_TABLE_SHARED ? KALAM_GROUP_SHARED :
		kalam_user_group(kalam_row_owner());
	after.group = group;
	after.index = 0;
	after.n = 0;
	if (!PG_ARGISNULL(1))
	{
		char	   *since = text_to_cstring(PG_GETARG_TEXT_PP(1));

		if (!kalam_live_parse_pos(since, &after))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("invalid kalam change position: \"%s\"", since),
					 errhint("A position is the \"pos\" of a notification or of kalam.changes, such as 2:1234:0.")));
		if (after.group != group)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("position \"%s\" is not one of table \"%s\"",
							since, RelationGetRelationName(rel)),
					 errdetail("The table's changes for this user are positions of group %d.",
							   group)));
		kalam_read_wait_position(group, after.index);
		if (purged_position(group, &purged) &&
			kalam_change_pos_cmp(&after, &purged) < 0)
			ereport(ERROR,
					(errcode(ERRCODE_KALAM_CHANGES_GONE),
					 errmsg("changes since position %s are no longer kept", since),
					 errdetail("This node's change log starts after position %s (kalam.change_retention is %d s).",
							   kalam_live_pos_text(&purged), kalam_change_retention),
					 errhint("Reload the table's rows, then follow its changes from kalam.changes(table) or its channel.")));
	}
	/* all that is kept: from where the purge stopped, not over its deletions */
	else if (purged_position(group, &purged))
		after = purged;

	initStringInfo(&row_prefix);
	kalam_key_prefix(&row_prefix, table);
	nchanges = kalam_live_read_log(&after, row_prefix.data, row_prefix.len,
								   INT_MAX, &changes);

	live_table = kalam_live_table(table->table_id);
	for (i = 0; i < nchanges; i++)
	{
		KalamChange change;
		Datum		out[4];
		bool		outnull[4] = {false, false, true, true};

		kalam_live_read_change(&changes[i], &change);
		out[0] = CStringGetTextDatum(kalam_live_pos_text(&change.pos));
		out[1] = CStringGetTextDatum(kalam_live_op_name(&change));
		if (change.row != NULL && live_table != NULL)
		{
			kalam_live_decode(rel, &change, values, isnull);
			out[2] = json_to_jsonb(kalam_live_key_json(live_table,
													   RelationGetDescr(rel),
													   values, isnull));
			outnull[2] = false;
			if (change.op != KALAM_CHANGE_DELETE)
			{
				out[3] = json_to_jsonb(kalam_live_row_json(rel, values, isnull));
				outnull[3] = false;
			}
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, out, outnull);
	}
	relation_close(rel, AccessShareLock);
	return (Datum) 0;
}
