#!/usr/bin/env bash
# Benchmarks replicated writes on loopback, three ways at once, in two
# workloads (BENCH_WORKLOADS, default "insert txn2": either or both):
#   insert: single-row INSERTs (autocommit, pgbench -n -M prepared, with 1
#     client and with 16 clients), replicated three ways:
#     - PostgreSQL synchronous streaming replication: a primary and two
#       standbys made by pg_basebackup -R, synchronous_standby_names =
#       'ANY 1 (s1, s2)', into a heap table with PRIMARY KEY (id);
#     - a three-node kalam cluster (kalam.user_shards = 4), into a kalam user
#       table of the same schema, on the node leading the shard of role
#       postgres;
#     - the same kalam cluster through a follower, which forwards every
#       commit to that leader.
#   txn2: a transaction that writes two Raft groups: BEGIN, one INSERT into
#     a kalam user table (the shard of role postgres), one INSERT into a
#     kalam shared table (the shared group), COMMIT; with 1 and 16 clients,
#     on the node leading the shared group (it also leads the shard of
#     postgres or not, as the elections fell: printed; if not, that group's
#     command is forwarded to its leader, as in real life).  Baseline: the
#     same two INSERTs into two heap tables in one transaction, with
#     synchronous streaming replication.
# All six servers run at once, with fsync on and otherwise default
# settings; pgbench connects as postgres.  Throughput on a shared 2-core
# machine drifts by tens of percent within minutes, so the runs interleave:
# BENCH_ROUNDS rounds (default 3), each running every setup of every
# workload for BENCH_SECONDS (default 5) with 1 and then 16 clients.  Prints
# the median tps of the rounds and the p50 and p99 latency (ms, over every
# transaction of the rounds, from pgbench's logs), and kalam / sync
# replication ratios.  Then draws the latency CDFs of those same
# transactions (every round), one panel per workload and number of clients,
# with gnuplot into a PNG: BENCH_PNG, default bench/cluster_bench.png in the
# repo (the README shows it); installs gnuplot-nox if gnuplot is missing.
# Sets up the machine and installs kalam first (setup.sh).  Run as root.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

BENCH_WORKLOADS=${BENCH_WORKLOADS:-insert txn2}
do_insert=false
do_txn2=false
for w in $BENCH_WORKLOADS; do
	case $w in
	insert) do_insert=true ;;
	txn2) do_txn2=true ;;
	*)
		echo "cluster_bench.sh: unknown workload '$w' in BENCH_WORKLOADS (insert, txn2)" >&2
		exit 1
		;;
	esac
done
if ! $do_insert && ! $do_txn2; then
	echo "cluster_bench.sh: BENCH_WORKLOADS names no workload (insert, txn2)" >&2
	exit 1
fi

# shellcheck source=scripts/lib/temp-cluster.sh
. "$repo/scripts/lib/temp-cluster.sh"
# shellcheck source=scripts/lib/bench.sh
. "$repo/scripts/lib/bench.sh"
# the picture (resolved now: bench_init changes directory)
BENCH_PNG=$(bench_png "${BENCH_PNG:-$repo/bench/cluster_bench.png}" BENCH_PNG)
bash "$repo/scripts/setup.sh"

bench_init kalam-cluster-bench

# pgbench scripts (write_insert_scripts: no two inserts collide; txn2 makes
# its keys the same way, and both of its INSERTs use the same key)
scripts=$TEMP_BASE/scripts
mkdir "$scripts"
write_insert_scripts "$scripts"
for kind in heap kalam; do
	if [ "$kind" = heap ]; then
		first=bench.heap_txn_a second=bench.heap_txn_b
	else
		first=bench.kalam_txn_user second=bench.kalam_txn_shared
	fi
	cat >"$scripts/txn2-$kind.sql" <<SQL
\set n :n + 1
\set id (:run * 1000 + :client_id) * 1000000000000 + :n
BEGIN;
INSERT INTO $first (id, room, body) VALUES (:id, 'room 1', 'a benchmark message');
INSERT INTO $second (id, room, body) VALUES (:id, 'room 1', 'a benchmark message');
COMMIT;
SQL
done
chown -R postgres:postgres "$scripts"
columns='room text, body text, sent_at timestamptz DEFAULT now()'

