/*-------------------------------------------------------------------------
 *
 * served.c
 *	  Packing the rows of a key range for a backend, and reading them
 *	  back (see served.h).  No palloc, no ereport: fuzzed in test/fuzz/.
 *
 * src/codec/served.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "codec/served.h"

#define PACKED_HEADER	(2 * sizeof(uint32))

/*
 * Pack a row after *used bytes of buf (cap bytes); false, with nothing
 * written, if it does not fit.
 */
bool
kalam_served_pack(char *buf, size_t cap, size_t *used, const char *key,
				  size_t keylen, const char *value, size_t vallen)
{
	uint32		lengths[2];

	if (*used > cap || cap - *used < PACKED_HEADER ||
		cap - *used - PACKED_HEADER < keylen ||
		cap - *used - PACKED_HEADER - keylen < vallen)
		return false;
	lengths[0] = (uint32) keylen;
	lengths[1] = (uint32) vallen;
	memcpy(buf + *used, lengths, PACKED_HEADER);
	memcpy(buf + *used + PACKED_HEADER, key, keylen);
	memcpy(buf + *used + PACKED_HEADER + keylen, value, vallen);
	*used += PACKED_HEADER + keylen + vallen;
	return true;
}

/*
 * The next row of packed rows (len bytes), from *pos on: false at their
 * end, or if what is left is not a whole row.
 */
bool
kalam_served_next(const char *rows, size_t len, size_t *pos,
				  const char **key, size_t *keylen, const char **value,
				  size_t *vallen)
{
	uint32		lengths[2];

	if (*pos > len || len - *pos < PACKED_HEADER)
		return false;
	memcpy(lengths, rows + *pos, PACKED_HEADER);
	if (len - *pos - PACKED_HEADER < (size_t) lengths[0] + lengths[1])
		return false;
	*key = rows + *pos + PACKED_HEADER;
	*keylen = lengths[0];
	*value = *key + lengths[0];
	*vallen = lengths[1];
	*pos += PACKED_HEADER + lengths[0] + lengths[1];
	return true;
}
