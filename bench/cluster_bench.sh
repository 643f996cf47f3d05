#!/usr/bin/env bash
# Benchmarks single-row INSERTs (autocommit, pgbench -n -M prepared,
# BENCH_SECONDS each, default 10, with 1 client and with 16 clients) on
# loopback, replicated three ways, one after the other:
#   - PostgreSQL synchronous streaming replication: a primary and two standbys
#     made by pg_basebackup -R, synchronous_standby_names = 'ANY 1 (s1, s2)',
#     into a heap table with PRIMARY KEY (id);
#   - a three-node kalam cluster (kalam.user_shards = 4), into a kalam user
#     table of the same schema, on the node leading the shard of role postgres;
#   - the same kalam cluster through a follower, which forwards every commit
#     to that leader.
# All servers run with fsync on and otherwise default settings; pgbench
# connects as postgres.  Prints tps and the p50 and p99 latency (ms, from
# pgbench's per-transaction logs), and kalam-leader / sync-replication
# ratios.  Sets up the machine and installs kalam first (setup.sh).  Run as
# root.
set -euo pipefail

BENCH_SECONDS=${BENCH_SECONDS:-10}
if ! [[ $BENCH_SECONDS =~ ^[1-9][0-9]*$ ]]; then
	echo "cluster_bench.sh: BENCH_SECONDS must be a positive integer" >&2
	exit 1
fi
# seconds to wait for leaders, replicated DDL, standbys and replicated rows
WAIT_SECONDS=30
# pgbench and printf format numbers by locale; the parsing below expects C.
export LC_ALL=C

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$repo/scripts/setup.sh"
# shellcheck source=scripts/lib/temp-server.sh
. "$repo/scripts/lib/temp-server.sh"

# Every server's data directory is $TEMP_BASE/NAME, its log $TEMP_BASE/NAME.log
# and its unix socket is in $TEMP_BASE.  Under /tmp: postgres must reach it.
TEMP_BASE=$(mktemp -d /tmp/kalam-cluster-bench.XXXXXX)
chown postgres:postgres "$TEMP_BASE"
# Commands run as postgres need a cwd they can enter (not e.g. /root).
cd "$TEMP_BASE"
export PGHOST=$TEMP_BASE PGUSER=postgres PGDATABASE=postgres

stop_node() {
	as_pg "$PG_BIN/pg_ctl" -D "$1" -m fast -w -t 60 stop >/dev/null ||
		as_pg "$PG_BIN/pg_ctl" -D "$1" -m immediate -w stop >/dev/null ||
		echo "warning: could not stop the server in $1" >&2
}

