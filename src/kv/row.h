/*-------------------------------------------------------------------------
 *
 * row.h
 *	  Rows as Datums: encoding by a tuple descriptor into the payload
 *	  format of codec/row.h, and decoding back.
 *
 * src/kv/row.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KALAM_ROW_H
#define KALAM_ROW_H

#include "access/tupdesc.h"

#include "codec/row.h"

extern void kalam_row_encode(StringInfo buf, TupleDesc desc,
							 const Datum *values, const bool *isnull);
extern bool kalam_row_check(const char *payload, size_t len, TupleDesc desc,
							const char **error);
extern void kalam_row_decode(const char *payload, size_t len, TupleDesc desc,
							 Datum *values, bool *isnull);
extern void kalam_row_decode_columns(const char *payload, size_t len,
									 TupleDesc desc, int ncolumns,
									 Datum *values, bool *isnull);

#endif							/* KALAM_ROW_H */
