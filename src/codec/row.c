/*-------------------------------------------------------------------------
 *
 * row.c
 *	  Writing and reading the row payload (see row.h).
 *
 * It exists because the earlier reader, inside kv/row.c, read the null
 * bitmap without checking it against the payload's length: a payload that
 * claims more attributes than it holds made it read past the value.
 *
 * src/codec/row.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "codec/row.h"

/*
 * Start a payload of natts attributes, none null yet; returns where its
 * null bitmap is in buf.
 */
int
kalam_row_begin(StringInfo buf, uint16 natts)
{
	int			bitmap_len = (natts + 7) / 8;
	int			bitmap_offset;
	int			i;

	appendBinaryStringInfo(buf, (char *) &natts, sizeof(natts));
	bitmap_offset = buf->len;
	for (i = 0; i < bitmap_len; i++)
		appendStringInfoCharMacro(buf, 0);
	return bitmap_offset;
}

void
kalam_row_set_null(StringInfo buf, int bitmap_offset, int attno)
{
	buf->data[bitmap_offset + attno / 8] |= (1 << (attno % 8));
}

void
kalam_row_append_fixed(StringInfo buf, const char *data, size_t len)
{
	appendBinaryStringInfo(buf, data, len);
}

void
kalam_row_append_varlen(StringInfo buf, const char *data, uint32 len)
{
	appendBinaryStringInfo(buf, (char *) &len, sizeof(len));
	appendBinaryStringInfo(buf, data, len);
}

/* Check the attribute count and the null bitmap against the payload. */
bool
kalam_row_open(KalamRowReader *reader, const char *payload, size_t len,
			   const char **error)
{
	uint16		natts;
	size_t		bitmap_len;

	*error = NULL;
	if (payload == NULL || len < sizeof(natts))
	{
		*error = "row payload is shorter than its attribute count";
		return false;
	}
	memcpy(&natts, payload, sizeof(natts));
	bitmap_len = ((size_t) natts + 7) / 8;
	if (len - sizeof(natts) < bitmap_len)
	{
		*error = "row payload is shorter than its null bitmap";
		return false;
	}
	reader->natts = natts;
	reader->bitmap = payload + sizeof(natts);
	reader->pos = reader->bitmap + bitmap_len;
	reader->end = payload + len;
	return true;
}

/* Is attribute attno (from 0) null, or beyond those stored? */
bool
kalam_row_is_null(const KalamRowReader *reader, int attno)
{
	if (attno < 0 || attno >= reader->natts)
		return true;
	return (reader->bitmap[attno / 8] & (1 << (attno % 8))) != 0;
}

/* The next non-null attribute, of attlen bytes. */
bool
kalam_row_next_fixed(KalamRowReader *reader, size_t attlen, const char **data,
					 const char **error)
{
	*error = NULL;
	if ((size_t) (reader->end - reader->pos) < attlen)
	{
		*error = "row payload is truncated";
		return false;
	}
	*data = reader->pos;
	reader->pos += attlen;
	return true;
}

/* The next non-null attribute, of variable length. */
bool
kalam_row_next_varlen(KalamRowReader *reader, const char **data, uint32 *len,
					  const char **error)
{
	size_t		avail = (size_t) (reader->end - reader->pos);

	*error = NULL;
	if (avail < sizeof(uint32))
	{
		*error = "row payload is truncated";
		return false;
	}
	memcpy(len, reader->pos, sizeof(uint32));
	if ((size_t) *len > avail - sizeof(uint32))
	{
		*error = "attribute is longer than the row payload";
		return false;
	}
	*data = reader->pos + sizeof(uint32);
	reader->pos = *data + *len;
	return true;
}
