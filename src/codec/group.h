/*-------------------------------------------------------------------------
 *
 * group.h
 *	  Raft groups: which group a row belongs to, and their names.
 *
 * Group 0 is meta (DDL), group 1 shared (rows of shared tables), groups
 * 2 .. 2 + kalam.user_shards - 1 the user shards (rows of user and stream
 * tables).  Every RocksDB key starts with its group, so a group's rows are
 * one key range: what its snapshot carries and what its commands touch.
 * Here, beside the key codec, because every layer names groups and this
 * header includes none of them.
 *
 * src/codec/group.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KALAM_GROUP_H
#define KALAM_GROUP_H

#define KALAM_GROUP_META		0
#define KALAM_GROUP_SHARED		1
#define KALAM_GROUP_FIRST_USER	2
#define KALAM_MAX_USER_SHARDS	64
#define KALAM_MAX_GROUPS		(KALAM_GROUP_FIRST_USER + KALAM_MAX_USER_SHARDS)
#define KALAM_GROUP_NAME_LEN	16
#define KALAM_MAX_NODES			16

extern int	kalam_user_shards;

static inline int
kalam_group_count(void)
{
	return KALAM_GROUP_FIRST_USER + kalam_user_shards;
}

extern int	kalam_user_group(const char *user);
extern void kalam_group_name(int group, char *buf);

#endif							/* KALAM_GROUP_H */
