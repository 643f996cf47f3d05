/*-------------------------------------------------------------------------
 *
 * keys.h
 *	  Order-preserving encoding of RocksDB keys.
 *
 * A row's key is its table id (4 bytes, big endian), then for user and
 * stream tables the owning user's name, then the primary key columns.  Each
 * part is encoded so that comparing keys byte by byte orders rows as SQL
 * orders the key values, so one user's rows are one contiguous range and a
 * condition on the key is a seek.  Table id 0 holds kalam's own metadata.
 *
 * src/storage/keys.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KALAM_KEYS_H
#define KALAM_KEYS_H

#include "lib/stringinfo.h"

#define KALAM_TABLE_PREFIX_LEN	4

/* key of the applied position, in the metadata range of table id 0 */
#define KALAM_META_APPLIED_KEY		"\0\0\0\0applied_index"
#define KALAM_META_APPLIED_KEY_LEN	(KALAM_TABLE_PREFIX_LEN + 13)

extern void kalam_key_append_table(StringInfo buf, uint32 table_id);
extern void kalam_key_append_user(StringInfo buf, const char *user);
extern bool kalam_key_type_supported(Oid typid);
extern bool kalam_key_value_type_supported(Oid coltype, Oid valuetype);
extern bool kalam_key_byte_order_is_sql_order(Oid typid, Oid collid);
extern void kalam_key_append_datum(StringInfo buf, Oid coltype, Oid valuetype,
								   Datum value);
extern bool kalam_key_has_prefix(const char *key, size_t keylen,
								 const char *prefix, size_t prefixlen);

#endif							/* KALAM_KEYS_H */
