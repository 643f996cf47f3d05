#!/usr/bin/env bash
# Benchmarks live queries (the kalam notifier) on a three-node kalam cluster
# on loopback (kalam.user_shards = 2), with a kalam shared table
# bench.kalam_ins (id bigint primary key, room, body, sent_at): how soon a
# committed change reaches the clients that LISTEN to it, on the node that
# committed it and on a node that only applies it, and what listening costs
# the writers.
#   - Latency: bench/live_client.pl, one Perl process with one event loop
#     (one clock), commits single-row INSERTs on the leader of the shared
#     group, in autocommit, with 1 and with 16 writer connections (async:
#     each sends its next INSERT as soon as the last returned), while one
#     connection on the leader and one on a follower LISTEN on
#     kalam.channel('bench.kalam_ins').  A notification's latency is the
#     time it was read minus the time its INSERT's result was read, matched
#     by the key in the payload; it is negative when the notification came
#     first.  Also the time from sending the INSERT to the notification,
#     the whole path a client sees.  Notifications per second: those read
#     within the run, per listener; missing: commits never notified.
#   - The baseline of the latency, in the same run: PostgreSQL's own NOTIFY,
#     an AFTER INSERT trigger that pg_notify()s a payload of the same shape
#     on a heap table bench.heap_ins on the leader node, a listener on that
#     server, 1 writer, measured the same way.  Prints kalam / baseline p50.
#     PostgreSQL queues a notification before the COMMIT returns, so the
#     baseline's latency is the event loop's (microseconds): the ratio of
#     the sent->notification times compares the whole paths.
#   - What listening costs: pgbench (-n -M prepared, 16 clients), single-row
#     INSERTs into bench.kalam_ins on the leader, with no listener and with
#     100 listener connections (one more live_client.pl process that reads
#     every notification) spread round-robin over the three nodes (34 on
#     node 1, 33 on each other: every node's notifier works, and no node
#     needs more than its default max_connections).  Prints the tps ratio
#     (target >= 0.80) and how many of the notifications due (rows inserted
#     x listeners) the listeners got.  The listeners' client runs on the
#     same 2 cores, so its CPU is part of the cost.  Twice: all 100 on the
#     shared table's one channel (each gets every row: 100 deliveries per
#     row and node), and the per-user case kalam is for: 100 roles each
#     LISTENing on its own channel of a user table, the writers inserting
#     as a random one of them (kalam.as_user), so that each row goes to one
#     listener (its user's), wherever it listens.
#   - A listener that does not read: one connection on the leader LISTENs
#     on the shared table's channel and reads nothing while pgbench (16
#     clients) inserts for BENCH_SECONDS, then reads everything: the
#     writers' p50/p99 against the "no listener" runs (target: at most 20%
#     higher), and whether every change arrived.
# NOTIFY_WAKEUPS (default 2000, kalam's default) sets kalam.notify_wakeups on every node.
# Everything interleaves (BENCH_ROUNDS rounds, default 3, of BENCH_SECONDS,
# default 5, per run), because throughput on a shared 2-core machine drifts
# by tens of percent within minutes; tps are medians of the rounds, latency
# percentiles are nearest-rank over every notification of the rounds.
# fsync on, otherwise default settings.  Ends with each node's
# kalam.notifications.  Sets up the machine and installs kalam first
# (setup.sh).  Run as root.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$repo/scripts/setup.sh"
# shellcheck source=scripts/lib/temp-cluster.sh
. "$repo/scripts/lib/temp-cluster.sh"
# shellcheck source=scripts/lib/bench.sh
. "$repo/scripts/lib/bench.sh"

bench_init kalam-live-bench
client=$repo/bench/live_client.pl
scripts=$TEMP_BASE/scripts
mkdir "$scripts"
write_insert_scripts "$scripts"
chown -R postgres:postgres "$scripts"
columns='room text, body text, sent_at timestamptz DEFAULT now()'
LISTENERS=100
NOTIFY_WAKEUPS=${NOTIFY_WAKEUPS:-2000}

