#!/usr/bin/env bash
# Measures a new connection's first kalam read against the same read on a
# warm connection, and the private memory of backends that read kalam
# tables (issue 11), on one throwaway server (shared_buffers 256MB).
#
# A heap table heap_t (k int, v text), the baseline, gets ROWS rows
# (default 200,000) at the start, the shared kalam table t the same rows
# in phase "rows".  A probe is CONNS (default 20)
# new connections that each run `SELECT v FROM t WHERE k = 42` (heap_t for
# the heap) once (first) and WARM (default 20) more times (warm); it gives
# the p50 and p99 (nearest rank) of both, in ms.  Phases:
#   empty   t and w created, no row in them
#   rows    after ROWS rows written into t
#   more    after MORE (default 300,000) more rows into another shared
#           table w
# The rows go in as INSERTs of 50,000, with kalam.flush_interval = 0: the
# worker flushes its memtable by size only (8 MB), so a new connection's
# reader replays the primary's log since the last such flush, as before
# kalam.flush_interval existed (the reader's options are today's).  In each
# phase: the heap table, kalam "by-size", then kalam.flush_interval is set
# to its default 1000 ms and, 2 s later (the worker has flushed), kalam
# "1000ms", and the same with kalam.served_reads = 0, "own": each new
# connection opens its own RocksDB reader at its first read, where by
# default the kalam reader process answers a session's first reads; then
# a range of 20 rows (k BETWEEN 42 AND 61) on the heap table ("heap-20")
# and on t ("range-20", xheap against heap-20), and of 5,000 rows (k
# BETWEEN 1000 AND 5999, about 225 kB: more than a slot of the kalam
# reader, less than the 1 MB it reads for a session; "heap-5k",
# "range-5k"); then kalam.flush_interval
# goes back to 0 for the next load.  (A server
# always at 1000 ms
# would also have flushed every second during the loads: more, smaller
# table files.)  In the last phase, after each configuration, RSS_CONNS
# (default 30) connections held open at once each scan t fully, and the
# RssAnon of their backends is printed (max, average, and the sum).
#
# A last phase, "history", measures the first read against the write
# history: kalam.flush_interval = 10ms, kalam.flush_min_size = 0 and
# kalam.manifest_size_limit = 0 (never a new MANIFEST) while one pgbench
# client inserts single rows into a table h for HISTORY_SECONDS (default
# 60): thousands of flushes, each a
# record of the MANIFEST that a new connection's reader replays.  Probed
# then ("no-roll"), and after kalam.manifest_size_limit is set back to its
# default 64kB and the worker began a new MANIFEST ("rolled"), with the
# MANIFEST's size beside each.
#
# Prints per phase a table of the probes, the primary's live log files and
# table files, and in the last phase the RssAnon lines.
# extra = first - warm, at p50 (first_p50 - warm_p50) and p99
# (first_p99 - warm_p99); xheap = kalam's extra / the heap's in the phase.
# Sets up the machine and installs kalam first (setup.sh).  Run as root.
set -euo pipefail

ROWS=${ROWS:-200000}
MORE=${MORE:-300000}
HISTORY_SECONDS=${HISTORY_SECONDS:-60}
CONNS=${CONNS:-20}
WARM=${WARM:-20}
RSS_CONNS=${RSS_CONNS:-30}
export LC_ALL=C

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$repo/scripts/setup.sh"
# shellcheck source=scripts/lib/temp-server.sh
. "$repo/scripts/lib/temp-server.sh"

temp_server_init kalam-first-read
temp_server_start "shared_buffers = '256MB'" "kalam.flush_interval = 0" \
	"kalam.manifest_size_limit = 0"
db=$TEMP_BASE/data/kalam/db

sql() {
	as_pg "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"
}

client() {
	perl "$repo/bench/first_read_client.pl" "$1" --host "$TEMP_BASE" --port "$PGPORT" "${@:2}"
}

# storage: the primary's live log files and table files
storage() {
	local wal sst
	wal=$(find "$db" -name '*.log' -printf '%s\n' | awk '{ s += $1 } END { printf "%.1f", s / 1048576 }')
	sst=$(find "$db" -name '*.sst' | wc -l)
	echo "log files ${wal} MB, $sst table files"
}

flush_interval() {
	sql -c "ALTER SYSTEM SET kalam.flush_interval = '$1ms'" -c 'SELECT pg_reload_conf()' >/dev/null
	# The worker checks at each turn (turns at least every 100 ms), and
	# flushes without waiting: give it time to be done.
	sleep 2
}

served_reads() {
	sql -c "ALTER SYSTEM SET kalam.served_reads = $1" -c 'SELECT pg_reload_conf()' >/dev/null
}

# probe PHASE CONFIG TABLE [CONDITION]: one table row, of reads of v WHERE
# CONDITION (default k = 42); the heap's row (config heap*) first
heap_extra=""
probe() {
	local r
	r=$(client probe --conns "$CONNS" --warm "$WARM" --query "SELECT v FROM $3 WHERE ${4:-k = 42}")
	[[ "$2" = heap* ]] && heap_extra=$(echo "$r" | awk '{ print $1 - $3, $2 - $4 }')
	echo "$1 $2 $r $heap_extra" | awk '{
		e50 = $3 - $5; e99 = $4 - $6
		printf "%-6s %-8s %9.2f %9.2f %8.3f %8.3f %8.2f %9.2f %6.1f %9.2f %6.1f\n",
			$1, $2, $3, $4, $5, $6, $7, e50, ($8 > 0 ? e50 / $8 : 0), e99, ($9 > 0 ? e99 / $9 : 0)
	}'
}

