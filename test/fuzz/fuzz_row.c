/*-------------------------------------------------------------------------
 *
 * fuzz_row.c
 *	  Fuzz harness of the row payload reader (src/codec/row.c).
 *
 * Seeds are payloads built with the encoder: fixed and variable length
 * attributes, nulls, none.  Each input is read as kv/row.c reads it,
 * by a few attribute layouts (typlen > 0 fixed, -1 and -2 variable): every
 * attribute handed out must lie inside the payload.
 *
 * test/fuzz/fuzz_row.c
 *
 *-------------------------------------------------------------------------
 */
#include "fuzz.h"

#include "codec/row.h"

const char *fuzz_name = "row";

/* the layouts: typlen of each attribute, 0 ends */
static const int16 layouts[][8] = {
	{4, -1, 8, 0},
	{-1, -1, 0},
	{2, 1, 16, -2, 8, 4, 0},
	{0},
};

static void
add_row(int layout, uint32 nulls)
{
	StringInfoData buf;
	const int16 *attlens = layouts[layout];
	uint16		natts = 0;
	int			offset;
	int			i;

	while (attlens[natts] != 0)
		natts++;
	initStringInfo(&buf);
	offset = kalam_row_begin(&buf, natts);
	for (i = 0; i < natts; i++)
	{
		char		bytes[16];

		memset(bytes, 'a' + i, sizeof(bytes));
		if (nulls & (1 << i))
			kalam_row_set_null(&buf, offset, i);
		else if (attlens[i] > 0)
			kalam_row_append_fixed(&buf, bytes, attlens[i]);
		else
			kalam_row_append_varlen(&buf, bytes, 1 + i);
	}
	fuzz_add_seed(buf.data, buf.len);
	pfree(buf.data);
}

void
fuzz_seeds(void)
{
	int			layout;

	for (layout = 0; layout < (int) lengthof(layouts); layout++)
	{
		add_row(layout, 0);
		add_row(layout, 0x5);
		add_row(layout, 0xFF);
	}
}

static void
read_row(const char *data, size_t len, const int16 *attlens)
{
	KalamRowReader reader;
	const char *error;
	const char *value;
	uint32		vlen;
	int			i;

	if (!kalam_row_open(&reader, data, len, &error))
	{
		if (error == NULL)
			fuzz_fail("refused without a message");
		return;
	}
	for (i = 0; attlens[i] != 0; i++)
	{
		if (kalam_row_is_null(&reader, i))
			continue;
		if (attlens[i] > 0)
		{
			if (!kalam_row_next_fixed(&reader, attlens[i], &value, &error))
				return;
			vlen = attlens[i];
		}
		else if (!kalam_row_next_varlen(&reader, &value, &vlen, &error))
			return;
		if (value < data || value + vlen > data + len)
			fuzz_fail("an attribute lies outside the payload");
		fuzz_touch(value, vlen);
	}
	/* attributes past those stored read as null */
	if (!kalam_row_is_null(&reader, reader.natts) || !kalam_row_is_null(&reader, -1))
		fuzz_fail("an attribute beyond those stored is not null");
}

void
fuzz_one(const char *data, size_t len)
{
	int			layout;

	for (layout = 0; layout < (int) lengthof(layouts); layout++)
		read_row(data, len, layouts[layout]);
}
