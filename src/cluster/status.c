/*-------------------------------------------------------------------------
 *
 * status.c
 *	  SQL functions behind kalam.groups and kalam.nodes, and the leader of
 *	  a user's shard, as this node sees them.
 *
 * src/cluster/status.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"

#include "cluster/node.h"
#include "codec/group.h"
#include "worker/channel.h"

PG_FUNCTION_INFO_V1(kalam_groups);
PG_FUNCTION_INFO_V1(kalam_nodes);
PG_FUNCTION_INFO_V1(kalam_leader_for_user);
PG_FUNCTION_INFO_V1(kalam_is_leader_for_user);
PG_FUNCTION_INFO_V1(kalam_group_for_user);

/* kalam.groups.snapshot_install, by KalamGroupStatus.install_phase */
static const char *const install_phases[] = {
	NULL, "fetching", "waiting for meta", "ingesting"
};

Datum
kalam_groups(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			group;

	InitMaterializedSRF(fcinfo, 0);
	for (group = 0; group < kalam_group_count(); group++)
	{
		KalamGroupStatus status;
		char		name[KALAM_GROUP_NAME_LEN];
		Datum		values[13];
		bool		nulls[13] = {false};

		kalam_group_name(group, name);
		values[0] = CStringGetTextDatum(name);
		if (!kalam_channel_group_status(group, &status))
		{
			memset(nulls + 1, true, sizeof(bool) * 12);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
			continue;
		}
		values[1] = Int32GetDatum(status.leader_id);
		nulls[1] = (status.leader_id == 0);
		values[2] = CStringGetTextDatum(kalam_node_client_address(status.leader_id));
		nulls[2] = (kalam_node_client_address(status.leader_id)[0] == '\0');
		values[3] = Int64GetDatum((int64) status.term);
		values[4] = Int64GetDatum((int64) status.commit_index);
		values[5] = Int64GetDatum((int64) status.applied_index);
		values[6] = BoolGetDatum(status.is_leader);
		values[7] = Int64GetDatum((int64) status.parked_entries);
		values[8] = Int64GetDatum((int64) status.parked_on_disk);
		nulls[9] = (status.install_phase <= 0 ||
					status.install_phase >= (int) lengthof(install_phases));
		if (!nulls[9])
			values[9] = CStringGetTextDatum(install_phases[status.install_phase]);
		values[10] = Int32GetDatum(status.install_source);
		nulls[10] = (nulls[9] || status.install_source == 0);
		values[11] = Int64GetDatum((int64) status.install_rows);
		nulls[11] = nulls[9];
		values[12] = Int64GetDatum((int64) status.install_bytes);
		nulls[12] = nulls[9];
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

Datum
kalam_nodes(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			i;

	InitMaterializedSRF(fcinfo, 0);
	for (i = 0; i < kalam_node_count(); i++)
	{
		KalamNodeInfo node;
		Datum		values[4];
		bool		nulls[4] = {false};

		kalam_node_info(i, &node);
		values[0] = Int32GetDatum(node.id);
		values[1] = CStringGetTextDatum(node.raft_address);
		values[2] = CStringGetTextDatum(kalam_node_client_address(node.id));
		nulls[2] = (kalam_node_client_address(node.id)[0] == '\0');
		values[3] = BoolGetDatum(node.id == kalam_node_id ||
								 kalam_channel_node_reachable(node.id));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* node id of the leader of the user's shard; NULL if none is known */
Datum
kalam_leader_for_user(PG_FUNCTION_ARGS)
{
	KalamGroupStatus status;
	char	   *user = text_to_cstring(PG_GETARG_TEXT_PP(0));

	if (!kalam_channel_group_status(kalam_user_group(user), &status) ||
		status.leader_id == 0)
		PG_RETURN_NULL();
	PG_RETURN_INT32(status.leader_id);
}

Datum
kalam_is_leader_for_user(PG_FUNCTION_ARGS)
{
	KalamGroupStatus status;
	char	   *user = text_to_cstring(PG_GETARG_TEXT_PP(0));

	PG_RETURN_BOOL(kalam_channel_group_status(kalam_user_group(user), &status) &&
				   status.is_leader);
}

Datum
kalam_group_for_user(PG_FUNCTION_ARGS)
{
	char		name[KALAM_GROUP_NAME_LEN];

	kalam_group_name(kalam_user_group(text_to_cstring(PG_GETARG_TEXT_PP(0))), name);
	PG_RETURN_TEXT_P(cstring_to_text(name));
}
