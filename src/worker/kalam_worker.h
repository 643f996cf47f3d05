/*-------------------------------------------------------------------------
 *
 * kalam_worker.h
 *	  The kalam worker: owner of the RocksDB primary and of the apply loop.
 *
 * src/worker/kalam_worker.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KALAM_WORKER_H
#define KALAM_WORKER_H

extern PGDLLEXPORT void kalam_worker_main(Datum main_arg);

#endif							/* KALAM_WORKER_H */
