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
 * src/txn/recovery.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/timestamp.h"

#include "codec/command.h"
#include "kalam.h"
#include "storage/prefix_scan.h"
#include "storage/rocks.h"
#include "txn/txn.h"
#include "worker/channel.h"

/* An intent that recovery resolves */
typedef struct StaleIntent
{
	char		txid[KALAM_TXN_ID_LEN];
	int			coordinator;
	uint64		required_meta;	/* of the writes it holds */
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
	return true;
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
	status = kalam_txn_resolve(group, intent->txid, commit, required, &applied);
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
 * One round of recovery over the groups this node leads (the meta group
 * is always a coordinator and holds no intents).
 */
void
kalam_txn_recover(void)
{
	TimestampTz cutoff = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													 -kalam_transaction_timeout);
	int			group;

	for (group = KALAM_GROUP_META + 1; group < kalam_group_count(); group++)
	{
		KalamGroupStatus status;
		IntentScan	scan;
		char		prefix[KALAM_TXN_PREFIX_LEN];
		char		errbuf[256];
		int			i;

		if (!kalam_channel_group_status(group, &status) || !status.is_leader)
			continue;
		scan.cutoff = cutoff;
		scan.n = 0;
		scan.allocated = 16;
		scan.found = palloc(sizeof(StaleIntent) * scan.allocated);
		kalam_txn_prefix(prefix, group);
		errbuf[0] = '\0';
		if (!kalam_scan_prefix(kalam_rocks_reader(), kalam_rocks_read_options(),
							   prefix, sizeof(prefix), collect_intent, &scan,
							   errbuf, sizeof(errbuf)) && errbuf[0] != '\0')
			ereport(ERROR,
					(errcode(ERRCODE_IO_ERROR),
					 errmsg("kalam could not read the transaction intents: %s",
							errbuf)));
		for (i = 0; i < scan.n; i++)
			recover_intent(group, &scan.found[i]);
		pfree(scan.found);
	}
}
