/*-------------------------------------------------------------------------
 *
 * frame.c
 *	  Writing and checking the frames of forwarding connections (frame.h).
 *
 * A frame: its length (4 bytes, of what follows), its type (1), a request
 * id (8); then for a request the Raft group (2) and the command (a command
 * of length 0 is a read fence), for a reply a KalamApplyResult, for a
 * leader's question whether a node still follows it the group (2) and the
 * term (8), for the answer the same and a yes or no (1); for a fetch of
 * a snapshot transfer's next chunk the group (2), the session (8) and the
 * applied index needed (8), for a chunk its bytes (codec/snapshot.h, which
 * checks them).  Integers in
 * native byte order: the nodes of a cluster share an architecture.
 *
 * Frames come from authenticated peers only (handshake.c), but a peer's
 * bug must not become this node's crash: the reader checks the length
 * against KALAM_FRAME_MAX_BODY before anything is allocated for it, the
 * type, the sizes, and a reply's status and message.  No palloc, no
 * ereport: forward.c calls it from libuv callbacks, test/fuzz on its own.
 *
 * src/codec/frame.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "codec/frame.h"

/*
 * Bytes of a frame of the type; body_len is that of a request's command,
 * of a reply's result, ignored for confirmations.
 */
size_t
kalam_frame_size(int type, size_t body_len)
{
	switch (type)
	{
		case KALAM_FRAME_REQUEST:
			return KALAM_FRAME_REQUEST_HEADER + body_len;
		case KALAM_FRAME_CONFIRM:
			return KALAM_FRAME_CONFIRM_SIZE;
		case KALAM_FRAME_CONFIRMED:
			return KALAM_FRAME_CONFIRMED_SIZE;
		case KALAM_FRAME_FETCH:
			return KALAM_FRAME_FETCH_SIZE;
	}
	return KALAM_FRAME_HEADER + body_len;
}

static void
write_header(char *out, int type, uint64 request_id, size_t size)
{
	uint32		length = (uint32) (size - 4);

	memcpy(out, &length, 4);
	out[4] = (char) type;
	memcpy(out + 5, &request_id, 8);
}

/* Write a request into out, of kalam_frame_size(REQUEST, length) bytes. */
void
kalam_frame_write_request(char *out, uint64 request_id, int group,
						  const char *command, size_t length)
{
	uint16		group16 = (uint16) group;

	write_header(out, KALAM_FRAME_REQUEST, request_id,
				 kalam_frame_size(KALAM_FRAME_REQUEST, length));
	memcpy(out + KALAM_FRAME_HEADER, &group16, 2);
	if (length > 0)
		memcpy(out + KALAM_FRAME_REQUEST_HEADER, command, length);
}

/* Write a reply into out, of kalam_frame_size(REPLY, sizeof result) bytes. */
void
kalam_frame_write_reply(char *out, uint64 request_id,
						const KalamApplyResult *result)
{
	write_header(out, KALAM_FRAME_REPLY, request_id,
				 kalam_frame_size(KALAM_FRAME_REPLY, sizeof(KalamApplyResult)));
	memcpy(out + KALAM_FRAME_HEADER, result, sizeof(KalamApplyResult));
}

/* Write a confirmation question or answer into out. */
void
kalam_frame_write_confirm(char *out, int type, uint64 request_id, int group,
						  uint64 term, bool confirmed)
{
	uint16		group16 = (uint16) group;

	write_header(out, type, request_id, kalam_frame_size(type, 0));
	memcpy(out + KALAM_FRAME_HEADER, &group16, 2);
	memcpy(out + KALAM_FRAME_HEADER + 2, &term, 8);
	if (type == KALAM_FRAME_CONFIRMED)
		out[KALAM_FRAME_CONFIRM_SIZE] = confirmed ? 1 : 0;
}

/* Write a fetch into out, of kalam_frame_size(FETCH, 0) bytes. */
void
kalam_frame_write_fetch(char *out, uint64 request_id, int group,
						uint64 session, uint64 index)
{
	uint16		group16 = (uint16) group;

	write_header(out, KALAM_FRAME_FETCH, request_id, KALAM_FRAME_FETCH_SIZE);
	memcpy(out + KALAM_FRAME_HEADER, &group16, 2);
	memcpy(out + KALAM_FRAME_HEADER + 2, &session, 8);
	memcpy(out + KALAM_FRAME_HEADER + 10, &index, 8);
}

/*
 * Write the header of a chunk's frame into out, the KALAM_FRAME_HEADER
 * bytes before the chunk_len bytes of the chunk.
 */