# the per-user writers: as a random one of the listening roles
cat >"$scripts/insert-user.sql" <<SQL
\set u random(1, $LISTENERS)
\set id random(1, 1000000000000)
SELECT set_config('kalam.as_user', 'lu' || :u, false);
INSERT INTO bench.kalam_user (id, room, body) VALUES (:id, 'room 1', 'a benchmark message') ON CONFLICT DO NOTHING;
SQL
chown postgres:postgres "$scripts/insert-user.sql"

start_kalam_cluster 3 2
sql "${NODE_PORTS[1]}" <<SQL
CREATE SCHEMA bench;
CREATE FOREIGN TABLE bench.kalam_ins (id bigint NOT NULL, $columns)
    SERVER kalam OPTIONS (type 'shared', primary_key 'id');
CREATE FOREIGN TABLE bench.kalam_user (id bigint NOT NULL, $columns)
    SERVER kalam OPTIONS (type 'user', primary_key 'id');
SQL
wait_kalam_tables 2
for i in 1 2 3; do
	poll "${NODE_PORTS[i]}" 'SELECT kalam.notifier_pid() > 0'
	# roles and a schema's grants are not replicated (a kalam table's GRANT
	# is: the replay of node 1's is a no-op on the others)
	sql "${NODE_PORTS[i]}" >/dev/null <<SQL
GRANT USAGE ON SCHEMA bench TO PUBLIC;
GRANT SELECT ON bench.kalam_user TO PUBLIC;
SELECT format('CREATE ROLE lu%s LOGIN', g) FROM generate_series(1, $LISTENERS) g \gexec
ALTER SYSTEM SET kalam.notify_wakeups = $NOTIFY_WAKEUPS;
SELECT pg_reload_conf();
SQL
done
leader=$(sql "${NODE_PORTS[1]}" -At -c "SELECT leader_id FROM kalam.groups WHERE group_name = 'shared'")
if ! [[ $leader =~ ^[123]$ ]]; then
	echo "node 1 sees '$leader' as the leader of the shared group" >&2
	exit 1
fi
poll "${NODE_PORTS[leader]}" "SELECT is_leader FROM kalam.groups WHERE group_name = 'shared'"
follower=$((leader % 3 + 1))
leader_port=${NODE_PORTS[leader]}
follower_port=${NODE_PORTS[follower]}
# the baseline: a heap table whose trigger NOTIFYs what kalam would
sql "$leader_port" <<SQL
CREATE TABLE bench.heap_ins (id bigint PRIMARY KEY, $columns);
CREATE FUNCTION bench.notify_heap_ins() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
    PERFORM pg_notify('heap_ins', json_build_object('op', 'insert',
        'table', 'bench.heap_ins', 'key', json_build_object('id', NEW.id),
        'row', row_to_json(NEW))::text);
    RETURN NEW;
END
\$\$;
CREATE TRIGGER notify AFTER INSERT ON bench.heap_ins
    FOR EACH ROW EXECUTE FUNCTION bench.notify_heap_ins();
SQL

declare -A live_runs
# live NAME WRITERS CLIENT-ARGS...: one latency run of live_client.pl
# against the leader, its output in $BENCH_LOGS/liveRUN.{out,lat}
live() {
	local name=$1 writers=$2
	shift 2
	run=$((run + 1))
	echo "Running: $name, $writers writer(s), port $leader_port (${BENCH_SECONDS}s)..."
	sql "$leader_port" -c CHECKPOINT >/dev/null
	perl "$client" latency --host "$TEMP_BASE" --write-port "$leader_port" --run "$run" \
		--writers "$writers" --seconds "$BENCH_SECONDS" --out "$BENCH_LOGS/live$run.lat" \
		"$@" >"$BENCH_LOGS/live$run.out"
	live_runs[$name,$writers]+=" $run"
}

