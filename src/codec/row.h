/*-------------------------------------------------------------------------
 *
 * row.h
 *	  The byte format of a stored row, and its checked reader.
 *
 * A stored value is a fixed header written by the apply function (the
 * position of the command that wrote the row, used to detect concurrent
 * changes, and the command's timestamp, used for stream ttl), followed by
 * the row payload encoded by the backend.
 *
 * The payload is the number of attributes (2 bytes), a null bitmap of
 * (count + 7) / 8 bytes, then each non-null attribute: fixed-length types
 * as their typlen bytes, variable-length ones as a 4-byte length and the
 * bytes.  Rows arrive from other nodes (commands, snapshots) and from disk,
 * so the reader checks the bitmap and every attribute against the payload's
 * length and reports a static message instead of raising an error: it runs
 * without palloc or ereport, in the fuzz harness too (test/fuzz/).  Turning
 * attributes into Datums by a tuple descriptor is kv/row.c's.
 *
 * src/codec/row.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KALAM_CODEC_ROW_H
#define KALAM_CODEC_ROW_H

#include "datatype/timestamp.h"
#include "lib/stringinfo.h"

typedef struct KalamRowHeader
{
	uint64		version;		/* applied index of the writing command */
	TimestampTz write_time;		/* timestamp of the writing command */
} KalamRowHeader;

#define KALAM_ROW_HEADER_SIZE	sizeof(KalamRowHeader)

/* The caller has checked that value holds KALAM_ROW_HEADER_SIZE bytes. */
static inline void
kalam_row_read_header(const char *value, KalamRowHeader *header)
{
	memcpy(header, value, sizeof(KalamRowHeader));
}

/* A payload being read, attribute after attribute */
typedef struct KalamRowReader
{
	const char *bitmap;
	const char *pos;
	const char *end;
	uint16		natts;			/* attributes stored */
} KalamRowReader;

/* writing (backends) */
extern int	kalam_row_begin(StringInfo buf, uint16 natts);
extern void kalam_row_set_null(StringInfo buf, int bitmap_offset, int attno);
extern void kalam_row_append_fixed(StringInfo buf, const char *data,
								   size_t len);
extern void kalam_row_append_varlen(StringInfo buf, const char *data,
									uint32 len);

/* reading (no palloc, no ereport): false and *error on a malformed payload */
extern bool kalam_row_open(KalamRowReader *reader, const char *payload,
						   size_t len, const char **error);
extern bool kalam_row_is_null(const KalamRowReader *reader, int attno);
extern bool kalam_row_next_fixed(KalamRowReader *reader, size_t attlen,
								 const char **data, const char **error);
extern bool kalam_row_next_varlen(KalamRowReader *reader, const char **data,
								  uint32 *len, const char **error);

#endif							/* KALAM_CODEC_ROW_H */
