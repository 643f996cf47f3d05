/*-------------------------------------------------------------------------
 *
 * meta_watermark.h
 *	  The meta group's log position of the last DDL of each kalam table.
 *
 * src/cluster/meta_watermark.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KALAM_META_WATERMARK_H
#define KALAM_META_WATERMARK_H

#include <rocksdb/c.h>

extern Size kalam_watermark_shmem_size(void);
extern void kalam_watermark_shmem_init(void);

/* worker side */
extern void kalam_watermark_prepare(void);
extern bool kalam_watermark_load(rocksdb_t *db, char *errbuf, size_t errlen);
extern void kalam_watermark_note_command(const char *command, size_t length,
										 uint64 meta_index);

/* backend side */
extern uint64 kalam_watermark_of(uint32 table_id);

#endif							/* KALAM_META_WATERMARK_H */
