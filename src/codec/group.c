/*-------------------------------------------------------------------------
 *
 * group.c
 *	  Raft groups: which group a row belongs to, and their names.
 *
 * A user's shard is the 32-bit FNV-1a hash of the user name's bytes modulo
 * kalam.user_shards: a fixed function, the same on every build and
 * platform, so every node routes a user's rows to the same group.
 *
 * src/codec/group.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "codec/group.h"

int			kalam_user_shards = 4;

static uint32
fnv1a_32(const char *data, size_t len)
{
	uint32		hash = 2166136261u;
	size_t		i;

	for (i = 0; i < len; i++)
	{
		hash ^= (unsigned char) data[i];
		hash *= 16777619u;
	}
	return hash;
}

int
kalam_user_group(const char *user)
{
	return KALAM_GROUP_FIRST_USER +
		(int) (fnv1a_32(user, strlen(user)) % (uint32) kalam_user_shards);
}

/* "meta", "shared" or "user_N"; buf holds KALAM_GROUP_NAME_LEN bytes */
void
kalam_group_name(int group, char *buf)
{
	if (group == KALAM_GROUP_META)
		strlcpy(buf, "meta", KALAM_GROUP_NAME_LEN);
	else if (group == KALAM_GROUP_SHARED)
		strlcpy(buf, "shared", KALAM_GROUP_NAME_LEN);
	else
		snprintf(buf, KALAM_GROUP_NAME_LEN, "user_%d", group - KALAM_GROUP_FIRST_USER);
}
