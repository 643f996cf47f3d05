/*-------------------------------------------------------------------------
 *
 * debug_hooks.c
 *	  Developer-only ways in for tests: hand raw command bytes to a group.
 *
 * The apply function must refuse commands that are not their group's own
 * (keys of another group or of the group's metadata, range deletions that
 * name no table, impossible meta requirements, counts that do not fit).
 * Backends never build such commands, so the tests need a way to propose
 * crafted bytes through the normal channel: kalam.debug_propose.  It is
 * refused unless kalam.debug_enable_hooks is on (set at server start, off
 * by default) and only superusers may call it.  The same setting gates the
 * pauses that let a test stop a session between the steps of a commit
 * (kalam_debug_pause).
 *
 * src/debug_hooks.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "codec/group.h"
#include "kalam.h"
#include "worker/channel.h"

bool		kalam_debug_enable_hooks = false;

PG_FUNCTION_INFO_V1(kalam_debug_propose);

/*
 * Wait ms milliseconds, interruptibly, if kalam.debug_enable_hooks is on:
 * a test's pause between two steps of a commit (the kalam.debug_pause_*
 * settings).
 */
void
kalam_debug_pause(int ms)
{
	TimestampTz until;

	if (!kalam_debug_enable_hooks || ms <= 0)
		return;
	until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), ms);
	while (GetCurrentTimestamp() < until)
	{
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 TimestampDifferenceMilliseconds(GetCurrentTimestamp(), until),
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

static const char *
status_name(KalamApplyStatus status)
{
	switch (status)
	{
		case KALAM_APPLY_OK:
			return "ok";
		case KALAM_APPLY_DUPLICATE_KEY:
			return "duplicate key";
		case KALAM_APPLY_ROW_CHANGED:
			return "row changed";
		case KALAM_APPLY_BAD_COMMAND:
			return "bad command";
		case KALAM_APPLY_STORAGE_ERROR:
			return "storage error";
		case KALAM_APPLY_LOST:
			return "lost";
		case KALAM_APPLY_NOT_LEADER:
			return "not leader";
		case KALAM_APPLY_OUTCOME_UNKNOWN:
			return "outcome unknown";
		case KALAM_APPLY_LOCKED:
			return "locked";
		case KALAM_APPLY_TXN_ABORTED:
			return "transaction aborted";
	}
	return "unknown status";
}

/*
 * kalam.debug_propose(group int, command bytea) returns text: propose the
 * bytes as one command of the group, wait for the outcome, and return it
 * as "ok" or "<status>: <message>".
 */
Datum
kalam_debug_propose(PG_FUNCTION_ARGS)
{
	int32		group = PG_GETARG_INT32(0);
	bytea	   *command = PG_GETARG_BYTEA_PP(1);
	KalamApplyResult result;

	if (!kalam_debug_enable_hooks)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("kalam.debug_propose is disabled"),
				 errdetail("It is a developer-only feature, for tests."),
				 errhint("Set kalam.debug_enable_hooks = on in postgresql.conf and restart the server.")));
	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for kalam.debug_propose"),
				 errdetail("Only superusers may propose raw commands.")));
	if (group < 0 || group >= kalam_group_count())
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("no Raft group %d", group),
				 errdetail("Groups are numbered from 0 to %d.", kalam_group_count() - 1)));

	kalam_channel_submit(group, VARDATA_ANY(command),
						 VARSIZE_ANY_EXHDR(command), &result);
	if (result.status == KALAM_APPLY_OK)
		PG_RETURN_TEXT_P(cstring_to_text("ok"));
	PG_RETURN_TEXT_P(cstring_to_text(psprintf("%s: %s",
											  status_name(result.status),
											  result.message)));
}
