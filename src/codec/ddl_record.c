/*-------------------------------------------------------------------------
 *
 * ddl_record.c
 *	  Encoding and validating decoding of replicated DDL records.
 *
 * Every DDL statement on a kalam table is written into the meta group's
 * log (fdw/ddl.c) and run again by the other nodes (jobs/ddl_replay.c).
 * What arrives through the log is input from another machine: this one
 * decoding layer checks all of it before anything reads it.  A record:
 *
 *	'K' 'D'		magic
 *	version		1 byte, KALAM_DDL_RECORD_VERSION
 *	kind		1 byte, a KalamDdlKind
 *	table_id	4 bytes, big-endian, not 0
 *	role, search_path, schema, statement: each a 4-byte big-endian length
 *				n, n bytes without a NUL, then a NUL
 *
 * and nothing after the statement.  Role and statement are not empty; the
 * schema is set for a CREATE only.  Both directions are pure functions
 * (no palloc, no ereport): the decoder returns the text of what is wrong
 * and its caller reports it, so that it can be fuzzed on its own.
 *
 * src/codec/ddl_record.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "port/pg_bswap.h"

#include "codec/ddl_record.h"

#define KALAM_DDL_RECORD_HEADER	8

static size_t
string_size(const char *s)
{
	return 4 + strlen(s) + 1;
}

/* The encoded size of a record. */
size_t
kalam_ddl_record_size(const KalamDdlRecord *record)
{
	return KALAM_DDL_RECORD_HEADER + string_size(record->role) +
		string_size(record->search_path) + string_size(record->schema) +
		string_size(record->statement);
}

static char *
put_string(char *out, const char *s)
{
	uint32		len = (uint32) strlen(s);
	uint32		be = pg_hton32(len);

	memcpy(out, &be, 4);
	memcpy(out + 4, s, len + 1);
	return out + 4 + len + 1;
}

/* Encode a record into out, kalam_ddl_record_size(record) bytes. */
void
kalam_ddl_record_encode(const KalamDdlRecord *record, char *out)
{
	uint32		be = pg_hton32(record->table_id);

	out[0] = KALAM_DDL_RECORD_MAGIC_0;
	out[1] = KALAM_DDL_RECORD_MAGIC_1;
	out[2] = KALAM_DDL_RECORD_VERSION;
	out[3] = (char) record->kind;
	memcpy(out + 4, &be, 4);
	out = put_string(out + KALAM_DDL_RECORD_HEADER, record->role);
	out = put_string(out, record->search_path);
	out = put_string(out, record->schema);
	(void) put_string(out, record->statement);
}

/*
 * Read one string at *pos: its length must leave room for its bytes and
 * the NUL, which must be the first NUL.
 */
static const char *
get_string(const char *data, size_t len, size_t *pos, const char **s)
{
	uint32		be;
	size_t		n;

	if (len - *pos < 4)
		return "a string's length is cut off";
	memcpy(&be, data + *pos, 4);
	n = pg_ntoh32(be);
	*pos += 4;
	if (n >= len - *pos)
		return "a string runs past the end of the record";
	if (data[*pos + n] != '\0' || memchr(data + *pos, '\0', n) != NULL)
		return "a string is not terminated where its length says";
	*s = data + *pos;
	*pos += n + 1;
	return NULL;
}

/*
 * Decode and check a record.  Returns NULL and fills record, whose strings
 * then point into data, or returns what is wrong (a constant string).
 */
const char *
kalam_ddl_record_decode(const char *data, size_t len, KalamDdlRecord *record)
{
	size_t		pos = KALAM_DDL_RECORD_HEADER;
	uint32		be;
	const char *error;

	if (len < KALAM_DDL_RECORD_HEADER)
		return "the record is shorter than its header";
	if (data[0] != KALAM_DDL_RECORD_MAGIC_0 || data[1] != KALAM_DDL_RECORD_MAGIC_1)
		return "the record does not start with the DDL record magic";
	if (data[2] != KALAM_DDL_RECORD_VERSION)
		return "the record has an unknown format version";
	if ((unsigned char) data[3] < KALAM_DDL_KIND_FIRST ||
		(unsigned char) data[3] > KALAM_DDL_KIND_LAST)
		return "the record has an unknown statement kind";
	record->kind = (KalamDdlKind) (unsigned char) data[3];
	memcpy(&be, data + 4, 4);
	record->table_id = pg_ntoh32(be);
	if (record->table_id == 0)
		return "the record names no table id";

	if ((error = get_string(data, len, &pos, &record->role)) != NULL ||
		(error = get_string(data, len, &pos, &record->search_path)) != NULL ||
		(error = get_string(data, len, &pos, &record->schema)) != NULL ||
		(error = get_string(data, len, &pos, &record->statement)) != NULL)
		return error;
	if (pos != len)
		return "the record has bytes after its statement";
	if (record->role[0] == '\0')
		return "the record names no role";
	if (record->statement[0] == '\0')
		return "the record holds no statement";
	if ((record->kind == KALAM_DDL_CREATE) != (record->schema[0] != '\0'))
		return "the record's schema does not fit its kind";
	return NULL;
}

/* The kind as kalam.replay_state shows it. */
const char *
kalam_ddl_kind_name(KalamDdlKind kind)
{
	switch (kind)
	{
		case KALAM_DDL_CREATE:
			return "create";
		case KALAM_DDL_ALTER:
			return "alter";
		case KALAM_DDL_RENAME:
			return "rename";
		case KALAM_DDL_DROP:
			return "drop";
		case KALAM_DDL_GRANT:
			return "grant";
		case KALAM_DDL_SET_SCHEMA:
			return "set schema";
	}
	return "unknown";
}