cleanup() {
	local status=$? pid_file log
	cd /
	if [ "$status" -ne 0 ]; then
		for log in "$TEMP_BASE"/*.log; do
			[ -f "$log" ] || continue
			echo "--- last lines of $(basename "$log"):" >&2
			tail -n 20 "$log" >&2
		done
	fi
	for pid_file in "$TEMP_BASE"/*/postmaster.pid; do
		[ -f "$pid_file" ] || continue
		stop_node "$(dirname "$pid_file")"
	done
	rm -rf "$TEMP_BASE"
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# alloc_ports COUNT: sets PORTS to the first of COUNT consecutive ports on
# which nothing accepts connections on 127.0.0.1, above all ports allocated
# before and below Linux's ephemeral range (32768-60999).
next_port=$((20000 + RANDOM % 8000))
alloc_ports() {
	local count=$1 port
	while ((next_port + count <= 32768)); do
		for ((port = next_port; port < next_port + count; port++)); do
			if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
				break
			fi
		done
		if ((port == next_port + count)); then
			PORTS=$next_port
			next_port=$port
			return 0
		fi
		next_port=$((port + 1))
	done
	echo "no $count consecutive free ports on 127.0.0.1" >&2
	return 1
}

init_node() {
	if ! as_pg "$PG_BIN/initdb" -D "$TEMP_BASE/$1" -U postgres -A trust -E UTF8 --no-locale \
		>"$TEMP_BASE/initdb.out" 2>&1; then
		cat "$TEMP_BASE/initdb.out" >&2
		return 1
	fi
	{
		echo "listen_addresses = '127.0.0.1'"
		echo "unix_socket_directories = '$TEMP_BASE'"
	} >>"$TEMP_BASE/$1/postgresql.conf"
}

# start_node NAME PORT [LINE...]: appends LINEs to postgresql.conf, starts
start_node() {
	local name=$1 port=$2 line
	shift 2
	for line in "$@"; do
		echo "$line"
	done >>"$TEMP_BASE/$name/postgresql.conf"
	if ! as_pg "$PG_BIN/pg_ctl" -D "$TEMP_BASE/$name" -l "$TEMP_BASE/$name.log" -w -t 120 \
		-o "-p $port" start >/dev/null; then
		echo "server $name did not start on port $port" >&2
		return 1
	fi
}

# sql PORT PSQL-ARGS...
sql() {
	local port=$1
	shift
	as_pg "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -p "$port" "$@"
}

# poll PORT QUERY: waits up to WAIT_SECONDS for QUERY to return true
poll() {
	local port=$1 query=$2 answer deadline=$((SECONDS + WAIT_SECONDS))
	while ((SECONDS < deadline)); do
		answer=$(sql "$port" -At -c "$query" 2>&1) || true
		[ "$answer" = t ] && return 0
		sleep 0.2
	done
	echo "port $port: no true within ${WAIT_SECONDS}s from: $query" >&2
	echo "last answer: $answer" >&2
	return 1
}

# poll_same_count TABLE PORT OTHER-PORT...: warns unless every other server
# shows as many rows of TABLE as the one at PORT within WAIT_SECONDS
poll_same_count() {
	local table=$1 port=$2 count other
	shift 2
	count=$(sql "$port" -At -c "SELECT count(*) FROM $table")
	for other in "$@"; do
		poll "$other" "SELECT count(*) = $count FROM $table" ||
			echo "warning: the $count rows of $table on port $port did not all reach port $other" >&2
	done
}

# pgbench scripts.  An inserted id is (run * 1000 + client) * 10^12 + n, where
# n counts the client's transactions (pgbench keeps a client's variables from
# one transaction to the next; -D n=0 starts it): no two inserts collide.
scripts=$TEMP_BASE/scripts
logs=$TEMP_BASE/pgbench-logs
mkdir "$scripts" "$logs"
for kind in heap kalam; do
	cat >"$scripts/insert-$kind.sql" <<SQL
\set n :n + 1
\set id (:run * 1000 + :client_id) * 1000000000000 + :n
INSERT INTO bench.${kind}_ins (id, room, body) VALUES (:id, 'room 1', 'a benchmark message');
SQL
done
chown -R postgres:postgres "$scripts" "$logs"
columns='room text, body text, sent_at timestamptz DEFAULT now()'

# run_pgbench PORT KIND RUN PGBENCH-ARGS...: runs the insert script of KIND
# against the server at PORT; prints "tps p50_ms p99_ms"
run_pgbench() {
	local port=$1 kind=$2 run=$3 out=$TEMP_BASE/pgbench.out tps
	shift 3
	sql "$port" -c CHECKPOINT >/dev/null || return
	if ! as_pg "$PG_BIN/pgbench" -n -M prepared -T "$BENCH_SECONDS" -p "$port" \
		-f "$scripts/insert-$kind.sql" -D run="$run" -D n=0 \
		--log --log-prefix="$logs/run$run" "$@" >"$out" 2>&1; then
		echo "pgbench failed on port $port:" >&2
		cat "$out" >&2
		return 1
	fi
	if ! tps=$(awk '
		/^number of transactions actually processed: / { done = $6 }
		/^number of failed transactions: / { failed = $5 }
		/^tps = [0-9.]+ / { tps = $3 }
		END {
			if (done + 0 == 0 || failed + 0 != 0 || tps == "") exit 1
			print tps
		}' "$out"); then
		echo "unexpected pgbench output on port $port:" >&2
		cat "$out" >&2
		return 1
	fi
	# Per-transaction log lines: client, transaction, latency in us, ...
	# The percentiles are nearest-rank.
	if ! cat "$logs/run$run".* | awk '$3 ~ /^[0-9]+$/ { print $3 }' | sort -n |
		awk -v tps="$tps" '
			{ lat[NR] = $1 }
			END {
				if (NR == 0) exit 1
				printf "%s %.3f %.3f\n", tps,
					lat[int((NR * 50 + 99) / 100)] / 1000, lat[int((NR * 99 + 99) / 100)] / 1000
			}'; then
		echo "no latencies in pgbench's logs $logs/run$run.*" >&2
		return 1
	fi
}

# bench NAME PORT KIND: runs the insert script of KIND against the server at
# PORT with 1 and with 16 clients; result[NAME,CLIENTS] = "tps p50_ms p99_ms"
declare -A result
run=0
bench() {
	local name=$1 port=$2 kind=$3 clients r
	for clients in 1 16; do
		run=$((run + 1))
		echo "Running: $name, $clients client(s), port $port (${BENCH_SECONDS}s)..."
		r=$(run_pgbench "$port" "$kind" "$run" -c "$clients" -j $((clients > 1 ? 2 : 1)))
		result[$name,$clients]=$r
	done
}

# A: the kalam cluster.  Node i: PostgreSQL on pg_port[i], Raft groups on
# raft_port[i] + 0..5 (meta, shared, 4 user shards), forwarding on + 6.
declare -a pg_port raft_port
for i in 1 2 3; do
	alloc_ports 8
	pg_port[i]=$PORTS
	raft_port[i]=$((PORTS + 1))
done
peers="1@127.0.0.1:${raft_port[1]},2@127.0.0.1:${raft_port[2]},3@127.0.0.1:${raft_port[3]}"
echo "Starting a kalam cluster (PostgreSQL ports ${pg_port[*]}, Raft ports ${raft_port[*]} + 0..6)..."
for i in 1 2 3; do
	init_node "kalam$i"
	start_node "kalam$i" "${pg_port[i]}" \
		"shared_preload_libraries = 'kalam'" \
		"kalam.node_id = $i" \
		"kalam.raft_address = '127.0.0.1:${raft_port[i]}'" \
		"kalam.peers = '$peers'" \
		"kalam.user_shards = 4"
done
for i in 1 2 3; do
	sql "${pg_port[i]}" -c 'CREATE EXTENSION kalam'
done
for i in 1 2 3; do
	poll "${pg_port[i]}" 'SELECT count(*) = 0 FROM kalam.groups WHERE leader_id IS NULL'
done
sql "${pg_port[1]}" <<SQL
CREATE SCHEMA bench;
CREATE FOREIGN TABLE bench.kalam_ins (id bigint NOT NULL, $columns)
    SERVER kalam OPTIONS (type 'user', primary_key 'id');
SQL
for i in 1 2 3; do
	poll "${pg_port[i]}" 'SELECT count(*) = 1 FROM kalam.tables'
done
leader=$(sql "${pg_port[1]}" -At -c "SELECT kalam.leader_for_user('postgres')")
if ! [[ $leader =~ ^[123]$ ]]; then
	echo "kalam.leader_for_user('postgres') on node 1 is '$leader'" >&2
	exit 1
fi
poll "${pg_port[leader]}" "SELECT kalam.is_leader_for_user('postgres')"
follower=$((leader % 3 + 1))
bench "kalam leader" "${pg_port[leader]}" kalam
if [ "$(sql "${pg_port[leader]}" -At -c "SELECT kalam.is_leader_for_user('postgres')")" != t ]; then
	echo "warning: node $leader lost the leadership of the shard of postgres during the runs" >&2
fi
bench "kalam follower" "${pg_port[follower]}" kalam
poll_same_count bench.kalam_ins "${pg_port[leader]}" "${pg_port[follower]}" \
	"${pg_port[follower % 3 + 1]}"
for i in 1 2 3; do
	stop_node "$TEMP_BASE/kalam$i"
done

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
bench "sync replication" "$primary_port" heap
poll_same_count bench.heap_ins "$primary_port" $((primary_port + 1)) $((primary_port + 2))

echo
echo "PostgreSQL $("$PG_BIN/postgres" -V | awk '{print $3}'), $(nproc) CPUs, loopback, fsync on," \
	"default settings, ${BENCH_SECONDS}s per run; kalam: 3 nodes, 4 user shards," \
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
		"$(awk -v k="$l_p50" -v s="$s_p50" 'BEGIN { printf "%.2f", (s > 0 ? k / s : 0) }')" \
		"$(awk -v k="$l_tps" -v s="$s_tps" 'BEGIN { printf "%.2f", (s > 0 ? k / s : 0) }')"
done
