#!/usr/bin/env bash
# Benchmarks single-row INSERTs (autocommit, pgbench -n -M prepared, with 1
# client and with 16 clients) on loopback, replicated three ways:
#   - PostgreSQL synchronous streaming replication: a primary and two standbys
#     made by pg_basebackup -R, synchronous_standby_names = 'ANY 1 (s1, s2)',
#     into a heap table with PRIMARY KEY (id);
#   - a three-node kalam cluster (kalam.user_shards = 4), into a kalam user
#     table of the same schema, on the node leading the shard of role postgres;
#   - the same kalam cluster through a follower, which forwards every commit
#     to that leader.
# All six servers run at once, with fsync on and otherwise default
# settings; pgbench connects as postgres.  Throughput on a shared 2-core
# machine drifts by tens of percent within minutes, so the runs interleave:
# BENCH_ROUNDS rounds (default 3), each running every setup for
# BENCH_SECONDS (default 5) with 1 and then 16 clients.  Prints the median
# tps of the rounds and the p50 and p99 latency (ms, over every transaction
# of the rounds, from pgbench's logs), and kalam-leader / sync-replication
# ratios.  Sets up the machine and installs kalam first (setup.sh).  Run as
# root.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$repo/scripts/setup.sh"
# shellcheck source=scripts/lib/temp-cluster.sh
. "$repo/scripts/lib/temp-cluster.sh"
# shellcheck source=scripts/lib/bench.sh
. "$repo/scripts/lib/bench.sh"

bench_init kalam-cluster-bench

# pgbench scripts (write_insert_scripts: no two inserts collide)
scripts=$TEMP_BASE/scripts
mkdir "$scripts"
write_insert_scripts "$scripts"
chown -R postgres:postgres "$scripts"
columns='room text, body text, sent_at timestamptz DEFAULT now()'

# A: the kalam cluster: nodes 1, 2, 3 on PostgreSQL ports NODE_PORTS[1..3].
start_kalam_cluster 3 4
sql "${NODE_PORTS[1]}" <<SQL
CREATE SCHEMA bench;
CREATE FOREIGN TABLE bench.kalam_ins (id bigint NOT NULL, $columns)
    SERVER kalam OPTIONS (type 'user', primary_key 'id');
SQL
for i in 1 2 3; do
	poll "${NODE_PORTS[i]}" 'SELECT count(*) = 1 FROM kalam.tables'
done
leader=$(sql "${NODE_PORTS[1]}" -At -c "SELECT kalam.leader_for_user('postgres')")
if ! [[ $leader =~ ^[123]$ ]]; then
	echo "kalam.leader_for_user('postgres') on node 1 is '$leader'" >&2
	exit 1
fi
poll "${NODE_PORTS[leader]}" "SELECT kalam.is_leader_for_user('postgres')"
follower=$((leader % 3 + 1))

# B: synchronous streaming replication
alloc_ports 3
primary_port=$PORTS
echo "Starting a primary (port $primary_port) and two synchronous standbys..."
init_node primary
start_node primary "$primary_port" "synchronous_standby_names = 'ANY 1 (s1, s2)'"
for i in 1 2; do
	# -R writes primary_conninfo with this application_name into the standby
	if ! as_pg "$PG_BIN/pg_basebackup" -D "$TEMP_BASE/s$i" -R -c fast \
		-d "host=$TEMP_BASE port=$primary_port user=postgres application_name=s$i" \
		>"$TEMP_BASE/basebackup.out" 2>&1; then
		cat "$TEMP_BASE/basebackup.out" >&2
		exit 1
	fi
	start_node "s$i" $((primary_port + i))
done
poll "$primary_port" "SELECT count(*) = 2 FROM pg_stat_replication
	WHERE application_name IN ('s1', 's2') AND state = 'streaming'
	AND sync_state IN ('sync', 'quorum')"
sql "$primary_port" <<SQL
CREATE SCHEMA bench;
CREATE TABLE bench.heap_ins (id bigint PRIMARY KEY, $columns);
SQL

for round in $(seq "$BENCH_ROUNDS"); do
	echo "Round $round of $BENCH_ROUNDS"
	for clients in 1 16; do
		bench "sync replication" "$primary_port" "$scripts/insert-heap.sql" "$clients"
		bench "kalam leader" "${NODE_PORTS[leader]}" "$scripts/insert-kalam.sql" "$clients"
		bench "kalam follower" "${NODE_PORTS[follower]}" "$scripts/insert-kalam.sql" "$clients"
	done
done
if [ "$(sql "${NODE_PORTS[leader]}" -At -c "SELECT kalam.is_leader_for_user('postgres')")" != t ]; then
	echo "warning: node $leader lost the leadership of the shard of postgres during the runs" >&2
fi
poll_same_count bench.heap_ins "$primary_port" $((primary_port + 1)) $((primary_port + 2))
# each node's own copy: local reads (the default level reads on the leader only)
PGOPTIONS='-c kalam.read_consistency=local' \
	poll_same_count bench.kalam_ins "${NODE_PORTS[leader]}" "${NODE_PORTS[follower]}" \
	"${NODE_PORTS[follower % 3 + 1]}"

declare -A result
for name in "sync replication" "kalam leader" "kalam follower"; do
	for clients in 1 16; do
		result[$name,$clients]=$(summary "$name" "$clients")
	done
done

echo
echo "PostgreSQL $("$PG_BIN/postgres" -V | awk '{print $3}'), $(nproc) CPUs, loopback, fsync on," \
	"default settings, $BENCH_ROUNDS interleaved rounds of ${BENCH_SECONDS}s per run (median tps);" \
	"kalam: 3 nodes, 4 user shards," \
	"leader node $leader, follower node $follower; p50/p99 = ms per transaction"
fmt='%-10s %9s %7s %7s | %9s %7s %7s | %9s %7s %7s | %6s %6s\n'
# shellcheck disable=SC2059 # fmt is the format
printf '%-10s %-25s | %-25s | %-25s | %s\n' "" "sync replication" "kalam leader" \
	"kalam via follower" "leader/sync"
# shellcheck disable=SC2059 # fmt is the format
printf "$fmt" insert tps p50 p99 tps p50 p99 tps p50 p99 p50 tps
for clients in 1 16; do
	read -r s_tps s_p50 s_p99 <<<"${result[sync replication,$clients]}"
	read -r l_tps l_p50 l_p99 <<<"${result[kalam leader,$clients]}"
	read -r f_tps f_p50 f_p99 <<<"${result[kalam follower,$clients]}"
	# shellcheck disable=SC2059 # fmt is the format
	printf "$fmt" "$clients cl." \
		"$(printf '%.1f' "$s_tps")" "$s_p50" "$s_p99" \
		"$(printf '%.1f' "$l_tps")" "$l_p50" "$l_p99" \
		"$(printf '%.1f' "$f_tps")" "$f_p50" "$f_p99" \
		"$(ratio "$l_p50" "$s_p50")" "$(ratio "$l_tps" "$s_tps")"
done
