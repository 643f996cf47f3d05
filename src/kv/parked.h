/*-------------------------------------------------------------------------
 *
 * parked.h
 *	  Committed entries that wait to be applied, kept in RocksDB instead of
 *	  the kalam worker's memory.
 *
 * src/kv/parked.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KALAM_PARKED_H
#define KALAM_PARKED_H

#include <rocksdb/c.h>

extern bool kalam_parked_put(rocksdb_t *db, int group, uint64 index,
							 const char *data, size_t len,
							 char *errbuf, size_t errlen);
extern char *kalam_parked_get(rocksdb_t *db, int group, uint64 index,
							  size_t *len, char *errbuf, size_t errlen);
extern bool kalam_parked_remove(rocksdb_t *db, int group, uint64 from,
								uint64 to, char *errbuf, size_t errlen);
extern bool kalam_parked_clear(rocksdb_t *db, int group, char *errbuf,
							   size_t errlen);

#endif							/* KALAM_PARKED_H */
