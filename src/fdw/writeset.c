/*-------------------------------------------------------------------------
 *
 * writeset.c
 *	  A transaction's writes to kalam tables, kept until COMMIT.
 *
 * Writes are buffered in a hash table keyed by the encoded row key.  Scans
 * merge it over what is stored, so a transaction reads its own writes.  At
 * PRE_COMMIT the whole set becomes one command, handed to the kalam worker;
 * COMMIT returns once the worker has applied it, and a failed check inside
 * apply (duplicate key, concurrently changed row) aborts the transaction.
 * A command of one group larger than kalam.max_entry_size goes in parts,
 * each a log entry of at most that size, then a split that applies them as
 * one command (codec/command.h): no Raft message, log entry or apply is
 * larger than the setting, whatever the transaction writes.
 * ROLLBACK, or an error before COMMIT, drops the set with the transaction's
 * memory.
 *
 * Savepoints work through an undo stack: inside a subtransaction every
 * change first records the entry as it was, and ROLLBACK TO restores the
 * records of the aborted subtransaction in reverse order.
 *
 * src/fdw/writeset.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "access/xact.h"
#include "common/hashfn.h"
#include "port/pg_bswap.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "cluster/meta_watermark.h"
#include "codec/command.h"
#include "codec/group.h"
#include "fdw/kalam_fdw.h"
#include "kalam.h"
#include "kv/keys.h"
#include "kv/row.h"
#include "txn/txn.h"
#include "worker/channel.h"

typedef struct KalamKeyRef
{
	char	   *key;
	size_t		keylen;
} KalamKeyRef;

typedef struct KalamPrefix
{
	char	   *data;
	size_t		len;
} KalamPrefix;

/* What a change inside a subtransaction replaced */
typedef struct KalamUndo
{
	SubTransactionId subid;
	bool		is_prefix;		/* undo a delete_prefix: trim the list */
	int			nprefixes;
	bool		existed;		/* was there an entry for the key? */
	KalamWriteEntry saved;		/* the entry as it was (key included) */
} KalamUndo;

/* kalam.max_entry_size, in kB */
static int	kalam_max_entry_size = 4096;

/* kalam.debug_pause_before_split, ms (tests: a session that dies there) */
static int	kalam_debug_pause_before_split = 0;

/* What a part's entry adds to the part: command, operation and key headers */
#define PART_OVERHEAD	256

static MemoryContext ws_context = NULL;
static HTAB *ws_hash = NULL;
static List *ws_prefixes = NIL;
static List *ws_undo = NIL;

static uint32
key_hash(const void *key, Size keysize)
{
	const KalamKeyRef *k = (const KalamKeyRef *) key;

	return hash_bytes((const unsigned char *) k->key, (int) k->keylen);
}

static int
key_match(const void *key1, const void *key2, Size keysize)
{
	const KalamKeyRef *a = (const KalamKeyRef *) key1;
	const KalamKeyRef *b = (const KalamKeyRef *) key2;

	if (a->keylen != b->keylen)
		return 1;
	return memcmp(a->key, b->key, a->keylen);
}

