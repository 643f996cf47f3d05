/*-------------------------------------------------------------------------
 *
 * fuzz_snapshot.c
 *	  Fuzz harness of the snapshot reader (src/codec/snapshot.c).
 *
 * Seeds are snapshots of 0, 1 and 50 rows of group 2 built with the
 * writer, each checked to read back, to pass kalam_snapshot_check for its
 * group and to be refused for another; and one that hides a key of another
 * group among its rows, refused whole; and one whose applied index row is
 * not its header's, refused.  A snapshot that opens must claim
 * no more rows than its bytes can hold, and every row handed out must lie
 * inside it.
 *
 * test/fuzz/fuzz_snapshot.c
 *
 *-------------------------------------------------------------------------
 */
#include "fuzz.h"

#include "codec/command.h"
#include "codec/key.h"
#include "codec/snapshot.h"

const char *fuzz_name = "snapshot";

/* the applied index row of group 2 */
#define K_APPLIED	"\x00\x02\x00\x00\x00\x00" KALAM_KEY_APPLIED_INDEX

static void
add_snapshot(int rows, int foreign_row)
{
	KalamSnapshotWriter writer;
	KalamSnapshotReader reader;
	KalamSnapshotHeader header;
	const char *key;
	const char *value;
	size_t		keylen;
	size_t		vallen;
	const char *error;
	int			i;

	if (!kalam_snapshot_begin(&writer, 64))
		fuzz_fail("out of memory");
	if (rows > 0)
	{
		uint64		applied = 1000 + rows;

		if (!kalam_snapshot_add(&writer, K_APPLIED, sizeof(K_APPLIED) - 1,
								(const char *) &applied, sizeof(applied)))
			fuzz_fail("out of memory");
	}
	for (i = 0; i < rows; i++)
	{
		char		k[16];
		char		v[40];

		snprintf(k, sizeof(k), "%c%c%c%c%c%crow%d", 0, i == foreign_row ? 3 : 2,
				 0, 0, 1, 0, i);
		memset(v, 'v', sizeof(v));
		if (!kalam_snapshot_add(&writer, k, 6 + strlen(k + 6), v, i % sizeof(v)))
			fuzz_fail("out of memory");
	}
	kalam_snapshot_finish(&writer, 1000 + rows, rows);
	if (!kalam_snapshot_open(&reader, writer.data, writer.used, &header, &error) ||
		header.applied_index != (uint64) (1000 + rows) ||
		header.count != (uint64) (rows > 0 ? rows + 1 : 0) ||
		header.required_meta_index != (uint64) rows)
		fuzz_fail("a seed does not open");
	for (i = 0; kalam_snapshot_next(&reader, &key, &keylen, &value, &vallen, &error); i++)
		if (i > 0 && (vallen != (size_t) ((i - 1) % 40) || keylen < 6 ||
					  memcmp(key + 6, "row", 3) != 0))
			fuzz_fail("a seed's row reads back as something else");
	if (error != NULL || i != (rows > 0 ? rows + 1 : 0))
		fuzz_fail("a seed's rows do not read back");
	if (kalam_snapshot_check(writer.data, writer.used, 2, &header, &error) !=
		(foreign_row < 0))
		fuzz_fail("a seed gets the wrong verdict for its group");
	if (rows > 0 && kalam_snapshot_check(writer.data, writer.used, 1, &header, &error))
		fuzz_fail("a seed of group 2 is accepted by group 1");
	fuzz_add_seed(writer.data, writer.used);
	kalam_snapshot_abandon(&writer);
}

void
fuzz_seeds(void)
{
	KalamSnapshotWriter writer;
	KalamSnapshotHeader header;
	const char *error;
	uint64		applied = 7;

	add_snapshot(0, -1);
	add_snapshot(1, -1);
	add_snapshot(50, -1);
	add_snapshot(50, 37);

	/* an applied index row that is not the header's is refused */
	if (!kalam_snapshot_begin(&writer, 64) ||
		!kalam_snapshot_add(&writer, K_APPLIED, sizeof(K_APPLIED) - 1,
							(const char *) &applied, sizeof(applied)))
		fuzz_fail("out of memory");
	kalam_snapshot_finish(&writer, 8, 0);
	if (kalam_snapshot_check(writer.data, writer.used, 2, &header, &error))
		fuzz_fail("a snapshot whose applied index row differs is accepted");
	fuzz_add_seed(writer.data, writer.used);
	kalam_snapshot_abandon(&writer);
}

void
fuzz_one(const char *data, size_t len)
{
	KalamSnapshotReader reader;
	KalamSnapshotHeader header;
	const char *key;
	const char *value;
	size_t		keylen;
	size_t		vallen;
	const char *error;
	uint64		n = 0;

	if (!kalam_snapshot_open(&reader, data, len, &header, &error))
	{
		if (error == NULL)
			fuzz_fail("refused without a message");
		return;
	}
	if (header.count > len / 8 ||
		header.required_meta_index > KALAM_COMMAND_MAX_META_INDEX)
		fuzz_fail("an impossible header was accepted");
	while (kalam_snapshot_next(&reader, &key, &keylen, &value, &vallen, &error))
	{
		if (key < data || key + keylen > data + len ||
			value < data || value + vallen > data + len)
			fuzz_fail("a row lies outside the snapshot");
		fuzz_touch(key, keylen);
		fuzz_touch(value, vallen);
		n++;
	}
	if (n > header.count)
		fuzz_fail("more rows than the header says");
	if (kalam_snapshot_check(data, len, 2, &header, &error) &&
		(n != header.count || error != NULL))
		fuzz_fail("a snapshot that does not read whole passes the check");
}
