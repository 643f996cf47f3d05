#!/usr/bin/env bash
# Where a replicated single-row INSERT's time goes (issue 11), next to
# PostgreSQL synchronous streaming replication.  One client, autocommit,
# pgbench -n -M prepared, BREAKDOWN_SECONDS (default 10) each, one after the
# other: on the primary of synchronous replication (two standbys,
# synchronous_standby_names = 'ANY 1 (s1, s2)', a heap table with a primary
# key), then on the leader of the shard of a three-node kalam cluster (a
# user table of the same schema); BREAKDOWN_ROUNDS rounds (default 2).  All
# six servers run throughout, fsync on, default settings otherwise.
#
# For each run, over its middle (from 1 s in to 1 s before its end):
#   - transactions and their latency (p50 and mean, from pgbench's log);
#   - per transaction, the CPU time (user + system, every thread, from
#     /proc/PID/stat) and the context switches (voluntary and not, every
#     thread, from /proc/PID/task/*/status: each voluntary one is a sleep,
#     so a wake-up) of every process of every server, by kind (the client's
#     backend, the kalam worker, walwriter, walsender, walreceiver, ...),
#     and of pgbench;
#   - for kalam, kalam.stat_apply on the leader (reset before the run):
#     propose-to-commit and commit-to-apply p50, apply p50.
# Prints a table per run, then the sums per setup across rounds.  With
# BREAKDOWN_PERF=1 (and perf installed), one more kalam run after the
# rounds, left out of the sums, samples the leader's kalam worker and the
# client's backend with perf (all threads, over the window) and prints
# their hottest libraries and functions.  Sets
# up the machine and installs kalam first (setup.sh).  Run as root.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BREAKDOWN_SECONDS=${BREAKDOWN_SECONDS:-10}
BREAKDOWN_ROUNDS=${BREAKDOWN_ROUNDS:-2}
BREAKDOWN_PERF=${BREAKDOWN_PERF:-0}
if ! [[ $BREAKDOWN_SECONDS =~ ^[1-9][0-9]*$ && $BREAKDOWN_SECONDS -ge 4 &&
	$BREAKDOWN_ROUNDS =~ ^[1-9][0-9]*$ ]]; then
	echo "commit_breakdown.sh: BREAKDOWN_SECONDS must be an integer >= 4, BREAKDOWN_ROUNDS a positive integer" >&2
	exit 1
fi

# shellcheck source=scripts/lib/temp-cluster.sh
. "$repo/scripts/lib/temp-cluster.sh"

bash "$repo/scripts/setup.sh"
export LC_ALL=C
temp_cluster_init kalam-breakdown
ticks=$(getconf CLK_TCK)

scripts=$TEMP_BASE/scripts
mkdir "$scripts"
write_insert_scripts "$scripts"
chown -R postgres:postgres "$scripts"
columns='room text, body text, sent_at timestamptz DEFAULT now()'

start_kalam_cluster 3 4
sql "${NODE_PORTS[1]}" <<SQL
CREATE SCHEMA bench;
CREATE FOREIGN TABLE bench.kalam_ins (id bigint NOT NULL, $columns)
	SERVER kalam OPTIONS (type 'user', primary_key 'id');
SQL
wait_kalam_tables 1
group=$(sql "${NODE_PORTS[1]}" -At -c "SELECT kalam.group_for_user('postgres')")
kalam_group_leader "$group"
leader=$LEADER

start_sync_replication
sql "$SYNC_PORT" -c "CREATE SCHEMA bench; CREATE TABLE bench.heap_ins (id bigint PRIMARY KEY, $columns)"
servers="kalam1 kalam2 kalam3 primary s1 s2"

