/*-------------------------------------------------------------------------
 *
 * rocks.h
 *	  Opening RocksDB: the primary in the kalam worker, a secondary in
 *	  each backend that reads.
 *
 * src/kv/rocks.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KALAM_ROCKS_H
#define KALAM_ROCKS_H

#include <rocksdb/c.h>

#include "kv/prefix_scan.h"

/* kalam.served_reads (registered in kalam.c) */
extern int	kalam_served_reads;

extern void kalam_rocks_configure(const char *dir,
								  void (*wait_for_primary) (void));
extern Size kalam_rocks_shmem_size(void);
extern void kalam_rocks_shmem_init(void);
extern void kalam_rocks_publish_change(void);

/* kalam worker */
extern rocksdb_t *kalam_rocks_open_primary(void);
extern void kalam_rocks_close_primary(rocksdb_t *db);
extern bool kalam_rocks_manifest_due(int limit_kb);
extern rocksdb_t *kalam_rocks_reopen_primary(rocksdb_t *db);
extern void kalam_rocks_remove_stale_secondaries(void);
extern bool kalam_rocks_flush_due(int interval_ms);
extern char *kalam_rocks_flush_memtable(rocksdb_t *db, uint64 min_size);

/* backends */
extern rocksdb_t *kalam_rocks_reader(void);
extern rocksdb_iterator_t *kalam_rocks_reader_iterator(rocksdb_readoptions_t *options);
extern void kalam_rocks_reader_iterator_destroy(rocksdb_iterator_t *it);
extern bool kalam_rocks_scan_prefix(const char *prefix, size_t prefixlen,
									KalamPrefixVisitor visit, void *arg,
									char *errbuf, size_t errlen);
extern bool kalam_rocks_scan_prefix_from(const char *prefix, size_t prefixlen,
										 const char *start, size_t startlen,
										 KalamPrefixVisitor visit, void *arg,
										 char *errbuf, size_t errlen);
extern char *kalam_rocks_get(const char *key, size_t keylen, size_t *vallen);
extern char *kalam_rocks_reader_get(const char *key, size_t keylen,
									size_t *vallen);
extern bool kalam_rocks_served_range(const char *lower, size_t lowerlen,
									 const char *upper, size_t upperlen,
									 char **rows, size_t *len);

#endif							/* KALAM_ROCKS_H */
