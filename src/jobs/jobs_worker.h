/*-------------------------------------------------------------------------
 *
 * jobs_worker.h
 *	  The kalam jobs worker: background work that needs the catalog.
 *
 * src/jobs/jobs_worker.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KALAM_JOBS_WORKER_H
#define KALAM_JOBS_WORKER_H

#include "datatype/timestamp.h"

extern void kalam_replay_ddl(void);
extern TimestampTz kalam_replay_retry_at(void);
extern PGDLLEXPORT void kalam_jobs_worker_main(Datum main_arg);

#endif							/* KALAM_JOBS_WORKER_H */
