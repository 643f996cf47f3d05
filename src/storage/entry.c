/*-------------------------------------------------------------------------
 *
 * entry.c
 *	  Writing and reading Raft log entries (see entry.h).
 *
 * src/storage/entry.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "storage/entry.h"

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

/* Check the header; false if this is not an entry this build can read. */
bool
kalam_entry_open(KalamEntryReader *reader, const char *buf, size_t len,
				 uint32 *count)
{
	KalamEntryHeader header;

	if (len < sizeof(header))
		return false;
	memcpy(&header, buf, sizeof(header));
	if (header.magic != KALAM_ENTRY_MAGIC || header.version != KALAM_ENTRY_VERSION)
		return false;
	reader->pos = buf + sizeof(header);
	reader->end = buf + len;
	reader->remaining = header.count;
	*count = header.count;
	return true;
}

/*
 * The next command of the entry; false at the end, or if the entry is
 * shorter than it claims (the caller compares with the count).
 */
bool
kalam_entry_next(KalamEntryReader *reader, const char **command,
				 size_t *length)
{
	KalamEntryItem item;

	if (reader->remaining == 0 ||
		(size_t) (reader->end - reader->pos) < sizeof(item))
		return false;
	memcpy(&item, reader->pos, sizeof(item));
	if ((size_t) (reader->end - reader->pos) - sizeof(item) < TYPEALIGN(8, item.length))
		return false;
	*command = reader->pos + sizeof(item);
	*length = item.length;
	reader->pos += sizeof(item) + TYPEALIGN(8, item.length);
	reader->remaining--;
	return true;
}
