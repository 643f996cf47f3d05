/*-------------------------------------------------------------------------
 *
 * fuzz_entry.c
 *	  Fuzz harness of the log entry decoder (src/codec/entry.c), and of the
 *	  command decoder on the commands it yields.
 *
 * Seeds are entries of 1, 3 and KALAM_ENTRY_MAX_COMMANDS commands built
 * with the encoders, each checked to decode back.  A decoded entry must
 * claim no more commands than the limit and yield commands inside it.
 *
 * test/fuzz/fuzz_entry.c
 *
 *-------------------------------------------------------------------------
 */
#include "fuzz.h"

#include "codec/command.h"
#include "codec/entry.h"

const char *fuzz_name = "entry";

static void
add_entry(int count)
{
	StringInfoData commands[KALAM_ENTRY_MAX_COMMANDS];
	const char *datas[KALAM_ENTRY_MAX_COMMANDS];
	size_t		lengths[KALAM_ENTRY_MAX_COMMANDS];
	KalamEntryReader reader;
	const char *command;
	size_t		length;
	const char *error;
	uint32		decoded_count;
	char	   *entry;
	size_t		size;
	int			i;

	for (i = 0; i < count; i++)
	{
		char		key[16];

		snprintf(key, sizeof(key), "%c%c%c%c%c%ck%d", 0, 2, 0, 0, 1, 0, i);
		initStringInfo(&commands[i]);
		kalam_command_begin(&commands[i], i);
		kalam_command_add(&commands[i], KALAM_OP_INSERT, 0, key, 6 + strlen(key + 6),
						  "value", 1 + i % 5);
		datas[i] = commands[i].data;
		lengths[i] = commands[i].len;
	}
	size = kalam_entry_size(lengths, count);
	entry = malloc(size);
	kalam_entry_write(entry, datas, lengths, count);
	if (size % 8 != 0 ||
		!kalam_entry_open(&reader, entry, size, &decoded_count, &error) ||
		decoded_count != (uint32) count)
		fuzz_fail("a seed does not decode");
	for (i = 0; kalam_entry_next(&reader, &command, &length, &error); i++)
		if (length != lengths[i] || memcmp(command, datas[i], length) != 0 ||
			!kalam_command_validate(command, length, &error))
			fuzz_fail("a seed's command decodes to something else");
	if (error != NULL || i != count)
		fuzz_fail("a seed's commands do not decode");
	fuzz_add_seed(entry, size);
	free(entry);
	for (i = 0; i < count; i++)
		pfree(commands[i].data);
}

void
fuzz_seeds(void)
{
	add_entry(1);
	add_entry(3);
	add_entry(KALAM_ENTRY_MAX_COMMANDS);
}

void
fuzz_one(const char *data, size_t len)
{
	KalamEntryReader reader;
	const char *command;
	size_t		length;
	const char *error;
	uint32		count;
	uint32		n = 0;

	if (!kalam_entry_open(&reader, data, len, &count, &error))
	{
		if (error == NULL)
			fuzz_fail("refused without a message");
		return;
	}
	if (count > KALAM_ENTRY_MAX_COMMANDS)
		fuzz_fail("more commands than the limit were accepted");
	while (kalam_entry_next(&reader, &command, &length, &error))
	{
		if (command < data || command + length > data + len)
			fuzz_fail("a command lies outside the entry");
		fuzz_touch(command, length);
		(void) kalam_command_validate(command, length, &error);
		n++;
	}
	if (n > count)
		fuzz_fail("more commands than the header says");
}