static void
ensure_writeset(void)
{
	HASHCTL		ctl;

	if (ws_hash != NULL)
		return;
	ws_context = AllocSetContextCreate(TopTransactionContext,
									   "kalam writeset",
									   ALLOCSET_DEFAULT_SIZES);
	ctl.keysize = sizeof(KalamKeyRef);
	ctl.entrysize = sizeof(KalamWriteEntry);
	ctl.hash = key_hash;
	ctl.match = key_match;
	ctl.hcxt = ws_context;
	ws_hash = hash_create("kalam writeset", 256, &ctl,
						  HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
}

static void
forget_writeset(void)
{
	/* the memory goes with TopTransactionContext */
	ws_context = NULL;
	ws_hash = NULL;
	ws_prefixes = NIL;
	ws_undo = NIL;
}

KalamWriteEntry *
kalam_writeset_lookup(const char *key, size_t keylen)
{
	KalamKeyRef ref;

	if (ws_hash == NULL)
		return NULL;
	ref.key = (char *) key;
	ref.keylen = keylen;
	return (KalamWriteEntry *) hash_search(ws_hash, &ref, HASH_FIND, NULL);
}

static bool
in_subtransaction(void)
{
	return GetCurrentTransactionNestLevel() > 1;
}

/* Record the current state of a key before a subtransaction changes it. */
static void
remember_entry(const char *key, size_t keylen, KalamWriteEntry *current)
{
	MemoryContext old;
	KalamUndo  *undo;

	if (!in_subtransaction())
		return;
	old = MemoryContextSwitchTo(ws_context);
	undo = palloc0(sizeof(KalamUndo));
	undo->subid = GetCurrentSubTransactionId();
	undo->existed = (current != NULL);
	if (current != NULL)
		undo->saved = *current;
	else
	{
		undo->saved.key = palloc(keylen);
		memcpy(undo->saved.key, key, keylen);
		undo->saved.keylen = keylen;
	}
	ws_undo = lappend(ws_undo, undo);
	MemoryContextSwitchTo(old);
}

/*
 * Find or create the entry for a key.  A new entry gets a copy of the key
 * and the given facts about the stored row.
 */
static KalamWriteEntry *
enter_entry(Oid relid, const char *key, size_t keylen, bool had_row,
			uint64 version)
{
	KalamKeyRef ref;
	KalamWriteEntry *entry;
	bool		found;

	ensure_writeset();
	ref.key = (char *) key;
	ref.keylen = keylen;
	entry = (KalamWriteEntry *) hash_search(ws_hash, &ref, HASH_FIND, NULL);
	remember_entry(key, keylen, entry);
	if (entry != NULL)
		return entry;

	entry = (KalamWriteEntry *) hash_search(ws_hash, &ref, HASH_ENTER, &found);
	entry->key = MemoryContextAlloc(ws_context, keylen);
	memcpy(entry->key, key, keylen);
	entry->keylen = keylen;
	entry->relid = relid;
	entry->had_row = had_row;
	entry->expected_version = version;
	entry->if_absent = false;
	entry->value = NULL;
	entry->vallen = 0;
	return entry;
}

/*
 * Write a row under key.  had_row and version describe the stored row and
 * matter only when the transaction has not touched the key before.
 */
void
kalam_writeset_put(Oid relid, const char *key, size_t keylen, bool had_row,
				   uint64 version, bool if_absent, const char *value,
				   size_t vallen)
{
	KalamWriteEntry *entry = enter_entry(relid, key, keylen, had_row, version);

	entry->value = MemoryContextAlloc(ws_context, vallen);
	memcpy(entry->value, value, vallen);
	entry->vallen = vallen;
	if (!entry->had_row)
		entry->if_absent = if_absent;
}

/* Delete the row under key, read at the given version. */
void
kalam_writeset_delete(Oid relid, const char *key, size_t keylen,
					  uint64 version)
{
	KalamWriteEntry *entry = enter_entry(relid, key, keylen, true, version);

	entry->value = NULL;
	entry->vallen = 0;
}

/* Delete every row under prefix (TRUNCATE, DROP). */
void
kalam_writeset_delete_prefix(const char *prefix, size_t len)
{
	HASH_SEQ_STATUS status;
	KalamWriteEntry *entry;
	KalamPrefix *p;
	MemoryContext old;

	ensure_writeset();
	hash_seq_init(&status, ws_hash);
	while ((entry = (KalamWriteEntry *) hash_seq_search(&status)) != NULL)
	{
		if (!kalam_key_has_prefix(entry->key, entry->keylen, prefix, len))
			continue;
		remember_entry(entry->key, entry->keylen, entry);
		(void) hash_search(ws_hash, entry, HASH_REMOVE, NULL);
	}

	old = MemoryContextSwitchTo(ws_context);
	if (in_subtransaction())
	{
		KalamUndo  *undo = palloc0(sizeof(KalamUndo));

		undo->subid = GetCurrentSubTransactionId();
		undo->is_prefix = true;
		undo->nprefixes = list_length(ws_prefixes);
		ws_undo = lappend(ws_undo, undo);
	}
	p = palloc(sizeof(KalamPrefix));
	p->data = palloc(len);
	memcpy(p->data, prefix, len);
	p->len = len;
	ws_prefixes = lappend(ws_prefixes, p);
	MemoryContextSwitchTo(old);
}

/* Did the transaction delete every row under a prefix of key? */
bool
kalam_writeset_prefix_deleted(const char *key, size_t keylen)
{
	ListCell   *lc;

	foreach(lc, ws_prefixes)
	{
		KalamPrefix *p = (KalamPrefix *) lfirst(lc);

		if (kalam_key_has_prefix(key, keylen, p->data, p->len))
			return true;
	}
	return false;
}

/* Is what the store holds under key replaced by this transaction? */
bool
kalam_writeset_hides_store(const char *key, size_t keylen)
{
	return ws_hash != NULL &&
		(kalam_writeset_lookup(key, keylen) != NULL ||
		 kalam_writeset_prefix_deleted(key, keylen));
}

/* The entries holding a row with lower <= key < upper. */
List *
kalam_writeset_range(const char *lower, size_t lowerlen,
					 const char *upper, size_t upperlen)
{
	HASH_SEQ_STATUS status;
	KalamWriteEntry *entry;
	List	   *result = NIL;

	if (ws_hash == NULL)
		return NIL;
	hash_seq_init(&status, ws_hash);
	while ((entry = (KalamWriteEntry *) hash_seq_search(&status)) != NULL)
	{
		if (entry->value == NULL ||
			kalam_key_compare(entry->key, entry->keylen, lower, lowerlen) < 0 ||
			kalam_key_compare(entry->key, entry->keylen, upper, upperlen) >= 0)
			continue;
		result = lappend(result, entry);
	}
	return result;
}

/* Undo what the aborted subtransaction changed, newest first. */
static void
undo_subtransaction(SubTransactionId subid)
{
	while (ws_undo != NIL)
	{
		KalamUndo  *undo = (KalamUndo *) llast(ws_undo);
		KalamKeyRef ref;

		if (undo->subid != subid)
			break;
		ws_undo = list_delete_last(ws_undo);
		if (undo->is_prefix)
		{
			ws_prefixes = list_truncate(ws_prefixes, undo->nprefixes);
			continue;
		}
		ref.key = undo->saved.key;
		ref.keylen = undo->saved.keylen;
		if (undo->existed)
		{
			KalamWriteEntry *entry;

			entry = (KalamWriteEntry *) hash_search(ws_hash, &ref, HASH_ENTER, NULL);
			*entry = undo->saved;
		}
		else
			(void) hash_search(ws_hash, &ref, HASH_REMOVE, NULL);
	}
}

/* The parent now owns what the committed subtransaction changed. */
static void
hand_undo_to_parent(SubTransactionId subid, SubTransactionId parent)
{
	int			i;

	if (parent == TopSubTransactionId)
	{
		while (ws_undo != NIL && ((KalamUndo *) llast(ws_undo))->subid == subid)
			ws_undo = list_delete_last(ws_undo);
		return;
	}
	for (i = list_length(ws_undo) - 1; i >= 0; i--)
	{
		KalamUndo  *undo = (KalamUndo *) list_nth(ws_undo, i);

		if (undo->subid != subid)
			break;
		undo->subid = parent;
	}
}

static KalamOpKind
entry_op(const KalamWriteEntry *entry, bool *has_op)
{
	*has_op = true;
	if (entry->had_row)
		return entry->value ? KALAM_OP_UPDATE : KALAM_OP_DELETE;
	if (entry->value == NULL)
	{
		*has_op = false;
		return KALAM_OP_DELETE;
	}
	return entry->if_absent ? KALAM_OP_INSERT_IF_ABSENT : KALAM_OP_INSERT;
}

/*
 * Turn a failed apply into the error PostgreSQL users expect.  The result
 * may come from another node: its operation index is checked against the
 * command's count of operations.
 */
static void
report_apply_failure(const KalamApplyResult *result, KalamWriteEntry **ops,
					 int nprefixes, int ncommand_ops)
{
	KalamWriteEntry *entry = NULL;
	const char *relname = NULL;
	char	   *key_text = NULL;

	/* only these name an operation that ran; a refused command may not */
	if ((result->status == KALAM_APPLY_DUPLICATE_KEY ||
		 result->status == KALAM_APPLY_ROW_CHANGED ||
		 result->status == KALAM_APPLY_LOCKED) &&
		result->op_index >= (uint32) nprefixes &&
		result->op_index < (uint32) ncommand_ops)
		entry = ops[result->op_index - nprefixes];
	if (entry != NULL && OidIsValid(entry->relid))
	{
		Relation	rel = table_open(entry->relid, AccessShareLock);

		relname = pstrdup(RelationGetRelationName(rel));
		if (entry->value != NULL)
		{
			TupleDesc	desc = RelationGetDescr(rel);
			Datum	   *values = palloc(desc->natts * sizeof(Datum));
			bool	   *isnull = palloc(desc->natts * sizeof(bool));

			kalam_row_decode(entry->value, entry->vallen, desc, values, isnull);
			key_text = kalam_format_key(kalam_get_table(rel), desc, values, isnull);
		}
		table_close(rel, AccessShareLock);
	}

	switch (result->status)
	{
		case KALAM_APPLY_DUPLICATE_KEY:
			ereport(ERROR,
					(errcode(ERRCODE_UNIQUE_VIOLATION),
					 errmsg("duplicate key value violates primary key of kalam table \"%s\"",
							relname ? relname : "?"),
					 key_text ? errdetail("Key %s already exists.", key_text) : 0));
			break;
		case KALAM_APPLY_ROW_CHANGED:
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("could not serialize access due to concurrent update"),
					 key_text ?
					 errdetail("The row of kalam table \"%s\" with key %s was changed or deleted by another transaction after this one read it.",
							   relname, key_text) :
					 errdetail("A row of kalam table \"%s\" was changed or deleted by another transaction after this one read it.",
							   relname ? relname : "?"),
					 errhint("Retry the transaction.")));
			break;
		case KALAM_APPLY_LOCKED:
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("could not serialize access due to a concurrent transaction across groups"),
					 key_text ?
					 errdetail("The row of kalam table \"%s\" with key %s is held by a transaction that writes several Raft groups and has not finished committing.",
							   relname, key_text) :
					 errdetail("Rows of kalam table \"%s\" are held by a transaction that writes several Raft groups and has not finished committing.",
							   relname ? relname : "?"),
					 errhint("Retry the transaction.  A transaction left behind by a failed node is resolved after kalam.transaction_timeout.")));
			break;
		case KALAM_APPLY_TXN_ABORTED:
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("the transaction across groups was aborted by recovery"),
					 errdetail("Its commit reached the coordinator group after recovery had given up on it (kalam.transaction_timeout is %d ms); nothing of it was applied.",
							   kalam_transaction_timeout),
					 errhint("Retry the transaction.")));
			break;
		case KALAM_APPLY_LOST:
		case KALAM_APPLY_OUTCOME_UNKNOWN:
			ereport(ERROR,
					(errcode(ERRCODE_KALAM_OUTCOME_UNKNOWN),
					 errmsg("the outcome of this commit is unknown"),
					 result->message[0] != '\0' ?
					 errdetail("The transaction's writes may or may not have been applied: %s.",
							   result->message) :
					 errdetail("The kalam worker stopped while applying the transaction's writes; they may or may not have been applied."),
					 errhint("Read the rows again to learn whether the writes are there.")));
			break;
		case KALAM_APPLY_NOT_LEADER:
			ereport(ERROR,
					(errcode(ERRCODE_KALAM_NOT_LEADER),
					 errmsg("no leader could take the transaction's writes"),
					 errdetail("%s; nothing of the transaction was applied in that group.", result->message),
					 errhint("Retry: a group elects a leader while a majority of its nodes is up.")));
			break;
		case KALAM_APPLY_STORAGE_ERROR:
			ereport(ERROR,
					(errcode(ERRCODE_IO_ERROR),
					 errmsg("kalam could not write the transaction's changes"),
					 errdetail("RocksDB: %s", result->message),
					 errhint("Nothing of this transaction was written.")));
			break;
		case KALAM_APPLY_BAD_COMMAND:
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("kalam worker rejected the transaction's command: %s",
							result->message)));
			break;
		case KALAM_APPLY_OK:
			break;
	}
}

