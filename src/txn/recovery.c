/*-------------------------------------------------------------------------
 *
 * recovery.c
 *	  Resolve the intents of transactions across groups whose origin
 *	  stopped between the phases of its commit.
 *
 * A prepared intent locks its rows until it is resolved (txn/commit.c).
 * Its origin normally resolves it within milliseconds; if the origin's
 * backend or node dies first, nobody would.  So once a second the kalam
 * jobs worker of every node looks at the intents of the groups this node
 * leads, and for each one older than kalam.transaction_timeout (by the
 * time its prepare was proposed) asks the transaction's coordinator group
 * to decide: DECIDE records "aborted" unless the record "committed" is
 * there, through the coordinator's log, so the origin's late COMMIT and
 * recovery cannot both win.  Then it resolves the intent to match.  Both
 * steps are idempotent: two nodes that both think they lead, or a
 * recovery racing the origin's own resolution, change nothing.
 *
 * Intents are read from this node's own copy, which may lag; a lagging
 * copy only delays recovery, since every step goes through the logs.
 *
 * Every 10 seconds the same worker also removes the records of the
 * transactions its groups coordinated once they are older than
 * KALAM_TXN_RECORD_RETENTION_MS: a committed one after resolving its
 * participants once more (a no-op unless an intent was left behind), so
 * that no intent outlives the record that decides it.  A record is small
 * (about 40 bytes), but every transaction across groups leaves one.
 *
 * At the same collection it removes the parts of large transactions
 * (codec/command.h) that never committed: a session that died between
 * sending its parts and its split leaves them, and nothing else would.
 * Parts older than kalam.split_timeout (by their commit's start) are
 * dropped through the group's log, by a split with the abort flag.  A
 * commit still running then fails at its split, a part being missing, and
 * applies nothing.
 *
 * src/txn/recovery.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "port/pg_bswap.h"
#include "utils/timestamp.h"

#include "codec/command.h"
#include "kalam.h"
#include "kv/rocks.h"
#include "txn/txn.h"
#include "worker/channel.h"

/* An intent that recovery resolves */
typedef struct StaleIntent
{
	char		txid[KALAM_TXN_ID_LEN];
	int			coordinator;
	uint64		required_meta;	/* of the writes it holds */
	bool		ranges;			/* they delete a range */
} StaleIntent;

typedef struct IntentScan
{
	TimestampTz cutoff;
	StaleIntent *found;
	int			n;
	int			allocated;
} IntentScan;

static bool
collect_intent(const char *key, size_t keylen, const char *value,
			   size_t vallen, void *arg)
{
	IntentScan *scan = (IntentScan *) arg;
	KalamTxnRecord record;
	KalamCommandReader reader;
	const char *error;
	StaleIntent *intent;

	if (keylen != KALAM_TXN_KEY_LEN ||
		!kalam_txn_read(value, vallen, &record, &error) ||
		record.state != KALAM_TXN_PREPARED || record.time >= scan->cutoff)
		return true;
	if (scan->n == scan->allocated)
	{
		scan->allocated *= 2;
		scan->found = repalloc(scan->found, sizeof(StaleIntent) * scan->allocated);
	}
	intent = &scan->found[scan->n++];
	memcpy(intent->txid, key + KALAM_TXN_PREFIX_LEN, KALAM_TXN_ID_LEN);
	intent->coordinator = record.coordinator;
	intent->required_meta = 0;
	if (kalam_command_open(&reader, record.command, record.commandlen, &error))
		intent->required_meta = reader.header.required_meta_index;
	intent->ranges = kalam_command_reads_ranges(record.command, record.commandlen);
	return true;
}

/* A record that the collection removes */
typedef struct OldRecord
{
	char		txid[KALAM_TXN_ID_LEN];
	bool		committed;
	int			nparticipants;
	int			participants[KALAM_MAX_GROUPS];
} OldRecord;

typedef struct RecordScan
{
	TimestampTz cutoff;
	OldRecord  *found;
	int			n;
	int			allocated;
} RecordScan;

/* How often records are collected */
#define KALAM_RECORD_COLLECT_INTERVAL_MS	10000

static bool
collect_record(const char *key, size_t keylen, const char *value,
			   size_t vallen, void *arg)
{
	RecordScan *scan = (RecordScan *) arg;
	KalamTxnRecord record;
	const char *error;
	OldRecord  *old;
	int			i;

	if (keylen != KALAM_TXN_KEY_LEN ||
		!kalam_txn_read(value, vallen, &record, &error) ||
		record.state == KALAM_TXN_PREPARED || record.time >= scan->cutoff)
		return true;
	if (scan->n == scan->allocated)
	{
		scan->allocated *= 2;
		scan->found = repalloc(scan->found, sizeof(OldRecord) * scan->allocated);
	}
	old = &scan->found[scan->n++];
	memcpy(old->txid, key + KALAM_TXN_PREFIX_LEN, KALAM_TXN_ID_LEN);
	old->committed = (record.state == KALAM_TXN_COMMITTED);
	old->nparticipants = record.nparticipants;
	for (i = 0; i < record.nparticipants; i++)
		old->participants[i] = kalam_txn_participant(&record, i);
	return true;
}

