/*-------------------------------------------------------------------------
 *
 * digest.c
 *	  kalam.table_digest(regclass): an MD5 of every stored row of a table,
 *	  all users included, read from this node's own storage; and
 *	  kalam.split_parts(): the parts of split commands stored here.
 *
 * Nodes that applied the same log hold the same keys and values (the row
 * header carries the log position and the command's timestamp, the same
 * everywhere), so equal digests mean equal contents.
 *
 * A split's parts (codec/command.h) live until the split that applies them;
 * those of a transaction whose session died between its parts and its
 * commit stay, and kalam.split_parts() shows them.
 *
 * src/fdw/digest.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "common/cryptohash.h"
#include "common/md5.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "codec/command.h"
#include "codec/group.h"
#include "fdw/kalam_fdw.h"
#include "kv/keys.h"
#include "kv/rocks.h"

PG_FUNCTION_INFO_V1(kalam_table_digest);
PG_FUNCTION_INFO_V1(kalam_split_parts);

typedef struct PartCount
{
	int64		parts;
	int64		bytes;
} PartCount;

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
	char		errbuf[256] = "could not compute the MD5 of kalam rows";

	initStringInfo(&prefix);
	kalam_key_append_group(&prefix, group);
	kalam_key_append_table(&prefix, table_id);
	if (!kalam_rocks_scan_prefix(prefix.data, prefix.len, digest_row, ctx,
								 errbuf, sizeof(errbuf)))
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

static bool
count_part(const char *key, size_t keylen, const char *value, size_t vallen,
		   void *arg)
{
	PartCount  *count = (PartCount *) arg;

	count->parts++;
	count->bytes += (int64) vallen;
	return true;
}

/* kalam.split_parts(): per data group, the parts stored on this node */
Datum
kalam_split_parts(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			group;

	InitMaterializedSRF(fcinfo, 0);
	for (group = KALAM_GROUP_SHARED; group < kalam_group_count(); group++)
	{
		char		prefix[KALAM_PARTS_PREFIX_LEN];
		char		name[KALAM_GROUP_NAME_LEN];
		char		errbuf[256] = "could not read the parts";
		PartCount	count = {0, 0};
		Datum		values[3];
		bool		nulls[3] = {false};

		kalam_command_parts_prefix(prefix, group);
		if (!kalam_rocks_scan_prefix(prefix, sizeof(prefix),
									 count_part, &count, errbuf, sizeof(errbuf)))
			ereport(ERROR,
					(errcode(ERRCODE_IO_ERROR),
					 errmsg("could not read the parts of group %d: %s", group,
							errbuf)));
		kalam_group_name(group, name);
		values[0] = CStringGetTextDatum(name);
		values[1] = Int64GetDatum(count.parts);
		values[2] = Int64GetDatum(count.bytes);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
