/*-------------------------------------------------------------------------
 *
 * reader.h
 *	  The kalam reader: a process that serves backends' first reads.
 *
 * src/worker/reader.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KALAM_READER_H
#define KALAM_READER_H

extern PGDLLEXPORT void kalam_reader_main(Datum main_arg);

#endif							/* KALAM_READER_H */
