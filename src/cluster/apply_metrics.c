/*-------------------------------------------------------------------------
 *
 * apply_metrics.c
 *	  Latency histograms and counters of each Raft group's apply path
 *	  (Spec 021 task 1.3), in shared memory, behind kalam.stat_apply.
 *
 * Per group: entries, commands, rows written and bytes applied, and the
 * largest entry (kalam.max_entry_size bounds those backends propose); the
 * apply time of each entry; on the leader, the time from proposing an entry to
 * its commit (libraft hands a committed entry to the state machine at
 * once, and answers the proposal right after); the time from an entry's
 * commit to the RocksDB write that makes it readable (readers see nothing
 * before, so this is the commit-to-apply latency that matters); commands
 * forwarded to another node's leader and their round trip; entries parked
 * until the meta group catches up, and how long they waited.  Each over
 * the last minute (six windows of 10 s) and since kalam.stat_apply_reset().
 *
 * Latencies go into fixed log-bucket histograms (four buckets per power of
 * two from 1 us, HDR-style: a value lands within 19% of its bucket's
 * bound), so recording is a few increments and no sample is kept.  Only
 * the kalam worker's loop thread records, so every counter has one writer;
 * readers may see one histogram a few increments ahead of another, which
 * a statistics view can afford.  Atomic adds cost the loop about 20 ns
 * each, a handful per entry.
 *
 * src/cluster/apply_metrics.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "portability/instr_time.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "cluster/apply_metrics.h"
#include "codec/group.h"

#define HIST_BUCKETS		128
#define WINDOWS				6
#define WINDOW_SECONDS		10

typedef enum MetricHist
{
	HIST_APPLY,					/* apply time of an entry */
	HIST_PROPOSE_TO_COMMIT,		/* leader: raft_apply to commit */
	HIST_COMMIT_TO_APPLY,		/* commit to the write readers see */
	HIST_FORWARD,				/* round trip of a forwarded command */
	HIST_PARKED,				/* wait of a parked entry */
	NUM_HISTS
} MetricHist;

typedef enum MetricCounter
{
	COUNT_ENTRIES,
	COUNT_COMMANDS,
	COUNT_ROWS,
	COUNT_BYTES,
	COUNT_BYTES_MAX,			/* the largest entry: a maximum, not a sum */
	COUNT_PARKED,
	NUM_COUNTERS
} MetricCounter;

typedef struct Histogram
{
	pg_atomic_uint64 count;
	pg_atomic_uint64 max;
	pg_atomic_uint64 buckets[HIST_BUCKETS];
} Histogram;

/* what is counted over one period: a window, or since the reset */
typedef struct Period
{
	pg_atomic_uint64 counters[NUM_COUNTERS];
	Histogram	hists[NUM_HISTS];
} Period;

typedef struct GroupMetrics
{
	Period		total;
	pg_atomic_uint64 window_epoch[WINDOWS];	/* 10 s epoch each holds */
	Period		windows[WINDOWS];
} GroupMetrics;

typedef struct MetricsShared
{
	pg_atomic_uint64 reset_at;	/* TimestampTz of the last reset */
	int			ngroups;
	GroupMetrics groups[FLEXIBLE_ARRAY_MEMBER];
} MetricsShared;

static MetricsShared *metrics = NULL;

static void period_clear(Period *p);

/* worker-local: commit times of the entries applied but not yet written */
#define PENDING_MAX	64
static uint64 pending_commit_us[KALAM_MAX_GROUPS][PENDING_MAX];
static int	npending[KALAM_MAX_GROUPS];
static uint64 last_commit_us[KALAM_MAX_GROUPS];

PG_FUNCTION_INFO_V1(kalam_stat_apply);
PG_FUNCTION_INFO_V1(kalam_stat_apply_reset);

Size
kalam_metrics_shmem_size(void)
{
	return add_size(offsetof(MetricsShared, groups),
					mul_size(kalam_group_count(), sizeof(GroupMetrics)));
}