/*
 * The meta group position that a command writing this key requires: that
 * of the last DDL of its table (see cluster/meta_watermark.c).
 */
static uint64
required_meta_index(int group, const char *key, size_t keylen)
{
	if (group == KALAM_GROUP_META)
		return 0;
	return kalam_watermark_of(kalam_key_table(key, keylen));
}

/*
 * Build the command of one group from the transaction's prefix deletions
 * and entries that belong to it, after the transaction operation of a
 * transaction across groups (txn not NULL); ops[] gets the entries in
 * command order.  Returns the number of writes.
 */
static int
build_group_command(StringInfo buf, int group, KalamWriteEntry **entries,
					int nentries, const KalamTxn *txn, KalamWriteEntry **ops,
					int *nprefixes)
{
	ListCell   *lc;
	uint64		required = 0;
	int			nops = 0;
	int			i;

	kalam_command_begin(buf, GetCurrentTimestamp());
	if (txn != NULL)
		kalam_txn_add_op(buf, txn, group);
	*nprefixes = 0;

	/* prefix deletions first: later writes of the transaction follow them */
	foreach(lc, ws_prefixes)
	{
		KalamPrefix *p = (KalamPrefix *) lfirst(lc);

		if (kalam_key_group(p->data, p->len) != group)
			continue;
		kalam_command_add(buf, KALAM_OP_DELETE_PREFIX, 0, p->data, p->len,
						  NULL, 0);
		required = Max(required, required_meta_index(group, p->data, p->len));
		(*nprefixes)++;
	}
	for (i = 0; i < nentries; i++)
	{
		KalamWriteEntry *entry = entries[i];
		bool		has_op;
		KalamOpKind kind = entry_op(entry, &has_op);

		if (!has_op || kalam_key_group(entry->key, entry->keylen) != group)
			continue;
		kalam_command_add(buf, kind, entry->expected_version,
						  entry->key, entry->keylen,
						  entry->value, entry->vallen);
		required = Max(required, required_meta_index(group, entry->key,
													 entry->keylen));
		ops[nops++] = entry;
	}
	kalam_command_require_meta_index(buf, required);
	return nops + *nprefixes;
}

