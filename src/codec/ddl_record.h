/*-------------------------------------------------------------------------
 *
 * ddl_record.h
 *	  The record of one replicated DDL statement in the meta group's log.
 *
 * src/codec/ddl_record.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KALAM_DDL_RECORD_H
#define KALAM_DDL_RECORD_H

/* first two bytes of every record, then the format version */
#define KALAM_DDL_RECORD_MAGIC_0	'K'
#define KALAM_DDL_RECORD_MAGIC_1	'D'
#define KALAM_DDL_RECORD_VERSION	1

typedef enum KalamDdlKind
{
	KALAM_DDL_CREATE = 1,		/* CREATE FOREIGN TABLE ... SERVER kalam */
	KALAM_DDL_ALTER = 2,		/* ALTER [FOREIGN] TABLE on a kalam table */
	KALAM_DDL_RENAME = 3,		/* RENAME of a kalam table, column, constraint */
	KALAM_DDL_DROP = 4,			/* DROP FOREIGN TABLE of one kalam table */
	KALAM_DDL_GRANT = 5,		/* GRANT or REVOKE on one kalam table */
	KALAM_DDL_SET_SCHEMA = 6	/* ALTER [FOREIGN] TABLE ... SET SCHEMA */
} KalamDdlKind;

#define KALAM_DDL_KIND_FIRST	KALAM_DDL_CREATE
#define KALAM_DDL_KIND_LAST		KALAM_DDL_SET_SCHEMA

/*
 * A record, decoded: the strings point into the decoded buffer and are
 * NUL-terminated there.
 */
typedef struct KalamDdlRecord
{
	KalamDdlKind kind;
	uint32		table_id;		/* the table it acts on, never 0 */
	const char *role;			/* the role that ran it at its origin */
	const char *search_path;	/* search_path it ran under */
	const char *schema;			/* CREATE: the table's schema; else empty */
	const char *statement;		/* the one SQL statement, as written */
} KalamDdlRecord;

extern size_t kalam_ddl_record_size(const KalamDdlRecord *record);
extern void kalam_ddl_record_encode(const KalamDdlRecord *record, char *out);
extern const char *kalam_ddl_record_decode(const char *data, size_t len,
										   KalamDdlRecord *record);
extern const char *kalam_ddl_kind_name(KalamDdlKind kind);

#endif							/* KALAM_DDL_RECORD_H */
