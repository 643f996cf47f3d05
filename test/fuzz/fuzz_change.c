/*-------------------------------------------------------------------------
 *
 * fuzz_change.c
 *	  Fuzz harness of the change log's reader (src/codec/change.c).
 *
 * The change log arrives in snapshots from other nodes, so its reader sees
 * bytes from the network.  An input is a key length (its first byte), the
 * key, then the value.  Seeds are changes built as apply builds them: an
 * insert, an update, a delete (by ttl or not) and a truncate, of a user
 * table's row key.  Every accepted change must lie inside its value, have
 * a known operation, belong to the key's group, and a truncate carry no
 * row; the user part of its row key is read into a small buffer, which
 * must never overflow.  Positions survive a trip through a key.
 *
 * test/fuzz/fuzz_change.c
 *
 *-------------------------------------------------------------------------
 */
#include "fuzz.h"

#include "lib/stringinfo.h"

#include "codec/change.h"

const char *fuzz_name = "change";

static void
add_change(KalamChangeOp op, uint8 flags, const char *rowkey, size_t keylen,
		   const char *row, size_t rowlen)
{
	KalamChangePos pos = {2, 123456, 7};
	KalamChangeHeader header;
	StringInfoData buf;
	char		key[KALAM_CHANGE_KEY_LEN];

	kalam_change_key(key, &pos);
	kalam_change_header(&header, op, flags, keylen, 42);
	initStringInfo(&buf);
	appendStringInfoChar(&buf, (char) sizeof(key));
	appendBinaryStringInfo(&buf, key, sizeof(key));
	appendBinaryStringInfo(&buf, (char *) &header, sizeof(header));
	appendBinaryStringInfo(&buf, rowkey, keylen);
	if (row != NULL)
		appendBinaryStringInfo(&buf, row, rowlen);
	fuzz_add_seed(buf.data, buf.len);
	pfree(buf.data);
}

#define K(s)	s, sizeof(s) - 1

void
fuzz_seeds(void)
{
	static const char rowkey[] = "\x00\x02\x00\x00\x01\x00" "alice\x00\x01" "\x80\x00\x00\x01";
	static const char prefix[] = "\x00\x02\x00\x00\x01\x00" "al\x00\xFFice\x00\x01";
	static const char row[] = "\x02\x00\x00\x01\x00\x00\x00\x05\x00\x00\x00hello";
	KalamChangePos pos;
	KalamChangePos back;
	char		key[KALAM_CHANGE_KEY_LEN];
	int			i;

	add_change(KALAM_CHANGE_INSERT, 0, K(rowkey), K(row));
	add_change(KALAM_CHANGE_UPDATE, 0, K(rowkey), K(row));
	add_change(KALAM_CHANGE_DELETE, KALAM_CHANGE_EXPIRED, K(rowkey), K(row));
	add_change(KALAM_CHANGE_TRUNCATE, 0, K(prefix), NULL, 0);

	for (i = 0; i < 1000; i++)
	{
		pos.group = (int) (fuzz_random() % 0x10000);
		pos.index = fuzz_random();
		pos.n = (uint32) fuzz_random();
		kalam_change_key(key, &pos);
		if (!kalam_change_read_key(key, sizeof(key), &back) ||
			kalam_change_pos_cmp(&pos, &back) != 0 || back.group != pos.group)
			fuzz_fail("a position does not survive a trip through its key");
	}
}

void
fuzz_one(const char *data, size_t len)
{
	KalamChange change;
	const char *error;
	char		user[16];
	size_t		keylen;

	if (len < 1)
		return;
	keylen = Min((size_t) (unsigned char) data[0], len - 1);
	if (!kalam_change_read(data + 1, keylen, data + 1 + keylen,
						   len - 1 - keylen, &change, &error))
	{
		if (error == NULL)
			fuzz_fail("refused without a message");
		return;
	}
	if (change.key < data + 1 + keylen ||
		change.key + change.keylen > data + len)
		fuzz_fail("the row key lies outside the value");
	if (change.op < KALAM_CHANGE_INSERT || change.op > KALAM_CHANGE_TRUNCATE)
		fuzz_fail("an unknown operation was accepted");
	if (kalam_key_group(change.key, change.keylen) != change.pos.group)
		fuzz_fail("a change of another group was accepted");
	if (change.op == KALAM_CHANGE_TRUNCATE ? change.row != NULL :
		(change.row == NULL || change.row + change.rowlen > data + len))
		fuzz_fail("the row lies outside the value");
	fuzz_touch(change.key, change.keylen);
	if (change.row != NULL)
		fuzz_touch(change.row, change.rowlen);
	if (kalam_change_key_user(change.key, change.keylen, user, sizeof(user),
							  &error))
	{
		if (strlen(user) >= sizeof(user))
			fuzz_fail("a user name overflowed its buffer");
	}
	else if (error == NULL)
		fuzz_fail("a user name refused without a message");
}
