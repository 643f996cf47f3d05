/*-------------------------------------------------------------------------
 *
 * stats.c
 *	  kalam.stats(): what the kalam worker has applied.
 *
 * src/stats.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "fmgr.h"
#include "funcapi.h"

#include "worker/channel.h"

PG_FUNCTION_INFO_V1(kalam_stats);

Datum
kalam_stats(PG_FUNCTION_ARGS)
{
	KalamStats *stats = kalam_channel_stats();
	TupleDesc	desc;
	Datum		values[11];
	bool		nulls[11] = {false};
	uint64		committed = pg_atomic_read_u64(&stats->multi_group_committed);
	pid_t		pid = kalam_channel_worker_pid();

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	values[0] = Int64GetDatum(pg_atomic_read_u64(&stats->commands_applied));
	values[1] = Int64GetDatum(pg_atomic_read_u64(&stats->commands_failed));
	values[2] = Int64GetDatum(pg_atomic_read_u64(&stats->batches_written));
	values[3] = Int64GetDatum(pg_atomic_read_u64(&stats->rows_written));
	values[4] = Float8GetDatum(pg_atomic_read_u64(&stats->apply_time_us) / 1000.0);
	values[5] = Int64GetDatum(kalam_channel_applied_index());
	values[6] = Int32GetDatum((int32) pid);
	nulls[6] = (pid == 0);
	values[7] = Int64GetDatum(committed);
	values[8] = Int64GetDatum(pg_atomic_read_u64(&stats->multi_group_aborted));
	values[9] = Float8GetDatum(committed == 0 ? 0.0 :
							   pg_atomic_read_u64(&stats->multi_group_commit_us) /
							   1000.0 / committed);
	nulls[9] = (committed == 0);
	values[10] = Int64GetDatum(pg_atomic_read_u64(&stats->transactions_recovered));

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}