# A: the kalam cluster: nodes 1, 2, 3 on PostgreSQL ports NODE_PORTS[1..3].
start_kalam_cluster 3 4
kalam_tables=0
{
	echo 'CREATE SCHEMA bench;'
	if $do_insert; then
		echo "CREATE FOREIGN TABLE bench.kalam_ins (id bigint NOT NULL, $columns)
			SERVER kalam OPTIONS (type 'user', primary_key 'id');"
	fi
	if $do_txn2; then
		echo "CREATE FOREIGN TABLE bench.kalam_txn_user (id bigint NOT NULL, $columns)
			SERVER kalam OPTIONS (type 'user', primary_key 'id');
		CREATE FOREIGN TABLE bench.kalam_txn_shared (id bigint NOT NULL, $columns)
			SERVER kalam OPTIONS (type 'shared', primary_key 'id');"
	fi
} | sql "${NODE_PORTS[1]}"
$do_insert && kalam_tables=$((kalam_tables + 1))
$do_txn2 && kalam_tables=$((kalam_tables + 2))
wait_kalam_tables "$kalam_tables"
user_group=$(sql "${NODE_PORTS[1]}" -At -c "SELECT kalam.group_for_user('postgres')")
kalam_group_leader "$user_group"
leader=$LEADER
follower=$((leader % 3 + 1))

# txn2 runs on the leader of the shared group
if $do_txn2; then
	kalam_group_leader shared
	txn_node=$LEADER
fi

# txn_node_leads: "<groups node txn_node leads>; <whether that includes the
# shard of postgres>", as that node sees it now
txn_node_leads() {
	local led
	led=$(sql "${NODE_PORTS[txn_node]}" -At -c \
		"SELECT string_agg(group_name, ', ' ORDER BY group_name) FROM kalam.groups WHERE is_leader")
	if [ "$(sql "${NODE_PORTS[txn_node]}" -At -c "SELECT kalam.is_leader_for_user('postgres')")" = t ]; then
		echo "node $txn_node leads $led: both groups of the transaction (shared, $user_group)"
	else
		echo "node $txn_node leads $led: not $user_group, the shard of postgres (led by node" \
			"$(sql "${NODE_PORTS[txn_node]}" -At -c "SELECT kalam.leader_for_user('postgres')")), to which it forwards that group's command"
	fi
}
if $do_txn2; then
	txn_leads_before=$(txn_node_leads)
	echo "txn2 runs on $txn_leads_before"
fi

# B: synchronous streaming replication
start_sync_replication
primary_port=$SYNC_PORT
sql "$primary_port" <<SQL
CREATE SCHEMA bench;
CREATE TABLE bench.heap_ins (id bigint PRIMARY KEY, $columns);
CREATE TABLE bench.heap_txn_a (id bigint PRIMARY KEY, $columns);
CREATE TABLE bench.heap_txn_b (id bigint PRIMARY KEY, $columns);
SQL

for round in $(seq "$BENCH_ROUNDS"); do
	echo "Round $round of $BENCH_ROUNDS"
	if $do_insert; then
		for clients in 1 16; do
			bench "sync replication" "$primary_port" "$scripts/insert-heap.sql" "$clients"
			bench "kalam leader" "${NODE_PORTS[leader]}" "$scripts/insert-kalam.sql" "$clients"
			bench "kalam follower" "${NODE_PORTS[follower]}" "$scripts/insert-kalam.sql" "$clients"
		done
	fi
	if $do_txn2; then
		for clients in 1 16; do
			bench "txn2 sync replication" "$primary_port" "$scripts/txn2-heap.sql" "$clients"
			bench "txn2 kalam" "${NODE_PORTS[txn_node]}" "$scripts/txn2-kalam.sql" "$clients"
		done
	fi
done
if [ "$(sql "${NODE_PORTS[leader]}" -At -c "SELECT kalam.is_leader_for_user('postgres')")" != t ]; then
	echo "warning: node $leader lost the leadership of the shard of postgres during the runs" >&2
fi
if $do_txn2; then
	if [ "$(sql "${NODE_PORTS[txn_node]}" -At -c \
		"SELECT is_leader FROM kalam.groups WHERE group_name = 'shared'")" != t ]; then
		echo "warning: node $txn_node lost the leadership of the shared group during the runs" >&2
	fi
	txn_leads_after=$(txn_node_leads)
	if [ "$txn_leads_after" != "$txn_leads_before" ]; then
		echo "warning: the leaders changed during the runs; before: $txn_leads_before; after: $txn_leads_after" >&2
	fi
