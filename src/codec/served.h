/*-------------------------------------------------------------------------
 *
 * served.h
 *	  The rows of a key range as the kalam reader process hands them to a
 *	  backend (kv/read_service.c), packed one after another.
 *
 * A packed row is its key's and its value's lengths (uint32 each, native
 * byte order: both processes are of one server), then the key, then the
 * value.  The reader reads them back checking every length: they cross
 * from one process to another through shared memory.
 *
 * src/codec/served.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KALAM_SERVED_H
#define KALAM_SERVED_H

extern bool kalam_served_pack(char *buf, size_t cap, size_t *used,
							  const char *key, size_t keylen,
							  const char *value, size_t vallen);
extern bool kalam_served_next(const char *rows, size_t len, size_t *pos,
							  const char **key, size_t *keylen,
							  const char **value, size_t *vallen);

#endif							/* KALAM_SERVED_H */
