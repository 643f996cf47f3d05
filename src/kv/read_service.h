/*-------------------------------------------------------------------------
 *
 * read_service.h
 *	  Point reads that the kalam reader process serves to backends.
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

/* the kalam reader process */
extern void kalam_read_service_attach(Latch *latch);
extern void kalam_read_service_serve(MemoryContext scratch);

#endif							/* KALAM_READ_SERVICE_H */
