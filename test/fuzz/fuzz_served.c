/*-------------------------------------------------------------------------
 *
 * fuzz_served.c
 *	  Fuzz harness of the packed rows the kalam reader hands a backend
 *	  (src/codec/served.c).
 *
 * Seeds are rows packed with the encoder: none, one, several, an empty key
 * or value, a buffer filled to the byte.  Each input is read back as
 * fdw/scan.c reads it: every key and value handed out must lie inside the
 * input, and each row must move the position forward.  Then the rows read
 * are packed again into a buffer of the input's size, and must fit.
 *
 * test/fuzz/fuzz_served.c
 *
 *-------------------------------------------------------------------------
 */
#include "fuzz.h"

#include "codec/served.h"

const char *fuzz_name = "served";

void
fuzz_seeds(void)
{
	char		buf[256];
	char		bytes[256];
	size_t		used;
	int			n;

	fuzz_add_seed("", 0);
	for (n = 1; n <= 4; n++)
	{
		used = 0;
		for (int i = 0; i < n; i++)
			if (!kalam_served_pack(buf, sizeof(buf), &used, "key", 1 + i,
								   "a value", 7 - i))
				fuzz_fail("a small row did not fit");
		fuzz_add_seed(buf, used);
	}
	used = 0;
	if (!kalam_served_pack(buf, sizeof(buf), &used, "", 0, "", 0))
		fuzz_fail("an empty row did not fit");
	fuzz_add_seed(buf, used);
	/* filled to the byte: 8 bytes of lengths, then 248 of key and value */
	used = 0;
	memset(bytes, 'x', sizeof(bytes));
	if (!kalam_served_pack(buf, sizeof(buf), &used, bytes, 100, bytes, 148) ||
		used != sizeof(buf))
		fuzz_fail("a row that fits to the byte did not");
	fuzz_add_seed(buf, used);
	if (kalam_served_pack(buf, sizeof(buf), &used, "k", 1, "", 0))
		fuzz_fail("a row was packed past the buffer's end");
}

void
fuzz_one(const char *data, size_t len)
{
	char	   *again = malloc(Max(len, 1));
	size_t		used = 0;
	size_t		pos = 0;
	const char *key;
	const char *value;
	size_t		keylen;
	size_t		vallen;

	for (;;)
	{
		size_t		before = pos;

		if (!kalam_served_next(data, len, &pos, &key, &keylen, &value, &vallen))
			break;
		if (pos <= before || pos > len)
			fuzz_fail("the position did not move forward within the input");
		if (key < data || key + keylen > data + len ||
			value < data || value + vallen > data + len)
			fuzz_fail("a key or value lies outside the input");
		fuzz_touch(key, keylen);
		fuzz_touch(value, vallen);
		if (!kalam_served_pack(again, len, &used, key, keylen, value, vallen))
			fuzz_fail("rows read back did not fit where they came from");
	}
	if (used != pos || (used > 0 && memcmp(again, data, used) != 0))
		fuzz_fail("rows packed again differ from those read");
	free(again);
}
