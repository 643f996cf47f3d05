/*-------------------------------------------------------------------------
 *
 * reader.c
 *	  The kalam reader: a process that serves backends' first reads.
 *
 * A session's first reads go to this process (kv/read_service.c says why
 * and how), which keeps one RocksDB secondary open and caught up, so that
 * a new connection's first read does not pay for opening one of its own.
 * It has no database connection; it sleeps on its latch, which a backend
 * sets when it queues a request, and serves every queued request each
 * time it wakes; while it holds a range that a backend takes in parts, it
 * wakes in time to drop it if the backend stops asking.
 *
 * src/worker/reader.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/wait_event.h"

#include "kv/read_service.h"
#include "kv/rocks.h"
#include "worker/reader.h"

/*
 * Open the secondary now, not at the first request; a failure (the kalam
 * worker has not opened storage yet) is logged, and the first request
 * tries again.
 */
static void
open_reader(void)
{
	MemoryContext oldcxt = CurrentMemoryContext;

	PG_TRY();
	{
		(void) kalam_rocks_reader();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		EmitErrorReport();
		FlushErrorState();
	}
	PG_END_TRY();
}

void
kalam_reader_main(Datum main_arg)
{
	MemoryContext scratch;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	scratch = AllocSetContextCreate(TopMemoryContext, "kalam reader",
									ALLOCSET_DEFAULT_SIZES);
	open_reader();
	kalam_read_service_attach(MyLatch);

	for (;;)
	{
		long		timeout;

		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		timeout = kalam_read_service_serve(scratch);
		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_EXIT_ON_PM_DEATH |
						 (timeout >= 0 ? WL_TIMEOUT : 0),
						 timeout, PG_WAIT_EXTENSION);
	}
}