/*
 * A write entry and the first 16 bytes of its key, as two big-endian
 * integers (zero past a shorter key's end), for sorting by key: most
 * comparisons decide on them, in the array, without following the entry's
 * pointers.  Sorting the pointers with qsort took 342 ms of a 500,000-row
 * INSERT ... SELECT's 2.1 s COMMIT (bench/bulk_load.sh's statement).
 */
typedef struct SortedEntry
{
	uint64		head[2];
	KalamWriteEntry *entry;
} SortedEntry;

/* By key, the order of the stored rows */
static inline int
sorted_entry_cmp(const SortedEntry *a, const SortedEntry *b)
{
	if (a->head[0] != b->head[0])
		return a->head[0] < b->head[0] ? -1 : 1;
	if (a->head[1] != b->head[1])
		return a->head[1] < b->head[1] ? -1 : 1;
	return kalam_key_compare(a->entry->key, a->entry->keylen,
							 b->entry->key, b->entry->keylen);
}

#define ST_SORT sort_entries
#define ST_ELEMENT_TYPE SortedEntry
#define ST_COMPARE(a, b) sorted_entry_cmp(a, b)
#define ST_SCOPE static
#define ST_DEFINE
#include "lib/sort_template.h"

/* The write set's entries in key order, in a palloc'd array */
static KalamWriteEntry **
sorted_entries(int *nentries)
{
	long		n = hash_get_num_entries(ws_hash);
	SortedEntry *sorted;
	KalamWriteEntry **entries;
	KalamWriteEntry *entry;
	HASH_SEQ_STATUS status;
	int			i = 0;

	sorted = MemoryContextAllocHuge(CurrentMemoryContext,
									sizeof(SortedEntry) * (n + 1));
	hash_seq_init(&status, ws_hash);
	while ((entry = (KalamWriteEntry *) hash_seq_search(&status)) != NULL)
	{
		unsigned char head[16] = {0};

		memcpy(head, entry->key, Min(entry->keylen, sizeof(head)));
		memcpy(&sorted[i].head[0], head, sizeof(uint64));
		memcpy(&sorted[i].head[1], head + sizeof(uint64), sizeof(uint64));
		sorted[i].head[0] = pg_ntoh64(sorted[i].head[0]);
		sorted[i].head[1] = pg_ntoh64(sorted[i].head[1]);
		sorted[i].entry = entry;
		i++;
	}
	sort_entries(sorted, i);
	entries = MemoryContextAllocHuge(CurrentMemoryContext,
									 sizeof(KalamWriteEntry *) * (i + 1));
	*nentries = i;
	for (i = 0; i < *nentries; i++)
		entries[i] = sorted[i].entry;
	pfree(sorted);
	return entries;
}

