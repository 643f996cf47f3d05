/*-------------------------------------------------------------------------
 *
 * kalam_fdw.h
 *	  Private declarations of kalam's foreign-data wrapper.
 *
 * src/fdw/kalam_fdw.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KALAM_FDW_H
#define KALAM_FDW_H

#include "access/tupdesc.h"
#include "commands/explain.h"
#include "foreign/fdwapi.h"
#include "lib/stringinfo.h"
#include "nodes/pathnodes.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

typedef enum KalamTableType
{
	KALAM_TABLE_USER,			/* rows belong to the user who wrote them */
	KALAM_TABLE_SHARED,			/* one set of rows for everybody */
	KALAM_TABLE_STREAM			/* per user, rows expire after ttl */
} KalamTableType;

/* What kalam knows about one of its foreign tables, from its options */
typedef struct KalamTable
{
	Oid			relid;
	uint32		table_id;
	KalamTableType type;
	Interval	ttl;			/* stream tables only */
	int			nkeys;
	AttrNumber	key_attnums[INDEX_MAX_KEYS];
	Oid			key_types[INDEX_MAX_KEYS];
	Oid			key_collations[INDEX_MAX_KEYS];
} KalamTable;

/* option.c */
extern KalamTable *kalam_get_table(Relation rel);
extern bool kalam_is_kalam_table(Oid relid);
extern const char *kalam_table_type_name(KalamTableType type);

/* kalam_fdw.c: row identity and keys shared by scan and modify */
extern const char *kalam_row_owner(void);
extern void kalam_key_prefix(StringInfo buf, const KalamTable *table);
extern void kalam_delete_table_rows(KalamTableType type, uint32 table_id);
extern void kalam_row_key(StringInfo buf, const KalamTable *table,
						  Relation rel, const Datum *values,
						  const bool *isnull);
extern char *kalam_format_key(const KalamTable *table, TupleDesc desc,
							  const Datum *values, const bool *isnull);
extern void kalam_version_to_tid(uint64 version, ItemPointer tid);
extern uint64 kalam_tid_to_version(ItemPointer tid);
extern TimestampTz kalam_expire_before(const KalamTable *table);
extern void kalam_fdw_install_hooks(void);

/* pushdown.c */
extern List *kalam_key_conditions(PlannerInfo *root, RelOptInfo *baserel,
								  const KalamTable *table, List **pushed);
extern char *kalam_describe_pushdown(List *pushed, Index varno, Oid relid);

/* a condition's integer list, as kept in fdw_private */
#define KALAM_COND_KEYCOL(c)	list_nth_int((c), 0)
#define KALAM_COND_STRATEGY(c)	list_nth_int((c), 1)
#define KALAM_COND_IS_ARRAY(c)	list_nth_int((c), 2)
#define KALAM_COND_VALUETYPE(c)	((Oid) list_nth_int((c), 3))

/* scan.c */
extern void kalam_begin_scan(ForeignScanState *node, int eflags);
extern TupleTableSlot *kalam_iterate_scan(ForeignScanState *node);
extern void kalam_rescan(ForeignScanState *node);
extern void kalam_end_scan(ForeignScanState *node);
extern void kalam_explain_scan(ForeignScanState *node, ExplainState *es);
extern bool kalam_fetch_row(const KalamTable *table, const char *key,
							size_t keylen, TupleDesc desc, Datum *values,
							bool *isnull, uint64 *version);

/* modify.c */
extern void kalam_add_update_targets(PlannerInfo *root, Index rtindex,
									 RangeTblEntry *target_rte,
									 Relation target_relation);
extern List *kalam_plan_modify(PlannerInfo *root, ModifyTable *plan,
							   Index resultRelation, int subplan_index);
extern void kalam_begin_modify(ModifyTableState *mtstate,
							   ResultRelInfo *rinfo, List *fdw_private,
							   int subplan_index, int eflags);
extern TupleTableSlot *kalam_exec_insert(EState *estate, ResultRelInfo *rinfo,
										 TupleTableSlot *slot,
										 TupleTableSlot *planSlot);
extern TupleTableSlot *kalam_exec_update(EState *estate, ResultRelInfo *rinfo,
										 TupleTableSlot *slot,
										 TupleTableSlot *planSlot);
extern TupleTableSlot *kalam_exec_delete(EState *estate, ResultRelInfo *rinfo,
										 TupleTableSlot *slot,
										 TupleTableSlot *planSlot);
extern void kalam_begin_insert(ModifyTableState *mtstate,
							   ResultRelInfo *rinfo);
extern int	kalam_is_updatable(Relation rel);
extern void kalam_modify_install_hooks(void);
extern void kalam_exec_truncate(List *rels, DropBehavior behavior,
								bool restart_seqs);

/* writeset.c: the transaction's writes until COMMIT */
typedef struct KalamWriteEntry
{
	char	   *key;			/* hash key: must be first */
	size_t		keylen;
	Oid			relid;
	bool		had_row;		/* a stored row existed when first touched */
	uint64		expected_version;	/* its version, if had_row */
	bool		if_absent;		/* ON CONFLICT DO NOTHING insert */
	char	   *value;			/* new row payload; NULL = deleted */
	size_t		vallen;
} KalamWriteEntry;

extern KalamWriteEntry *kalam_writeset_lookup(const char *key, size_t keylen);
extern void kalam_writeset_put(Oid relid, const char *key, size_t keylen,
							   bool had_row, uint64 version, bool if_absent,
							   const char *value, size_t vallen);
extern void kalam_writeset_delete(Oid relid, const char *key, size_t keylen,
								  uint64 version);
extern void kalam_writeset_delete_prefix(const char *prefix, size_t len);
extern bool kalam_writeset_prefix_deleted(const char *key, size_t keylen);
extern bool kalam_writeset_hides_store(const char *key, size_t keylen);
extern List *kalam_writeset_range(const char *lower, size_t lowerlen,
								  const char *upper, size_t upperlen);
extern void kalam_writeset_define_gucs(void);
extern void kalam_writeset_init(void);

/* read_level.c: where and how fresh client reads are */
typedef enum KalamReadLevel
{
	KALAM_READ_LEADER,
	KALAM_READ_LINEARIZABLE,
	KALAM_READ_LOCAL
} KalamReadLevel;

extern int	kalam_read_consistency;
extern char *kalam_read_after;
extern bool kalam_internal_reads;
extern void kalam_read_define_gucs(void);
extern void kalam_read_check(const KalamTable *table);
extern void kalam_read_wait_position(int group, uint64 index);
extern const char *kalam_read_level_name(void);
extern void kalam_read_commit_begin(void);
extern void kalam_read_commit_group(int group, uint64 index);
extern void kalam_read_commit_end(void);

/* ddl.c */
extern bool kalam_ddl_replaying;
extern uint32 kalam_ddl_replay_table_id;
extern bool kalam_server_is_kalam(const char *servername);
extern void kalam_ddl_install_hooks(void);

#endif							/* KALAM_FDW_H */
