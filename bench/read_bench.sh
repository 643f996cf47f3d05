#!/usr/bin/env bash
# Benchmarks point SELECTs by primary key (pgbench -n -M prepared, 1 and 16
# clients) on a three-node kalam cluster on loopback, at each read level:
#   - heap: a heap table of the same schema and rows on the leader node, the
#     baseline;
#   - kalam leader: a kalam user table, on the node leading the shard of
#     role postgres, at kalam.read_consistency 'leader' (the default);
#   - kalam linearizable on the leader: every read waits for a barrier
#     entry that confirms the leadership (shared by the reads waiting);
#   - kalam linearizable on a follower: the leader confirms, the follower
#     waits until it applied as far;
#   - kalam local on a follower: no check.
# 10,000 rows.  Runs interleave (BENCH_ROUNDS rounds, default 3, of
# BENCH_SECONDS, default 5, per run) because throughput on a shared 2-core
# machine drifts by tens of percent within minutes.  Prints the median tps,
# p50 and p99 latency (ms) and the ratios to the heap and to 'leader'.  Sets
# up the machine and installs kalam first (setup.sh).  Run as root.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$repo/scripts/setup.sh"
# shellcheck source=scripts/lib/temp-cluster.sh
. "$repo/scripts/lib/temp-cluster.sh"
# shellcheck source=scripts/lib/bench.sh
. "$repo/scripts/lib/bench.sh"

bench_init kalam-read-bench
scripts=$TEMP_BASE/scripts
mkdir "$scripts"
for table in heap_kv kv; do
	printf '\\set k random(1, 10000)\nSELECT v FROM bench.%s WHERE k = :k;\n' "$table" \
		>"$scripts/select-$table.sql"
done
chown -R postgres:postgres "$scripts"

start_kalam_cluster 3 2
leader=$(sql "${NODE_PORTS[1]}" -At -c "SELECT kalam.leader_for_user('postgres')")
if ! [[ $leader =~ ^[123]$ ]]; then
	echo "kalam.leader_for_user('postgres') on node 1 is '$leader'" >&2
	exit 1
fi
follower=$((leader % 3 + 1))
sql "${NODE_PORTS[leader]}" <<SQL
CREATE SCHEMA bench;
CREATE FOREIGN TABLE bench.kv (k int NOT NULL, v text)
    SERVER kalam OPTIONS (type 'user', primary_key 'k');
CREATE TABLE bench.heap_kv (k int PRIMARY KEY, v text);
INSERT INTO bench.kv SELECT g, md5(g::text) FROM generate_series(1, 10000) g;
INSERT INTO bench.heap_kv SELECT g, md5(g::text) FROM generate_series(1, 10000) g;
VACUUM ANALYZE bench.heap_kv;
SQL
PGOPTIONS='-c kalam.read_consistency=local' \
	poll "${NODE_PORTS[follower]}" 'SELECT count(*) = 10000 FROM bench.kv'

for round in $(seq "$BENCH_ROUNDS"); do
	echo "Round $round of $BENCH_ROUNDS"
	for clients in 1 16; do
		bench "heap" "${NODE_PORTS[leader]}" "$scripts/select-heap_kv.sql" "$clients"
		bench "leader" "${NODE_PORTS[leader]}" "$scripts/select-kv.sql" "$clients"
		PGOPTIONS='-c kalam.read_consistency=linearizable' \
			bench "linearizable@leader" "${NODE_PORTS[leader]}" "$scripts/select-kv.sql" "$clients"
		PGOPTIONS='-c kalam.read_consistency=linearizable' \
			bench "linearizable@follower" "${NODE_PORTS[follower]}" "$scripts/select-kv.sql" "$clients"
		PGOPTIONS='-c kalam.read_consistency=local' \
			bench "local@follower" "${NODE_PORTS[follower]}" "$scripts/select-kv.sql" "$clients"
	done
done
if [ "$(sql "${NODE_PORTS[leader]}" -At -c "SELECT kalam.is_leader_for_user('postgres')")" != t ]; then
	echo "warning: node $leader lost the leadership of the shard of postgres during the runs" >&2
fi

echo
echo "PostgreSQL $("$PG_BIN/postgres" -V | awk '{print $3}'), $(nproc) CPUs, loopback, fsync on," \
	"$BENCH_ROUNDS interleaved rounds of ${BENCH_SECONDS}s per run (median tps);" \
	"kalam: 3 nodes, leader node $leader, follower node $follower; point SELECT of 10,000 rows"
fmt='%-22s %7s %10s %8s %8s %10s %11s\n'
for clients in 1 16; do
	echo
	# shellcheck disable=SC2059 # fmt is the format
	printf "$fmt" "$clients client(s)" tps p50_ms p99_ms p50/heap "tps/heap" "p50/leader"
	read -r h_tps h_p50 _ <<<"$(summary heap "$clients")"
	read -r _ l_p50 _ <<<"$(summary leader "$clients")"
	for name in heap leader linearizable@leader linearizable@follower local@follower; do
		read -r t p50 p99 <<<"$(summary "$name" "$clients")"
		# shellcheck disable=SC2059 # fmt is the format
		printf "$fmt" "$name" "$(printf '%.0f' "$t")" "$p50" "$p99" \
			"$(ratio "$p50" "$h_p50")" "$(ratio "$t" "$h_tps")" "$(ratio "$p50" "$l_p50")"
	done
done
