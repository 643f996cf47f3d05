/*-------------------------------------------------------------------------
 *
 * row.h
 *	  Encoding of a row as a RocksDB value.
 *
 * A stored value is a fixed header written by the apply function (the
 * position of the command that wrote the row, used to detect concurrent
 * changes, and the command's timestamp, used for stream ttl), followed by
 * the row payload encoded by the backend.
 *
 * src/storage/row.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KALAM_ROW_H
#define KALAM_ROW_H

#include "access/tupdesc.h"
#include "datatype/timestamp.h"
#include "lib/stringinfo.h"

typedef struct KalamRowHeader
{
	uint64		version;		/* applied index of the writing command */
	TimestampTz write_time;		/* timestamp of the writing command */
} KalamRowHeader;

#define KALAM_ROW_HEADER_SIZE	sizeof(KalamRowHeader)

static inline void
kalam_row_read_header(const char *value, KalamRowHeader *header)
{
	memcpy(header, value, sizeof(KalamRowHeader));
}

extern void kalam_row_encode(StringInfo buf, TupleDesc desc,
							 const Datum *values, const bool *isnull);
extern void kalam_row_decode(const char *payload, size_t len, TupleDesc desc,
							 Datum *values, bool *isnull);

#endif							/* KALAM_ROW_H */
