/*-------------------------------------------------------------------------
 *
 * frame.h
 *	  The frames that workers exchange on their forwarding connections.
 *
 * src/codec/frame.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KALAM_FRAME_H
#define KALAM_FRAME_H

#include "codec/result.h"

#define KALAM_FRAME_REQUEST		1
#define KALAM_FRAME_REPLY		2
#define KALAM_FRAME_CONFIRM		3	/* leader: do you follow me in this term? */
#define KALAM_FRAME_CONFIRMED	4	/* follower: the answer */
#define KALAM_FRAME_FETCH		5	/* installer: the next chunk of a group */
#define KALAM_FRAME_CHUNK		6	/* source: a chunk (codec/snapshot.h) */

/* length (4), type (1), request id (8) */
#define KALAM_FRAME_HEADER		13
/* a request's group (2) follows the header */
#define KALAM_FRAME_REQUEST_HEADER	(KALAM_FRAME_HEADER + 2)
/* a confirmation's group (2) and term (8), and the answer (1) */
#define KALAM_FRAME_CONFIRM_SIZE	(KALAM_FRAME_HEADER + 10)
#define KALAM_FRAME_CONFIRMED_SIZE	(KALAM_FRAME_HEADER + 11)
/* a fetch's group (2), session (8) and the index the installer needs (8) */
#define KALAM_FRAME_FETCH_SIZE		(KALAM_FRAME_HEADER + 18)

/*
 * A backend's command is a StringInfo, which cannot exceed MaxAllocSize
 * (1 GB - 1): no legitimate frame carries more.
 */
#define KALAM_FRAME_MAX_BODY	((size_t) 0x3fffffff)

/* one decoded frame; command points into the frame */
typedef struct KalamFrame
{
	int			type;
	uint64		request_id;
	int			group;			/* requests, confirmations, fetches */
	const char *command;		/* requests: the command, possibly empty; */
	size_t		command_len;	/* chunks: the chunk, unchecked */
	KalamApplyResult result;	/* replies, checked */
	uint64		term;			/* confirmations: the leader's term */
	bool		confirmed;		/* answers: the node follows it in that term */
	uint64		session;		/* fetches: the transfer, 0 to open one */
	uint64		index;			/* fetches: the applied index needed */
} KalamFrame;

extern size_t kalam_frame_size(int type, size_t body_len);
extern void kalam_frame_write_request(char *out, uint64 request_id, int group,
									  const char *command, size_t length);
extern void kalam_frame_write_reply(char *out, uint64 request_id,
									const KalamApplyResult *result);
extern void kalam_frame_write_confirm(char *out, int type, uint64 request_id,
									  int group, uint64 term, bool confirmed);
extern void kalam_frame_write_fetch(char *out, uint64 request_id, int group,
									uint64 session, uint64 index);
extern void kalam_frame_write_chunk_header(char *out, uint64 request_id,
										   size_t chunk_len);

extern bool kalam_frame_length(const char *data, size_t len, size_t *frame_len,
							   const char **error);
extern bool kalam_frame_decode(const char *frame, size_t len, KalamFrame *out,
							   const char **error);

#endif							/* KALAM_FRAME_H */
