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
 * leader's client address, and a key range whose rows take up to
 * KALAM_SERVED_RANGE_MAX, read with one iterator, so as of one moment
 * like the session's own scans.  After them, or for a larger range, the
 * session opens its own reader as before: a long-lived connection does
 * not pay the round trip (about 0.05 ms) for ever.
 *
 * Why 1 MB.  A range served only when its rows fit in one slot (32 kB)
 * left a user's longer history to the session's own reader: with 200k
 * rows of 45 bytes (a probe, 15 new connections each, p50), a first
 * count of 1,000 rows took 15.4 ms more than the same on a warm
 * connection, and of 5,000 rows 23.2 ms more, where a heap table's took
 * 6.0 and 7.1 ms more (a new backend's first touch of each shared buffer
 * page costs it about 15 us here).  The reader reads such a range whole,
 * at once, into its own memory, and the backend takes it in parts of a
 * slot, one round trip each, before it returns any row: every part is of
 * the same moment, whatever the reader reads meanwhile.  A range past 1
 * MB is about as fast either way (a new backend's full scan of 200k rows
 * costs 16-17 ms more than a warm one's; a heap table's 21-24 ms).
 *
 * Protocol: one slot per backend, in shared memory, indexed by its
 * BackendId.  The backend writes the key into a slot that is not
 * REQUESTED, marks it REQUESTED (after a write barrier) and sets the
 * reader's latch.  The reader serves every REQUESTED slot: it reads the
 * key through its own secondary, caught up first if storage changed
 * (kalam_rocks_publish_change is called before a commit is reported, so
 * a session reads what it committed), writes the outcome, marks the slot
 * DONE (after a write barrier) and sets the backend's latch.  The backend
 * takes the outcome and frees the slot.  A range's rows come packed
 * (codec/served.h); when they do not fit in the slot, the answer carries
 * their first part and their whole length, and the reader keeps them
 * under a number it puts in the slot.  The backend then asks for the next
 * part (OP_PART, that number and the offset) until it has them all; the
 * reader drops a range when its last part is taken, when the slot asks
 * anything else, and KALAM_SERVED_WAIT_MS after it last sent a part.  A
 * backend whose wait was cancelled leaves its slot REQUESTED; its next
 * request waits for that one to be served first.  A backend that waited
 * KALAM_SERVED_WAIT_MS (the reader is gone, or restarting), or whose range
 * the reader no longer holds, reads by itself, as it does for a key, a
 * value or a range too large, or when no reader runs.  The lengths and
 * offsets the reader answers are checked before they are used.  The
 * reader's latch is published under a spinlock.
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
 * MaxBackends * 33 kB of shared memory.  The reader holds a range larger
 * than a slot, at most one per slot, while its backend takes it.
 */
#define KALAM_SERVED_KEY_MAX	512
#define KALAM_SERVED_VALUE_MAX	(32 * 1024)
#define KALAM_SERVED_RANGE_MAX	(1024 * 1024)

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
	OP_RANGE,					/* rows from key up to (not with) upper */
	OP_PART						/* the part at offset of range range_id */
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
	uint32		total;			/* a range's length, of all its parts */
	uint32		offset;			/* of value in the range */
	uint64		range_id;		/* the range the reader holds, if total >
								 * vallen */
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

/* In the kalam reader: the ranges it holds, one per slot at most */
typedef struct HeldRange
{
	char	   *rows;			/* NULL: none */
	uint32		len;
	uint64		id;
	TimestampTz sent_at;		/* of its last part */
} HeldRange;

static HeldRange *held = NULL;	/* nslots of them */
static char *pack_buffer = NULL;	/* KALAM_SERVED_RANGE_MAX */
static uint64 last_range_id = 0;
static int	ranges_held = 0;

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
 * Put the request now in the slot before the reader, and wait for its
 * answer: false after KALAM_SERVED_WAIT_MS.
 */
static bool
exchange(ReadSlot *slot, Latch *latch)
{
	slot->requester = MyLatch;
	pg_write_barrier();
	pg_atomic_write_u32(&slot->state, SLOT_REQUESTED);
	SetLatch(latch);
	if (!wait_while_requested(slot))
		return false;
	pg_read_barrier();
	return true;
}

