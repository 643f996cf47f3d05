/*-------------------------------------------------------------------------
 *
 * channels.c
 *	  kalam's notification channels: their names, who may LISTEN to them,
 *	  that nobody but kalam sends on them, and filtered subscriptions.
 *
 * PostgreSQL's LISTEN checks nothing: any session may listen to any
 * channel, and pg_notify() lets any session send on any channel.  A user's
 * changes must reach only that user, so:
 * - A table's channel is "kalam_t" and 32 hex digits of an HMAC-SHA256,
 *   under the cluster secret (or a key drawn at start on a single node), of
 *   the table id and the user: the same on every node, and unguessable to
 *   whoever lacks the secret.  Each role has its own channel of a shared
 *   table too, so that nobody can forge a change to another role even with
 *   pg_notify(), which no hook can stop: a session learns only its own
 *   channels (kalam.channel), and notifications carry the notifier's pid
 *   (kalam.notifier_pid) for clients that check the sender.
 * - LISTEN on a channel that starts with "kalam_" is allowed only on the
 *   session's own channel of a table it may SELECT, or on a subscription
 *   channel that the session made as the same role; otherwise 42501.  NOTIFY on one is
 *   42501 for everybody (the notifier calls Async_Notify directly).
 * - kalam.subscribe makes a channel of the session's own ("kalam_s" and
 *   random digits), with an optional filter: a boolean expression over
 *   the table's columns, parsed and checked here as a WHERE clause is
 *   (42703 for an unknown column, 42804 for a non-boolean), without
 *   subqueries or volatile functions (the notifier runs it for every
 *   change: a pg_sleep would hold up everybody), and kept parsed so that later catalog changes (a function
 *   renamed, search_path) cannot change what it means.
 * Every accepted LISTEN and subscription is recorded (registry.c) so that
 * the notifier knows where to send.
 *
 * src/live/channels.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "access/relation.h"
#include "commands/async.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parse_coerce.h"
#include "parser/parse_collate.h"
#include "parser/parse_expr.h"
#include "parser/parse_relation.h"
#include "parser/parser.h"
#include "rewrite/rewriteManip.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "cluster/handshake.h"
#include "live/live.h"
#include "worker/channel.h"

PG_FUNCTION_INFO_V1(kalam_channel);
PG_FUNCTION_INFO_V1(kalam_subscribe);
PG_FUNCTION_INFO_V1(kalam_unsubscribe);
PG_FUNCTION_INFO_V1(kalam_notifier_pid);
PG_FUNCTION_INFO_V1(kalam_notifications);

static ProcessUtility_hook_type prev_ProcessUtility = NULL;

/* Does the channel name start with prefix? */
static bool
starts_with(const char *channel, const char *prefix)
{
	return strncmp(channel, prefix, strlen(prefix)) == 0;
}

static void
append_hex(char *dest, const unsigned char *bytes, int n)
{
	static const char digits[] = "0123456789abcdef";
	int			i;

	for (i = 0; i < n; i++)
	{
		dest[2 * i] = digits[bytes[i] >> 4];
		dest[2 * i + 1] = digits[bytes[i] & 0x0F];
	}
	dest[2 * n] = '\0';
}

/*
 * The channel on which who receives the changes of a table: who's rows of
 * a user or stream table, every row of a shared table.
 */
char *
kalam_live_table_channel(uint32 table_id, const char *who)
{
	static const char label[] = "kalam channel";
	StringInfoData msg;
	unsigned char mac[32];
	unsigned int maclen = sizeof(mac);
	uint32		be = pg_hton32(table_id);
	char	   *channel = palloc(KALAM_CHANNEL_LEN + 1);

	initStringInfo(&msg);
	appendBinaryStringInfo(&msg, label, sizeof(label));
	appendBinaryStringInfo(&msg, (char *) &be, sizeof(be));
	appendStringInfoString(&msg, who);
	if (!kalam_handshake_mac(msg.data, msg.len, mac) &&
		HMAC(EVP_sha256(), kalam_live_local_key(), KALAM_LIVE_LOCAL_KEY_LEN,
			 (unsigned char *) msg.data, msg.len, mac, &maclen) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("kalam could not compute a channel name")));
	pfree(msg.data);
	strcpy(channel, KALAM_TABLE_CHANNEL_PREFIX);
	append_hex(channel + strlen(KALAM_TABLE_CHANNEL_PREFIX), mac, 16);
	return channel;
}