void
kalam_metrics_shmem_init(void)
{
	bool		found;

	metrics = ShmemInitStruct("kalam apply metrics", kalam_metrics_shmem_size(),
							  &found);
	if (!found)
	{
		int			group;
		int			w;

		metrics->ngroups = kalam_group_count();
		pg_atomic_init_u64(&metrics->reset_at, (uint64) GetCurrentTimestamp());
		for (group = 0; group < metrics->ngroups; group++)
		{
			period_clear(&metrics->groups[group].total);
			for (w = 0; w < WINDOWS; w++)
			{
				period_clear(&metrics->groups[group].windows[w]);
				pg_atomic_init_u64(&metrics->groups[group].window_epoch[w], 0);
			}
		}
	}
}

uint64
kalam_metrics_now_us(void)
{
	instr_time	now;

	INSTR_TIME_SET_CURRENT(now);
	return INSTR_TIME_GET_MICROSEC(now);
}

/* The bucket of a value: 0-3 exact, then four per power of two */
static int
bucket_of(uint64 us)
{
	int			octave;
	int			b;

	if (us < 4)
		return (int) us;
	octave = pg_leftmost_one_pos64(us);
	b = (octave - 1) * 4 + (int) ((us >> (octave - 2)) & 3);
	return Min(b, HIST_BUCKETS - 1);
}

/* The largest value a bucket holds */
static uint64
bucket_bound(int b)
{
	int			octave;

	if (b < 4)
		return (uint64) b;
	octave = b / 4 + 1;
	return ((uint64) (4 + b % 4 + 1) << (octave - 2)) - 1;
}

static void
hist_add(Histogram *h, uint64 us)
{
	pg_atomic_fetch_add_u64(&h->count, 1);
	pg_atomic_fetch_add_u64(&h->buckets[bucket_of(us)], 1);
	if (us > pg_atomic_read_u64(&h->max))
		pg_atomic_write_u64(&h->max, us);
}

static void
period_clear(Period *p)
{
	int			c;
	int			h;
	int			b;

	for (c = 0; c < NUM_COUNTERS; c++)
		pg_atomic_write_u64(&p->counters[c], 0);
	for (h = 0; h < NUM_HISTS; h++)
	{
		pg_atomic_write_u64(&p->hists[h].count, 0);
		pg_atomic_write_u64(&p->hists[h].max, 0);
		for (b = 0; b < HIST_BUCKETS; b++)
			pg_atomic_write_u64(&p->hists[h].buckets[b], 0);
	}
}

/* The current window of a group, emptied first if it holds an old epoch */
static Period *
current_window(GroupMetrics *gm)
{
	uint64		epoch = (uint64) (GetCurrentTimestamp() / USECS_PER_SEC) / WINDOW_SECONDS;
	int			w = (int) (epoch % WINDOWS);

	if (pg_atomic_read_u64(&gm->window_epoch[w]) != epoch)
	{
		period_clear(&gm->windows[w]);
		pg_atomic_write_u64(&gm->window_epoch[w], epoch);
	}
	return &gm->windows[w];
}

static GroupMetrics *
group_metrics(int group)
{
	if (metrics == NULL || group < 0 || group >= metrics->ngroups)
		return NULL;
	return &metrics->groups[group];
}

/* Record a latency since the reset and in the window w */
static void
metric_record(GroupMetrics *gm, Period *w, MetricHist hist, uint64 us)
{
	hist_add(&gm->total.hists[hist], us);
	hist_add(&w->hists[hist], us);
}

static void
metric_count(GroupMetrics *gm, Period *w, MetricCounter counter, uint64 n)
{
	pg_atomic_fetch_add_u64(&gm->total.counters[counter], n);
	pg_atomic_fetch_add_u64(&w->counters[counter], n);
}

static void
record(int group, MetricHist hist, uint64 us)
{
	GroupMetrics *gm = group_metrics(group);

	if (gm != NULL)
		metric_record(gm, current_window(gm), hist, us);
}

/* libraft hands the group a committed entry (fsm apply) */
void
kalam_metrics_entry_arrived(int group)
{
	uint64		now = kalam_metrics_now_us();

	last_commit_us[group] = now;
	if (npending[group] < PENDING_MAX)
		pending_commit_us[group][npending[group]++] = now;
}

