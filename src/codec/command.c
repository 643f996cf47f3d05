/*-------------------------------------------------------------------------
 *
 * command.c
 *	  Writing and reading the binary command record (see command.h).
 *
 * src/codec/command.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "port/pg_bswap.h"

#include "codec/command.h"
#include "codec/key.h"
#include "codec/txn.h"

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

/* The prefix of every part of the group (KALAM_PARTS_PREFIX_LEN bytes) */
void
kalam_command_parts_prefix(char *prefix, int group)
{
	uint16		group_be = pg_hton16((uint16) group);

	memcpy(prefix, &group_be, KALAM_GROUP_PREFIX_LEN);
	memset(prefix + KALAM_GROUP_PREFIX_LEN, 0, 4);
	memcpy(prefix + KALAM_TABLE_PREFIX_LEN, KALAM_KEY_PART_TAG,
		   strlen(KALAM_KEY_PART_TAG));
}

/*
 * The key of part seq of a split (KALAM_PART_KEY_LEN bytes); its first
 * KALAM_SPLIT_PREFIX_LEN bytes are the split's prefix.
 */
void
kalam_command_part_key(char *key, int group, const char *split_id, uint32 seq)
{
	uint32		seq_be = pg_hton32(seq);

	kalam_command_parts_prefix(key, group);
	memcpy(key + KALAM_PARTS_PREFIX_LEN, split_id, KALAM_SPLIT_ID_LEN);
	memcpy(key + KALAM_SPLIT_PREFIX_LEN, &seq_be, sizeof(seq_be));
}

/*
 * Add the operation that applies (or, with KALAM_SPLIT_ABORT, drops) the
 * nparts parts of a split.  It must be the command's only operation.
 */
void
kalam_command_add_split(StringInfo buf, int group, const char *split_id,
						uint32 nparts, uint32 flags)
{
	char		key[KALAM_PART_KEY_LEN];
	KalamSplitHeader header;

	kalam_command_part_key(key, group, split_id, 0);
	memset(&header, 0, sizeof(header));
	header.nparts = nparts;
	header.flags = flags;
	kalam_command_add(buf, KALAM_OP_SPLIT, 0, key, KALAM_SPLIT_PREFIX_LEN,
					  (const char *) &header, sizeof(header));
}

/*
 * Add an expiry of the rows in [start, end) written before cutoff, at most
 * max_rows of them examined (see KalamExpireHeader); an empty end is the
 * end of start's table.  It must be the command's only operation.
 */
void
kalam_command_add_expire(StringInfo buf, const char *start, size_t startlen,
						 const char *end, size_t endlen,
						 TimestampTz cutoff, uint32 max_rows)
{
	KalamExpireHeader expire;
	StringInfoData value;

	memset(&expire, 0, sizeof(expire));
	expire.cutoff = cutoff;
	expire.max_rows = max_rows;
	initStringInfo(&value);
	appendBinaryStringInfo(&value, (char *) &expire, sizeof(expire));
	appendBinaryStringInfo(&value, end, endlen);
	kalam_command_add(buf, KALAM_OP_EXPIRE, 0, start, startlen,
					  value.data, value.len);
	pfree(value.data);
}

/*
 * Check the header.  False, with *error set, if this is not a command this
 * build can read, or if its operation count cannot fit in its bytes (each
 * operation takes at least its header): a count is refused before anyone
 * sizes anything by it.
 */
bool
kalam_command_open(KalamCommandReader *reader, const char *buf, size_t len,
				   const char **error)
{
	size_t		body;

	*error = NULL;
	if (buf == NULL || len < sizeof(KalamCommandHeader))
	{
		*error = "command is shorter than its header";
		return false;
	}
	memcpy(&reader->header, buf, sizeof(KalamCommandHeader));
	if (reader->header.magic != KALAM_COMMAND_MAGIC)
	{
		*error = "not a kalam command";
		return false;
	}
	if (reader->header.version != KALAM_COMMAND_VERSION)
	{
		*error = "unknown command format version";
		return false;
	}
	if (reader->header.reserved != 0)
	{
		*error = "reserved bytes of the command header are set";
		return false;
	}
	body = len - sizeof(KalamCommandHeader);
	if (reader->header.nops > body / sizeof(KalamOpHeader))
	{
		*error = "operation count exceeds what the command holds";
		return false;
	}
	if (reader->header.required_meta_index > KALAM_COMMAND_MAX_META_INDEX)
	{
		*error = "required meta index is beyond any meta group position";
		return false;
	}
	reader->pos = buf + sizeof(KalamCommandHeader);
	reader->end = buf + len;
	reader->remaining = reader->header.nops;
	return true;
}