fi
others="$((primary_port + 1)) $((primary_port + 2))"
# each node's own copy: local reads (the default level reads on the leader only)
kalam_nodes="${NODE_PORTS[1]} ${NODE_PORTS[2]} ${NODE_PORTS[3]}"
if $do_insert; then
	poll_same_count bench.heap_ins "$primary_port" $((primary_port + 1)) $((primary_port + 2))
	PGOPTIONS='-c kalam.read_consistency=local' \
		poll_same_count bench.kalam_ins "${NODE_PORTS[leader]}" "${NODE_PORTS[follower]}" \
		"${NODE_PORTS[follower % 3 + 1]}"
fi
if $do_txn2; then
	for table in bench.heap_txn_a bench.heap_txn_b; do
		# shellcheck disable=SC2086 # split the lists of ports
		poll_same_count "$table" "$primary_port" $others
	done
	for table in bench.kalam_txn_user bench.kalam_txn_shared; do
		# shellcheck disable=SC2086 # split the lists of ports
		PGOPTIONS='-c kalam.read_consistency=local' \
			poll_same_count "$table" $kalam_nodes
	done
	# every transaction wrote one row into each table
	a=$(sql "$primary_port" -At -c 'SELECT count(*) FROM bench.heap_txn_a')
	b=$(sql "$primary_port" -At -c 'SELECT count(*) FROM bench.heap_txn_b')
	[ "$a" = "$b" ] || echo "warning: $a rows in bench.heap_txn_a, $b in bench.heap_txn_b" >&2
	a=$(PGOPTIONS='-c kalam.read_consistency=local' sql "${NODE_PORTS[txn_node]}" -At -c \
		'SELECT count(*) FROM bench.kalam_txn_user')
	b=$(PGOPTIONS='-c kalam.read_consistency=local' sql "${NODE_PORTS[txn_node]}" -At -c \
		'SELECT count(*) FROM bench.kalam_txn_shared')
	[ "$a" = "$b" ] || echo "warning: $a rows in bench.kalam_txn_user, $b in bench.kalam_txn_shared on node $txn_node" >&2
fi

declare -A result
names=()
$do_insert && names+=("sync replication" "kalam leader" "kalam follower")
$do_txn2 && names+=("txn2 sync replication" "txn2 kalam")
for name in "${names[@]}"; do
	for clients in 1 16; do
		result[$name,$clients]=$(summary "$name" "$clients")
	done
done

echo
if $do_insert; then
	where="leader node $leader, follower node $follower; "
else
	where=""
fi
echo "PostgreSQL $("$PG_BIN/postgres" -V | awk '{print $3}'), $(nproc) CPUs, loopback, fsync on," \
	"default settings, $BENCH_ROUNDS interleaved rounds of ${BENCH_SECONDS}s per run (median tps);" \
	"kalam: 3 nodes, 4 user shards," \
	"${where}p50/p99 = ms per transaction"
if $do_insert; then
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
fi
if $do_txn2; then
	$do_insert && echo
	echo "txn2 = BEGIN; INSERT into a user table (group $user_group); INSERT into a shared table" \
		"(group shared); COMMIT; sync replication: the same into two heap tables;" \
		"kalam on $txn_leads_before"
	fmt='%-10s %9s %7s %7s | %9s %7s %7s | %6s %6s\n'
	# shellcheck disable=SC2059 # fmt is the format
	printf '%-10s %-25s | %-25s | %s\n' "" "sync replication" "kalam node $txn_node" "kalam/sync"
	# shellcheck disable=SC2059 # fmt is the format
	printf "$fmt" txn2 tps p50 p99 tps p50 p99 p50 tps
	for clients in 1 16; do
		read -r s_tps s_p50 s_p99 <<<"${result[txn2 sync replication,$clients]}"
		read -r k_tps k_p50 k_p99 <<<"${result[txn2 kalam,$clients]}"
		# shellcheck disable=SC2059 # fmt is the format
		printf "$fmt" "$clients cl." \
			"$(printf '%.1f' "$s_tps")" "$s_p50" "$s_p99" \
			"$(printf '%.1f' "$k_tps")" "$k_p50" "$k_p99" \
			"$(ratio "$k_p50" "$s_p50")" "$(ratio "$k_tps" "$s_tps")"
	done
fi