declare -A delivered due
user_delivered=0
user_due=0
listener_cpu=""
slow_delivered=0
slow_due=0
# listened_bench per-user|shared|slow: one pgbench run (16 clients) on the
# leader while LISTENERS connections listen (slow: one that does not read);
# counts what they got against what was due
listened_bench() {
	local out=$BENCH_LOGS/listen$((run + 1)).out pid deadline rows got
	if [ "$1" = per-user ]; then
		perl "$client" listen --host "$TEMP_BASE" --table bench.kalam_user --count "$LISTENERS" \
			--role-prefix lu "${NODE_PORTS[@]}" >"$out" &
	elif [ "$1" = slow ]; then
		perl "$client" listen --host "$TEMP_BASE" --table bench.kalam_ins --count 1 --hold \
			"$leader_port" >"$out" &
	else
		perl "$client" listen --host "$TEMP_BASE" --table bench.kalam_ins --count "$LISTENERS" \
			"${NODE_PORTS[@]}" >"$out" &
	fi
	pid=$!
	deadline=$((SECONDS + 60))
	until grep -q '^ready$' "$out"; do
		if ! kill -0 "$pid" 2>/dev/null || ((SECONDS > deadline)); then
			echo "the $LISTENERS listeners did not get ready:" >&2
			cat "$out" >&2
			exit 1
		fi
		sleep 0.1
	done
	if [ "$1" = per-user ]; then
		bench "$LISTENERS per-user listeners" "$leader_port" "$scripts/insert-user.sql" 16
	elif [ "$1" = slow ]; then
		bench "a listener that does not read" "$leader_port" "$scripts/insert-kalam.sql" 16
	else
		bench "$LISTENERS listeners" "$leader_port" "$scripts/insert-kalam.sql" 16
	fi
	kill -USR1 "$pid"
	wait "$pid"
	rows=$(cat "$BENCH_LOGS/run$run".* | wc -l)
	while read -r port conns got; do
		[[ $port =~ ^[0-9]+$ ]] || continue
		if [ "$1" = per-user ]; then
			user_delivered=$((user_delivered + got))
		elif [ "$1" = slow ]; then
			slow_delivered=$((slow_delivered + got))
		else
			delivered[$port]=$((${delivered[$port]:-0} + got))
			due[$port]=$((${due[$port]:-0} + rows * conns))
		fi
	done <"$out"
	if [ "$1" = per-user ]; then
		user_due=$((user_due + rows))
	elif [ "$1" = slow ]; then
		slow_due=$((slow_due + rows))
	else
		listener_cpu+=" $(awk '$1 == "cpu" { print $2 + $3 }' "$out")"
	fi
}

for round in $(seq "$BENCH_ROUNDS"); do
	echo "Round $round of $BENCH_ROUNDS"
	live "heap+pg_notify" 1 --table bench.heap_ins --channel heap_ins "leader=$leader_port"
	for writers in 1 16; do
		live kalam "$writers" --table bench.kalam_ins \
			"leader=$leader_port" "follower=$follower_port"
	done
	bench "0 listeners" "$leader_port" "$scripts/insert-kalam.sql" 16
	listened_bench slow
	listened_bench shared
	bench "0 per-user listeners" "$leader_port" "$scripts/insert-user.sql" 16
	listened_bench per-user
done
if [ "$(sql "$leader_port" -At -c "SELECT is_leader FROM kalam.groups WHERE group_name = 'shared'")" != t ]; then
	echo "warning: node $leader lost the leadership of the shared group during the runs" >&2
fi