/* The parts of a transaction that never committed */
typedef struct StaleSplit
{
	char		id[KALAM_SPLIT_ID_LEN];
	uint32		nparts;			/* its highest sequence number, plus one */
	TimestampTz started;
} StaleSplit;

typedef struct SplitScan
{
	TimestampTz cutoff;
	StaleSplit *found;
	int			n;
	int			allocated;
} SplitScan;

/*
 * A part's key and value: note its split if its commit started before
 * the cut-off (a value that does not decode is as stale).  Keys come in
 * order, so the parts of one split come together.
 */
static bool
collect_part(const char *key, size_t keylen, const char *value,
			 size_t vallen, void *arg)
{
	SplitScan  *scan = (SplitScan *) arg;
	KalamCommandReader reader;
	const char *error;
	const char *id = key + KALAM_PARTS_PREFIX_LEN;
	TimestampTz started = 0;
	uint32		seq_be;
	uint32		seq;
	StaleSplit *split;

	if (keylen != KALAM_PART_KEY_LEN)
		return true;
	if (kalam_command_open(&reader, value, vallen, &error))
		started = reader.header.timestamp;
	if (started >= scan->cutoff)
		return true;
	memcpy(&seq_be, key + KALAM_SPLIT_PREFIX_LEN, sizeof(seq_be));
	seq = Min(pg_ntoh32(seq_be), KALAM_SPLIT_MAX_PARTS - 1);
	split = scan->n > 0 ? &scan->found[scan->n - 1] : NULL;
	if (split == NULL || memcmp(split->id, id, KALAM_SPLIT_ID_LEN) != 0)
	{
		if (scan->n == scan->allocated)
		{
			scan->allocated *= 2;
			scan->found = repalloc(scan->found, sizeof(StaleSplit) * scan->allocated);
		}
		split = &scan->found[scan->n++];
		memcpy(split->id, id, KALAM_SPLIT_ID_LEN);
		split->nparts = 0;
		split->started = started;
	}
	split->nparts = Max(split->nparts, seq + 1);
	return true;
}

/* Drop the stale parts of the group this node leads */
static void
drop_stale_parts(int group, TimestampTz now)
{
	char		prefix[KALAM_PARTS_PREFIX_LEN];
	char		errbuf[256] = "";
	char		name[KALAM_GROUP_NAME_LEN];
	SplitScan	scan;
	int			i;

	scan.cutoff = TimestampTzPlusMilliseconds(now, -kalam_split_timeout);
	scan.n = 0;
	scan.allocated = 4;
	scan.found = palloc(sizeof(StaleSplit) * scan.allocated);
	kalam_command_parts_prefix(prefix, group);
	if (!kalam_rocks_scan_prefix(prefix, sizeof(prefix),
								 collect_part, &scan, errbuf, sizeof(errbuf)) &&
		errbuf[0] != '\0')
		ereport(ERROR,
				(errcode(ERRCODE_IO_ERROR),
				 errmsg("kalam could not read the parts of a group: %s", errbuf)));
	kalam_group_name(group, name);
	for (i = 0; i < scan.n; i++)
	{
		StringInfoData command;
		KalamApplyResult result;

		initStringInfo(&command);
		kalam_command_begin(&command, now);
		kalam_command_add_split(&command, group, scan.found[i].id,
								scan.found[i].nparts, KALAM_SPLIT_ABORT);
		kalam_channel_submit(group, command.data, command.len, &result);
		pfree(command.data);
		if (result.status == KALAM_APPLY_OK)
			ereport(LOG,
					(errmsg("kalam: removed the parts of a transaction in group \"%s\" that did not commit within kalam.split_timeout",
							name),
					 errdetail("Its commit started at %s and sent %u parts.",
							   timestamptz_to_str(scan.found[i].started),
							   scan.found[i].nparts)));
	}
	pfree(scan.found);
}

static char *
txid_text(const char *txid)
{
	static const char hex[] = "0123456789abcdef";
	char	   *text = palloc(KALAM_TXN_ID_LEN * 2 + 1);
	int			i;

	for (i = 0; i < KALAM_TXN_ID_LEN; i++)
	{
		text[2 * i] = hex[((unsigned char) txid[i]) >> 4];
		text[2 * i + 1] = hex[((unsigned char) txid[i]) & 0x0F];
	}
	text[KALAM_TXN_ID_LEN * 2] = '\0';
	return text;
}

