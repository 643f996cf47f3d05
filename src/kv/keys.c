/*-------------------------------------------------------------------------
 *
 * keys.c
 *	  Order-preserving encoding of RocksDB keys.
 *
 * Integers of every width are encoded as 8 bytes, big endian with the sign
 * bit flipped, so that a condition comparing an int4 column with an int8
 * value encodes the same bytes as the stored key.  Text and bytea are
 * escaped (0x00 becomes 0x00 0xFF) and terminated by 0x00 0x01, which keeps
 * memcmp order and makes every encoded value self-delimiting.  Byte order is
 * the C collation's order; for other collations only equality is pushed
 * down (see kalam_key_byte_order_is_sql_order).
 *
 * src/kv/keys.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_collation.h"
#include "port/pg_bswap.h"
#include "catalog/pg_type.h"
#include "utils/pg_locale.h"
#include "utils/uuid.h"

#include "codec/group.h"
#include "kv/keys.h"

static void
append_uint64(StringInfo buf, uint64 v)
{
	uint64		be = pg_hton64(v);

	appendBinaryStringInfo(buf, (char *) &be, sizeof(be));
}

static void
append_uint32(StringInfo buf, uint32 v)
{
	uint32		be = pg_hton32(v);

	appendBinaryStringInfo(buf, (char *) &be, sizeof(be));
}

/* escaped, terminated bytes: see the file header */
static void
append_bytes(StringInfo buf, const char *data, int len)
{
	int			i;

	for (i = 0; i < len; i++)
	{
		appendStringInfoCharMacro(buf, data[i]);
		if (data[i] == '\0')
			appendStringInfoCharMacro(buf, (char) 0xFF);
	}
	appendStringInfoCharMacro(buf, '\0');
	appendStringInfoCharMacro(buf, (char) 0x01);
}

void
kalam_key_append_group(StringInfo buf, int group)
{
	uint16		be = pg_hton16((uint16) group);

	appendBinaryStringInfo(buf, (char *) &be, sizeof(be));
}

void
kalam_key_append_table(StringInfo buf, uint32 table_id)
{
	append_uint32(buf, table_id);
}

/*
 * Where the meta group keeps the DDL statements it replicates (see
 * fdw/ddl.c): rows of its table id 0 under "ddl/".
 */
void
kalam_key_ddl_prefix(StringInfo buf)
{
	kalam_key_append_group(buf, KALAM_GROUP_META);
	append_uint32(buf, 0);
	appendStringInfoString(buf, KALAM_KEY_DDL_TAG);
}

/*
 * Where the meta group keeps each node's client address (see cluster/node.c):
 * rows of its table id 0 under "node/", then the node id.
 */
void
kalam_key_node_prefix(StringInfo buf)
{
	kalam_key_append_group(buf, KALAM_GROUP_META);
	append_uint32(buf, 0);
	appendStringInfoString(buf, KALAM_KEY_NODE_TAG);
}

/* Where a group stores its applied index: table id 0 of the group. */
void
kalam_key_applied_index(StringInfo buf, int group)
{
	kalam_key_append_group(buf, group);
	append_uint32(buf, 0);
	appendStringInfoString(buf, KALAM_KEY_APPLIED_INDEX);
}

void
kalam_key_append_user(StringInfo buf, const char *user)
{
	append_bytes(buf, user, strlen(user));
}

static bool
is_integer_type(Oid typid)
{
	return typid == INT2OID || typid == INT4OID || typid == INT8OID;
}

static bool
is_string_type(Oid typid)
{
	return typid == TEXTOID || typid == VARCHAROID || typid == BYTEAOID;
}

bool
kalam_key_type_supported(Oid typid)
{
	switch (typid)
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case OIDOID:
		case BOOLOID:
		case DATEOID:
		case TIMEOID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
		case UUIDOID:
		case TEXTOID:
		case VARCHAROID:
		case BYTEAOID:
			return true;
		default:
			return false;
	}
}

/*
 * Can a value of valuetype be encoded as a key of a column of coltype?
 * Integers mix freely; text and varchar share their encoding; everything
 * else must match exactly.
 */
bool
kalam_key_value_type_supported(Oid coltype, Oid valuetype)
{
	if (is_integer_type(coltype))
		return is_integer_type(valuetype);
	if (coltype == TEXTOID || coltype == VARCHAROID)
		return valuetype == TEXTOID || valuetype == VARCHAROID;
	return coltype == valuetype;
}

/*
 * Does memcmp order of the encoding equal SQL order?  Equality is always
 * byte equality for the supported types under deterministic collations;
 * order is only for text in the C collation.
 */
bool
kalam_key_byte_order_is_sql_order(Oid typid, Oid collid)
{
	if (typid == TEXTOID || typid == VARCHAROID)
		return OidIsValid(collid) && lc_collate_is_c(collid);
	return kalam_key_type_supported(typid);
}

static int64
integer_value(Oid valuetype, Datum value)
{
	switch (valuetype)
	{
		case INT2OID:
			return DatumGetInt16(value);
		case INT4OID:
			return DatumGetInt32(value);
		default:
			return DatumGetInt64(value);
	}
}

void
kalam_key_append_datum(StringInfo buf, Oid coltype, Oid valuetype,
					   Datum value)
{
	if (is_integer_type(coltype))
	{
		append_uint64(buf, (uint64) integer_value(valuetype, value) ^ UINT64CONST(0x8000000000000000));
		return;
	}
	if (is_string_type(coltype))
	{
		struct varlena *v = PG_DETOAST_DATUM_PACKED(value);

		append_bytes(buf, VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v));
		return;
	}
	switch (coltype)
	{
		case OIDOID:
			append_uint32(buf, DatumGetObjectId(value));
			break;
		case BOOLOID:
			appendStringInfoCharMacro(buf, DatumGetBool(value) ? 1 : 0);
			break;
		case DATEOID:
			append_uint32(buf, (uint32) DatumGetInt32(value) ^ 0x80000000);
			break;
		case TIMEOID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			append_uint64(buf, (uint64) DatumGetInt64(value) ^ UINT64CONST(0x8000000000000000));
			break;
		case UUIDOID:
			appendBinaryStringInfo(buf, (char *) DatumGetUUIDP(value)->data,
								   UUID_LEN);
			break;
		default:
			elog(ERROR, "type %u cannot be part of a kalam key", coltype);
	}
}
