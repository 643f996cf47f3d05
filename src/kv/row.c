/*-------------------------------------------------------------------------
 *
 * row.c
 *	  Rows as Datums, in the payload format of codec/row.h.
 *
 * Fixed-length types are stored as their typlen bytes, variable-length
 * ones as the detoasted bytes without the varlena header, cstrings with
 * their NUL.  Rows written before an ALTER ... ADD COLUMN carry fewer
 * attributes; the missing ones read as NULL.
 *
 * src/kv/row.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/tupmacs.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "kv/row.h"

void
kalam_row_encode(StringInfo buf, TupleDesc desc, const Datum *values,
				 const bool *isnull)
{
	int			bitmap_offset = kalam_row_begin(buf, (uint16) desc->natts);
	int			i;

	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped || isnull[i])
			kalam_row_set_null(buf, bitmap_offset, i);
		else if (att->attlen > 0 && att->attbyval)
		{
			union
			{
				Datum		align;
				char		bytes[sizeof(Datum)];
			}			slot;

			store_att_byval(slot.bytes, values[i], att->attlen);
			kalam_row_append_fixed(buf, slot.bytes, att->attlen);
		}
		else if (att->attlen > 0)
			kalam_row_append_fixed(buf, DatumGetPointer(values[i]),
								   att->attlen);
		else if (att->attlen == -1)
		{
			struct varlena *v = PG_DETOAST_DATUM_PACKED(values[i]);

			kalam_row_append_varlen(buf, VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v));
		}
		else
		{
			const char *s = DatumGetCString(values[i]);

			kalam_row_append_varlen(buf, s, strlen(s) + 1);
		}
	}
}

static void
payload_corrupt(const char *error)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("kalam row payload is corrupt"),
			 errdetail("%s.", error)));
}

/*
 * Step over one non-null attribute: its bytes, checked against the payload
 * and its type's length.  False with *error if the payload is malformed.
 */
static bool
next_attribute(Form_pg_attribute att, KalamRowReader *reader,
			   const char **src, uint32 *vlen, const char **error)
{
	if (att->attlen > 0)
	{
		*vlen = att->attlen;
		return kalam_row_next_fixed(reader, att->attlen, src, error);
	}
	if (!kalam_row_next_varlen(reader, src, vlen, error))
		return false;
	if (att->attlen == -1 && (Size) *vlen > MaxAllocSize - VARHDRSZ)
	{
		*error = "attribute is longer than a value can be";
		return false;
	}
	if (att->attlen == -2 && (*vlen == 0 || (*src)[*vlen - 1] != '\0'))
	{
		*error = "cstring attribute is not terminated";
		return false;
	}
	return true;
}

/*
 * Read one non-null attribute and make a Datum of it.  By-reference values
 * are copied into CurrentMemoryContext, aligned, so they outlive the
 * RocksDB buffer.
 */
static Datum
read_attribute(Form_pg_attribute att, KalamRowReader *reader)
{
	const char *src;
	const char *error;
	uint32		vlen;
	char	   *copy;

	if (!next_attribute(att, reader, &src, &vlen, &error))
		payload_corrupt(error);
	if (att->attlen > 0 && att->attbyval)
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
	if (att->attlen == -1)
	{
		struct varlena *v = palloc(vlen + VARHDRSZ);

		SET_VARSIZE(v, vlen + VARHDRSZ);
		memcpy(VARDATA(v), src, vlen);
		return PointerGetDatum(v);
	}
	copy = palloc(vlen);
	memcpy(copy, src, vlen);
	return att->attlen == -2 ? CStringGetDatum(copy) : PointerGetDatum(copy);
}

/*
 * Would kalam_row_decode read this payload by this descriptor?  False with
 * *error if not: for readers that must skip a malformed row rather than
 * stop (the notifier).
 */
bool
kalam_row_check(const char *payload, size_t len, TupleDesc desc,
				const char **error)
{
	KalamRowReader reader;
	int			i;

	if (!kalam_row_open(&reader, payload, len, error))
		return false;
	for (i = 0; i < desc->natts; i++)
	{
		const char *src;
		uint32		vlen;

		if (!kalam_row_is_null(&reader, i) &&
			!next_attribute(TupleDescAttr(desc, i), &reader, &src, &vlen, error))
			return false;
	}
	return true;
}

/*
 * Decode a payload into values/isnull.  Values of columns dropped since the
 * row was written are skipped.
 */
void
kalam_row_decode(const char *payload, size_t len, TupleDesc desc,
				 Datum *values, bool *isnull)
{
	kalam_row_decode_columns(payload, len, desc, desc->natts, values, isnull);
}

/*
 * Decode only the first ncolumns columns (a scan that needs no more); the
 * others are null.  With none, the payload is not even opened.
 */
void
kalam_row_decode_columns(const char *payload, size_t len, TupleDesc desc,
						 int ncolumns, Datum *values, bool *isnull)
{
	KalamRowReader reader;
	const char *error;
	int			i;

	for (i = ncolumns; i < desc->natts; i++)
	{
		values[i] = (Datum) 0;
		isnull[i] = true;
	}
	if (ncolumns == 0)
		return;
	if (!kalam_row_open(&reader, payload, len, &error))
		payload_corrupt(error);
	for (i = 0; i < ncolumns; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		values[i] = (Datum) 0;
		isnull[i] = true;
		if (kalam_row_is_null(&reader, i))
			continue;
		values[i] = read_attribute(att, &reader);
		isnull[i] = att->attisdropped;
	}
}
