/*-------------------------------------------------------------------------
 *
 * fuzz.h
 *	  The mutation loop shared by the fuzz harnesses of src/codec.
 *
 * Each harness (fuzz_<decoder>.c) builds seeds with the codec's own
 * encoders and hands every mutated input to its decoder.  The loop is
 * deterministic (a fixed PRNG seed, FUZZ_SEED to change it) and runs for
 * FUZZ_SECONDS (3 by default).  It needs gcc and AddressSanitizer only:
 * clang and libFuzzer are not on every CI machine.  A crash is an ASan or
 * UBSan report, or a harness's own check failing (fuzz_fail), which abort
 * the program; run.sh fails the test run on a non-zero exit.
 *
 * test/fuzz/fuzz.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KALAM_FUZZ_H
#define KALAM_FUZZ_H

#include "postgres.h"

/* what each harness defines */
extern const char *fuzz_name;
extern void fuzz_seeds(void);
extern void fuzz_one(const char *data, size_t len);

/* for the harness */
extern void fuzz_add_seed(const char *data, size_t len);
extern uint64 fuzz_random(void);
extern void fuzz_touch(const char *data, size_t len);
extern void fuzz_fail(const char *what) pg_attribute_noreturn();

#endif							/* KALAM_FUZZ_H */