/*
 * What is wrong with an expiry whose operation header and key (in the
 * command's bounds) are these; NULL if nothing.  Alone in its command;
 * its range names a table, ends in the same table after it starts, and
 * its row limit is within bounds.
 */
static const char *
expire_error(const KalamCommandReader *reader, const KalamOpHeader *header,
			 const char *key)
{
	KalamExpireHeader expire;
	const char *end;
	size_t		endlen;

	if (reader->header.nops != 1)
		return "expire operation shares its command";
	if (header->keylen < KALAM_TABLE_PREFIX_LEN)
		return "expire range does not name a table";
	if (header->vallen < sizeof(expire))
		return "expire operation without its cut-off and row limit";
	memcpy(&expire, key + header->keylen, sizeof(expire));
	if (expire.reserved != 0)
		return "reserved bytes of an expire operation are set";
	if (expire.max_rows == 0 || expire.max_rows > KALAM_EXPIRE_MAX_ROWS)
		return "expire operation with a row limit out of range";
	end = key + header->keylen + sizeof(expire);
	endlen = header->vallen - sizeof(expire);
	if (endlen == 0)
		return NULL;
	if (endlen < KALAM_TABLE_PREFIX_LEN ||
		memcmp(end, key, KALAM_TABLE_PREFIX_LEN) != 0)
		return "expire range ends outside its table";
	if (kalam_key_compare(key, header->keylen, end, endlen) >= 0)
		return "expire range ends before it starts";
	return NULL;
}

/*
 * What is wrong with a part or split operation whose header and value (in
 * the command's bounds) are these; NULL if nothing.  Alone in its command,
 * with a key of its size (key.c checks the rest of it), a part not empty,
 * a split's header in range.
 */
static const char *
split_error(const KalamCommandReader *reader, const KalamOpHeader *header,
			const char *value)
{
	KalamSplitHeader split;

	if (reader->header.nops != 1)
		return "part or split operation shares its command";
	if (header->kind == KALAM_OP_PART)
	{
		if (header->keylen != KALAM_PART_KEY_LEN)
			return "part operation with a key of the wrong size";
		if (header->vallen == 0)
			return "empty part";
		return NULL;
	}
	if (header->keylen != KALAM_SPLIT_PREFIX_LEN)
		return "split operation with a key of the wrong size";
	if (header->vallen != sizeof(split))
		return "split operation with a value of the wrong size";
	memcpy(&split, value, sizeof(split));
	if (split.nparts == 0 || split.nparts > KALAM_SPLIT_MAX_PARTS)
		return "split operation with a part count out of range";
	if ((split.flags & ~(KALAM_SPLIT_BULK | KALAM_SPLIT_ABORT)) != 0)
		return "split operation with unknown flags";
	return NULL;
}

/*
 * Decode the next operation.  Returns false at the end (*error NULL), or
 * with *error set when the operation is malformed or bytes follow the last
 * one.
 */
