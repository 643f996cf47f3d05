/*-------------------------------------------------------------------------
 *
 * read_service.c
 *	  Reads served to backends by the kalam reader process, so that a new
 *	  connection's first reads open no RocksDB of their own.
 *
 * A backend that opens its own RocksDB secondary pays 7-11 ms the first
 * time (rocks.c), where a heap table's first read costs 4 ms more than
 * the next.  Measured with a probe forking children as the postmaster
 * does: the open takes about 200 page faults, and on these machines a
 * fault on a page the child shares with its parent costs 13-20 us (256
 * copy-on-write faults: 3.3-5.1 ms); faulting the library's code in ahead
 * of the open, or opening on a thread of its own (a fresh malloc arena),
 * cost as much in all.  So the kalam reader, one process with one
 * secondary kept open and caught up, answers a session's first reads
 * (kalam.served_reads of them, 64 by default): a lookup by primary key, a
 * leader's client address, and a key range whose rows fit in a slot
 * (KALAM_SERVED_VALUE_MAX), read with one iterator, so as of one moment
 * like the session's own scans.  After them, or for a larger range, the
 * session opens its own reader as before: a long-lived connection does
 * not pay the round trip (about 0.05 ms) for ever, and no range is read
 * in parts of different moments.
 *
 * Protocol: one slot per backend, in shared memory, indexed by its
 * BackendId.  The backend writes the key into a slot that is not
 * REQUESTED, marks it REQUESTED (after a write barrier) and sets the
 * reader's latch.  The reader serves every REQUESTED slot: it reads the
 * key through its own secondary, caught up first if storage changed
 * (kalam_rocks_publish_change is called before a commit is reported, so
 * a session reads what it committed), writes the outcome, marks the slot
 * DONE (after a write barrier) and sets the backend's latch.  The backend
 * takes the outcome and frees the slot.  A backend whose wait was
 * cancelled leaves its slot REQUESTED; its next request waits for that one
 * to be served first.  A backend that waited KALAM_SERVED_WAIT_MS (the
 * reader is gone, or restarting) reads by itself, as it does for a key, a
 * value or a range's rows too large for a slot, or when no reader runs.
 * The reader's latch is published under a spinlock.  A range's rows come
 * packed (codec/served.h).
 *
 * src/kv/read_service.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/backendid.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "codec/served.h"
#include "kv/read_service.h"
#include "kv/rocks.h"

/*
 * Larger keys, values and ranges are read by the backend itself.  A slot
 * holds about 150 rows of 200 bytes; the slots of every backend take
 * MaxBackends * 33 kB of shared memory.
 */
#define KALAM_SERVED_KEY_MAX	512
#define KALAM_SERVED_VALUE_MAX	(32 * 1024)

/* How long a backend waits for an answer before it reads by itself */
#define KALAM_SERVED_WAIT_MS	1000

typedef enum SlotState
{
	SLOT_FREE = 0,
	SLOT_REQUESTED,
	SLOT_DONE
} SlotState;

typedef enum SlotOp
{
	OP_GET,						/* key */
	OP_RANGE					/* rows from key up to (not with) upper */
} SlotOp;

typedef struct ReadSlot
{
	pg_atomic_uint32 state;		/* SlotState */
	Latch	   *requester;
	SlotOp		op;
	uint32		keylen;
	uint32		upperlen;
	KalamServedRead outcome;
	uint32		vallen;			/* of value: a get's value, a range's rows */
	char		key[KALAM_SERVED_KEY_MAX];
	char		upper[KALAM_SERVED_KEY_MAX];
	char		value[KALAM_SERVED_VALUE_MAX];
} ReadSlot;

typedef struct ReadService
{
	slock_t		mutex;			/* protects latch */
	Latch	   *latch;			/* the kalam reader's while it runs */
	int			nslots;
	ReadSlot	slots[FLEXIBLE_ARRAY_MEMBER];
} ReadService;

static ReadService *service = NULL;

