/*-------------------------------------------------------------------------
 *
 * read_level.c
 *	  Where a client may read a kalam table, and how fresh the read is:
 *	  kalam.read_consistency, kalam.read_after and kalam.last_commit().
 *
 * Every node applies every group's log, but a follower may be behind the
 * leader (or, cut off, never catch up), so answering a client from any
 * node's RocksDB could return rows the cluster overwrote long ago.  Each
 * kalam scan checks, when it starts, the group that holds the rows it reads
 * (the shard of the acting user, or the shared group):
 *
 *	 leader (default)  this node must lead the group, else KL004 names the
 *					   leader (DETAIL) and its libpq address (HINT, exactly
 *					   "host=... port=..."); KL002 when no leader is known.
 *					   A leader that was deposed and does not know it yet
 *					   may answer for up to an election timeout.
 *	 linearizable	   any node: the group's leader confirms with a quorum
 *					   that it still leads (cluster/fence.c: ReadIndex, one
 *					   round shared by the reads waiting for it) and
 *					   answers with its commit index; this node waits
 *					   until it has applied that far, then reads locally.
 *					   A leader cut off from the quorum cannot confirm:
 *					   KL002.
 *	 local			   any node, its own applied state, possibly stale.
 *
 * kalam.read_after = '<token>' (from kalam.last_commit(), e.g.
 * "user_2:1841,shared:77") makes reads on any node wait until this node has
 * applied those positions, then read locally: a client reads its own
 * writes on another node without going to the leader.
 *
 * kalam's own processes (the jobs worker: ttl purge, DDL replay) read
 * locally whatever the settings say; a client cannot SET its way into
 * that.  Reads of the transaction's own uncommitted writes combine with
 * the store, so the check holds for them too.
 *
 * src/fdw/read_level.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "cluster/node.h"
#include "codec/group.h"
#include "fdw/kalam_fdw.h"
#include "kalam.h"
#include "worker/channel.h"

PG_FUNCTION_INFO_V1(kalam_last_commit);

int			kalam_read_consistency = KALAM_READ_LEADER;
char	   *kalam_read_after = NULL;
bool		kalam_internal_reads = false;

static const struct config_enum_entry read_consistency_options[] = {
	{"leader", KALAM_READ_LEADER, false},
	{"linearizable", KALAM_READ_LINEARIZABLE, false},
	{"local", KALAM_READ_LOCAL, false},
	{NULL, 0, false}
};

/* a position of a group's log, as a token names it */
typedef struct KalamPosition
{
	int			group;
	uint64		index;
} KalamPosition;

/* kalam.read_after, parsed by its check hook */
typedef struct KalamReadAfter
{
	int			count;
	KalamPosition positions[KALAM_MAX_GROUPS];
} KalamReadAfter;

static KalamReadAfter *read_after = NULL;

/* positions of the COMMIT under way, then of the session's last one */
static KalamPosition committing[KALAM_MAX_GROUPS];
static int	ncommitting = 0;
static char *last_commit = NULL;

/*
 * Parse a position token: group:index pairs separated by commas, each group
 * once.  false with *error set if it is not one.
 */
static bool
parse_token(const char *token, KalamReadAfter *out, const char **error)
{
	char	   *copy = pstrdup(token);
	char	   *item;
	char	   *save;

	out->count = 0;
	for (item = strtok_r(copy, ",", &save); item != NULL;
		 item = strtok_r(NULL, ",", &save))
	{
		char	   *colon = strrchr(item, ':');
		char	   *end;
		uint64		index;
		int			group;
		int			i;

		while (*item == ' ')
			item++;
		if (colon == NULL || colon == item)
		{
			*error = "Each position is group:index, e.g. user_2:1841.";
			return false;
		}
		*colon = '\0';
		errno = 0;
		index = strtou64(colon + 1, &end, 10);
		if (errno != 0 || *end != '\0' || end == colon + 1)
		{
			*error = "A position's index is a log index, a whole number.";
			return false;
		}
		for (group = 0; group < kalam_group_count(); group++)
		{
			char		name[KALAM_GROUP_NAME_LEN];

			kalam_group_name(group, name);
			if (strcmp(name, item) == 0)
				break;
		}
		if (group == kalam_group_count())
		{
			*error = "A position names a Raft group of this cluster: meta, shared or user_0 .. user_N.";
			return false;
		}
		for (i = 0; i < out->count; i++)
			if (out->positions[i].group == group)
			{
				*error = "A token names each group once.";
				return false;
			}
		out->positions[out->count].group = group;
		out->positions[out->count].index = index;
		out->count++;
	}
	pfree(copy);
	return true;
}

