/*-------------------------------------------------------------------------
 *
 * read_service.h
 *	  The reads that the kalam reader process serves to backends.
 *
 * src/kv/read_service.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KALAM_READ_SERVICE_H
#define KALAM_READ_SERVICE_H

#include "storage/latch.h"

/* What a backend's request came back with */
typedef enum KalamServedRead
{
	KALAM_SERVED_FOUND,			/* the value is in *value */
	KALAM_SERVED_ABSENT,		/* no such key */
	KALAM_SERVED_UNAVAILABLE	/* read it yourself */
} KalamServedRead;

extern Size kalam_read_service_shmem_size(void);
extern void kalam_read_service_shmem_init(void);

/* backends */
extern KalamServedRead kalam_read_service_get(const char *key, size_t keylen,
											  char **value, size_t *vallen);
extern KalamServedRead kalam_read_service_range(const char *lower,
												size_t lowerlen,
												const char *upper,
												size_t upperlen, char **rows,
												size_t *len);

/* the kalam reader process */
extern void kalam_read_service_attach(Latch *latch);
extern long kalam_read_service_serve(MemoryContext scratch);

#endif							/* KALAM_READ_SERVICE_H */