bool
kalam_command_next(KalamCommandReader *reader, KalamOp *op, const char **error)
{
	KalamOpHeader header;
	size_t		avail = (size_t) (reader->end - reader->pos);

	*error = NULL;
	if (reader->remaining == 0)
	{
		if (avail != 0)
			*error = "bytes follow the last operation of the command";
		return false;
	}
	if (avail < sizeof(KalamOpHeader))
	{
		*error = "command is truncated";
		return false;
	}
	memcpy(&header, reader->pos, sizeof(header));
	avail -= sizeof(header);
	if (header.kind < KALAM_OP_INSERT || header.kind > KALAM_OP_LAST)
	{
		*error = "unknown operation kind";
		return false;
	}
	if (header.reserved[0] != 0 || header.reserved[1] != 0 ||
		header.reserved[2] != 0)
	{
		*error = "reserved bytes of an operation are set";
		return false;
	}
	if ((size_t) header.keylen > avail ||
		(size_t) header.vallen > avail - header.keylen)
	{
		*error = "operation is longer than the command";
		return false;
	}
	if (header.kind == KALAM_OP_DELETE_PREFIX && header.vallen != 0)
	{
		*error = "prefix deletion with a value";
		return false;
	}
	if (header.kind == KALAM_OP_EXPIRE &&
		(*error = expire_error(reader, &header,
							   reader->pos + sizeof(header))) != NULL)
		return false;
	if ((header.kind == KALAM_OP_PART || header.kind == KALAM_OP_SPLIT) &&
		(*error = split_error(reader, &header,
							  reader->pos + sizeof(header) + header.keylen)) != NULL)
		return false;
	if ((header.kind == KALAM_OP_TXN_PREPARE && header.vallen != sizeof(uint16)) ||
		(header.kind == KALAM_OP_TXN_COMMIT &&
		 (header.vallen == 0 || header.vallen % sizeof(uint16) != 0)) ||
		((header.kind == KALAM_OP_TXN_DECIDE ||
		  header.kind == KALAM_OP_TXN_FORGET) && header.vallen != 0) ||
		(header.kind == KALAM_OP_TXN_RESOLVE &&
		 (header.vallen != 1 ||
		  ((uint8) reader->pos[sizeof(header) + header.keylen] &
		   ~(KALAM_TXN_RESOLVE_COMMIT | KALAM_TXN_RESOLVE_RANGES)) != 0)))
	{
		*error = "transaction operation with a value of the wrong size";
		return false;
	}
	op->kind = (KalamOpKind) header.kind;
	op->expected_version = header.expected_version;
	op->key = reader->pos + sizeof(header);
	op->keylen = header.keylen;
	op->value = op->key + header.keylen;
	op->vallen = header.vallen;
	reader->pos = op->value + header.vallen;
	reader->remaining--;
	return true;
}

/* Decode the whole command; false, with *error, if any of it is malformed. */
bool
kalam_command_validate(const char *buf, size_t len, const char **error)
{
	KalamCommandReader reader;
	KalamOp		op;

	if (!kalam_command_open(&reader, buf, len, error))
		return false;
	while (kalam_command_next(&reader, &op, error))
		;
	return *error == NULL;
}

/*
 * The cut-off, row limit and end of a decoded expiry; *endlen 0 for the
 * end of its table.
 */
void
kalam_command_expire_range(const KalamOp *op, KalamExpireHeader *expire,
						   const char **end, size_t *endlen)
{
	memcpy(expire, op->value, sizeof(KalamExpireHeader));
	*end = op->value + sizeof(KalamExpireHeader);
	*endlen = op->vallen - sizeof(KalamExpireHeader);
}

/*
 * Does the command hold an operation that reads a whole range, or resolve
 * a transaction's intent whose writes delete one?  It reads the database
 * alone, so it goes alone in its log entry (kalam_command_needs_own_entry).
 */
bool
kalam_command_reads_ranges(const char *command, size_t length)
{
	KalamCommandReader reader;
	KalamOp		op;
	const char *error;

	if (!kalam_command_open(&reader, command, length, &error))
		return false;
	while (kalam_command_next(&reader, &op, &error))
		if (op.kind == KALAM_OP_DELETE_PREFIX || op.kind == KALAM_OP_EXPIRE ||
			(op.kind == KALAM_OP_TXN_RESOLVE &&
			 (op.value[0] & KALAM_TXN_RESOLVE_RANGES) != 0))
			return true;
	return false;
}

/*
 * Is the command a bulk insert (KALAM_BULK_MIN_OPS inserts or more, keys
 * strictly increasing)?  Backends sort a command's writes by key, so a
 * large INSERT is one.
 */
bool
kalam_command_is_bulk_insert(const char *command, size_t length)
{
	KalamCommandReader reader;
	KalamOp		op;
	const char *error;
	const char *prev = NULL;
	size_t		prevlen = 0;

	if (!kalam_command_open(&reader, command, length, &error) ||
		reader.header.nops < KALAM_BULK_MIN_OPS)
		return false;
	while (kalam_command_next(&reader, &op, &error))
	{
		if (op.kind != KALAM_OP_INSERT && op.kind != KALAM_OP_INSERT_IF_ABSENT)
			return false;
		if (prev != NULL &&
			kalam_key_compare(prev, prevlen, op.key, op.keylen) >= 0)
			return false;
		prev = op.key;
		prevlen = op.keylen;
	}
	return error == NULL;
}