# snapshot: "server pid kind ticks switches" for every process of every
# server, and pgbench's; read by one perl process, in a few milliseconds,
# so that the counters are of one moment
snapshot() {
	local server pm pid list=()
	for server in $servers; do
		pm=$(head -n 1 "$TEMP_BASE/$server/postmaster.pid")
		for pid in "$pm" $(pgrep -P "$pm" || true); do
			list+=("$server:$pm:$pid")
		done
	done
	for pid in $(pgrep -x pgbench || true); do
		list+=("pgbench:0:$pid")
	done
	perl -e '
		for (@ARGV) {
			my ($server, $pm, $pid) = split /:/;
			open(my $f, "<", "/proc/$pid/cmdline") or next;
			my $cmd = do { local $/; <$f> };
			$cmd =~ tr/\0/ /;
			open($f, "<", "/proc/$pid/stat") or next;
			my $stat = <$f>;
			$stat =~ s/^.*\) //;
			my @s = split / /, $stat;
			my $switches = 0;
			for my $task (glob("/proc/$pid/task/*/status")) {
				open(my $t, "<", $task) or next;
				while (<$t>) { $switches += $1 if /^(?:non)?voluntary_ctxt_switches:\s+(\d+)/ }
			}
			(my $kind = $cmd) =~ s/^postgres: //;
			if ($pid == $pm) { $kind = "postmaster" }
			elsif ($server eq "pgbench") { $kind = "pgbench" }
			elsif ($kind =~ /^postgres postgres /) { $kind = "backend" }
			elsif ($kind =~ /^(kalam|background|autovacuum|logical) (\S+)/) { $kind = "$1_$2" }
			else { ($kind) = split / /, $kind }
			print "$server $pid $kind ", $s[11] + $s[12], " $switches\n";
		}' "${list[@]}"
}

# profile LOG SECONDS: perf samples of the leader's kalam worker and of the
# client's backend for SECONDS, then their hottest symbols and libraries
profile() {
	local log=$1 seconds=$2 pid what
	for what in kalam_worker backend; do
		pid=$(awk -v s="kalam$leader" -v k="$what" '$1 == s && $3 == k { print $2 }' "$log.a")
		[ -n "$pid" ] || continue
		perf record -q -F 4999 -g -p "$pid" -o "$log.$what.perf" -- sleep "$seconds" >/dev/null 2>&1 &
		perf trace -s -p "$pid" -o "$log.$what.trace" -- sleep "$seconds" >/dev/null 2>&1 &
	done
	wait
	for what in kalam_worker backend; do
		[ -f "$log.$what.perf" ] || continue
		{
			echo
			echo "perf, $what of node $leader: libraries"
			perf report -q -i "$log.$what.perf" --no-children --sort dso --stdio 2>/dev/null |
				awk 'NF && $1 ~ /%$/ && $1 + 0 >= 1' | head -n 12
			echo "perf, $what of node $leader: functions (self)"
			perf report -q -i "$log.$what.perf" --no-children --sort dso,sym --stdio -g none 2>/dev/null |
				awk 'NF && $1 ~ /%$/ && $1 + 0 >= 1' | head -n 25
			echo "perf trace, $what of node $leader: system calls (all threads; calls, total ms)"
			awk '$2 ~ /^[0-9]+$/ && $1 ~ /^[a-z_0-9]+$/ { calls[$1] += $2; ms[$1] += $4 }
				END { for (c in calls) printf "  %-20s %8d %10.1f\n", c, calls[c], ms[c] }' \
				"$log.$what.trace" 2>/dev/null | sort -k2,2nr | head -n 12
		} >"$log.$what.report"
	done
}

declare -A sum_cpu sum_sw sum_tx

