/*-------------------------------------------------------------------------
 *
 * entry.c
 *	  Writing and reading Raft log entries (see entry.h).
 *
 * src/codec/entry.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "codec/entry.h"

typedef struct KalamEntryHeader
{
	char		magic;
	uint8		version;
	uint16		reserved;
	uint32		count;
} KalamEntryHeader;

typedef struct KalamEntryItem
{
	uint32		length;
	uint32		reserved;
} KalamEntryItem;

size_t
kalam_entry_size(const size_t *lengths, int count)
{
	size_t		size = sizeof(KalamEntryHeader);
	int			i;

	for (i = 0; i < count; i++)
		size += sizeof(KalamEntryItem) + TYPEALIGN(8, lengths[i]);
	return size;
}

/* Write the entry into dest, which holds kalam_entry_size() bytes. */
void
kalam_entry_write(char *dest, const char *const *commands,
				  const size_t *lengths, int count)
{
	KalamEntryHeader header;
	char	   *pos = dest + sizeof(header);
	int			i;

	memset(&header, 0, sizeof(header));
	header.magic = KALAM_ENTRY_MAGIC;
	header.version = KALAM_ENTRY_VERSION;
	header.count = count;
	memcpy(dest, &header, sizeof(header));
	for (i = 0; i < count; i++)
	{
		KalamEntryItem item;
		size_t		padded = TYPEALIGN(8, lengths[i]);

		item.length = lengths[i];
		item.reserved = 0;
		memcpy(pos, &item, sizeof(item));
		pos += sizeof(item);
		memcpy(pos, commands[i], lengths[i]);
		memset(pos + lengths[i], 0, padded - lengths[i]);
		pos += padded;
	}
}

/*
 * Check the header.  False, with *error set, if this is not an entry this
 * build can read or its command count is beyond the limit or beyond what
 * its bytes can hold.
 */
bool
kalam_entry_open(KalamEntryReader *reader, const char *buf, size_t len,
				 uint32 *count, const char **error)
{
	KalamEntryHeader header;

	*error = NULL;
	if (buf == NULL || len < sizeof(header))
	{
		*error = "log entry is shorter than its header";
		return false;
	}
	memcpy(&header, buf, sizeof(header));
	if (header.magic != KALAM_ENTRY_MAGIC)
	{
		*error = "not a kalam log entry";
		return false;
	}
	if (header.version != KALAM_ENTRY_VERSION)
	{
		*error = "unknown log entry format version";
		return false;
	}
	if (header.reserved != 0)
	{
		*error = "reserved bytes of the log entry header are set";
		return false;
	}
	if (header.count > KALAM_ENTRY_MAX_COMMANDS ||
		header.count > (len - sizeof(header)) / sizeof(KalamEntryItem))
	{
		*error = "command count of the log entry is beyond what it can hold";
		return false;
	}
	reader->pos = buf + sizeof(header);
	reader->end = buf + len;
	reader->remaining = header.count;
	*count = header.count;
	return true;
}

/*
 * The next command of the entry.  False at the end (*error NULL), or with
 * *error set if the entry is shorter than it claims, its padding or
 * reserved bytes are set, or bytes follow its last command.
 */
bool
kalam_entry_next(KalamEntryReader *reader, const char **command,
				 size_t *length, const char **error)
{
	KalamEntryItem item;
	size_t		avail = (size_t) (reader->end - reader->pos);
	size_t		padded;
	size_t		i;

	*error = NULL;
	if (reader->remaining == 0)
	{
		if (avail != 0)
			*error = "bytes follow the last command of the log entry";
		return false;
	}
	if (avail < sizeof(item))
	{
		*error = "log entry is truncated";
		return false;
	}
	memcpy(&item, reader->pos, sizeof(item));
	avail -= sizeof(item);
	padded = TYPEALIGN(8, (size_t) item.length);
	if (item.reserved != 0)
	{
		*error = "reserved bytes of a log entry item are set";
		return false;
	}
	if (padded > avail)
	{
		*error = "command is longer than the log entry";
		return false;
	}
	for (i = item.length; i < padded; i++)
		if (reader->pos[sizeof(item) + i] != 0)
		{
			*error = "padding of a command in the log entry is not zero";
			return false;
		}
	*command = reader->pos + sizeof(item);
	*length = item.length;
	reader->pos += sizeof(item) + padded;
	reader->remaining--;
	return true;
}