/* The table argument of a function that is not STRICT */
Oid
kalam_live_table_arg(FunctionCallInfo fcinfo)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the table must not be NULL")));
	return PG_GETARG_OID(0);
}

/* The relation of a kalam table the session may SELECT, opened, or ERROR. */
Relation
kalam_live_open_table(Oid relid, KalamTable **table)
{
	Relation	rel;

	if (!kalam_is_kalam_table(relid))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a kalam table", get_rel_name(relid)),
				 errhint("Only foreign tables on SERVER kalam have change channels.")));
	rel = relation_open(relid, AccessShareLock);
	if (pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for table %s",
						RelationGetRelationName(rel)),
				 errdetail("Changes of a table go only to roles that may SELECT it.")));
	*table = kalam_get_table(rel);
	return rel;
}

/* A listening of the session to a table, for the registry */
static void
init_listening(KalamListening *l, const KalamTable *table, const char *channel)
{
	memset(l, 0, sizeof(KalamListening));
	l->pid = MyProcPid;
	l->roleid = GetUserId();
	l->relid = table->relid;
	l->table_id = table->table_id;
	l->shared = (table->type == KALAM_TABLE_SHARED);
	strlcpy(l->user, kalam_row_owner(), sizeof(l->user));
	strlcpy(l->channel, channel, sizeof(l->channel));
}

static void
add_listening(const KalamListening *l)
{
	if (!kalam_live_add(l))
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("too many sessions listen to kalam channels"),
				 errdetail("All %d of kalam.max_listeners are taken.",
						   kalam_max_listenings),
				 errhint("Raise kalam.max_listeners and restart the server.")));
}

/*
 * LISTEN on a kalam table channel: find the session's table whose channel
 * it is, among those it may SELECT.  False if none.
 */
static bool
find_table_channel(const char *channel, KalamListening *l)
{
	const char *who = kalam_row_owner();
	bool		found = false;
	uint64		i;

	SPI_connect();
	if (SPI_execute("SELECT \"table\"::oid FROM kalam.tables", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "kalam could not list its tables");
	for (i = 0; i < SPI_processed && !found; i++)
	{
		bool		isnull;
		Oid			relid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i],
														   SPI_tuptable->tupdesc,
														   1, &isnull));
		Relation	rel;
		KalamTable *table;

		if (pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
			continue;
		rel = relation_open(relid, AccessShareLock);
		table = kalam_get_table(rel);
		if (strcmp(kalam_live_table_channel(table->table_id, who), channel) == 0)
		{
			init_listening(l, table, channel);
			found = true;
		}
		relation_close(rel, AccessShareLock);
	}
	SPI_finish();
	return found;
}

static void
refuse_listen(const char *channel)
{
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied to listen on channel \"%s\"", channel),
			 errdetail("Channels that start with \"%s\" carry kalam changes: each belongs to one role and table, or to the session that subscribed.",
					   KALAM_CHANNEL_PREFIX),
			 errhint("Get the channel of a table with kalam.channel(table) or kalam.subscribe(table, filter).")));
}

/* LISTEN: a kalam channel must be the session's own; record it. */
static void
check_listen(const char *channel)
{
	KalamListening l;

	if (!starts_with(channel, KALAM_CHANNEL_PREFIX))
		return;
	if (starts_with(channel, KALAM_SUB_CHANNEL_PREFIX))
	{
		if (!kalam_live_owns(MyProcPid, GetUserId(), channel))
			refuse_listen(channel);
		return;
	}
	if (strlen(channel) != KALAM_CHANNEL_LEN ||
		!starts_with(channel, KALAM_TABLE_CHANNEL_PREFIX) ||
		!find_table_channel(channel, &l))
		refuse_listen(channel);
	add_listening(&l);
}