static bool
check_read_after(char **newval, void **extra, GucSource source)
{
	KalamReadAfter parsed;
	const char *error = NULL;
	KalamReadAfter *result;

	if (*newval == NULL || (*newval)[0] == '\0')
	{
		*extra = NULL;
		return true;
	}
	if (!parse_token(*newval, &parsed, &error))
	{
		GUC_check_errmsg("invalid kalam position token \"%s\"", *newval);
		GUC_check_errdetail("%s", error);
		GUC_check_errhint("Use the text that kalam.last_commit() returned.");
		return false;
	}
	/* PostgreSQL frees a GUC's extra with free() */
	result = malloc(sizeof(KalamReadAfter));
	if (result == NULL)
	{
		GUC_check_errmsg("out of memory");
		return false;
	}
	*result = parsed;
	*extra = result;
	return true;
}

static void
assign_read_after(const char *newval, void *extra)
{
	read_after = (KalamReadAfter *) extra;
}

void
kalam_read_define_gucs(void)
{
	DefineCustomEnumVariable("kalam.read_consistency",
							 "Where and how fresh reads of kalam tables are: leader, linearizable or local.",
							 "leader: only on the leader of the rows' group; linearizable: on any node, seeing every write committed before the read; local: on any node, possibly stale.",
							 &kalam_read_consistency,
							 KALAM_READ_LEADER,
							 read_consistency_options,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);
	DefineCustomStringVariable("kalam.read_after",
							   "Reads wait until this node has applied these log positions (from kalam.last_commit()), then read locally.",
							   "Empty: no wait.",
							   &kalam_read_after,
							   "",
							   PGC_USERSET,
							   0,
							   check_read_after, assign_read_after, NULL);
}

/* What EXPLAIN shows as "Kalam Read". */
const char *
kalam_read_level_name(void)
{
	if (read_after != NULL)
		return psprintf("local after %s", kalam_read_after);
	return read_consistency_options[kalam_read_consistency].name;
}

/* The leader's client address as libpq keywords, or NULL if unknown. */
static char *
leader_conninfo(int leader_id)
{
	const char *address = kalam_node_client_address(leader_id);
	const char *colon = strrchr(address, ':');

	if (colon == NULL || colon == address)
		return NULL;
	return psprintf("host=%.*s port=%s", (int) (colon - address), address,
					colon + 1);
}

/*
 * The group's status once a leader is known, waiting up to
 * kalam.leader_wait_timeout for an election, as writes do.
 */
static void
known_leader(int group, const char *name, KalamGroupStatus *status)
{
	TimestampTz start = GetCurrentTimestamp();

	while (!kalam_channel_group_status(group, status) || status->leader_id == 0)
	{
		if (TimestampDifferenceExceeds(start, GetCurrentTimestamp(),
									   kalam_leader_wait_timeout))
			ereport(ERROR,
					(errcode(ERRCODE_KALAM_NOT_LEADER),
					 errmsg("no leader is known for group \"%s\"", name),
					 errdetail("No leader was elected within kalam.leader_wait_timeout (%d ms): this node may not reach a quorum.",
							   kalam_leader_wait_timeout),
					 errhint("Retry in a moment.")));
		kalam_channel_nap(10L);
	}
}

/* kalam.read_consistency = leader: this node must lead the group. */
static void
check_leader(int group, const KalamTable *table)
{
	KalamGroupStatus status;
	char		name[KALAM_GROUP_NAME_LEN];
	char	   *conninfo;

	kalam_group_name(group, name);
	known_leader(group, name, &status);
	if (status.is_leader)
		return;
	conninfo = leader_conninfo(status.leader_id);
	ereport(ERROR,
			(errcode(ERRCODE_KALAM_LEADER_ELSEWHERE),
			 table->type == KALAM_TABLE_SHARED ?
			 errmsg("not the leader for shared tables") :
			 errmsg("not the leader for user \"%s\"", kalam_row_owner()),
			 errdetail("Group \"%s\" is led by node %d in term " UINT64_FORMAT "; this node is %d. Reads at kalam.read_consistency 'leader' are served by the leader; 'linearizable' reads here.",
					   name, status.leader_id, status.term, kalam_node_id),
			 conninfo ? errhint("%s", conninfo) :
			 errhint("The leader's client address is not known yet.")));
}