/* Mark the groups the transaction writes; returns how many */
static int
groups_written(KalamWriteEntry **entries, int nentries, bool *writes_group)
{
	ListCell   *lc;
	int			n = 0;
	int			i;

	memset(writes_group, 0, sizeof(bool) * KALAM_MAX_GROUPS);
	foreach(lc, ws_prefixes)
	{
		KalamPrefix *p = (KalamPrefix *) lfirst(lc);

		writes_group[kalam_key_group(p->data, p->len)] = true;
	}
	for (i = 0; i < nentries; i++)
	{
		bool		has_op;

		(void) entry_op(entries[i], &has_op);
		if (has_op)
			writes_group[kalam_key_group(entries[i]->key, entries[i]->keylen)] = true;
	}
	for (i = 0; i < KALAM_MAX_GROUPS; i++)
		n += writes_group[i] ? 1 : 0;
	return n;
}

/*
 * Hand the worker a split's part seq; false, with the failure in *result,
 * if it was not stored.
 */
static bool
submit_part(int group, const char *split_id, uint32 seq, StringInfo part,
			TimestampTz timestamp, KalamApplyResult *result)
{
	StringInfoData command;
	char		key[KALAM_PART_KEY_LEN];

	kalam_command_part_key(key, group, split_id, seq);
	initStringInfo(&command);
	kalam_command_begin(&command, timestamp);
	kalam_command_add(&command, KALAM_OP_PART, 0, key, sizeof(key),
					  part->data, part->len);
	kalam_channel_submit(group, command.data, command.len, result);
	pfree(command.data);
	return result->status == KALAM_APPLY_OK;
}

