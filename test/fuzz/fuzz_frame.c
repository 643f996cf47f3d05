/*-------------------------------------------------------------------------
 *
 * fuzz_frame.c
 *	  Fuzz harness of the forwarding frame decoder (src/codec/frame.c): the
 *	  bytes a peer's worker sends on a forwarding connection.
 *
 * Seeds are a request with a command, a read fence (an empty command), a
 * reply, a leader's confirmation question and its answer, a snapshot
 * transfer's fetch and a chunk, written with the encoders and checked to
 * decode back.  Each
 * input is read as forward.c reads a stream: frame after frame, each
 * length checked before the frame is decoded.  A decoded request's
 * command must lie inside the frame; a reply's status must be known and
 * its message terminated.
 *
 * test/fuzz/fuzz_frame.c
 *
 *-------------------------------------------------------------------------
 */
#include "fuzz.h"

#include "codec/frame.h"

const char *fuzz_name = "frame";

static void
add_frame(int type)
{
	static const char command[] = "K\001 a command's bytes";
	KalamApplyResult result;
	KalamFrame	decoded;
	const char *error;
	size_t		body = (type == KALAM_FRAME_REPLY) ? sizeof(result) :
		(type == KALAM_FRAME_REQUEST ? sizeof(command) : 0);
	size_t		size = kalam_frame_size(type == KALAM_FRAME_REPLY ?
										KALAM_FRAME_REPLY : KALAM_FRAME_REQUEST,
										body);
	size_t		frame_len;
	char	   *frame = malloc(size);

	if (type == KALAM_FRAME_REPLY)
	{
		memset(&result, 0, sizeof(result));
		result.status = KALAM_APPLY_DUPLICATE_KEY;
		result.op_index = 3;
		result.applied_index = 1841;
		strlcpy(result.message, "duplicate key", sizeof(result.message));
		kalam_frame_write_reply(frame, 77, &result);
	}
	else
		kalam_frame_write_request(frame, 77, 2, command, body);
	if (!kalam_frame_length(frame, size, &frame_len, &error) || frame_len != size ||
		!kalam_frame_decode(frame, size, &decoded, &error) ||
		decoded.request_id != 77 ||
		(decoded.type == KALAM_FRAME_REQUEST &&
		 (decoded.group != 2 || decoded.command_len != body ||
		  memcmp(decoded.command, command, body) != 0)) ||
		(decoded.type == KALAM_FRAME_REPLY &&
		 memcmp(&decoded.result, &result, sizeof(result)) != 0))
		fuzz_fail("a seed does not decode back");
	fuzz_add_seed(frame, size);
	free(frame);
}

static void
add_confirm(int type)
{
	size_t		size = kalam_frame_size(type, 0);
	char	   *frame = malloc(size);
	KalamFrame	decoded;
	const char *error;

	kalam_frame_write_confirm(frame, type, 91, 3, 12, true);
	if (!kalam_frame_decode(frame, size, &decoded, &error) ||
		decoded.type != type || decoded.request_id != 91 || decoded.group != 3 ||
		decoded.term != 12 || decoded.confirmed != (type == KALAM_FRAME_CONFIRMED))
		fuzz_fail("a confirmation seed does not decode back");
	fuzz_add_seed(frame, size);
	free(frame);
}

static void
add_transfer(void)
{
	static const char chunk[] = "a chunk's bytes, checked by codec/snapshot.c";
	char		fetch[KALAM_FRAME_FETCH_SIZE];
	char	   *frame = malloc(KALAM_FRAME_HEADER + sizeof(chunk));
	KalamFrame	decoded;
	const char *error;

	kalam_frame_write_fetch(fetch, 93, 4, 123456789, 4242);
	if (!kalam_frame_decode(fetch, sizeof(fetch), &decoded, &error) ||
		decoded.type != KALAM_FRAME_FETCH || decoded.request_id != 93 ||
		decoded.group != 4 || decoded.session != 123456789 || decoded.index != 4242)
		fuzz_fail("a fetch seed does not decode back");
	fuzz_add_seed(fetch, sizeof(fetch));

	kalam_frame_write_chunk_header(frame, 93, sizeof(chunk));
	memcpy(frame + KALAM_FRAME_HEADER, chunk, sizeof(chunk));
	if (!kalam_frame_decode(frame, KALAM_FRAME_HEADER + sizeof(chunk), &decoded,
							&error) ||
		decoded.type != KALAM_FRAME_CHUNK || decoded.request_id != 93 ||
		decoded.command_len != sizeof(chunk) ||
		memcmp(decoded.command, chunk, sizeof(chunk)) != 0)
		fuzz_fail("a chunk seed does not decode back");
	fuzz_add_seed(frame, KALAM_FRAME_HEADER + sizeof(chunk));
	free(frame);
}

void
fuzz_seeds(void)
{
	add_frame(KALAM_FRAME_REQUEST);
	add_frame(0);				/* a read fence: a request without command */
	add_frame(KALAM_FRAME_REPLY);
	add_confirm(KALAM_FRAME_CONFIRM);
	add_confirm(KALAM_FRAME_CONFIRMED);
	add_transfer();
}

void
fuzz_one(const char *data, size_t len)
{
	size_t		pos = 0;
	size_t		frame_len;
	const char *error;

	while (kalam_frame_length(data + pos, len - pos, &frame_len, &error) &&
		   frame_len <= len - pos)
	{
		KalamFrame	frame;

		if (kalam_frame_decode(data + pos, frame_len, &frame, &error))
		{
			if (frame.type == KALAM_FRAME_REQUEST ||
				frame.type == KALAM_FRAME_CHUNK)
			{
				if (frame.command < data + pos ||
					frame.command + frame.command_len > data + pos + frame_len)
					fuzz_fail("a command lies outside its frame");
				fuzz_touch(frame.command, frame.command_len);
			}
			else if (frame.type == KALAM_FRAME_REPLY)
			{
				if ((int) frame.result.status < KALAM_APPLY_OK ||
					(int) frame.result.status > KALAM_APPLY_STATUS_LAST ||
					strlen(frame.result.message) >= sizeof(frame.result.message))
					fuzz_fail("a bad reply was accepted");
			}
			else if ((frame.type != KALAM_FRAME_CONFIRM &&
					  frame.type != KALAM_FRAME_CONFIRMED &&
					  frame.type != KALAM_FRAME_FETCH) ||
					 frame_len != kalam_frame_size(frame.type, 0))
				fuzz_fail("a bad frame was accepted");
		}
		else if (error == NULL)
			fuzz_fail("refused without a message");
		pos += frame_len;
	}
}
