/*-------------------------------------------------------------------------
 *
 * parked.c
 *	  Committed entries that wait to be applied, kept in RocksDB instead of
 *	  the kalam worker's memory.
 *
 * A follower that installs a snapshot parks every entry its group commits
 * meanwhile, and applies them after (cluster/fsm.c): as many as the install
 * lasts, which grows with the group's size.  At 10M rows and
 * kalam.snapshot_transfer_rate's 32MB/s, with 8 clients writing through
 * the 163 s install (bench/scale.sh), the installing worker peaked at
 * 290-330 MB with them in memory, 253-266 MB with them here; the growth
 * left is libraft's own copy of the same entries in its log, kept until
 * the group's first snapshot after the install.  Past kalam.parked_memory, a
 * group's parked entries are written here, under keys of no group
 * (codec/key.h), and read back one at a time as they are applied.
 *
 * They are scratch: libraft still has every one of them in its log (a
 * group takes no snapshot while anything is parked), and a restart applies
 * them again from there.  So they are written without RocksDB's WAL, and
 * the worker removes them all when it starts.  RocksDB and libc only: this
 * runs inside libraft callbacks.
 *
 * src/kv/parked.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "codec/key.h"
#include "kv/parked.h"

static rocksdb_writeoptions_t *parked_write_options = NULL;
static rocksdb_readoptions_t *parked_read_options = NULL;

static bool
report(char *err, char *errbuf, size_t errlen)
{
	if (err == NULL)
		return true;
	strlcpy(errbuf, err, errlen);
	rocksdb_free(err);
	return false;
}

static void
prepare_options(void)
{
	if (parked_write_options != NULL)
		return;
	parked_write_options = rocksdb_writeoptions_create();
	rocksdb_writeoptions_disable_WAL(parked_write_options, 1);
	parked_read_options = rocksdb_readoptions_create();
}

static bool
delete_range(rocksdb_t *db, const char *start, const char *end, char *errbuf,
			 size_t errlen)
{
	rocksdb_writebatch_t *batch = rocksdb_writebatch_create();
	char	   *err = NULL;

	prepare_options();
	rocksdb_writebatch_delete_range(batch, start, KALAM_PARKED_KEY_LEN, end,
									KALAM_PARKED_KEY_LEN);
	rocksdb_write(db, parked_write_options, batch, &err);
	rocksdb_writebatch_destroy(batch);
	return report(err, errbuf, errlen);
}

/* Keep a parked entry's data; false with errbuf set if it could not be */
bool
kalam_parked_put(rocksdb_t *db, int group, uint64 index, const char *data,
				 size_t len, char *errbuf, size_t errlen)
{
	char		key[KALAM_PARKED_KEY_LEN];
	char	   *err = NULL;

	prepare_options();
	kalam_key_parked(group, index, key);
	rocksdb_put(db, parked_write_options, key, sizeof(key), data, len, &err);
	return report(err, errbuf, errlen);
}

/*
 * A parked entry's data, allocated by RocksDB (rocksdb_free it); NULL with
 * errbuf set if it could not be read or is not there.
 */
char *
kalam_parked_get(rocksdb_t *db, int group, uint64 index, size_t *len,
				 char *errbuf, size_t errlen)
{
	char		key[KALAM_PARKED_KEY_LEN];
	char	   *err = NULL;
	char	   *data;

	prepare_options();
	kalam_key_parked(group, index, key);
	data = rocksdb_get(db, parked_read_options, key, sizeof(key), len, &err);
	if (!report(err, errbuf, errlen))
		return NULL;
	if (data == NULL)
		snprintf(errbuf, errlen, "parked entry %llu of group %d is missing",
				 (unsigned long long) index, group);
	return data;
}

/*
 * Remove the group's parked entries from index from to index to, both
 * included, once they are applied: one range deletion.  Deleted one by one,
 * the entries parked during a 10M-row install left a tombstone each after
 * the last group's keys, and every scan that ran to the end of that group
 * stepped over them all: the change log's purge held the loop for 0.4-1.1 s
 * at each turn for 20 s (bench/scale.sh; none with range deletions).
 */
bool
kalam_parked_remove(rocksdb_t *db, int group, uint64 from, uint64 to,
					char *errbuf, size_t errlen)
{
	char		start[KALAM_PARKED_KEY_LEN];
	char		end[KALAM_PARKED_KEY_LEN];

	kalam_key_parked(group, from, start);
	kalam_key_parked(group, to + 1, end);
	return delete_range(db, start, end, errbuf, errlen);
}

/* Remove every parked entry of the group; group -1: of every group */
bool
kalam_parked_clear(rocksdb_t *db, int group, char *errbuf, size_t errlen)
{
	char		start[KALAM_PARKED_KEY_LEN];
	char		end[KALAM_PARKED_KEY_LEN];

	kalam_key_parked(group < 0 ? 0 : group, 0, start);
	kalam_key_parked(group < 0 ? KALAM_KEY_LOCAL_GROUP : group + 1, 0, end);
	return delete_range(db, start, end, errbuf, errlen);
}
