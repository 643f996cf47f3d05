/*-------------------------------------------------------------------------
 *
 * row.c
 *	  Encoding of a row payload.
 *
 * The payload is the number of attributes (2 bytes), a null bitmap, then
 * each non-null attribute: fixed-length types as their typlen bytes,
 * variable-length ones as a 4-byte length and the detoasted bytes without
 * the varlena header.  Rows written before an ALTER ... ADD COLUMN carry
 * fewer attributes; the missing ones read as NULL.
 *
 * src/storage/row.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/tupmacs.h"
#include "utils/builtins.h"

#include "storage/row.h"

void
kalam_row_encode(StringInfo buf, TupleDesc desc, const Datum *values,
				 const bool *isnull)
{
	uint16		natts = desc->natts;
	int			bitmap_len = (natts + 7) / 8;
	int			bitmap_off;
	int			i;

	appendBinaryStringInfo(buf, (char *) &natts, sizeof(natts));
	bitmap_off = buf->len;
	for (i = 0; i < bitmap_len; i++)
		appendStringInfoCharMacro(buf, 0);

	for (i = 0; i < natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped || isnull[i])
		{
			buf->data[bitmap_off + i / 8] |= (1 << (i % 8));
			continue;
		}
		if (att->attlen > 0)
		{
			enlargeStringInfo(buf, att->attlen);
			if (att->attbyval)
				store_att_byval(buf->data + buf->len, values[i], att->attlen);
			else
				memcpy(buf->data + buf->len, DatumGetPointer(values[i]),
					   att->attlen);
			buf->len += att->attlen;
		}
		else
		{
			const char *data;
			uint32		len;

			if (att->attlen == -1)
			{
				struct varlena *v = PG_DETOAST_DATUM_PACKED(values[i]);

				data = VARDATA_ANY(v);
				len = VARSIZE_ANY_EXHDR(v);
			}
			else
			{
				data = DatumGetCString(values[i]);
				len = strlen(data) + 1;
			}
			appendBinaryStringInfo(buf, (char *) &len, sizeof(len));
			appendBinaryStringInfo(buf, data, len);
		}
	}
}

/*
 * Read one non-null attribute at *p and advance past it.  By-reference
 * values are copied into CurrentMemoryContext, aligned, so they outlive the
 * RocksDB buffer.
 */
static Datum
read_attribute(Form_pg_attribute att, const char **p, const char *end)
{
	const char *src = *p;
	uint32		vlen;
	char	   *copy;

	if (att->attlen > 0)
	{
		if (src + att->attlen > end)
			elog(ERROR, "kalam row payload is truncated");
		*p = src + att->attlen;
		if (att->attbyval)
		{
			switch (att->attlen)
			{
				case 1:
					return CharGetDatum(*src);
				case 2:
					{
						int16		v;

						memcpy(&v, src, sizeof(v));
						return Int16GetDatum(v);
					}
				case 4:
					{
						int32		v;

						memcpy(&v, src, sizeof(v));
						return Int32GetDatum(v);
					}
				default:
					{
						Datum		d;

						memcpy(&d, src, sizeof(d));
						return d;
					}
			}
		}
		copy = palloc(att->attlen);
		memcpy(copy, src, att->attlen);
		return PointerGetDatum(copy);
	}

	if (src + sizeof(vlen) > end)
		elog(ERROR, "kalam row payload is truncated");
	memcpy(&vlen, src, sizeof(vlen));
	src += sizeof(vlen);
	if (src + vlen > end)
		elog(ERROR, "kalam row payload is truncated");
	*p = src + vlen;
	if (att->attlen == -1)
	{
		struct varlena *v = palloc(vlen + VARHDRSZ);

		SET_VARSIZE(v, vlen + VARHDRSZ);
		memcpy(VARDATA(v), src, vlen);
		return PointerGetDatum(v);
	}
	copy = palloc(vlen);
	memcpy(copy, src, vlen);
	return CStringGetDatum(copy);
}

/*
 * Decode a payload into values/isnull.  Values of columns dropped since the
 * row was written are skipped.
 */
void
kalam_row_decode(const char *payload, size_t len, TupleDesc desc,
				 Datum *values, bool *isnull)
{
	const char *p = payload;
	const char *end = payload + len;
	const char *bitmap;
	uint16		stored_natts;
	int			i;

	if (len < sizeof(uint16))
		elog(ERROR, "kalam row payload is truncated");
	memcpy(&stored_natts, p, sizeof(stored_natts));
	p += sizeof(stored_natts);
	bitmap = p;
	p += (stored_natts + 7) / 8;

	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		values[i] = (Datum) 0;
		isnull[i] = true;
		if (i >= stored_natts || (bitmap[i / 8] & (1 << (i % 8))))
			continue;
		values[i] = read_attribute(att, &p, end);
		isnull[i] = att->attisdropped;
	}
}