Size
kalam_read_service_shmem_size(void)
{
	return add_size(offsetof(ReadService, slots),
					mul_size(MaxBackends, sizeof(ReadSlot)));
}

void
kalam_read_service_shmem_init(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	service = ShmemInitStruct("kalam read service",
							  kalam_read_service_shmem_size(), &found);
	if (!found)
	{
		SpinLockInit(&service->mutex);
		service->latch = NULL;
		service->nslots = MaxBackends;
		for (int i = 0; i < MaxBackends; i++)
			pg_atomic_init_u32(&service->slots[i].state, SLOT_FREE);
	}
	LWLockRelease(AddinShmemInitLock);
}

static ReadService *
get_service(void)
{
	if (service == NULL)
		kalam_read_service_shmem_init();
	return service;
}

/*
 * Wait until the slot is not REQUESTED: true, or false after
 * KALAM_SERVED_WAIT_MS.
 */
static bool
wait_while_requested(ReadSlot *slot)
{
	TimestampTz start = GetCurrentTimestamp();

	while (pg_atomic_read_u32(&slot->state) == SLOT_REQUESTED)
	{
		long		waited = TimestampDifferenceMilliseconds(start,
															 GetCurrentTimestamp());

		if (waited >= KALAM_SERVED_WAIT_MS)
			return false;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 KALAM_SERVED_WAIT_MS - waited, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	return true;
}

/*
 * Hand the kalam reader a request and wait for its outcome.  FOUND puts
 * what it read, palloc'd, in *value; UNAVAILABLE says to read it by
 * yourself.
 */
static KalamServedRead
request(SlotOp op, const char *key, size_t keylen, const char *upper,
		size_t upperlen, char **value, size_t *vallen)
{
	ReadService *s = get_service();
	ReadSlot   *slot;
	Latch	   *latch;
	KalamServedRead outcome;

	if (keylen > KALAM_SERVED_KEY_MAX || upperlen > KALAM_SERVED_KEY_MAX ||
		MyBackendId == InvalidBackendId || MyBackendId > s->nslots)
		return KALAM_SERVED_UNAVAILABLE;
	SpinLockAcquire(&s->mutex);
	latch = s->latch;
	SpinLockRelease(&s->mutex);
	if (latch == NULL)
		return KALAM_SERVED_UNAVAILABLE;

	slot = &s->slots[MyBackendId - 1];
	if (!wait_while_requested(slot))
		return KALAM_SERVED_UNAVAILABLE;
	slot->requester = MyLatch;
	slot->op = op;
	slot->keylen = (uint32) keylen;
	memcpy(slot->key, key, keylen);
	slot->upperlen = (uint32) upperlen;
	if (upperlen > 0)
		memcpy(slot->upper, upper, upperlen);
	pg_write_barrier();
	pg_atomic_write_u32(&slot->state, SLOT_REQUESTED);
	SetLatch(latch);
	if (!wait_while_requested(slot))
		return KALAM_SERVED_UNAVAILABLE;

	pg_read_barrier();
	outcome = slot->outcome;
	if (outcome == KALAM_SERVED_FOUND)
	{
		*value = palloc(Max(slot->vallen, 1));
		memcpy(*value, slot->value, slot->vallen);
		*vallen = slot->vallen;
	}
	pg_atomic_write_u32(&slot->state, SLOT_FREE);
	return outcome;
}

/*
 * Ask the kalam reader for a key.  FOUND puts the value, palloc'd, in
 * *value; UNAVAILABLE says to read it by yourself.
 */
KalamServedRead
kalam_read_service_get(const char *key, size_t keylen, char **value,
					   size_t *vallen)
{
	return request(OP_GET, key, keylen, NULL, 0, value, vallen);
}

/*
 * Ask the kalam reader for every row from lower up to (not with) upper.
 * FOUND puts them, packed, in *rows (codec/served.h); UNAVAILABLE says to
 * read them by yourself (there are too many, say).
 */
KalamServedRead
kalam_read_service_range(const char *lower, size_t lowerlen,
						 const char *upper, size_t upperlen, char **rows,
						 size_t *len)
{
	return request(OP_RANGE, lower, lowerlen, upper, upperlen, rows, len);
}

static void
detach(int code, Datum arg)
{
	ReadService *s = get_service();

	SpinLockAcquire(&s->mutex);
	s->latch = NULL;
	SpinLockRelease(&s->mutex);
}

/* The kalam reader starts serving, on latch; it stops at exit. */
void
kalam_read_service_attach(Latch *latch)
{
	ReadService *s = get_service();

	SpinLockAcquire(&s->mutex);
	s->latch = latch;
	SpinLockRelease(&s->mutex);
	on_shmem_exit(detach, (Datum) 0);
}

/* A get: the value, if it fits */
static void
serve_get(ReadSlot *slot)
{
	size_t		len;
	char	   *stored = kalam_rocks_reader_get(slot->key, slot->keylen, &len);

	if (stored == NULL)
		slot->outcome = KALAM_SERVED_ABSENT;
	else if (len <= KALAM_SERVED_VALUE_MAX)
	{
		memcpy(slot->value, stored, len);
		slot->vallen = (uint32) len;
		slot->outcome = KALAM_SERVED_FOUND;
	}
}

/* A range: its rows, read with one iterator, if they all fit */
static void
serve_range(ReadSlot *slot)
{
	rocksdb_readoptions_t *options = rocksdb_readoptions_create();
	rocksdb_iterator_t *volatile it = NULL;

	rocksdb_readoptions_set_iterate_upper_bound(options, slot->upper,
												slot->upperlen);
	PG_TRY();
	{
		size_t		used = 0;
		bool		fits = true;
		char	   *err = NULL;

		it = kalam_rocks_reader_iterator(options);
		for (rocksdb_iter_seek(it, slot->key, slot->keylen);
			 fits && rocksdb_iter_valid(it); rocksdb_iter_next(it))
		{
			size_t		keylen;
			size_t		vallen;
			const char *key = rocksdb_iter_key(it, &keylen);
			const char *value = rocksdb_iter_value(it, &vallen);

			fits = kalam_served_pack(slot->value, KALAM_SERVED_VALUE_MAX, &used,
									 key, keylen, value, vallen);
		}
		rocksdb_iter_get_error(it, &err);
		if (err != NULL)
			rocksdb_free(err);
		else if (fits)
		{
			slot->vallen = (uint32) used;
			slot->outcome = KALAM_SERVED_FOUND;
		}
	}
	PG_FINALLY();
	{
		if (it != NULL)
			kalam_rocks_reader_iterator_destroy(it);
		rocksdb_readoptions_destroy(options);
	}
	PG_END_TRY();
}

/*
 * Serve one slot.  An error (storage not open yet, a failed catch-up) is
 * logged and answered UNAVAILABLE, as is a storage error of a range: the
 * backend then reads by itself and meets the error in its own session.
 */
static void
serve_slot(ReadSlot *slot, MemoryContext scratch)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(scratch);

	slot->outcome = KALAM_SERVED_UNAVAILABLE;
	PG_TRY();
	{
		if (slot->op == OP_GET)
			serve_get(slot);
		else
			serve_range(slot);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(scratch);
		EmitErrorReport();
		FlushErrorState();
		LWLockReleaseAll();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(scratch);
}

/* Serve every slot that holds a request; scratch is reset after each. */
void
kalam_read_service_serve(MemoryContext scratch)
{
	ReadService *s = get_service();

	for (int i = 0; i < s->nslots; i++)
	{
		ReadSlot   *slot = &s->slots[i];

		if (pg_atomic_read_u32(&slot->state) != SLOT_REQUESTED)
			continue;
		pg_read_barrier();
		serve_slot(slot, scratch);
		pg_write_barrier();
		pg_atomic_write_u32(&slot->state, SLOT_DONE);
		SetLatch(slot->requester);
	}
}