/*
 * Apply a group's command that is larger than kalam.max_entry_size: its
 * operations in parts of about that size, each stored by an entry of its
 * own, then the split that applies them as one command, with the
 * command's outcome in *result (its operation index counts across the
 * parts, as in the whole command).  If a part fails, the parts sent so far
 * are dropped.
 */
static void
submit_split(int group, StringInfo whole, KalamApplyResult *result)
{
	KalamCommandReader reader;
	KalamOp		op;
	const char *error;
	char		split_id[KALAM_SPLIT_ID_LEN];
	StringInfoData part;
	StringInfoData split;
	Size		limit = (Size) kalam_max_entry_size * 1024 - PART_OVERHEAD;
	uint32		flags = 0;
	uint32		nparts = 0;
	bool		ok = true;

	if (!pg_strong_random(split_id, sizeof(split_id)))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random split id")));
	if (kalam_command_is_bulk_insert(whole->data, whole->len))
		flags |= KALAM_SPLIT_BULK;
	if (!kalam_command_open(&reader, whole->data, whole->len, &error))
		elog(ERROR, "kalam built a command it cannot read: %s", error);
	initStringInfo(&part);
	kalam_command_begin(&part, reader.header.timestamp);
	while (ok && kalam_command_next(&reader, &op, &error))
	{
		Size		oplen = sizeof(KalamOpHeader) + op.keylen + op.vallen;

		/* a part holds at least one operation, however large */
		if (((KalamCommandHeader *) part.data)->nops > 0 &&
			part.len + oplen > limit)
		{
			ok = submit_part(group, split_id, nparts++, &part,
							 reader.header.timestamp, result);
			kalam_command_begin(&part, reader.header.timestamp);
		}
		kalam_command_add(&part, op.kind, op.expected_version, op.key,
						  op.keylen, op.value, op.vallen);
	}
	if (ok && ((KalamCommandHeader *) part.data)->nops > 0)
		ok = submit_part(group, split_id, nparts++, &part,
						 reader.header.timestamp, result);
	pfree(part.data);

	initStringInfo(&split);
	kalam_command_begin(&split, reader.header.timestamp);
	if (ok)
	{
		kalam_debug_pause(kalam_debug_pause_before_split);
		kalam_command_add_split(&split, group, split_id, nparts, flags);
		kalam_command_require_meta_index(&split, reader.header.required_meta_index);
		kalam_channel_submit(group, split.data, split.len, result);
	}
	else
	{
		KalamApplyResult dropped;

		/* best effort: the failed part may be stored */
		kalam_command_add_split(&split, group, split_id, nparts,
								KALAM_SPLIT_ABORT);
		kalam_channel_submit(group, split.data, split.len, &dropped);
		result->op_index = 0;

		/* the outcome is known: without its split, nothing was applied */
		if (result->status == KALAM_APPLY_OUTCOME_UNKNOWN ||
			result->status == KALAM_APPLY_LOST)
		{
			char		message[sizeof(result->message)];

			snprintf(message, sizeof(message),
					 "a part of the transaction could not be stored: %s",
					 result->message);
			result->status = KALAM_APPLY_NOT_LEADER;
			strlcpy(result->message, message, sizeof(result->message));
		}
	}
	pfree(split.data);
}

