/*-------------------------------------------------------------------------
 *
 * fuzz.c
 *	  The mutation loop shared by the fuzz harnesses (see fuzz.h).
 *
 * Mutations: bit flips, bytes and 4- or 8-byte words set to boundary
 * values (0, 1, -1, 2^31, 2^48, the input's length, ...), truncations,
 * random tails, deleted and duplicated chunks, and splices of two seeds.
 * Every input is copied into a buffer of exactly its length, so that
 * AddressSanitizer sees a read one byte past it.
 *
 * test/fuzz/fuzz.c
 *
 *-------------------------------------------------------------------------
 */
#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define MAX_SEEDS	256
#define MAX_INPUT	65536

static char *seeds[MAX_SEEDS];
static size_t seed_lens[MAX_SEEDS];
static int	nseeds = 0;
static uint64 state = UINT64CONST(0x9E3779B97F4A7C15);

void
fuzz_add_seed(const char *data, size_t len)
{
	if (nseeds == MAX_SEEDS || len > MAX_INPUT / 2)
		fuzz_fail("too many or too large seeds");
	seeds[nseeds] = malloc(len + 1);
	memcpy(seeds[nseeds], data, len);
	seed_lens[nseeds++] = len;
}

/* xorshift64* */
uint64
fuzz_random(void)
{
	state ^= state >> 12;
	state ^= state << 25;
	state ^= state >> 27;
	return state * UINT64CONST(2685821657736338717);
}

/* Read the first and last byte of what a decoder handed out: ASan checks. */
void
fuzz_touch(const char *data, size_t len)
{
	volatile char sink;

	if (len > 0)
	{
		sink = data[0];
		sink = data[len - 1];
		(void) sink;
	}
}

void
fuzz_fail(const char *what)
{
	fprintf(stderr, "fuzz %s: %s\n", fuzz_name, what);
	abort();
}

static uint64
boundary_value(size_t len)
{
	static const uint64 values[] = {
		0, 1, 2, 7, 8, 0x7F, 0x80, 0xFF, 0xFFFF, 0x7FFFFFFF, 0x80000000,
		0xFFFFFFFF, UINT64CONST(1) << 32, UINT64CONST(1) << 48,
		(UINT64CONST(1) << 48) + 1, PG_UINT64_MAX
	};
	uint64		r = fuzz_random() % (lengthof(values) + 2);

	if (r == lengthof(values))
		return len;
	if (r == lengthof(values) + 1)
		return len - 1;
	return values[r];
}

/* Mutate buf (len bytes, room for MAX_INPUT) in place; the new length. */
static size_t
mutate(char *buf, size_t len)
{
	int			rounds = 1 + fuzz_random() % 4;

	while (rounds-- > 0)
	{
		size_t		at = len ? fuzz_random() % len : 0;

		switch (fuzz_random() % 9)
		{
			case 0:				/* bit flip */
				if (len)
					buf[at] ^= (char) (1 << (fuzz_random() % 8));
				break;
			case 1:				/* boundary byte */
				if (len)
					buf[at] = (char) boundary_value(len);
				break;
			case 2:				/* boundary 4-byte word */
				if (len >= 4)
				{
					uint32		v = (uint32) boundary_value(len);

					at = fuzz_random() % (len - 3);
					memcpy(buf + at, &v, 4);
				}
				break;
			case 3:				/* boundary 8-byte word, aligned or not */
				if (len >= 8)
				{
					uint64		v = boundary_value(len);

					at = fuzz_random() % (len - 7);
					if (fuzz_random() % 2)
						at &= ~(size_t) 7;
					memcpy(buf + at, &v, 8);
				}
				break;
			case 4:				/* truncate */
				len = at;
				break;
			case 5:				/* random tail */
				{
					size_t		extra = 1 + fuzz_random() % 64;

					if (len + extra <= MAX_INPUT)
					{
						size_t		i;

						for (i = 0; i < extra; i++)
							buf[len + i] = (char) fuzz_random();
						len += extra;
					}
				}
				break;
			case 6:				/* delete a chunk */
				if (len)
				{
					size_t		n = 1 + fuzz_random() % (len - at);

					memmove(buf + at, buf + at + n, len - at - n);
					len -= n;
				}
				break;
			case 7:				/* duplicate a chunk */
				if (len)
				{
					size_t		n = 1 + fuzz_random() % Min(len - at, 64);

					if (len + n <= MAX_INPUT)
					{
						memmove(buf + at + n, buf + at, len - at);
						len += n;
					}
				}
				break;
			case 8:				/* splice: this head, another seed's tail */
				{
					int			other = fuzz_random() % nseeds;
					size_t		from = seed_lens[other] ?
						fuzz_random() % seed_lens[other] : 0;
					size_t		n = seed_lens[other] - from;

					if (at + n <= MAX_INPUT)
					{
						memcpy(buf + at, seeds[other] + from, n);
						len = at + n;
					}
				}
				break;
		}
	}
	return len;
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	const char *env_seconds = getenv("FUZZ_SECONDS");
	const char *env_seed = getenv("FUZZ_SEED");
	double		seconds = env_seconds ? atof(env_seconds) : 3.0;
	double		start;
	double		elapsed;
	char	   *work = malloc(MAX_INPUT);
	uint64		inputs = 0;
	int			i;

	if (env_seed != NULL)
		state = strtoull(env_seed, NULL, 10) | 1;
	fuzz_seeds();
	if (nseeds == 0)
		fuzz_fail("no seeds");

	/* the seeds themselves, then mutations of them */
	for (i = 0; i < nseeds; i++)
	{
		char	   *exact = malloc(seed_lens[i] ? seed_lens[i] : 1);

		memcpy(exact, seeds[i], seed_lens[i]);
		fuzz_one(exact, seed_lens[i]);
		free(exact);
		inputs++;
	}
	start = now();
	do
	{
		int			k;

		for (k = 0; k < 1024; k++)
		{
			int			s = fuzz_random() % nseeds;
			size_t		len;
			char	   *exact;

			memcpy(work, seeds[s], seed_lens[s]);
			len = mutate(work, seed_lens[s]);
			exact = malloc(len ? len : 1);
			memcpy(exact, work, len);
			fuzz_one(len ? exact : NULL, len);
			free(exact);
			inputs++;
		}
		elapsed = now() - start;
	} while (elapsed < seconds);

	printf("fuzz %s: " UINT64_FORMAT " inputs, 0 crashes (%.0f inputs/s)\n",
		   fuzz_name, inputs, inputs / elapsed);
	for (i = 0; i < nseeds; i++)
		free(seeds[i]);
	free(work);
	return 0;
}
