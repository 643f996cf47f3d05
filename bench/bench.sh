#!/usr/bin/env bash
# Benchmarks kalam against PostgreSQL heap tables of the same schema on one
# throwaway server (fsync on, shared_buffers 256MB, other settings default),
# with pgbench custom scripts (-n -M prepared, BENCH_SECONDS each, default 10):
# single-row INSERT with 1 and 8 clients, point SELECT by key and full scans
# of 100k rows.  Connects as the ordinary role bench, so kalam's user-table
# semantics apply.  Prints tps, average latency and the kalam/heap latency
# ratio.  Sets up the machine and installs kalam first (setup.sh).  Run as root.
set -euo pipefail

BENCH_SECONDS=${BENCH_SECONDS:-10}
if ! [[ $BENCH_SECONDS =~ ^[1-9][0-9]*$ ]]; then
	echo "bench.sh: BENCH_SECONDS must be a positive integer" >&2
	exit 1
fi
ROWS=100000
# pgbench and printf format numbers by locale; the parsing below expects C.
export LC_ALL=C

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$repo/scripts/setup.sh"
# shellcheck source=scripts/lib/temp-server.sh
. "$repo/scripts/lib/temp-server.sh"

temp_server_init kalam-bench
temp_server_start "shared_buffers = '256MB'"

sql() {
	as_pg "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"
}

# Tables heap_<t> and kalam_<t>: <t> = ins for the INSERT tests, read for the
# SELECT tests (exactly $ROWS rows, ids 1..$ROWS).
columns='room text, body text, sent_at timestamptz DEFAULT now()'
sql <<SQL
CREATE EXTENSION kalam;
CREATE ROLE bench LOGIN;
CREATE SCHEMA bench;
GRANT USAGE ON SCHEMA bench TO bench;
CREATE TABLE bench.heap_ins (id bigint PRIMARY KEY, $columns);
CREATE TABLE bench.heap_read (id bigint PRIMARY KEY, $columns);
CREATE FOREIGN TABLE bench.kalam_ins (id bigint NOT NULL, $columns)
    SERVER kalam OPTIONS (type 'user', primary_key 'id');
CREATE FOREIGN TABLE bench.kalam_read (id bigint NOT NULL, $columns)
    SERVER kalam OPTIONS (type 'user', primary_key 'id');
GRANT SELECT, INSERT, UPDATE, DELETE
    ON bench.heap_ins, bench.heap_read, bench.kalam_ins, bench.kalam_read TO bench;
SQL

echo "Loading $ROWS rows into bench.heap_read and bench.kalam_read (as role bench)..."
for table in heap_read kalam_read; do
	for ((first = 1; first <= ROWS; first += 10000)); do
		sql -U bench -c "INSERT INTO bench.$table (id, room, body)
			SELECT g, 'room ' || g % 10, md5(g::text)
			FROM generate_series($first, $((first + 9999 < ROWS ? first + 9999 : ROWS))) g"
	done
	count=$(sql -U bench -At -c "SELECT count(*) FROM bench.$table")
	if [ "$count" != "$ROWS" ]; then
		echo "bench.$table has $count rows for role bench, expected $ROWS" >&2
		exit 1
	fi
done
sql -c 'VACUUM ANALYZE bench.heap_read'

# pgbench scripts
scripts=$TEMP_BASE/scripts
mkdir "$scripts"
write_insert_scripts "$scripts"
for kind in heap kalam; do
	cat >"$scripts/point-$kind.sql" <<SQL
\set id random(1, $ROWS)
SELECT id, room, body, sent_at FROM bench.${kind}_read WHERE id = :id;
SQL
	echo "SELECT count(*) FROM bench.${kind}_read;" >"$scripts/scan-$kind.sql"
done
chown -R postgres:postgres "$scripts"

# Runs pgbench; prints "tps latency_ms".  Extra arguments go to pgbench.
run_pgbench() {
	local script=$1
	shift
	sql -c CHECKPOINT >/dev/null || return
	pgbench_run -U bench -f "$script" "$@"
}

results=()
bench_case() {
	local label=$1 test=$2 heap kalam
	shift 2
	echo "Running: $label (${BENCH_SECONDS}s heap, ${BENCH_SECONDS}s kalam)..."
	heap=$(run_pgbench "$scripts/$test-heap.sql" "$@")
	kalam=$(run_pgbench "$scripts/$test-kalam.sql" "$@")
	results+=("$label|$heap|$kalam")
}

bench_case "insert, 1 client" insert -c 1 -D run=1 -D n=0
bench_case "insert, 8 clients" insert -c 8 -D run=2 -D n=0
bench_case "point select by id, 1 client" point -c 1
bench_case "count(*) of $ROWS rows, 1 client" scan -c 1

echo
echo "PostgreSQL $("$PG_BIN/postgres" -V | awk '{print $3}'), $(nproc) CPUs, fsync on," \
	"shared_buffers 256MB, ${BENCH_SECONDS}s per run; latency = average ms per transaction"
fmt='%-36s %11s %9s %11s %9s %15s\n'
# shellcheck disable=SC2059 # fmt is the format
printf "$fmt" test "heap tps" "heap ms" "kalam tps" "kalam ms" "latency k/h"
for row in "${results[@]}"; do
	IFS='|' read -r label heap kalam <<<"$row"
	read -r heap_tps heap_lat <<<"$heap"
	read -r kalam_tps kalam_lat <<<"$kalam"
	# shellcheck disable=SC2059 # fmt is the format
	printf "$fmt" "$label" "$(printf '%.1f' "$heap_tps")" "$heap_lat" \
		"$(printf '%.1f' "$kalam_tps")" "$kalam_lat" \
		"$(awk -v k="$kalam_lat" -v h="$heap_lat" 'BEGIN { printf "%.2f", (h > 0 ? k / h : 0) }')"
done