/* The reader's answer does not add up: no row of it is used */
static void
report_bad_answer(const char *what, uint32 got, uint32 expected)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("the kalam reader answered a read with a bad %s", what),
			 errdetail("It said %u where %u was expected.", got, expected),
			 errhint("Set kalam.served_reads to 0 to read without the kalam reader, and report the problem.")));
}

/*
 * Take the rest of a range whose first part is in the slot: FOUND and the
 * whole range, palloc'd, in *rows, or UNAVAILABLE when the reader no
 * longer holds it or does not answer.
 */
static KalamServedRead
take_parts(ReadSlot *slot, Latch *latch, char **rows, size_t *len)
{
	uint32		total = slot->total;
	uint64		id = slot->range_id;
	uint32		got = 0;
	char	   *buf;

	if (total > KALAM_SERVED_RANGE_MAX)
		report_bad_answer("range length", total, KALAM_SERVED_RANGE_MAX);
	buf = palloc(total);
	for (;;)
	{
		uint32		part = slot->vallen;

		if (slot->offset != got)
			report_bad_answer("part offset", slot->offset, got);
		if (part == 0 || part > KALAM_SERVED_VALUE_MAX || part > total - got)
			report_bad_answer("part length", part,
							  Min(total - got, KALAM_SERVED_VALUE_MAX));
		memcpy(buf + got, slot->value, part);
		got += part;
		if (got == total)
			break;

		slot->op = OP_PART;
		slot->range_id = id;
		slot->offset = got;
		if (!exchange(slot, latch) || slot->outcome != KALAM_SERVED_FOUND)
		{
			if (pg_atomic_read_u32(&slot->state) == SLOT_DONE)
				pg_atomic_write_u32(&slot->state, SLOT_FREE);
			pfree(buf);
			return KALAM_SERVED_UNAVAILABLE;
		}
	}
	*rows = buf;
	*len = total;
	return KALAM_SERVED_FOUND;
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
	slot->op = op;
	slot->keylen = (uint32) keylen;
	memcpy(slot->key, key, keylen);
	slot->upperlen = (uint32) upperlen;
	if (upperlen > 0)
		memcpy(slot->upper, upper, upperlen);
	if (!exchange(slot, latch))
		return KALAM_SERVED_UNAVAILABLE;

	outcome = slot->outcome;
	if (outcome == KALAM_SERVED_FOUND && op == OP_RANGE &&
		slot->total != slot->vallen)
		outcome = take_parts(slot, latch, value, vallen);
	else if (outcome == KALAM_SERVED_FOUND)
	{
		if (slot->vallen > KALAM_SERVED_VALUE_MAX)
			report_bad_answer("length", slot->vallen, KALAM_SERVED_VALUE_MAX);
		*value = palloc(Max(slot->vallen, 1));
		memcpy(*value, slot->value, slot->vallen);
		*vallen = slot->vallen;
	}
	if (pg_atomic_read_u32(&slot->state) == SLOT_DONE)
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

/* Drop the range the reader holds for slot i, if any */
static void
release_range(int i)
{
	if (held[i].rows == NULL)
		return;
	pfree(held[i].rows);
	held[i].rows = NULL;
	ranges_held--;
}

/* Answer with the part at offset of range r */
static void
send_part(ReadSlot *slot, HeldRange *r, uint32 offset)
{
	uint32		part = Min(r->len - offset, KALAM_SERVED_VALUE_MAX);

	memcpy(slot->value, r->rows + offset, part);
	slot->vallen = part;
	slot->offset = offset;
	slot->total = r->len;
	slot->range_id = r->id;
	slot->outcome = KALAM_SERVED_FOUND;
	r->sent_at = GetCurrentTimestamp();
}

/*
 * A range: its rows, read with one iterator, if they take up to
 * KALAM_SERVED_RANGE_MAX; what does not fit in the slot is held for the
 * backend to take in parts.
 */
static void
serve_range(int i, ReadSlot *slot)
{
	rocksdb_readoptions_t *options = rocksdb_readoptions_create();
	rocksdb_iterator_t *volatile it = NULL;
	size_t		used = 0;
	bool		fits = true;
	char	   *err = NULL;

	if (pack_buffer == NULL)
		pack_buffer = MemoryContextAlloc(TopMemoryContext, KALAM_SERVED_RANGE_MAX);
	rocksdb_readoptions_set_iterate_upper_bound(options, slot->upper,
												slot->upperlen);
	PG_TRY();
	{
		it = kalam_rocks_reader_iterator(options);
		for (rocksdb_iter_seek(it, slot->key, slot->keylen);
			 fits && rocksdb_iter_valid(it); rocksdb_iter_next(it))
		{
			size_t		keylen;
			size_t		vallen;
			const char *key = rocksdb_iter_key(it, &keylen);
			const char *value = rocksdb_iter_value(it, &vallen);

			fits = kalam_served_pack(pack_buffer, KALAM_SERVED_RANGE_MAX, &used,
									 key, keylen, value, vallen);
		}
		rocksdb_iter_get_error(it, &err);
	}
	PG_FINALLY();
	{
		if (it != NULL)
			kalam_rocks_reader_iterator_destroy(it);
		rocksdb_readoptions_destroy(options);
	}
	PG_END_TRY();

	if (err != NULL)
		rocksdb_free(err);
	else if (fits && used <= KALAM_SERVED_VALUE_MAX)
	{
		memcpy(slot->value, pack_buffer, used);
		slot->vallen = (uint32) used;
		slot->total = (uint32) used;
		slot->offset = 0;
		slot->outcome = KALAM_SERVED_FOUND;
	}
	else if (fits)
	{
		HeldRange  *r = &held[i];

		r->rows = MemoryContextAlloc(TopMemoryContext, used);
		memcpy(r->rows, pack_buffer, used);
		r->len = (uint32) used;
		r->id = ++last_range_id;
		ranges_held++;
		send_part(slot, r, 0);
	}
}

/* The next part of the range held for slot i, the last one dropping it */
static void
serve_part(int i, ReadSlot *slot)
{
	HeldRange  *r = &held[i];

	if (r->rows == NULL || r->id != slot->range_id ||
		slot->offset == 0 || slot->offset >= r->len)
		return;
	send_part(slot, r, slot->offset);
	if (slot->offset + slot->vallen == r->len)
		release_range(i);
}

/*
 * Serve one slot.  An error (storage not open yet, a failed catch-up) is
 * logged and answered UNAVAILABLE, as is a storage error of a range: the
 * backend then reads by itself and meets the error in its own session.
 */
static void
serve_slot(int i, ReadSlot *slot, MemoryContext scratch)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(scratch);

	slot->outcome = KALAM_SERVED_UNAVAILABLE;
	if (slot->op != OP_PART)
		release_range(i);
	PG_TRY();
	{
		if (slot->op == OP_GET)
			serve_get(slot);
		else if (slot->op == OP_RANGE)
			serve_range(i, slot);
		else
			serve_part(i, slot);
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

/*
 * Serve every slot that holds a request; scratch is reset after each.
 * Then drop the ranges whose backend has not asked for a part in
 * KALAM_SERVED_WAIT_MS (it has given up on them).  Returns how long the
 * reader may sleep before it has ranges to drop (-1: forever).
 */
long
kalam_read_service_serve(MemoryContext scratch)
{
	ReadService *s = get_service();
	TimestampTz now;
	TimestampTz next = 0;

	if (held == NULL)
		held = MemoryContextAllocZero(TopMemoryContext,
									  mul_size(s->nslots, sizeof(HeldRange)));
	for (int i = 0; i < s->nslots; i++)
	{
		ReadSlot   *slot = &s->slots[i];

		if (pg_atomic_read_u32(&slot->state) != SLOT_REQUESTED)
			continue;
		pg_read_barrier();
		serve_slot(i, slot, scratch);
		pg_write_barrier();
		pg_atomic_write_u32(&slot->state, SLOT_DONE);
		SetLatch(slot->requester);
	}
	if (ranges_held == 0)
		return -1;

	now = GetCurrentTimestamp();
	for (int i = 0; i < s->nslots; i++)
	{
		TimestampTz expires;

		if (held[i].rows == NULL)
			continue;
		expires = TimestampTzPlusMilliseconds(held[i].sent_at,
											  KALAM_SERVED_WAIT_MS);
		if (expires <= now)
			release_range(i);
		else if (next == 0 || expires < next)
			next = expires;
	}
	return next == 0 ? -1 : TimestampDifferenceMilliseconds(now, next) + 1;
}
