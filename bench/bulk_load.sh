#!/usr/bin/env bash
# Bulk loads on one throwaway server (fsync on, shared_buffers 256MB):
# INSERT ... SELECT and COPY FROM of BULK_ROWS rows (default 500000) of
# (k int, v text) with 32-character values, into a heap table with a primary
# key, then into kalam shared tables: as a split (kalam.max_entry_size at its
# default, 4 MB: the rows go in parts and are applied off the worker's loop
# through SST files) and as one entry (kalam.max_entry_size 1GB, the path
# before splits).  Each load is one transaction into an empty table, run
# BULK_RUNS times (default 2), interleaved, 3 s apart (the worker flushes
# its memtable meanwhile, so that a load's reads do not replay the log of
# the one before).  Prints the statement and COMMIT
# times, rows/s and the ratio to the heap table, and for kalam the apply
# time of the largest entry and the longest turn of the worker's loop
# logged (over 500 ms).  Sets up the machine and installs kalam first
# (setup.sh).  Run as root.
set -euo pipefail

BULK_ROWS=${BULK_ROWS:-500000}
BULK_RUNS=${BULK_RUNS:-2}
for v in BULK_ROWS BULK_RUNS; do
	if ! [[ ${!v} =~ ^[1-9][0-9]*$ ]]; then
		echo "bulk_load.sh: $v must be a positive integer" >&2
		exit 1
	fi
done
export LC_ALL=C

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$repo/scripts/setup.sh"
# shellcheck source=scripts/lib/temp-server.sh
. "$repo/scripts/lib/temp-server.sh"

temp_server_init kalam-bulk
temp_server_start "shared_buffers = '256MB'"

sql() {
	as_pg "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"
}

sql -c 'CREATE EXTENSION kalam'
as_pg "$PG_BIN/psql" -X -q -At -c \
	"COPY (SELECT g, md5(g::text) FROM generate_series(1, $BULK_ROWS) g) TO STDOUT" \
	>"$TEMP_BASE/rows.tsv"
chown postgres:postgres "$TEMP_BASE/rows.tsv"

# Loads into a new table of the kind; prints "statement_ms commit_ms".
load() {
	local kind=$1 how=$2 table=t_$RANDOM$RANDOM create setting=''
	case $kind in
		heap) create="CREATE TABLE $table (k int PRIMARY KEY, v text)" ;;
		split) create="CREATE FOREIGN TABLE $table (k int NOT NULL, v text) SERVER kalam OPTIONS (type 'shared', primary_key 'k')" ;;
		whole)
			create="CREATE FOREIGN TABLE $table (k int NOT NULL, v text) SERVER kalam OPTIONS (type 'shared', primary_key 'k')"
			setting="SET kalam.max_entry_size = '1GB';"
			;;
	esac
	local statement
	if [ "$how" = insert ]; then
		statement="INSERT INTO $table SELECT g, md5(g::text) FROM generate_series(1, $BULK_ROWS) g;"
	else
		statement="COPY $table FROM '$TEMP_BASE/rows.tsv';"
	fi
	sql -c "$create"
	sql -c "$setting" -c '\timing on' -c 'BEGIN' -c "$statement" -c 'COMMIT' |
		awk '/^Time:/ { t[++n] = $2 } END { printf "%.0f %.0f\n", t[2], t[3] }'
	local count
	count=$(sql -At -c "SELECT count(*) FROM $table")
	if [ "$count" != "$BULK_ROWS" ]; then
		echo "bulk_load.sh: $table holds $count rows, expected $BULK_ROWS" >&2
		exit 1
	fi
	if [ "$kind" = heap ]; then
		sql -c "DROP TABLE $table"
	else
		sql -c "DROP FOREIGN TABLE $table"
	fi
}

declare -A stmt commit
for ((run = 1; run <= BULK_RUNS; run++)); do
	for how in insert copy; do
		for kind in heap split whole; do
			# not in a process substitution: its row count check must
			# stop the script, and its DROP end before the next load
			load "$kind" "$how" >"$TEMP_BASE/load.out"
			read -r s c <"$TEMP_BASE/load.out"
			# the worker flushes its memtable within kalam.flush_interval:
			# the next load's reads do not replay this one's log
			sleep 3
			stmt[$kind,$how]="${stmt[$kind,$how]:-} $s"
			commit[$kind,$how]="${commit[$kind,$how]:-} $c"
		done
	done
done

median() {
	tr ' ' '\n' | grep -v '^$' | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}

printf '\n%d rows, %d runs each (medians)\n' "$BULK_ROWS" "$BULK_RUNS"
printf '%-8s %-6s %12s %10s %10s %12s %14s\n' load table statement_ms commit_ms total_ms rows_per_s 'x heap time'
for how in insert copy; do
	heap_total=0
	for kind in heap split whole; do
		s=$(echo "${stmt[$kind,$how]}" | median)
		c=$(echo "${commit[$kind,$how]}" | median)
		total=$((s + c))
		[ "$kind" = heap ] && heap_total=$total
		printf '%-8s %-6s %12d %10d %10d %12.0f %14.2f\n' "$how" "$kind" "$s" "$c" "$total" \
			"$(echo "$BULK_ROWS * 1000 / $total" | bc -l)" "$(echo "$total / $heap_total" | bc -l)"
	done
done

echo
echo "kalam apply (kalam.stat_apply, shared group, since start):"
sql -c "SELECT entries, rows_written, entry_bytes_max, apply_max_ms FROM kalam.stat_apply WHERE group_name = 'shared' AND period = 'total'"
echo "turns of the worker's loop over 500 ms:"
grep -h -A1 'a turn of its loop took' "$TEMP_BASE/server.log" | sed 's/.*took/took/; s/.*DETAIL: */  /' || echo "none"
grep -h 'applied a split' "$TEMP_BASE/server.log" | sed 's/.*applied/applied/' || true
