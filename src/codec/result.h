/*-------------------------------------------------------------------------
 *
 * result.h
 *	  The outcome of applying one command: decided by the apply function,
 *	  carried to the waiting backend through shared memory and, for a
 *	  forwarded command, from the leader's worker over the network.
 *
 * A header of its own so that storage (which decides it), the worker and
 * its channel (which carry it) and the frame codec (which decodes it from
 * a peer) share it without including one another.
 *
 * src/codec/result.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KALAM_RESULT_H
#define KALAM_RESULT_H

typedef enum KalamApplyStatus
{
	KALAM_APPLY_OK = 0,
	KALAM_APPLY_DUPLICATE_KEY,	/* an insert met an existing key */
	KALAM_APPLY_ROW_CHANGED,	/* a row changed since it was read */
	KALAM_APPLY_BAD_COMMAND,	/* the command could not be decoded */
	KALAM_APPLY_STORAGE_ERROR,	/* RocksDB failed; nothing was written */
	KALAM_APPLY_LOST,			/* the worker lost the command */
	KALAM_APPLY_NOT_LEADER,		/* this node does not lead the group */
	KALAM_APPLY_OUTCOME_UNKNOWN,	/* leadership was lost while it waited */
	KALAM_APPLY_LOCKED,			/* a key is held by a prepared transaction */
	KALAM_APPLY_TXN_ABORTED		/* the transaction's record says aborted */
} KalamApplyStatus;

#define KALAM_APPLY_STATUS_LAST	KALAM_APPLY_TXN_ABORTED

typedef struct KalamApplyResult
{
	KalamApplyStatus status;
	uint32		op_index;		/* the operation that decided a failure */
	uint64		applied_index;	/* position of the command when applied */
	uint64		rows_written;
	char		message[256];	/* error text, if any */
} KalamApplyResult;

#endif							/* KALAM_RESULT_H */
