/*-------------------------------------------------------------------------
 *
 * prefix_scan.h
 *	  Visiting every key of RocksDB under a prefix.
 *
 * src/kv/prefix_scan.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KALAM_PREFIX_SCAN_H
#define KALAM_PREFIX_SCAN_H

#include <rocksdb/c.h>

/* Called for each key; return false to stop the scan. */
typedef bool (*KalamPrefixVisitor) (const char *key, size_t keylen,
									const char *value, size_t vallen,
									void *arg);

extern bool kalam_scan_prefix(rocksdb_t *db, rocksdb_readoptions_t *options,
							  const char *prefix, size_t prefixlen,
							  KalamPrefixVisitor visit, void *arg,
							  char *errbuf, size_t errlen);
extern bool kalam_scan_prefix_from(rocksdb_t *db,
								   rocksdb_readoptions_t *options,
								   const char *prefix, size_t prefixlen,
								   const char *start, size_t startlen,
								   KalamPrefixVisitor visit, void *arg,
								   char *errbuf, size_t errlen);
extern bool kalam_scan_iterator(rocksdb_iterator_t *it,
								const char *prefix, size_t prefixlen,
								const char *start, size_t startlen,
								KalamPrefixVisitor visit, void *arg,
								char *errbuf, size_t errlen);

#endif							/* KALAM_PREFIX_SCAN_H */