void
kalam_frame_write_chunk_header(char *out, uint64 request_id, size_t chunk_len)
{
	write_header(out, KALAM_FRAME_CHUNK, request_id,
				 kalam_frame_size(KALAM_FRAME_CHUNK, chunk_len));
}

/*
 * The size of the frame at the start of data, length prefix included.
 * False with *error NULL if fewer than 4 bytes are there, with *error set
 * if the length is refused (the connection must close).
 */
bool
kalam_frame_length(const char *data, size_t len, size_t *frame_len,
				   const char **error)
{
	uint32		length;

	*error = NULL;
	if (len < 4)
		return false;
	memcpy(&length, data, 4);
	if (length < KALAM_FRAME_HEADER - 4 ||
		length > KALAM_FRAME_REQUEST_HEADER - 4 + KALAM_FRAME_MAX_BODY)
	{
		*error = "frame length out of range";
		return false;
	}
	*frame_len = 4 + (size_t) length;
	return true;
}

/*
 * Decode a whole frame (length prefix included, as kalam_frame_length
 * measured it).  False with *error set if it is not a valid frame.
 */
bool
kalam_frame_decode(const char *frame, size_t len, KalamFrame *out,
				   const char **error)
{
	uint32		length;

	*error = NULL;
	memset(out, 0, sizeof(KalamFrame));
	if (len < KALAM_FRAME_HEADER)
	{
		*error = "frame shorter than its header";
		return false;
	}
	memcpy(&length, frame, 4);
	if ((size_t) length != len - 4)
	{
		*error = "frame length does not match";
		return false;
	}
	out->type = (unsigned char) frame[4];
	memcpy(&out->request_id, frame + 5, 8);
	if (out->type == KALAM_FRAME_REQUEST)
	{
		uint16		group16;

		if (len < KALAM_FRAME_REQUEST_HEADER)
		{
			*error = "request without a group";
			return false;
		}
		memcpy(&group16, frame + KALAM_FRAME_HEADER, 2);
		out->group = group16;
		out->command = frame + KALAM_FRAME_REQUEST_HEADER;
		out->command_len = len - KALAM_FRAME_REQUEST_HEADER;
		return true;
	}
	if (out->type == KALAM_FRAME_REPLY)
	{
		if (len != KALAM_FRAME_HEADER + sizeof(KalamApplyResult))
		{
			*error = "reply of the wrong size";
			return false;
		}
		memcpy(&out->result, frame + KALAM_FRAME_HEADER, sizeof(KalamApplyResult));
		if ((int) out->result.status < KALAM_APPLY_OK ||
			(int) out->result.status > KALAM_APPLY_STATUS_LAST)
		{
			*error = "reply with an unknown status";
			return false;
		}
		if (memchr(out->result.message, '\0', sizeof(out->result.message)) == NULL)
		{
			*error = "reply message not terminated";
			return false;
		}
		return true;
	}
	if (out->type == KALAM_FRAME_CONFIRM || out->type == KALAM_FRAME_CONFIRMED)
	{
		uint16		group16;

		if (len != kalam_frame_size(out->type, 0))
		{
			*error = "confirmation of the wrong size";
			return false;
		}
		memcpy(&group16, frame + KALAM_FRAME_HEADER, 2);
		out->group = group16;
		memcpy(&out->term, frame + KALAM_FRAME_HEADER + 2, 8);
		if (out->type == KALAM_FRAME_CONFIRMED)
		{
			if ((unsigned char) frame[KALAM_FRAME_CONFIRM_SIZE] > 1)
			{
				*error = "confirmation answer neither yes nor no";
				return false;
			}
			out->confirmed = frame[KALAM_FRAME_CONFIRM_SIZE] == 1;
		}
		return true;
	}
	if (out->type == KALAM_FRAME_FETCH)
	{
		uint16		group16;

		if (len != KALAM_FRAME_FETCH_SIZE)
		{
			*error = "fetch of the wrong size";
			return false;
		}
		memcpy(&group16, frame + KALAM_FRAME_HEADER, 2);
		out->group = group16;
		memcpy(&out->session, frame + KALAM_FRAME_HEADER + 2, 8);
		memcpy(&out->index, frame + KALAM_FRAME_HEADER + 10, 8);
		return true;
	}
	if (out->type == KALAM_FRAME_CHUNK)
	{
		out->command = frame + KALAM_FRAME_HEADER;
		out->command_len = len - KALAM_FRAME_HEADER;
		return true;
	}
	*error = "unknown frame type";
	return false;
}