/* kalam.read_consistency = linearizable: a fence through the leader. */
static void
fence(int group)
{
	KalamApplyResult result;
	char		name[KALAM_GROUP_NAME_LEN];

	kalam_channel_submit(group, NULL, 0, &result);
	if (result.status == KALAM_APPLY_OK)
		return;
	kalam_group_name(group, name);
	ereport(ERROR,
			(errcode(ERRCODE_KALAM_NOT_LEADER),
			 errmsg("could not confirm the latest state of group \"%s\"", name),
			 errdetail("%s", result.message),
			 errhint("A linearizable read needs the group's leader and a quorum; retry, or read at kalam.read_consistency 'local'.")));
}

/*
 * Wait until this node applied a group's position, at most
 * kalam.leader_wait_timeout from start.
 */
static void
wait_position(int group, uint64 index, TimestampTz start)
{
	KalamGroupStatus status;

	while (!kalam_channel_group_status(group, &status) ||
		   status.applied_index < index)
	{
		if (TimestampDifferenceExceeds(start, GetCurrentTimestamp(),
									   kalam_leader_wait_timeout))
		{
			char		name[KALAM_GROUP_NAME_LEN];

			kalam_group_name(group, name);
			ereport(ERROR,
					(errcode(ERRCODE_KALAM_NOT_LEADER),
					 errmsg("this node has not applied position " UINT64_FORMAT " of group \"%s\"",
							index, name),
					 errdetail("It applied up to " UINT64_FORMAT " within kalam.leader_wait_timeout (%d ms).",
							   status.applied_index, kalam_leader_wait_timeout),
					 errhint("Retry, read on the group's leader, or reset kalam.read_after.")));
		}
		kalam_channel_nap(1L);
	}
}

/* kalam.read_after: wait until this node applied the positions. */
static void
wait_applied(const KalamReadAfter *after)
{
	TimestampTz start = GetCurrentTimestamp();
	int			i;

	for (i = 0; i < after->count; i++)
		wait_position(after->positions[i].group, after->positions[i].index,
					  start);
}

/* Wait until this node applied a position of a group (kalam.changes). */
void
kalam_read_wait_position(int group, uint64 index)
{
	wait_position(group, index, GetCurrentTimestamp());
}

/* The checks of the read level, when a scan of the table starts. */
void
kalam_read_check(const KalamTable *table)
{
	int			group;

	if (kalam_internal_reads)
		return;
	group = (table->type == KALAM_TABLE_SHARED) ? KALAM_GROUP_SHARED :
		kalam_user_group(kalam_row_owner());
	if (read_after != NULL)
	{
		wait_applied(read_after);
		return;
	}
	switch ((KalamReadLevel) kalam_read_consistency)
	{
		case KALAM_READ_LEADER:
			check_leader(group, table);
			break;
		case KALAM_READ_LINEARIZABLE:
			fence(group);
			break;
		case KALAM_READ_LOCAL:
			break;
	}
}

/* A COMMIT starts sending its groups' commands. */
void
kalam_read_commit_begin(void)
{
	ncommitting = 0;
}

/* One group's command of the COMMIT was applied at this position. */
void
kalam_read_commit_group(int group, uint64 index)
{
	Assert(ncommitting < KALAM_MAX_GROUPS);
	committing[ncommitting].group = group;
	committing[ncommitting].index = index;
	ncommitting++;
}

/* The COMMIT wrote every group: its positions become kalam.last_commit(). */
void
kalam_read_commit_end(void)
{
	StringInfoData token;
	int			i;

	if (ncommitting == 0)
		return;
	initStringInfo(&token);
	for (i = 0; i < ncommitting; i++)
	{
		char		name[KALAM_GROUP_NAME_LEN];

		kalam_group_name(committing[i].group, name);
		appendStringInfo(&token, "%s%s:" UINT64_FORMAT, i > 0 ? "," : "",
						 name, committing[i].index);
	}
	if (last_commit != NULL)
		pfree(last_commit);
	last_commit = MemoryContextStrdup(TopMemoryContext, token.data);
	pfree(token.data);
	ncommitting = 0;
}

/*
 * kalam.last_commit(): the log positions of this session's last COMMIT
 * that wrote kalam tables, as a token for kalam.read_after; NULL if none.
 */
Datum
kalam_last_commit(PG_FUNCTION_ARGS)
{
	if (last_commit == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(last_commit));
}
