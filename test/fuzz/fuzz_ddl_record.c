/*-------------------------------------------------------------------------
 *
 * fuzz_ddl_record.c
 *	  Fuzz harness of the DDL record decoder (src/codec/ddl_record.c): the
 *	  record that another node's jobs worker turns into DDL.
 *
 * Seeds are records of every kind built with the encoder, each checked to
 * decode back.  A decoded record must have a kind in range, a table id,
 * and every string inside the input and terminated there.
 *
 * test/fuzz/fuzz_ddl_record.c
 *
 *-------------------------------------------------------------------------
 */
#include "fuzz.h"

#include "codec/ddl_record.h"

const char *fuzz_name = "ddl_record";

static void
add_record(KalamDdlKind kind, const char *schema, const char *statement)
{
	KalamDdlRecord record;
	KalamDdlRecord decoded;
	size_t		size;
	char	   *data;

	record.kind = kind;
	record.table_id = 0x1201;
	record.role = "alice";
	record.search_path = "\"$user\", public";
	record.schema = schema;
	record.statement = statement;
	size = kalam_ddl_record_size(&record);
	data = malloc(size);
	kalam_ddl_record_encode(&record, data);
	if (kalam_ddl_record_decode(data, size, &decoded) != NULL ||
		decoded.kind != kind || decoded.table_id != record.table_id ||
		strcmp(decoded.role, record.role) != 0 ||
		strcmp(decoded.search_path, record.search_path) != 0 ||
		strcmp(decoded.schema, schema) != 0 ||
		strcmp(decoded.statement, statement) != 0)
		fuzz_fail("a seed does not decode back");
	fuzz_add_seed(data, size);
	free(data);
}

void
fuzz_seeds(void)
{
	add_record(KALAM_DDL_CREATE, "app",
			   "CREATE FOREIGN TABLE app.t (k int NOT NULL, v text) SERVER kalam OPTIONS (type 'user', primary_key 'k')");
	add_record(KALAM_DDL_ALTER, "", "ALTER FOREIGN TABLE app.t ADD COLUMN note text");
	add_record(KALAM_DDL_RENAME, "", "ALTER FOREIGN TABLE app.t RENAME COLUMN v TO body");
	add_record(KALAM_DDL_DROP, "", "DROP FOREIGN TABLE app.t");
	add_record(KALAM_DDL_GRANT, "", "GRANT SELECT ON ALL TABLES IN SCHEMA app TO bob");
	add_record(KALAM_DDL_SET_SCHEMA, "", "ALTER FOREIGN TABLE app.t SET SCHEMA archive");
}

/* A decoded string must lie inside the input and end there. */
static void
check_string(const char *s, const char *data, size_t len)
{
	if (s < data || s >= data + len || memchr(s, '\0', data + len - s) == NULL)
		fuzz_fail("a decoded string is not terminated inside the record");
	fuzz_touch(s, strlen(s));
}

void
fuzz_one(const char *data, size_t len)
{
	KalamDdlRecord record;
	const char *error = kalam_ddl_record_decode(data, len, &record);

	if (error != NULL)
	{
		if (error[0] == '\0')
			fuzz_fail("refused without a message");
		return;
	}
	if (record.kind < KALAM_DDL_KIND_FIRST || record.kind > KALAM_DDL_KIND_LAST ||
		record.table_id == 0)
		fuzz_fail("a record with a bad kind or no table was accepted");
	check_string(record.role, data, len);
	check_string(record.search_path, data, len);
	check_string(record.schema, data, len);
	check_string(record.statement, data, len);
}
