/*-------------------------------------------------------------------------
 *
 * prefix_scan.c
 *	  Visiting every key of RocksDB under a prefix.
 *
 * Used by the apply function (range deletes, lock counts) and the meta
 * watermarks, inside libraft callbacks, so it neither allocates with palloc
 * nor raises errors: a RocksDB error comes back in errbuf.
 *
 * src/kv/prefix_scan.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "kv/keys.h"
#include "kv/prefix_scan.h"

/*
 * Visit the keys under prefix in key order.  Returns false when the visitor
 * stopped the scan or RocksDB failed (then errbuf says why).
 */
bool
kalam_scan_prefix(rocksdb_t *db, rocksdb_readoptions_t *options,
				  const char *prefix, size_t prefixlen,
				  KalamPrefixVisitor visit, void *arg,
				  char *errbuf, size_t errlen)
{
	return kalam_scan_prefix_from(db, options, prefix, prefixlen,
								  prefix, prefixlen, visit, arg,
								  errbuf, errlen);
}

/* The same, from the first key at or after start (itself under prefix). */
bool
kalam_scan_prefix_from(rocksdb_t *db, rocksdb_readoptions_t *options,
					   const char *prefix, size_t prefixlen,
					   const char *start, size_t startlen,
					   KalamPrefixVisitor visit, void *arg,
					   char *errbuf, size_t errlen)
{
	rocksdb_iterator_t *it = rocksdb_create_iterator(db, options);
	bool		completed;

	completed = kalam_scan_iterator(it, prefix, prefixlen, start, startlen,
									visit, arg, errbuf, errlen);
	rocksdb_iter_destroy(it);
	return completed;
}

/* The same with an iterator of the caller's, which stays the caller's. */
bool
kalam_scan_iterator(rocksdb_iterator_t *it,
					const char *prefix, size_t prefixlen,
					const char *start, size_t startlen,
					KalamPrefixVisitor visit, void *arg,
					char *errbuf, size_t errlen)
{
	bool		completed = true;
	char	   *err = NULL;

	for (rocksdb_iter_seek(it, start, startlen);
		 rocksdb_iter_valid(it);
		 rocksdb_iter_next(it))
	{
		size_t		keylen;
		size_t		vallen;
		const char *key = rocksdb_iter_key(it, &keylen);
		const char *value;

		if (!kalam_key_has_prefix(key, keylen, prefix, prefixlen))
			break;
		value = rocksdb_iter_value(it, &vallen);
		if (!visit(key, keylen, value, vallen, arg))
		{
			completed = false;
			break;
		}
	}
	rocksdb_iter_get_error(it, &err);
	if (err != NULL)
	{
		strlcpy(errbuf, err, errlen);
		rocksdb_free(err);
		return false;
	}
	return completed;
}