/*
 * Hand the transaction's writes to the worker and wait until they are
 * applied: one command if they all belong to one Raft group (in parts if
 * it is large), else the two-phase commit of txn/commit.c over the groups
 * they write.
 */
static void
commit_writeset(void)
{
	KalamWriteEntry **entries;
	KalamWriteEntry ***ops;
	StringInfoData *commands;
	int		   *nprefixes;
	int		   *ncommand_ops;
	uint64		applied[KALAM_MAX_GROUPS] = {0};
	bool		writes_group[KALAM_MAX_GROUPS];
	KalamApplyResult result;
	KalamTxn	txn;
	int			nentries = 0;
	int			ngroups;
	int			group;
	int			failed = -1;

	/* a command's writes, and so its changes, in key order, not hash order */
	entries = sorted_entries(&nentries);
	ngroups = groups_written(entries, nentries, writes_group);
	if (ngroups == 0)
		return;
	if (ngroups > 1)
		kalam_txn_start(&txn, writes_group);

	commands = palloc0(sizeof(StringInfoData) * KALAM_MAX_GROUPS);
	ops = palloc0(sizeof(KalamWriteEntry **) * KALAM_MAX_GROUPS);
	nprefixes = palloc0(sizeof(int) * KALAM_MAX_GROUPS);
	ncommand_ops = palloc0(sizeof(int) * KALAM_MAX_GROUPS);
	for (group = 0; group < kalam_group_count(); group++)
	{
		if (!writes_group[group])
			continue;
		initStringInfo(&commands[group]);
		ops[group] = palloc(sizeof(KalamWriteEntry *) * (nentries + 1));
		ncommand_ops[group] = build_group_command(&commands[group], group,
												  entries, nentries,
												  ngroups > 1 ? &txn : NULL,
												  ops[group], &nprefixes[group]);
	}

	kalam_read_commit_begin();
	if (ngroups == 1)
	{
		for (group = 0; !writes_group[group]; group++)
			;
		if ((Size) commands[group].len > (Size) kalam_max_entry_size * 1024)
			submit_split(group, &commands[group], &result);
		else
			kalam_channel_submit(group, commands[group].data,
								 commands[group].len, &result);
		if (result.status != KALAM_APPLY_OK)
			failed = group;
		applied[group] = result.applied_index;
	}
	else
	{
		failed = kalam_txn_commit(&txn, commands, applied, &result);
		/* the transaction operation came first: the writes follow it */
		if (failed >= 0 && result.op_index > 0)
			result.op_index--;
	}
	if (failed >= 0)
		report_apply_failure(&result, ops[failed], nprefixes[failed],
							 ncommand_ops[failed]);
	for (group = 0; group < kalam_group_count(); group++)
		if (applied[group] != 0)
			kalam_read_commit_group(group, applied[group]);
	kalam_read_commit_end();
}