/* Decide and resolve one stale intent of group */
static void
recover_intent(int group, const StaleIntent *intent)
{
	KalamApplyStatus status;
	uint64		decided_at;
	uint64		applied;
	uint64		required = intent->required_meta;
	bool		commit;
	char		name[KALAM_GROUP_NAME_LEN];

	kalam_group_name(group, name);
	status = kalam_txn_decide(intent->coordinator, intent->txid, &decided_at);
	if (status != KALAM_APPLY_OK && status != KALAM_APPLY_TXN_ABORTED)
	{
		ereport(LOG,
				(errmsg("kalam: could not learn the outcome of transaction %s prepared in group \"%s\" (status %d); trying again",
						txid_text(intent->txid), name, (int) status)));
		return;
	}
	commit = (status == KALAM_APPLY_OK);
	if (intent->coordinator == KALAM_GROUP_META)
		required = Max(required, decided_at);
	status = kalam_txn_resolve(group, intent->txid, commit, intent->ranges,
							   required, &applied);
	if (status != KALAM_APPLY_OK)
	{
		ereport(LOG,
				(errmsg("kalam: could not resolve transaction %s in group \"%s\" (status %d); trying again",
						txid_text(intent->txid), name, (int) status)));
		return;
	}
	pg_atomic_fetch_add_u64(&kalam_channel_stats()->transactions_recovered, 1);
	ereport(LOG,
			(errmsg("kalam: transaction %s, left prepared in group \"%s\" for over %d ms, resolved: %s",
					txid_text(intent->txid), name, kalam_transaction_timeout,
					commit ? "committed" : "aborted")));
}

/*
 * Remove a coordinator's old record; a committed one's participants are
 * resolved once more first.  False if something failed (tried again at
 * the next collection).
 */
static bool
forget_record(int coordinator, const OldRecord *old)
{
	uint64		decided_at = 0;
	uint64		applied;
	int			i;

	if (old->committed && coordinator == KALAM_GROUP_META &&
		kalam_txn_decide(coordinator, old->txid, &decided_at) != KALAM_APPLY_OK)
		return false;
	for (i = 0; old->committed && i < old->nparticipants; i++)
		if (kalam_txn_resolve(old->participants[i], old->txid, true, true,
							  decided_at, &applied) != KALAM_APPLY_OK)
			return false;
	return kalam_txn_forget(coordinator, old->txid) == KALAM_APPLY_OK;
}

/* Scan a group's intents (or records) into scan with the visitor */
static void
scan_txn_keys(int group, bool intents, KalamPrefixVisitor visit, void *scan)
{
	char		prefix[KALAM_TXN_PREFIX_LEN];
	char		errbuf[256];

	kalam_txn_prefix(prefix, group, intents);
	errbuf[0] = '\0';
	if (!kalam_rocks_scan_prefix(prefix, sizeof(prefix), visit, scan,
								 errbuf, sizeof(errbuf)) && errbuf[0] != '\0')
		ereport(ERROR,
				(errcode(ERRCODE_IO_ERROR),
				 errmsg("kalam could not read the transactions of a group: %s",
						errbuf)));
}

/*
 * One round of recovery over the groups this node leads (the meta group
 * is always a coordinator and holds no intents), and every 10 seconds the
 * collection of old records.
 */
void
kalam_txn_recover(void)
{
	static TimestampTz next_collection = 0;
	TimestampTz now = GetCurrentTimestamp();
	bool		collect = (now >= next_collection);
	int			group;

	if (collect)
		next_collection = TimestampTzPlusMilliseconds(now,
													  KALAM_RECORD_COLLECT_INTERVAL_MS);
	for (group = KALAM_GROUP_META; group < kalam_group_count(); group++)
	{
		KalamGroupStatus status;
		IntentScan	intents;
		RecordScan	records;
		int			i;
		int			forgotten = 0;

		if (!kalam_channel_group_status(group, &status) || !status.is_leader)
			continue;
		intents.cutoff = TimestampTzPlusMilliseconds(now, -kalam_transaction_timeout);
		intents.n = 0;
		intents.allocated = 16;
		intents.found = palloc(sizeof(StaleIntent) * intents.allocated);
		if (group != KALAM_GROUP_META)
			scan_txn_keys(group, true, collect_intent, &intents);
		for (i = 0; i < intents.n; i++)
			recover_intent(group, &intents.found[i]);
		pfree(intents.found);
		if (!collect)
			continue;
		if (group != KALAM_GROUP_META)
			drop_stale_parts(group, now);

		records.cutoff = TimestampTzPlusMilliseconds(now, -KALAM_TXN_RECORD_RETENTION_MS);
		records.n = 0;
		records.allocated = 16;
		records.found = palloc(sizeof(OldRecord) * records.allocated);
		scan_txn_keys(group, false, collect_record, &records);
		for (i = 0; i < records.n; i++)
			forgotten += forget_record(group, &records.found[i]) ? 1 : 0;
		if (forgotten > 0)
			ereport(DEBUG1,
					(errmsg("kalam: removed %d records of transactions across groups",
							forgotten)));
		pfree(records.found);
	}
}
