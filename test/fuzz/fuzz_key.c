/*-------------------------------------------------------------------------
 *
 * fuzz_key.c
 *	  Fuzz harness of the key reader and of the rule of which keys a group
 *	  may touch (src/codec/key.c).
 *
 * The seeds are the kinds of key kalam writes (a table row, a DDL record, a
 * node address, an applied index) and ones it must refuse, each first
 * checked against its expected verdict for every use.  Every input must
 * get a verdict that keeps the rule: an accepted key has the group's
 * prefix and names a table, a range never table id 0, a data group's row
 * never table id 0.
 *
 * test/fuzz/fuzz_key.c
 *
 *-------------------------------------------------------------------------
 */
#include "fuzz.h"

#include "codec/command.h"
#include "codec/group.h"
#include "codec/key.h"

const char *fuzz_name = "key";

typedef struct KeyCase
{
	int			group;
	const char *key;
	size_t		keylen;
	bool		row;			/* expected verdicts for each use */
	bool		range;
	bool		snapshot;
} KeyCase;

#define K(s)	s, sizeof(s) - 1

static const KeyCase cases[] = {
	{2, K("\x00\x02\x00\x00\x01\x00user\x00\x01pk"), true, true, true},
	{2, K("\x00\x02\x00\x00\x01\x00"), true, true, true},
	{1, K("\x00\x02\x00\x00\x01\x00pk"), false, false, false},
	{2, K(""), false, false, false},
	{2, K("\x00\x02"), false, false, false},
	{2, K("\x00\x02\x00\x00\x00\x00"), false, false, false},
	{2, K("\x00\x02\x00\x00\x00\x00" "applied_index"), false, false, true},
	{2, K("\x00\x02\x00\x00\x00\x00" "applied_indexx"), false, false, false},
	{2, K("\x00\x02\x00\x00\x00\x00" "changes/\x00\x00\x00\x00\x00\x00\x00\x05\x00\x00\x00\x01"), false, false, true},
	{2, K("\x00\x02\x00\x00\x00\x00" "changes/\x00\x05"), false, false, false},
	{2, K("\x00\x02\x00\x00\x00\x00" "changes_purged"), false, false, true},
	{0, K("\x00\x00\x00\x00\x00\x00" "changes_purged"), false, false, false},
	{0, K("\x00\x00\x00\x00\x00\x00" "ddl/\x00\x00\x00\x01"), true, false, true},
	{0, K("\x00\x00\x00\x00\x00\x00" "node/\x00\x00\x00\x02"), true, false, true},
	{0, K("\x00\x00\x00\x00\x00\x00" "applied_index"), false, false, true},
	{0, K("\x00\x00\x00\x00\x00\x00" "dd"), false, false, false},
	{0, K("\x00\x00\x00\x00\x01\x00" "pk"), false, false, false},
	{0, K("\x00\x00\x00\x00\x01\x00"), false, false, false},
	{2, K("\x00\x02\x00\x00\x00\x00" "part/splitid\x01\x00\x00\x00\x03"), false, false, true},
	{2, K("\x00\x02\x00\x00\x00\x00" "part/splitid\x01"), false, false, false},
	{0, K("\x00\x00\x00\x00\x00\x00" "part/splitid\x01\x00\x00\x00\x03"), false, false, false},
};

void
fuzz_seeds(void)
{
	int			i;

	for (i = 0; i < (int) lengthof(cases); i++)
	{
		const KeyCase *c = &cases[i];
		const char *error;

		if (kalam_key_check_scope(c->group, KALAM_KEY_USE_ROW, c->key,
								  c->keylen, &error) != c->row ||
			kalam_key_check_scope(c->group, KALAM_KEY_USE_RANGE, c->key,
								  c->keylen, &error) != c->range ||
			kalam_key_check_scope(c->group, KALAM_KEY_USE_SNAPSHOT, c->key,
								  c->keylen, &error) != c->snapshot)
		{
			fprintf(stderr, "key case %d\n", i);
			fuzz_fail("a key gets the wrong verdict");
		}
		if (c->keylen > 0)
			fuzz_add_seed(c->key, c->keylen);
	}
}

void
fuzz_one(const char *data, size_t len)
{
	static const int groups[] = {KALAM_GROUP_META, KALAM_GROUP_SHARED,
	KALAM_GROUP_FIRST_USER, 0xFFFF};
	KalamKeyUse use;
	int			i;

	for (i = 0; i < (int) lengthof(groups); i++)
		for (use = KALAM_KEY_USE_ROW; use <= KALAM_KEY_USE_SNAPSHOT; use++)
		{
			const char *error;
			bool		ok = kalam_key_check_scope(groups[i], use, data, len,
												   &error);
			uint32		table_id = kalam_key_table(data, len);

			if (!ok && error == NULL)
				fuzz_fail("refused without a message");
			if (!ok)
				continue;
			if (len < KALAM_TABLE_PREFIX_LEN ||
				kalam_key_group(data, len) != groups[i])
				fuzz_fail("a key of another group, or of no table, was accepted");
			if (use == KALAM_KEY_USE_RANGE && table_id == 0)
				fuzz_fail("a range over the group's metadata was accepted");
			if (use == KALAM_KEY_USE_ROW && groups[i] != KALAM_GROUP_META &&
				table_id == 0)
				fuzz_fail("a data group's metadata key was accepted");
			if (use == KALAM_KEY_USE_SPLIT &&
				(groups[i] == KALAM_GROUP_META || table_id != 0 ||
				 (len != KALAM_PART_KEY_LEN && len != KALAM_SPLIT_PREFIX_LEN)))
				fuzz_fail("a split's key outside a data group's parts was accepted");
		}
}