void
kalam_metrics_entry_applied(int group, uint64 apply_us, int commands,
							uint64 rows, size_t bytes)
{
	GroupMetrics *gm = group_metrics(group);
	Period	   *w;

	if (gm == NULL)
		return;
	w = current_window(gm);
	metric_record(gm, w, HIST_APPLY, apply_us);
	metric_count(gm, w, COUNT_ENTRIES, 1);
	metric_count(gm, w, COUNT_COMMANDS, (uint64) commands);
	metric_count(gm, w, COUNT_ROWS, rows);
	metric_count(gm, w, COUNT_BYTES, (uint64) bytes);
	if (bytes > pg_atomic_read_u64(&gm->total.counters[COUNT_BYTES_MAX]))
		pg_atomic_write_u64(&gm->total.counters[COUNT_BYTES_MAX], bytes);
	if (bytes > pg_atomic_read_u64(&w->counters[COUNT_BYTES_MAX]))
		pg_atomic_write_u64(&w->counters[COUNT_BYTES_MAX], bytes);
}

void
kalam_metrics_entry_parked(int group)
{
	GroupMetrics *gm = group_metrics(group);

	if (gm != NULL)
		metric_count(gm, current_window(gm), COUNT_PARKED, 1);
}

void
kalam_metrics_parked_released(int group, uint64 waited_us)
{
	record(group, HIST_PARKED, waited_us);
}

/*
 * The group's staged entries are written: readers see them now.  Entries
 * beyond PENDING_MAX in one batch count with the last one kept.
 */
void
kalam_metrics_flushed(int group)
{
	GroupMetrics *gm = group_metrics(group);
	uint64		now;
	Period	   *w;
	int			i;

	if (gm == NULL || npending[group] == 0)
		return;
	now = kalam_metrics_now_us();
	w = current_window(gm);
	for (i = 0; i < npending[group]; i++)
		metric_record(gm, w, HIST_COMMIT_TO_APPLY,
				  now - Min(now, pending_commit_us[group][i]));
	npending[group] = 0;
}

/* The leader's proposal came back committed (right after its fsm apply) */
void
kalam_metrics_proposal_committed(int group, uint64 proposed_us)
{
	uint64		committed = last_commit_us[group];

	if (committed < proposed_us)
		committed = kalam_metrics_now_us();
	record(group, HIST_PROPOSE_TO_COMMIT, committed - proposed_us);
}

void
kalam_metrics_forward_answered(int group, uint64 sent_us)
{
	uint64		now = kalam_metrics_now_us();

	record(group, HIST_FORWARD, now - Min(now, sent_us));
}

/* Add a period's histogram into sum */
static void
hist_sum(uint64 *buckets, uint64 *n, uint64 *max, Histogram *h)
{
	int			b;

	*n += pg_atomic_read_u64(&h->count);
	*max = Max(*max, pg_atomic_read_u64(&h->max));
	for (b = 0; b < HIST_BUCKETS; b++)
		buckets[b] += pg_atomic_read_u64(&h->buckets[b]);
}

/* The q-quantile of a summed histogram, in ms (the bucket's bound) */
static Datum
quantile(const uint64 *buckets, uint64 n, uint64 max, double q, bool *isnull)
{
	uint64		rank;
	uint64		seen = 0;
	int			b;

	*isnull = (n == 0);
	if (n == 0)
		return (Datum) 0;
	rank = (uint64) ceil(q * n);
	for (b = 0; b < HIST_BUCKETS; b++)
	{
		seen += buckets[b];
		if (seen >= Max(rank, 1))
			return Float8GetDatum(Min(bucket_bound(b), max) / 1000.0);
	}
	return Float8GetDatum(max / 1000.0);
}

