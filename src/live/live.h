/*-------------------------------------------------------------------------
 *
 * live.h
 *	  Private declarations of kalam's live queries: who listens to what,
 *	  the notifier that tells them, and the change log they resume from.
 *
 * src/live/live.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KALAM_LIVE_H
#define KALAM_LIVE_H

#include "datatype/timestamp.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "port/atomics.h"
#include "utils/relcache.h"

#include "codec/change.h"
#include "codec/group.h"
#include "fdw/kalam_fdw.h"

/* channel names: "kalam_t" or "kalam_s", then 32 hex digits */
#define KALAM_CHANNEL_PREFIX		"kalam_"
#define KALAM_TABLE_CHANNEL_PREFIX	"kalam_t"
#define KALAM_SUB_CHANNEL_PREFIX	"kalam_s"
#define KALAM_CHANNEL_LEN			39

/* a filter's parsed expression (nodeToString) may take up to this */
#define KALAM_FILTER_MAX			3072

/*
 * One listening: a session that LISTENs on a table's channel, or holds a
 * filtered subscription (kalam.subscribe).  The notifier sends a change to
 * every listening of its table whose user is the change's (user and stream
 * tables) or to each one of a shared table.
 */
typedef struct KalamListening
{
	bool		in_use;
	bool		broken;			/* its filter failed: it gets nothing more */
	int			pid;			/* the listening session */
	Oid			roleid;			/* whose privileges its filter runs with */
	Oid			relid;
	uint32		table_id;
	bool		shared;			/* a shared table: every row */
	char		user[NAMEDATALEN];	/* otherwise this user's rows */
	char		channel[NAMEDATALEN];
	uint64		from_index;		/* its group's applied index when it began:
								 * the changes up to there are not its */
	int			filter_len;		/* 0: no filter */
	char		filter[KALAM_FILTER_MAX];
} KalamListening;

/* What the notifier publishes about itself, for kalam.notifications */
typedef struct KalamNotifierState
{
	int			pid;			/* 0 while none runs */
	bool		cursor_set[KALAM_MAX_GROUPS];
	KalamChangePos sent[KALAM_MAX_GROUPS];	/* last change handled */
	TimestampTz oldest_unsent;	/* commit time of the first change not yet
								 * sent; 0 when caught up */
	pg_atomic_uint64 notifications;
	pg_atomic_uint64 changes;
	pg_atomic_uint64 transactions;	/* that sent notifications */
	pg_atomic_uint64 retries;
} KalamNotifierState;

/* registry.c */
extern int	kalam_max_listenings;
extern int	kalam_notify_wakeups;
extern void kalam_live_define_gucs(void);
extern Size kalam_live_shmem_size(void);
extern void kalam_live_shmem_init(void);
extern KalamNotifierState *kalam_live_notifier_state(void);
extern LWLock *kalam_live_lock(void);
extern const unsigned char *kalam_live_local_key(void);
#define KALAM_LIVE_LOCAL_KEY_LEN	32
extern bool kalam_live_add(const KalamListening *listening);
extern bool kalam_live_remove(int pid, const char *channel);
extern bool kalam_live_owns(int pid, Oid roleid, const char *channel);
extern uint64 kalam_live_generation(void);
extern int	kalam_live_copy(KalamListening **listenings, uint64 *generation);
extern void kalam_live_mark_broken(const char *channel, int pid);
extern int	kalam_live_count(void);
extern int	kalam_live_listening_group(const KalamListening *listening);

/* channels.c */
extern char *kalam_live_table_channel(uint32 table_id, const char *who);
extern Oid	kalam_live_table_arg(FunctionCallInfo fcinfo);
extern Relation kalam_live_open_table(Oid relid, KalamTable **table);
extern void kalam_live_install_hooks(void);

/* payload.c */
typedef struct KalamLoggedChange
{
	char	   *key;
	size_t		keylen;
	char	   *value;
	size_t		vallen;
} KalamLoggedChange;

typedef struct KalamLiveTable
{
	uint32		table_id;
	Oid			relid;
	KalamTableType type;
	char	   *name;			/* schema-qualified, quoted as needed */
	TupleDesc	key_desc;		/* the primary key columns, blessed */
	int			nkeys;
	AttrNumber	key_attnums[INDEX_MAX_KEYS];
} KalamLiveTable;

extern int	kalam_live_read_log(const KalamChangePos *after,
								const char *row_prefix, size_t row_prefixlen,
								int max, KalamLoggedChange **changes);
extern void kalam_live_read_change(const KalamLoggedChange *lc,
								   KalamChange *change);
extern KalamLiveTable *kalam_live_table(uint32 table_id);
extern void kalam_live_forget_tables(void);
extern char *kalam_live_pos_text(const KalamChangePos *pos);
extern bool kalam_live_parse_pos(const char *text, KalamChangePos *pos);
extern const char *kalam_live_op_name(const KalamChange *change);
extern void kalam_live_decode(Relation rel, const KalamChange *change,
							  Datum *values, bool *isnull);
extern char *kalam_live_key_json(const KalamLiveTable *table, TupleDesc desc,
								 const Datum *values, const bool *isnull);
extern char *kalam_live_row_json(Relation rel, const Datum *values,
								 const bool *isnull);
extern char *kalam_live_payload(const KalamLiveTable *table,
								const KalamChange *change, const char *user,
								const char *key_json, const char *row_json);

/* notifier.c */
extern PGDLLEXPORT void kalam_notifier_main(Datum main_arg);

#endif							/* KALAM_LIVE_H */