/* The kind of a command's only operation; 0 if it has not one exactly */
static int
sole_op_kind(const char *command, size_t length)
{
	KalamCommandReader reader;
	KalamOp		op;
	const char *error;

	if (!kalam_command_open(&reader, command, length, &error) ||
		reader.header.nops != 1 ||
		!kalam_command_next(&reader, &op, &error))
		return 0;
	return op.kind;
}

/* Is the command nothing but prefix deletions (TRUNCATE, DROP)? */
bool
kalam_command_only_deletes_ranges(const char *command, size_t length)
{
	KalamCommandReader reader;
	KalamOp		op;
	const char *error;

	if (!kalam_command_open(&reader, command, length, &error) ||
		reader.header.nops == 0)
		return false;
	while (kalam_command_next(&reader, &op, &error))
		if (op.kind != KALAM_OP_DELETE_PREFIX)
			return false;
	return error == NULL;
}

/*
 * Must the command be alone in its log entry?  Apply writes what is staged
 * before one that reads the database directly (a range, a resolution whose
 * intent deletes one) or that it writes in a batch of its own (a bulk
 * insert, a split); the position written with the staged batch is then
 * that of the entries before it.  A split's part goes alone too, so that
 * its entry is no larger than kalam.max_entry_size.  cluster/node.c proposes
 * such a command alone.
 */
bool
kalam_command_needs_own_entry(const char *command, size_t length)
{
	int			sole = sole_op_kind(command, length);

	return sole == KALAM_OP_PART || sole == KALAM_OP_SPLIT ||
		kalam_command_reads_ranges(command, length) ||
		kalam_command_is_bulk_insert(command, length);
}

/*
 * Is the command a split's (its parts applied, or dropped)?  Apply runs
 * it off the worker's loop (cluster/fsm.c), in a batch of its own.
 */
bool
kalam_command_is_split(const char *command, size_t length)
{
	return sole_op_kind(command, length) == KALAM_OP_SPLIT;
}

/*
 * Where the command stands in a transaction across groups (codec/txn.h):
 * txn_op gets its first operation if that is a transaction operation,
 * else txn_op->kind is 0.  A transaction operation must come first and
 * name an intent key (PREPARE, RESOLVE) or a record key (the others);
 * PREPARE and COMMIT are followed by row writes and prefix deletions only
 * (PREPARE by at least one), DECIDE, RESOLVE and FORGET by nothing.  False
 * with *error if the command breaks a rule or does not decode.
 */
bool
kalam_command_txn(const char *buf, size_t len, KalamOp *txn_op,
				  const char **error)
{
	KalamCommandReader reader;
	KalamOp		op;
	uint32		n = 0;

	memset(txn_op, 0, sizeof(KalamOp));
	if (!kalam_command_open(&reader, buf, len, error))
		return false;
	while (kalam_command_next(&reader, &op, error))
	{
		if (n++ == 0)
		{
			if (!KALAM_OP_IS_TXN(op.kind))
				continue;
			*txn_op = op;
			if (!kalam_txn_key_is(op.key, op.keylen,
								  op.kind == KALAM_OP_TXN_PREPARE ||
								  op.kind == KALAM_OP_TXN_RESOLVE))
			{
				*error = "transaction operation on a key of the wrong kind";
				return false;
			}
			continue;
		}
		if (KALAM_OP_IS_TXN(op.kind))
		{
			*error = "transaction operation after the first operation";
			return false;
		}
		if (txn_op->kind == KALAM_OP_TXN_DECIDE ||
			txn_op->kind == KALAM_OP_TXN_RESOLVE ||
			txn_op->kind == KALAM_OP_TXN_FORGET)
		{
			*error = "operations follow a transaction's decision or resolution";
			return false;
		}
		if (txn_op->kind != 0 && op.kind == KALAM_OP_PUT)
		{
			*error = "unconditional write inside a transaction across groups";
			return false;
		}
	}
	if (*error != NULL)
		return false;
	if (txn_op->kind == KALAM_OP_TXN_PREPARE && n < 2)
	{
		*error = "prepare without writes";
		return false;
	}
	return true;
}