static void
writeset_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PARALLEL_PRE_COMMIT:
			if (ws_hash != NULL)
				commit_writeset();
			break;
		case XACT_EVENT_PRE_PREPARE:
			if (ws_hash != NULL)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot PREPARE a transaction that wrote to kalam tables")));
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			forget_writeset();
			break;
	}
}

static void
writeset_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						  SubTransactionId parentSubid, void *arg)
{
	if (ws_hash == NULL)
		return;
	if (event == SUBXACT_EVENT_ABORT_SUB)
		undo_subtransaction(mySubid);
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
		hand_undo_to_parent(mySubid, parentSubid);
}

void
kalam_writeset_define_gucs(void)
{
	DefineCustomIntVariable("kalam.max_entry_size",
							"Largest Raft log entry that a transaction's writes to one group take.",
							"A larger transaction goes in parts of about this size, applied at its commit as one, all or nothing, off the kalam worker's event loop.",
							&kalam_max_entry_size,
							4096,
							64,
							1024 * 1024,
							PGC_USERSET,
							GUC_UNIT_KB,
							NULL, NULL, NULL);
	DefineCustomIntVariable("kalam.debug_pause_before_split",
							"Makes a COMMIT in parts wait this long between its last part and the split that applies them.",
							"For tests of kalam.split_timeout: honoured only with kalam.debug_enable_hooks on.",
							&kalam_debug_pause_before_split,
							0,
							0,
							INT_MAX,
							PGC_SUSET,
							GUC_UNIT_MS | GUC_NOT_IN_SAMPLE,
							NULL, NULL, NULL);
}

void
kalam_writeset_init(void)
{
	RegisterXactCallback(writeset_xact_callback, NULL);
	RegisterSubXactCallback(writeset_subxact_callback, NULL);
}