/* The periods to sum: since the reset, or the windows of the last minute */
static int
periods_of(GroupMetrics *gm, bool minute, Period **periods)
{
	uint64		epoch = (uint64) (GetCurrentTimestamp() / USECS_PER_SEC) / WINDOW_SECONDS;
	int			n = 0;
	int			w;

	if (!minute)
	{
		periods[n++] = &gm->total;
		return n;
	}
	for (w = 0; w < WINDOWS; w++)
	{
		uint64		e = pg_atomic_read_u64(&gm->window_epoch[w]);

		if (e + WINDOWS > epoch && e <= epoch)
			periods[n++] = &gm->windows[w];
	}
	return n;
}

#define STAT_APPLY_COLS	22

/*
 * kalam.stat_apply(): a row per group and period ('minute', 'total').
 */
Datum
kalam_stat_apply(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			group;
	int			minute;

	InitMaterializedSRF(fcinfo, 0);
	if (metrics == NULL)
		return (Datum) 0;
	for (group = 0; group < metrics->ngroups; group++)
	{
		for (minute = 1; minute >= 0; minute--)
		{
			GroupMetrics *gm = &metrics->groups[group];
			Period	   *periods[WINDOWS];
			int			nperiods = periods_of(gm, minute, periods);
			Datum		values[STAT_APPLY_COLS];
			bool		nulls[STAT_APPLY_COLS] = {false};
			char		name[KALAM_GROUP_NAME_LEN];
			uint64		counters[NUM_COUNTERS] = {0};
			int			col = 0;
			int			c;
			int			h;
			int			i;

			for (i = 0; i < nperiods; i++)
				for (c = 0; c < NUM_COUNTERS; c++)
				{
					uint64		v = pg_atomic_read_u64(&periods[i]->counters[c]);

					if (c == COUNT_BYTES_MAX)
						counters[c] = Max(counters[c], v);
					else
						counters[c] += v;
				}
			kalam_group_name(group, name);
			values[col++] = CStringGetTextDatum(name);
			values[col++] = CStringGetTextDatum(minute ? "minute" : "total");
			if (minute)
				values[col++] = TimestampTzGetDatum(TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
																				-WINDOWS * WINDOW_SECONDS * 1000));
			else
				values[col++] = TimestampTzGetDatum((TimestampTz) pg_atomic_read_u64(&metrics->reset_at));
			values[col++] = Int64GetDatum((int64) counters[COUNT_ENTRIES]);
			values[col++] = Int64GetDatum((int64) counters[COUNT_COMMANDS]);
			values[col++] = Int64GetDatum((int64) counters[COUNT_ROWS]);
			values[col++] = Int64GetDatum((int64) counters[COUNT_BYTES]);
			values[col++] = Int64GetDatum((int64) counters[COUNT_BYTES_MAX]);
			for (h = 0; h < NUM_HISTS; h++)
			{
				uint64		buckets[HIST_BUCKETS] = {0};
				uint64		n = 0;
				uint64		max = 0;

				for (i = 0; i < nperiods; i++)
					hist_sum(buckets, &n, &max, &periods[i]->hists[h]);
				if (h == HIST_FORWARD)
					values[col++] = Int64GetDatum((int64) n);
				if (h == HIST_PARKED)
					values[col++] = Int64GetDatum((int64) counters[COUNT_PARKED]);
				values[col] = quantile(buckets, n, max, 0.5, &nulls[col]);
				col++;
				values[col] = quantile(buckets, n, max, 0.99, &nulls[col]);
				col++;
				if (h == HIST_APPLY || h == HIST_PARKED)
				{
					values[col] = Float8GetDatum(max / 1000.0);
					nulls[col] = (n == 0);
					col++;
				}
			}
			Assert(col == STAT_APPLY_COLS);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}
	return (Datum) 0;
}

/* kalam.stat_apply_reset(): start the 'total' rows again from now */
Datum
kalam_stat_apply_reset(PG_FUNCTION_ARGS)
{
	int			group;

	if (metrics == NULL)
		PG_RETURN_VOID();
	for (group = 0; group < metrics->ngroups; group++)
		period_clear(&metrics->groups[group].total);
	pg_atomic_write_u64(&metrics->reset_at, (uint64) GetCurrentTimestamp());
	PG_RETURN_VOID();
}
