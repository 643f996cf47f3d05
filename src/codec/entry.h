/*-------------------------------------------------------------------------
 *
 * entry.h
 *	  A Raft log entry: one or more commands of one group.
 *
 * The kalam worker puts the commands that reach a group's leader in the
 * same turn of its loop into one entry, so that one log write and one
 * message to each follower carry them all.  They are applied in order at
 * the entry's log position, each with its own outcome.
 *
 * Layout (native byte order): magic 'E', format version, 2 reserved bytes,
 * command count (4), then each command as its length (4), 4 reserved
 * bytes and its bytes, padded with zeros to a multiple of 8.  The whole
 * entry is a multiple of 8 bytes: libraft 0.15 drops entries of other
 * lengths from an open segment when it reloads it after a crash.  Nothing
 * follows the last command.
 *
 * The reader checks the count (at most KALAM_ENTRY_MAX_COMMANDS, and no
 * more than the bytes can hold) before anyone sizes anything by it, and
 * every length against the buffer; it needs neither palloc nor ereport.
 *
 * src/codec/entry.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KALAM_ENTRY_H
#define KALAM_ENTRY_H

#define KALAM_ENTRY_MAGIC		'E'
#define KALAM_ENTRY_VERSION		1

/* At most this many commands in one entry (the proposer's limit too) */
#define KALAM_ENTRY_MAX_COMMANDS	64

typedef struct KalamEntryReader
{
	const char *pos;
	const char *end;
	uint32		remaining;
} KalamEntryReader;

/* writing (the kalam worker, into a buffer it allocates) */
extern size_t kalam_entry_size(const size_t *lengths, int count);
extern void kalam_entry_write(char *dest, const char *const *commands,
							  const size_t *lengths, int count);

/* reading (apply; no palloc, no ereport) */
extern bool kalam_entry_open(KalamEntryReader *reader, const char *buf,
							 size_t len, uint32 *count, const char **error);
extern bool kalam_entry_next(KalamEntryReader *reader, const char **command,
							 size_t *length, const char **error);

#endif							/* KALAM_ENTRY_H */