# run_one NAME PORT SCRIPT: one run, its breakdown printed and added to
# NAME's sums
run_one() {
	local name=$1 port=$2 script=$3 t0 t1 tx log
	log=$TEMP_BASE/pgbench-$run_no
	sql "$port" -c CHECKPOINT >/dev/null
	[ "$name" = sync ] || sql "$port" -c 'SELECT kalam.stat_apply_reset()' >/dev/null
	as_pg "$PG_BIN/pgbench" -n -M prepared -T "$BREAKDOWN_SECONDS" -p "$port" -f "$script" \
		-D run="$run_no" -D n=0 --log --log-prefix="$log" >"$log.out" 2>&1 &
	local pgbench_pid=$!
	sleep 1
	t0=$(date +%s.%N)
	snapshot >"$log.a"
	local profiler=""
	if [ "$name" = kalam-perf ]; then
		profile "$log" $((BREAKDOWN_SECONDS - 2)) &
		profiler=$!
	fi
	sleep $((BREAKDOWN_SECONDS - 2))
	t1=$(date +%s.%N)
	snapshot >"$log.b"
	if ! grep -q ' backend ' "$log.b" || ! grep -q ' pgbench ' "$log.b"; then
		echo "the client's backend or pgbench ended before the window did" >&2
		return 1
	fi
	wait "$pgbench_pid" || {
		cat "$log.out" >&2
		return 1
	}
	# pgbench's log: client, transaction, latency (us), script, epoch s, us
	read -r tx p50 mean < <(cat "$log".[0-9]* |
		awk -v t0="$t0" -v t1="$t1" '{ end = $5 + $6 / 1e6 } end >= t0 && end < t1 { print $3 }' |
		sort -n | awk '{ lat[++n] = $1; s += $1 }
			END { if (n == 0) { print 0, 0, 0; exit }
				printf "%d %.3f %.3f\n", n, lat[int((n * 50 + 99) / 100)] / 1000, s / n / 1000 }')
	if [ "$tx" = 0 ]; then
		echo "no transaction ended in the window of $name" >&2
		return 1
	fi
	echo
	echo "$name: $tx transactions in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s," \
		"latency p50 $p50 ms, mean $mean ms"
	if [ "$name" != sync ]; then
		sql "$port" -At -F ' ' -c "SELECT 'kalam.stat_apply on the leader (ms): propose_to_commit p50',
			propose_to_commit_p50_ms, 'commit_to_apply p50', commit_to_apply_p50_ms, 'apply p50', apply_p50_ms
			FROM kalam.stat_apply WHERE group_name = '$group' AND period = 'total'"
	fi
	printf '  %-8s %-22s %12s %12s\n' server process "CPU us/tx" "switches/tx"
	join -j 1 <(awk '{ print $1 ":" $2 ":" $3, $4, $5 }' "$log.a" | sort) \
		<(awk '{ print $1 ":" $2 ":" $3, $4, $5 }' "$log.b" | sort) |
		awk -v tx="$tx" -v hz="$ticks" '{
			split($1, k, ":"); key = k[1] " " k[3]
			cpu[key] += ($4 - $2) * 1e6 / hz / tx; sw[key] += ($5 - $3) / tx
		}
		END { for (key in cpu) if (cpu[key] >= 0.5 || sw[key] >= 0.01) {
				split(key, k, " "); printf "  %-8s %-22s %12.1f %12.2f\n", k[1], k[2], cpu[key], sw[key] } }' |
		sort -k1,1 -k3,3nr | tee "$log.table"
	awk '{ c += $3; s += $4 } END { printf "  %-31s %12.1f %12.2f\n", "all", c, s }' "$log.table"
	while read -r server process cpu switches; do
		sum_cpu[$name,$server $process]=$(awk -v a="${sum_cpu[$name,$server $process]:-0}" -v b="$cpu" -v t="$tx" 'BEGIN { print a + b * t }')
		sum_sw[$name,$server $process]=$(awk -v a="${sum_sw[$name,$server $process]:-0}" -v b="$switches" -v t="$tx" 'BEGIN { print a + b * t }')
	done <"$log.table"
	sum_tx[$name]=$((${sum_tx[$name]:-0} + tx))
	if [ -n "$profiler" ]; then
		wait "$profiler" || true
		cat "$log".*.report 2>/dev/null || true
	fi
}

run_no=0
for round in $(seq "$BREAKDOWN_ROUNDS"); do
	echo
	echo "Round $round of $BREAKDOWN_ROUNDS"
	run_no=$((run_no + 1))
	run_one sync "$SYNC_PORT" "$scripts/insert-heap.sql"
	run_no=$((run_no + 1))
	run_one kalam "${NODE_PORTS[leader]}" "$scripts/insert-kalam.sql"
done
if [ "$BREAKDOWN_PERF" = 1 ]; then
	echo
	echo "One more kalam run, under perf (its CPU figures include perf's cost)"
	run_no=$((run_no + 1))
	run_one kalam-perf "${NODE_PORTS[leader]}" "$scripts/insert-kalam.sql"
fi

echo
echo "All rounds, per transaction (kalam: leader node $leader of group $group; sync: primary, standbys s1 s2):"
for name in sync kalam; do
	echo "$name, ${sum_tx[$name]} transactions:"
	for key in "${!sum_cpu[@]}"; do
		[ "${key%%,*}" = "$name" ] || continue
		awk -v k="${key#*,}" -v c="${sum_cpu[$key]}" -v s="${sum_sw[$key]}" -v t="${sum_tx[$name]}" \
			'BEGIN { split(k, w, " "); printf "  %-8s %-22s %12.1f %12.2f\n", w[1], w[2], c / t, s / t }'
	done | sort -k1,1 -k3,3nr
done