# The picture: the latency CDF of each setup, from the same pgbench logs as
# p50 and p99 (every transaction of every round); a row of two panels (1 and
# 16 clients) per workload, one x range (ms, log scale) for all panels.
plot_dir=$TEMP_BASE/plot
mkdir "$plot_dir"
# curves: "workload|name|label|colour" (name as in result)
curves=()
if $do_insert; then
	curves+=("insert|sync replication|sync replication|#555555"
		"insert|kalam leader|kalam leader|#1f77b4"
		"insert|kalam follower|kalam via follower|#ff7f0e")
fi
if $do_txn2; then
	curves+=("txn2|txn2 sync replication|sync replication|#555555"
		"txn2|txn2 kalam|kalam node $txn_node|#1f77b4")
fi
declare -A plots
i=0
for clients in 1 16; do
	for curve in "${curves[@]}"; do
		IFS='|' read -r workload name label colour <<<"$curve"
		i=$((i + 1))
		cdf "$name" "$clients" >"$plot_dir/$i.dat"
		read -r _ p50 p99 <<<"${result[$name,$clients]}"
		plots[$workload,$clients]+="${plots[$workload,$clients]:+, }'$plot_dir/$i.dat' using 1:2 with steps lw 2 lc rgb '$colour' title '$label: p50 $p50, p99 $p99 ms'"
	done
done
read -r x_min x_max < <(for f in "$plot_dir"/*.dat; do
	head -n 1 "$f"
	tail -n 1 "$f"
done | awk 'NR == 1 || $1 < lo { lo = $1 } $1 > hi { hi = $1 } END { print lo / 1.25, hi * 1.25 }')
rows=0
$do_insert && rows=$((rows + 1))
$do_txn2 && rows=$((rows + 1))
terminal=$(png_terminal 1400 $((rows * 560 + 90)))
machine=$(bench_machine)
commit=$(bench_commit "$repo")
{
	echo "set terminal $terminal"
	echo "set output '$BENCH_PNG'"
	# two lines: \n inside gnuplot's double quotes
	printf 'set multiplot layout %s, 2 title "%s\\n%s"\n' "$rows" \
		"Replicated writes, latency CDF: kalam (3 nodes) vs PostgreSQL synchronous replication (2 standbys, ANY 1)" \
		"$(date +%Y-%m-%d), ${commit:+kalam $commit, }$machine, $BENCH_ROUNDS x ${BENCH_SECONDS} s per setup"
	echo "set logscale x"
	echo "set xrange [$x_min:$x_max]"
	echo "set xtics ($(for e in 0.001 0.01 0.1 1 10 100 1000; do
		for m in 1 2 5; do printf '%s, ' "$(awk -v a="$m" -v b="$e" 'BEGIN { print a * b }')"; done
	done) 10000) format '%g'"
	echo "set mxtics 10"
	echo "set yrange [0:1]"
	echo "set ytics 0.1"
	echo "set grid xtics ytics"
	echo "set xlabel 'latency per transaction (ms, log scale)'"
	echo "set ylabel 'fraction of transactions'"
	echo "set key below left Left reverse samplen 3"
	for y in 0.5 0.99; do
		echo "set arrow from graph 0, first $y to graph 1, first $y nohead dashtype 2 lc rgb '#999999'"
	done
	echo "set label 'p50' at graph 0.01, first 0.5 offset 0, 0.6 tc rgb '#777777'"
	echo "set label 'p99' at graph 0.01, first 0.99 offset 0, -0.7 tc rgb '#777777'"
	if $do_insert; then
		for clients in 1 16; do
			echo "set title 'insert: single-row INSERT, autocommit, $clients client$([ "$clients" = 1 ] || echo s)'"
			echo "plot ${plots[insert,$clients]}"
		done
	fi
	if $do_txn2; then
		for clients in 1 16; do
			echo "set title 'txn2: BEGIN; INSERT into a user table; INSERT into a shared table; COMMIT, $clients client$([ "$clients" = 1 ] || echo s)'"
			echo "plot ${plots[txn2,$clients]}"
		done
	fi
	echo "unset multiplot"
} >"$plot_dir/cdf.gp"
if ! gnuplot "$plot_dir/cdf.gp"; then
	echo "gnuplot failed on $plot_dir/cdf.gp" >&2
	exit 1
fi
echo
echo "Latency CDFs: $BENCH_PNG"
