#!/usr/bin/env bash
# Measures the ttl purge of a large stream table (issue 12) on one
# throwaway server with the installed kalam: ROWS rows (default 500,000)
# are written into a stream table with a ttl of an hour, then its ttl is
# set to 1 second, so that every row has expired, and the kalam jobs
# worker (kalam.ttl_purge_interval = 1s) deletes them.  Meanwhile a probe
# writes single-row INSERTs into a shared table (pgbench, one client): its
# Raft group is another, applied by the same loop of the kalam worker, so
# its latency shows how long the purge holds that loop.  It runs
# PROBE_SECONDS (default 30) from 1 s before the ALTER: the purge must end
# within them.
#
# Prints one line: rows, seconds from the ALTER until storage held no row
# of the table, the log entries the stream rows' group applied meanwhile,
# their longest apply (kalam.stat_apply.apply_max_ms, within 19%), and the
# probe's INSERTs: count, p99 and max latency in ms.  LABEL (default
# "kalam") starts the line.  BATCH, if set, is kalam.ttl_purge_batch.  Run
# as root; kalam must be installed.
set -euo pipefail

ROWS=${ROWS:-500000}
PROBE_SECONDS=${PROBE_SECONDS:-30}
LABEL=${LABEL:-kalam}
export LC_ALL=C

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib/temp-server.sh
. "$repo/scripts/lib/temp-server.sh"

temp_server_init kalam-ttl-purge
temp_server_start "kalam.ttl_purge_interval = 1" \
	${BATCH:+"kalam.ttl_purge_batch = $BATCH"}
q() { as_pg "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -At "$@"; }

q -c "CREATE EXTENSION kalam" -c "CREATE SCHEMA app" -c "
	CREATE FOREIGN TABLE app.s (k int, v text)
	  SERVER kalam OPTIONS (type 'stream', primary_key 'k', ttl '1 hour')" -c "
	CREATE FOREIGN TABLE app.probe (k bigint, v text)
	  SERVER kalam OPTIONS (type 'shared', primary_key 'k')"
id=$(q -c "SELECT id FROM kalam.tables WHERE \"table\" = 'app.s'::regclass")
# the same stored rows through a ttl that never expires them
q -c "CREATE FOREIGN TABLE app.s_all (k int, v text)
	SERVER kalam OPTIONS (type 'stream', primary_key 'k', ttl '100 years', table_id '$id')"
for ((first = 1; first <= ROWS; first += 50000)); do
	last=$((first + 49999 < ROWS ? first + 49999 : ROWS))
	q -c "INSERT INTO app.s SELECT g, 'a row of a stream table ' || g FROM generate_series($first, $last) g"
done
group=$(q -c "SELECT kalam.group_for_user(current_user)")

cat >"$TEMP_BASE/probe.sql" <<'SQL'
\set n random(1, 1000000000000)
INSERT INTO app.probe VALUES (:n, 'probe') ON CONFLICT DO NOTHING;
SQL
chown postgres "$TEMP_BASE/probe.sql"
sleep 2
q -c "SELECT kalam.stat_apply_reset()" >/dev/null
(cd "$TEMP_BASE" && as_pg "$PG_BIN/pgbench" -n -T "$PROBE_SECONDS" -c 1 -l \
	--log-prefix=probe -f probe.sql >probe.out 2>&1) &
probe=$!
sleep 1
start=$(date +%s.%N)
q -c "ALTER FOREIGN TABLE app.s OPTIONS (SET ttl '1 second')"
until [ "$(q -c "SELECT NOT EXISTS (SELECT 1 FROM app.s_all)")" = t ]; do
	sleep 0.2
done
end=$(date +%s.%N)
wait "$probe" || { echo "the probe failed:" >&2; cat "$TEMP_BASE/probe.out" >&2; exit 1; }
read -r entries apply_max < <(q -F ' ' -c "
	SELECT entries, apply_max_ms FROM kalam.stat_apply
	 WHERE group_name = '$group' AND period = 'total'")
probe_stats=$(cat "$TEMP_BASE"/probe.[0-9]* | awk '$3 ~ /^[0-9]+$/ { print $3 / 1000 }' |
	sort -n | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print "0 - -"; exit }
		i = int(NR * 0.99 + 0.5); if (i < 1) i = 1
		printf "%d %.1f %.1f\n", NR, v[i], v[NR] }')
printf '%s%s rows=%d purge_s=%.1f entries=%s apply_max_ms=%s probe_inserts/p99_ms/max_ms=%s\n' \
	"$LABEL" "${BATCH:+ batch=$BATCH}" "$ROWS" "$(echo "$end - $start" | bc -l)" "$entries" "$apply_max" \
	"$(echo "$probe_stats" | tr ' ' '/')"