# rss CONFIG TABLE: a line for after the phase's table, in rss_lines
rss_heap=""
rss_lines=""
rss() {
	local r
	r=$(client rss --conns "$RSS_CONNS" --query "SELECT count(*) FROM $2 WHERE v <> ''")
	[ "$1" = heap ] && rss_heap=$(echo "$r" | awk '{ print $2 }')
	rss_lines+=$(echo "$1 $r $rss_heap" | awk '{
		printf "  %-8s RssAnon max %6.2f avg %6.2f MB (%.2fx heap), sum of '"$RSS_CONNS"' %5.0f MB; RssFile avg %5.2f, RssShmem avg %6.2f, VmRSS max %6.2f MB\n",
			$1, $2, $3, $3 / $8, $7, $4, $5, $6
	}')$'\n'
}

phase() {
	echo
	local before after
	echo "== $1"
	before=$(storage)
	printf "%-6s %-8s %9s %9s %8s %8s %8s %9s %6s %9s %6s\n" phase config \
		first_p50 first_p99 warm_p50 warm_p99 conn_p50 extra_p50 xheap extra_p99 xheap
	probe "$1" heap heap_t
	[ "$1" = more ] && rss heap heap_t
	probe "$1" by-size t
	[ "$1" = more ] && rss by-size t
	flush_interval 1000
	after=$(storage)
	probe "$1" 1000ms t
	[ "$1" = more ] && rss 1000ms t
	served_reads 0
	probe "$1" own t
	served_reads 64
	probe "$1" heap-20 heap_t "k BETWEEN 42 AND 61"
	probe "$1" range-20 t "k BETWEEN 42 AND 61"
	probe "$1" heap-5k heap_t "k BETWEEN 1000 AND 5999"
	probe "$1" range-5k t "k BETWEEN 1000 AND 5999"
	flush_interval 0
	echo "  primary's storage: by-size $before; 1000ms $after"
	if [ -n "$rss_lines" ]; then
		echo "  backends after a full scan of t or heap_t, $RSS_CONNS open at once:"
		printf "%s" "$rss_lines"
	fi
}

sql <<SQL
CREATE EXTENSION kalam;
CREATE FOREIGN TABLE t (k int NOT NULL, v text) SERVER kalam OPTIONS (type 'shared', primary_key 'k');
CREATE FOREIGN TABLE w (k int NOT NULL, v text) SERVER kalam OPTIONS (type 'shared', primary_key 'k');
CREATE TABLE heap_t (k int PRIMARY KEY, v text);
INSERT INTO heap_t SELECT g, md5(g::text) FROM generate_series(1, $ROWS) g;
VACUUM ANALYZE heap_t;
SQL

echo "first read vs warm on $CONNS new connections ($WARM warm reads each), ms; extra = first - warm; xheap = extra / the heap's"
phase empty

# load FROM COUNT TABLE: rows FROM .. FROM+COUNT-1 in transactions of 50,000
load() {
	local first=$1 last=$(($1 + $2 - 1)) table=$3 start end
	start=$(date +%s.%N)
	for ((i = first; i <= last; i += 50000)); do
		sql -c "INSERT INTO $table SELECT g, md5(g::text) FROM generate_series($i, $((i + 49999 < last ? i + 49999 : last))) g"
	done
	end=$(date +%s.%N)
	echo "  loaded $2 rows into $table in $(echo "$end - $start" | bc) s"
}

echo
load 1 "$ROWS" t
phase rows
echo
load 1 "$MORE" w
phase more

# the size of the MANIFEST the primary writes, in kB
manifest_kb() {
	local current
	current=$(cat "$db/CURRENT")
	echo "$(($(stat -c %s "$db/$current") / 1024))"
}

echo
echo "== history"
sql -c "CREATE FOREIGN TABLE h (k bigint NOT NULL, v text) SERVER kalam OPTIONS (type 'shared', primary_key 'k')" \
	-c "INSERT INTO h VALUES (42, 'x')"
sql -c "ALTER SYSTEM SET kalam.flush_min_size = 0" >/dev/null
flush_interval 10
script=$(mktemp)
printf '%s\n' '\set k random(100, 999999999)' \
	"INSERT INTO h VALUES (:k, md5(random()::text)) ON CONFLICT DO NOTHING;" >"$script"
chmod 644 "$script"
as_pg "$PG_BIN/pgbench" -n -h "$TEMP_BASE" -p "$PGPORT" -c 1 -T "$HISTORY_SECONDS" -f "$script" postgres |
	awk '/^number of transactions actually processed/ { print "  " $0 " (single-row INSERTs, kalam.flush_interval 10ms)" }'
rm -f "$script"
sql -c "ALTER SYSTEM RESET kalam.flush_min_size" >/dev/null
flush_interval 1000
printf "%-6s %-8s %9s %9s %8s %8s %8s %9s %6s %9s %6s\n" phase config \
	first_p50 first_p99 warm_p50 warm_p99 conn_p50 extra_p50 xheap extra_p99 xheap
heap_extra=""
probe history heap heap_t
before=$(manifest_kb)
probe history no-roll h
sql -c "ALTER SYSTEM SET kalam.manifest_size_limit = '64kB'" -c 'SELECT pg_reload_conf()' >/dev/null
sleep 3
probe history rolled h
echo "  MANIFEST: no-roll ${before} kB, rolled $(manifest_kb) kB"
