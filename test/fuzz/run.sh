#!/usr/bin/env bash
# Builds and runs the fuzz harnesses of src/codec (see fuzz.h): each with
# gcc and AddressSanitizer + UndefinedBehaviorSanitizer, linked with the
# codec sources it fuzzes and PostgreSQL's frontend libpgcommon (StringInfo,
# for the encoders that build the seeds), nothing of the server.  Each runs
# FUZZ_SECONDS (3 by default) and prints
#   fuzz <decoder>: N inputs, 0 crashes (R inputs/s)
# Exits non-zero on the first sanitizer report or failed check.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
out=$(mktemp -d /tmp/kalam-fuzz.XXXXXX)
trap 'rm -rf "$out"' EXIT

cflags=(-g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined
	-fno-sanitize-recover=all -Wall -Wextra -Wno-unused-parameter -Werror
	-I"$repo/src" -I"$("$PG_CONFIG" --includedir-server)")
libs=(-L"$("$PG_CONFIG" --pkglibdir)" -lpgcommon -lpgport)

# harness: the codec sources it needs
declare -A sources=(
	[command]="command.c txn.c"
	[entry]="entry.c command.c txn.c"
	[key]="key.c change.c txn.c command.c"
	[row]="row.c"
	[snapshot]="snapshot.c key.c change.c txn.c command.c"
	[ddl_record]="ddl_record.c"
	[frame]="frame.c"
	[change]="change.c key.c txn.c command.c"
	[txn]="txn.c command.c"
	[served]="served.c"
)

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
for name in command entry key row snapshot ddl_record frame change txn served; do
	srcs=("$here/fuzz.c" "$here/fuzz_$name.c")
	for s in ${sources[$name]}; do
		srcs+=("$repo/src/codec/$s")
	done
	gcc "${cflags[@]}" -o "$out/fuzz_$name" "${srcs[@]}" "${libs[@]}"
	if ! "$out/fuzz_$name"; then
		echo "fuzz $name: FAILED (see the report above)" >&2
		exit 1
	fi
done