static void
kalam_live_process_utility(PlannedStmt *pstmt, const char *queryString,
						   bool readOnlyTree, ProcessUtilityContext context,
						   ParamListInfo params, QueryEnvironment *queryEnv,
						   DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;

	if (IsA(parsetree, ListenStmt))
		check_listen(((ListenStmt *) parsetree)->conditionname);
	else if (IsA(parsetree, NotifyStmt) &&
			 starts_with(((NotifyStmt *) parsetree)->conditionname,
						 KALAM_CHANNEL_PREFIX))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to notify on channel \"%s\"",
						((NotifyStmt *) parsetree)->conditionname),
				 errdetail("Only kalam's notifier sends on channels that start with \"%s\".",
						   KALAM_CHANNEL_PREFIX)));
	else if (IsA(parsetree, UnlistenStmt))
	{
		const char *channel = ((UnlistenStmt *) parsetree)->conditionname;

		if (channel == NULL || starts_with(channel, KALAM_CHANNEL_PREFIX))
			(void) kalam_live_remove(MyProcPid, channel);
	}
	else if (IsA(parsetree, DiscardStmt) &&
			 (((DiscardStmt *) parsetree)->target == DISCARD_ALL))
		(void) kalam_live_remove(MyProcPid, NULL);

	if (prev_ProcessUtility)
		prev_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
							queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);
}

void
kalam_live_install_hooks(void)
{
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = kalam_live_process_utility;
}

/* kalam.channel(regclass): the session's channel of a table's changes */
Datum
kalam_channel(PG_FUNCTION_ARGS)
{
	KalamTable *table;
	Relation	rel = kalam_live_open_table(PG_GETARG_OID(0), &table);
	char	   *channel = kalam_live_table_channel(table->table_id,
												   kalam_row_owner());

	relation_close(rel, AccessShareLock);
	PG_RETURN_TEXT_P(cstring_to_text(channel));
}

static void
refuse_filter(const char *filter, const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_SYNTAX_ERROR),
			 errmsg("invalid kalam subscription filter: %s", filter),
			 errdetail("%s", why),
			 errhint("A filter is one boolean expression over the table's columns, as in a WHERE clause, such as: room = 'general' AND priority > 2")));
}

/*
 * Parse and check a filter as a WHERE clause over the table; returns its
 * expression as nodeToString.  Only the parser runs: nothing is executed.
 */
static char *
parse_filter(Relation rel, const char *filter)
{
	List	   *raw;
	SelectStmt *select;
	ResTarget  *target;
	ParseState *pstate;
	ParseNamespaceItem *nsitem;
	Node	   *expr;
	char	   *text;

	raw = raw_parser(psprintf("SELECT %s", filter), RAW_PARSE_DEFAULT);
	if (list_length(raw) != 1 ||
		!IsA(linitial_node(RawStmt, raw)->stmt, SelectStmt))
		refuse_filter(filter, "It is not a single expression.");
	select = (SelectStmt *) linitial_node(RawStmt, raw)->stmt;
	if (list_length(select->targetList) != 1 || select->fromClause != NIL ||
		select->whereClause != NULL || select->groupClause != NIL ||
		select->havingClause != NULL || select->windowClause != NIL ||
		select->sortClause != NIL || select->limitCount != NULL ||
		select->limitOffset != NULL || select->lockingClause != NIL ||
		select->withClause != NULL || select->distinctClause != NIL ||
		select->intoClause != NULL || select->valuesLists != NIL ||
		select->op != SETOP_NONE)
		refuse_filter(filter, "It is not a single expression.");
	target = linitial_node(ResTarget, select->targetList);
	if (target->name != NULL)
		refuse_filter(filter, "It is not a single expression.");

	pstate = make_parsestate(NULL);
	nsitem = addRangeTableEntryForRelation(pstate, rel, AccessShareLock,
										   NULL, false, false);
	addNSItemToQuery(pstate, nsitem, false, true, true);
	expr = transformExpr(pstate, target->val, EXPR_KIND_WHERE);
	expr = coerce_to_boolean(pstate, expr, "a kalam subscription filter");
	assign_expr_collations(pstate, expr);
	if (checkExprHasSubLink(expr))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("a kalam subscription filter cannot hold a subquery"),
				 errhint("Filter on the changed row's own columns.")));
	if (contain_volatile_functions(expr))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("a kalam subscription filter cannot call volatile functions"),
				 errdetail("The notifier runs every filter for every change it sends; a volatile function could hold up everybody's notifications."),
				 errhint("Use immutable or stable functions and operators only.")));
	free_parsestate(pstate);

	text = nodeToString(expr);
	if (strlen(text) >= KALAM_FILTER_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("kalam subscription filter is too long"),
				 errdetail("Its parsed form takes %zu bytes; at most %d fit.",
						   strlen(text), KALAM_FILTER_MAX - 1)));
	return text;
}

