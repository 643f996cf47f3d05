/*-------------------------------------------------------------------------
 *
 * digest.c
 *	  kalam.table_digest(regclass): an MD5 of every stored row of a table,
 *	  all users included, read from this node's own storage.
 *
 * Nodes that applied the same log hold the same keys and values (the row
 * header carries the log position and the command's timestamp, the same
 * everywhere), so equal digests mean equal contents.
 *
 * src/storage/digest.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "common/cryptohash.h"
#include "common/md5.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "fdw/kalam_fdw.h"
#include "raft/group.h"
#include "storage/keys.h"
#include "storage/prefix_scan.h"
#include "storage/rocks.h"

PG_FUNCTION_INFO_V1(kalam_table_digest);

static bool
digest_row(const char *key, size_t keylen, const char *value, size_t vallen,
		   void *arg)
{
	pg_cryptohash_ctx *ctx = (pg_cryptohash_ctx *) arg;

	return pg_cryptohash_update(ctx, (const uint8 *) key, keylen) == 0 &&
		pg_cryptohash_update(ctx, (const uint8 *) value, vallen) == 0;
}

static void
digest_range(pg_cryptohash_ctx *ctx, int group, uint32 table_id)
{
	StringInfoData prefix;
	rocksdb_t  *db = kalam_rocks_reader();
	char		errbuf[256] = "could not compute the MD5 of kalam rows";

	initStringInfo(&prefix);
	kalam_key_append_group(&prefix, group);
	kalam_key_append_table(&prefix, table_id);
	if (!kalam_scan_prefix(db, kalam_rocks_read_options(), prefix.data,
						   prefix.len, digest_row, ctx, errbuf, sizeof(errbuf)))
		ereport(ERROR,
				(errcode(ERRCODE_IO_ERROR),
				 errmsg("could not read kalam table rows: %s", errbuf)));
}

Datum
kalam_table_digest(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	Relation	rel;
	KalamTable *table;
	pg_cryptohash_ctx *ctx;
	uint8		sum[MD5_DIGEST_LENGTH];
	char		hex[2 * MD5_DIGEST_LENGTH + 1];
	int			group;
	int			i;

	if (pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for table %s", get_rel_name(relid))));
	if (!kalam_is_kalam_table(relid))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a kalam table", get_rel_name(relid))));
	rel = table_open(relid, AccessShareLock);
	table = kalam_get_table(rel);
	table_close(rel, AccessShareLock);

	ctx = pg_cryptohash_create(PG_MD5);
	if (pg_cryptohash_init(ctx) < 0)
		elog(ERROR, "could not initialize MD5");
	if (table->type == KALAM_TABLE_SHARED)
		digest_range(ctx, KALAM_GROUP_SHARED, table->table_id);
	else
		for (group = KALAM_GROUP_FIRST_USER; group < kalam_group_count(); group++)
			digest_range(ctx, group, table->table_id);
	if (pg_cryptohash_final(ctx, sum, sizeof(sum)) < 0)
		elog(ERROR, "could not compute the MD5 of kalam rows");
	pg_cryptohash_free(ctx);

	for (i = 0; i < MD5_DIGEST_LENGTH; i++)
		sprintf(hex + 2 * i, "%02x", sum[i]);
	PG_RETURN_TEXT_P(cstring_to_text(hex));
}
