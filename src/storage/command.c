/*-------------------------------------------------------------------------
 *
 * command.c
 *	  Writing and reading the binary command record (see command.h).
 *
 * src/storage/command.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "storage/command.h"

void
kalam_command_begin(StringInfo buf, TimestampTz timestamp)
{
	KalamCommandHeader header;

	memset(&header, 0, sizeof(header));
	header.magic = KALAM_COMMAND_MAGIC;
	header.version = KALAM_COMMAND_VERSION;
	header.timestamp = timestamp;
	resetStringInfo(buf);
	appendBinaryStringInfo(buf, (char *) &header, sizeof(header));
}

void
kalam_command_add(StringInfo buf, KalamOpKind kind, uint64 expected_version,
				  const char *key, size_t keylen,
				  const char *value, size_t vallen)
{
	KalamCommandHeader *header = (KalamCommandHeader *) buf->data;
	KalamOpHeader op;

	memset(&op, 0, sizeof(op));
	op.kind = kind;
	op.keylen = keylen;
	op.vallen = vallen;
	op.expected_version = expected_version;
	appendBinaryStringInfo(buf, (char *) &op, sizeof(op));
	appendBinaryStringInfo(buf, key, keylen);
	if (vallen > 0)
		appendBinaryStringInfo(buf, value, vallen);

	/* the buffer may have moved */
	header = (KalamCommandHeader *) buf->data;
	header->nops++;
}

/* The meta group position a node must have applied before this command. */
void
kalam_command_require_meta_index(StringInfo buf, uint64 meta_index)
{
	((KalamCommandHeader *) buf->data)->required_meta_index = meta_index;
}

/* Check the header; false if this is not a command this build can read. */
bool
kalam_command_open(KalamCommandReader *reader, const char *buf, size_t len)
{
	if (len < sizeof(KalamCommandHeader))
		return false;
	memcpy(&reader->header, buf, sizeof(KalamCommandHeader));
	if (reader->header.magic != KALAM_COMMAND_MAGIC ||
		reader->header.version != KALAM_COMMAND_VERSION)
		return false;
	reader->pos = buf + sizeof(KalamCommandHeader);
	reader->end = buf + len;
	reader->remaining = reader->header.nops;
	return true;
}

/*
 * Decode the next operation.  Returns false at the end, or with *corrupt
 * set when the buffer is shorter than its header claims.
 */
bool
kalam_command_next(KalamCommandReader *reader, KalamOp *op, bool *corrupt)
{
	KalamOpHeader header;

	*corrupt = false;
	if (reader->remaining == 0)
		return false;
	if ((size_t) (reader->end - reader->pos) < sizeof(KalamOpHeader))
	{
		*corrupt = true;
		return false;
	}
	memcpy(&header, reader->pos, sizeof(header));
	reader->pos += sizeof(header);
	if ((size_t) (reader->end - reader->pos) < (size_t) header.keylen + header.vallen ||
		header.kind < KALAM_OP_INSERT || header.kind > KALAM_OP_PUT)
	{
		*corrupt = true;
		return false;
	}
	op->kind = (KalamOpKind) header.kind;
	op->expected_version = header.expected_version;
	op->key = reader->pos;
	op->keylen = header.keylen;
	op->value = reader->pos + header.keylen;
	op->vallen = header.vallen;
	reader->pos += header.keylen + header.vallen;
	reader->remaining--;
	return true;
}

/* Does the command hold an operation that reads a whole range? */
bool
kalam_command_reads_ranges(const char *command, size_t length)
{
	KalamCommandReader reader;
	KalamOp		op;
	bool		corrupt;

	if (!kalam_command_open(&reader, command, length))
		return false;
	while (kalam_command_next(&reader, &op, &corrupt))
		if (op.kind == KALAM_OP_DELETE_PREFIX || op.kind == KALAM_OP_EXPIRE)
			return true;
	return false;
}