/*
 * kalam.subscribe(regclass, filter text): a channel of the session's own
 * that receives the table's changes whose row satisfies the filter.  The
 * session LISTENs to it from the end of the transaction on.
 */
Datum
kalam_subscribe(PG_FUNCTION_ARGS)
{
	KalamTable *table;
	Relation	rel = kalam_live_open_table(kalam_live_table_arg(fcinfo), &table);
	KalamListening l;
	unsigned char random[16];
	char		channel[KALAM_CHANNEL_LEN + 1];

	if (!pg_strong_random(random, sizeof(random)))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("kalam could not draw a random channel name")));
	strcpy(channel, KALAM_SUB_CHANNEL_PREFIX);
	append_hex(channel + strlen(KALAM_SUB_CHANNEL_PREFIX), random, sizeof(random));
	init_listening(&l, table, channel);
	if (!PG_ARGISNULL(1))
	{
		char	   *filter = parse_filter(rel, text_to_cstring(PG_GETARG_TEXT_PP(1)));

		l.filter_len = strlen(filter);
		memcpy(l.filter, filter, l.filter_len + 1);
	}
	relation_close(rel, AccessShareLock);
	add_listening(&l);
	Async_Listen(channel);
	PG_RETURN_TEXT_P(cstring_to_text(channel));
}

/*
 * kalam.unsubscribe(channel): end one of the subscriptions that the
 * session made as the current role
 */
Datum
kalam_unsubscribe(PG_FUNCTION_ARGS)
{
	char	   *channel = text_to_cstring(PG_GETARG_TEXT_PP(0));
	bool		removed = false;

	if (kalam_live_owns(MyProcPid, GetUserId(), channel) &&
		(removed = kalam_live_remove(MyProcPid, channel)))
		Async_Unlisten(channel);
	PG_RETURN_BOOL(removed);
}

/* kalam.notifier_pid(): the process every kalam notification comes from */
Datum
kalam_notifier_pid(PG_FUNCTION_ARGS)
{
	int			pid = kalam_live_notifier_state()->pid;

	if (pid == 0)
		PG_RETURN_NULL();
	PG_RETURN_INT32(pid);
}

/* kalam.notifications: what the notifier has done, and how far behind */
Datum
kalam_notifications(PG_FUNCTION_ARGS)
{
	KalamNotifierState *state = kalam_live_notifier_state();
	TupleDesc	desc;
	Datum		values[8];
	bool		nulls[8] = {false};
	uint64		pending = 0;
	TimestampTz oldest = state->oldest_unsent;
	int			g;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	for (g = KALAM_GROUP_SHARED; g < kalam_group_count(); g++)
	{
		KalamGroupStatus status;

		if (state->cursor_set[g] && kalam_channel_group_status(g, &status) &&
			status.applied_index > state->sent[g].index)
			pending += status.applied_index - state->sent[g].index;
	}
	values[0] = Int32GetDatum(state->pid);
	nulls[0] = (state->pid == 0);
	values[1] = Int64GetDatum(pg_atomic_read_u64(&state->notifications));
	values[2] = Int64GetDatum(pg_atomic_read_u64(&state->changes));
	values[3] = Int64GetDatum(pg_atomic_read_u64(&state->transactions));
	values[4] = Int64GetDatum(pg_atomic_read_u64(&state->retries));
	values[5] = Int64GetDatum(pending);
	if (oldest == 0)
		nulls[6] = true;
	else
		values[6] = DirectFunctionCall2(timestamp_mi,
										TimestampTzGetDatum(GetCurrentTimestamp()),
										TimestampTzGetDatum(oldest));
	values[7] = Int32GetDatum(kalam_live_count());
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}