# latency NAME WRITERS LISTENER COLUMN: "p50 p99" in ms, nearest-rank,
# over every notification of the runs, of the .lat files' COLUMN (2: after
# the INSERT's result, 3: after sending the INSERT)
latency() {
	local r files=()
	for r in ${live_runs[$1,$2]}; do
		files+=("$BENCH_LOGS/live$r.lat")
	done
	awk -v l="$3" -v c="$4" '$1 == l { print $c }' "${files[@]}" | sort -g | awk '
		{ v[NR] = $1 }
		END {
			if (NR == 0) { print "- -"; exit }
			printf "%.3f %.3f\n", v[int((NR * 50 + 99) / 100)], v[int((NR * 99 + 99) / 100)]
		}'
}

# counts NAME WRITERS LISTENER: "per_second missing foreign": the median
# per-second rate of the runs (of commits if LISTENER is "commits"), the
# sums of missing and foreign notifications
counts() {
	local r files=()
	for r in ${live_runs[$1,$2]}; do
		files+=("$BENCH_LOGS/live$r.out")
	done
	awk -v l="$3" '
		l == "commits" && $1 == "commits" { print $3, 0, 0 }
		$1 == l && $2 == "received" { print $4, $6, $8 }' "${files[@]}" | sort -g | awk '
		{ v[NR] = $1; m += $2; f += $3 }
		END {
			printf "%.0f %d %d\n", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2), m, f
		}'
}

echo
echo "PostgreSQL $("$PG_BIN/postgres" -V | awk '{print $3}'), $(nproc) CPUs, loopback, fsync on," \
	"default settings, $BENCH_ROUNDS interleaved rounds of ${BENCH_SECONDS}s per run;" \
	"kalam: 3 nodes, shared group leader node $leader, follower node $follower," \
	"kalam.notify_wakeups $NOTIFY_WAKEUPS"
echo
echo "Insert -> notification: ms from the INSERT's result (latency) and from sending the INSERT to the"
echo "notification, p50/p99 over every notification; commits/s, notif/s: medians of the rounds;"
echo "missing: committed, never notified; foreign: notifications of another sender or key"
fmt='%-32s %9s %8s %8s %8s %8s %8s %7s %7s\n'
# shellcheck disable=SC2059 # fmt is the format
printf "$fmt" "" "" latency latency "sent->" "sent->" "" "" ""
# shellcheck disable=SC2059 # fmt is the format
printf "$fmt" "" commits/s p50 p99 p50 p99 notif/s missing foreign
lost=""
for spec in "heap+pg_notify 1 leader" "kalam 1 leader" "kalam 1 follower" \
	"kalam 16 leader" "kalam 16 follower"; do
	read -r name writers listener <<<"$spec"
	read -r c_rate _ _ <<<"$(counts "$name" "$writers" commits)"
	read -r n_rate missing foreign <<<"$(counts "$name" "$writers" "$listener")"
	read -r p50 p99 <<<"$(latency "$name" "$writers" "$listener" 2)"
	read -r s50 s99 <<<"$(latency "$name" "$writers" "$listener" 3)"
	# shellcheck disable=SC2059 # fmt is the format
	printf "$fmt" "${name/+pg_notify/ (baseline)}, $writers wr., @$listener" "$c_rate" \
		"$p50" "$p99" "$s50" "$s99" "$n_rate" "$missing" "$foreign"
	declare "p50_${name%%+*}_${writers}_$listener=$p50" "s50_${name%%+*}_${writers}_$listener=$s50"
	if ((missing > 0)); then
		lost+="${lost:+, }$missing of $name, $writers writer(s), @$listener"
	fi
done
# shellcheck disable=SC2154 # declared in the loop above
echo "kalam / baseline, 1 writer: latency p50 @leader $(ratio "$p50_kalam_1_leader" "$p50_heap_1_leader")," \
	"@follower $(ratio "$p50_kalam_1_follower" "$p50_heap_1_leader");" \
	"sent->notification p50 @leader $(ratio "$s50_kalam_1_leader" "$s50_heap_1_leader")," \
	"@follower $(ratio "$s50_kalam_1_follower" "$s50_heap_1_leader")"
