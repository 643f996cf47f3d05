/*-------------------------------------------------------------------------
 *
 * keys.h
 *	  Order-preserving encoding of RocksDB keys.
 *
 * A row's key is its Raft group (2 bytes, big endian), its table id (4
 * bytes), then for user and stream tables the owning user's name, then the
 * primary key columns.  Each part is encoded so that comparing keys byte by
 * byte orders rows as SQL orders the key values, so one user's rows are one
 * contiguous range and a condition on the key is a seek.  Table id 0 holds
 * the group's own metadata, such as its applied index.  Reading a key's
 * group and table id, and which keys a group may touch, is codec/key.h's.
 *
 * src/kv/keys.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KALAM_KEYS_H
#define KALAM_KEYS_H

#include "lib/stringinfo.h"

#include "codec/key.h"

extern void kalam_key_append_group(StringInfo buf, int group);
extern void kalam_key_append_table(StringInfo buf, uint32 table_id);
extern void kalam_key_ddl_prefix(StringInfo buf);
extern void kalam_key_node_prefix(StringInfo buf);
extern void kalam_key_applied_index(StringInfo buf, int group);
extern void kalam_key_append_user(StringInfo buf, const char *user);
extern bool kalam_key_type_supported(Oid typid);
extern bool kalam_key_value_type_supported(Oid coltype, Oid valuetype);
extern bool kalam_key_byte_order_is_sql_order(Oid typid, Oid collid);
extern void kalam_key_append_datum(StringInfo buf, Oid coltype, Oid valuetype,
								   Datum value);

#endif							/* KALAM_KEYS_H */