if [ -n "$lost" ]; then
	echo "warning: commits never notified: $lost" >&2
fi

echo
echo "Write throughput: pgbench, 16 clients, single-row INSERTs into the shared table on the leader"
fmt='%-42s %9s %8s %8s\n'
# shellcheck disable=SC2059 # fmt is the format
printf "$fmt" "" tps p50_ms p99_ms
read -r q_tps q_p50 q_p99 <<<"$(summary "0 listeners" 16)"
read -r l_tps l_p50 l_p99 <<<"$(summary "$LISTENERS listeners" 16)"
# shellcheck disable=SC2059 # fmt is the format
printf "$fmt" "no listener" "$(printf '%.1f' "$q_tps")" "$q_p50" "$q_p99"
# shellcheck disable=SC2059 # fmt is the format
printf "$fmt" "$LISTENERS listeners, round-robin over nodes 1-3" "$(printf '%.1f' "$l_tps")" \
	"$l_p50" "$l_p99"
# shellcheck disable=SC2086 # split the list of numbers
echo "tps with $LISTENERS listeners / without: $(ratio "$l_tps" "$q_tps") (target >= 0.80);" \
	"the listeners' client used$(printf ' %ss' $listener_cpu) of CPU"
for i in 1 2 3; do
	echo "  notifications delivered to the listeners on node $i: ${delivered[${NODE_PORTS[i]}]}" \
		"of ${due[${NODE_PORTS[i]}]} due (rows inserted x listeners)"
done
read -r s_tps s_p50 s_p99 <<<"$(summary "a listener that does not read" 16)"
# shellcheck disable=SC2059 # fmt is the format
printf "$fmt" "1 listener that does not read (on the leader)" "$(printf '%.1f' "$s_tps")" \
	"$s_p50" "$s_p99"
echo "writers' latency with a listener that does not read / without: p50 $(ratio "$s_p50" "$q_p50")," \
	"p99 $(ratio "$s_p99" "$q_p99") (target <= 1.20); it got $slow_delivered of $slow_due changes afterwards"
echo
echo "The same, per user: INSERTs into a user table as one of $LISTENERS roles (kalam.as_user, random),"
echo "each role LISTENing on its own channel (round-robin over nodes 1-3)"
# shellcheck disable=SC2059 # fmt is the format
printf "$fmt" "" tps p50_ms p99_ms
read -r uq_tps uq_p50 uq_p99 <<<"$(summary "0 per-user listeners" 16)"
read -r ul_tps ul_p50 ul_p99 <<<"$(summary "$LISTENERS per-user listeners" 16)"
# shellcheck disable=SC2059 # fmt is the format
printf "$fmt" "no listener" "$(printf '%.1f' "$uq_tps")" "$uq_p50" "$uq_p99"
# shellcheck disable=SC2059 # fmt is the format
printf "$fmt" "$LISTENERS listeners, one per user" "$(printf '%.1f' "$ul_tps")" "$ul_p50" "$ul_p99"
echo "tps with $LISTENERS per-user listeners / without: $(ratio "$ul_tps" "$uq_tps") (target >= 0.80);" \
	"notifications delivered: $user_delivered of $user_due due (one per row)"

echo
echo "Raft group leaders at the end: $(sql "$leader_port" -At -F ' ' -c \
	"SELECT string_agg(group_name || '=node' || leader_id || ' (term ' || term || ')', ' ' ORDER BY group_name) FROM kalam.groups")"
echo "kalam.notifications at the end:"
for i in 1 2 3; do
	printf 'node %s: ' "$i"
	sql "${NODE_PORTS[i]}" -At -F ' ' -c "SELECT 'sent ' || notifications_sent, 'changes_read ' || changes_read,
		'transactions ' || transactions,
		'retries ' || retries, 'pending ' || pending_entries,
		'oldest_pending ' || coalesce(oldest_pending::text, '-'), 'listeners ' || listeners
		FROM kalam.notifications"
done
