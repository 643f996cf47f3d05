#!/usr/bin/env bash
# The growth benchmark (issue 12): does a kalam user table stay as fast, and
# its kalam workers as small, as one user's table grows to millions of rows?
#
# A three-node kalam cluster on loopback (kalam.user_shards = 4, default
# settings otherwise, fsync on).  One user table, bench.kalam_scale (id
# bigint primary key, body text), 200-byte rows (an 8-byte id and 192 hex
# digits that do not compress), all of role postgres: one user, so one
# shard, one Raft group.
#   1. load: SCALE_PRELOAD rows, as INSERT ... SELECT transactions of
#      SCALE_BATCH rows each (20,000 rows are about 4.4 MB: two parts and a
#      split, kalam.max_entry_size), on the leader of that shard; prints the elapsed time, rows/s and the time of
#      the batches, then waits until every node has applied the load;
#   2. run: SCALE_CLIENTS pgbench clients (pgbench -n -M prepared) insert
#      single 200-byte rows (autocommit) into the same table for
#      SCALE_SECONDS on that shard's leader.
# Throughout both, each node's kalam worker's RSS (VmRSS) and the terms of
# the Raft groups are sampled every SCALE_SAMPLE seconds.  Prints, per
# window of SCALE_WINDOW seconds of the run and for its first and last
# minute: tps, p50, p99, the standard deviation and the max of the latency
# (ms, every transaction of pgbench's log, nearest rank, by completion
# time), the clients that finished a transaction in it (cl: pgbench 15
# ends a client at its first error, such as KL003, the outcome of a commit
# unknown) and the elections (elect: term increases the sampler saw); the
# number and kind of the clients' errors; the ratio p99
# of the last minute / p99 of the first (target: 1.5 at most); the
# elections (term increases of each Raft group, the highest term of any
# node) during the load and during the run; each worker's RSS, min and max
# during the load and during the run, and whether a worker restarted; the
# apply path of the shard on each node during the run (kalam.stat_apply).
#
# Baseline, in the same run (SCALE_BASELINE=1, the default; 0 skips it):
# the same load and run against PostgreSQL synchronous streaming
# replication (a primary and two standbys, synchronous_standby_names =
# 'ANY 1 (s1, s2)'), into a heap table of the same schema; and kalam/sync
# ratios per window.  The kalam cluster is stopped before the baseline
# starts, so that they do not share the machine.
#
# Catch-up (SCALE_CATCHUP=1; 0, the default, skips it: it adds 1.5-3
# minutes), after the run, on the same cluster: issue 12's "catch-up of a
# node that was away past compaction".  kalam.snapshot_log_size goes down to
# SCALE_CATCHUP_LOG_SIZE on the shard's leader and the other node that stays
# (ALTER SYSTEM, reload), so that the log is compacted soon; a follower of
# the shard stops (fast); SCALE_CLIENTS clients insert on the leader until
# the leader's log of the shard starts past the follower's last index (its
# closed segments, and a snapshot past it: the follower can only come back
# from a snapshot), for SCALE_CATCHUP_AWAY seconds at least; then the
# follower starts while the clients go on, until its applied_index reaches
# the leader's commit index, and SCALE_CATCHUP_AFTER seconds more.  Prints
# how long it was away, its times from its start (install begun, snapshot
# installed, caught up), the snapshot (the log line: rows, kB, chunks,
# files, ms), its kalam worker's peak RSS (VmHWM: its whole life, so the
# start too) and the leader's, and the leader's client latency while the
# follower was away, during its catch-up and after it, next to the run's
# last minute (three nodes), with the ratios catch-up / away and catch-up /
# run (target: 2 at most).  With the baseline, the same for synchronous
# replication: standby s2 stops (fast) for as long as kalam's follower was
# away (wal_keep_size 4GB on the primary, so that the WAL it needs stays),
# then starts and replays the WAL until its replay_lsn reaches the
# primary's current LSN; peak RSS of its startup and walreceiver processes.
#
# Draws into SCALE_PNG (default bench/scale.png in the repo) the p50 and
# p99 per window of both, and the workers' RSS over time with the moments
# of elections, with gnuplot (installs gnuplot-nox if it is missing).
#
# Settings (environment) and defaults, a quick run of about 3-4 minutes:
#   SCALE_PRELOAD=200000  rows loaded before the run
#   SCALE_BATCH=20000     rows per load transaction
#   SCALE_SECONDS=60      length of the run
#   SCALE_WINDOW=10       seconds per window of the run
#   SCALE_CLIENTS=8       pgbench clients of the run
#   SCALE_SAMPLE=2        seconds between samples of RSS and terms
#   SCALE_BASELINE=1      0: no synchronous replication baseline
#   SCALE_CATCHUP=0       1: the catch-up phase after the run
#   SCALE_CATCHUP_LOG_SIZE=4MB  kalam.snapshot_log_size during it
#   SCALE_CATCHUP_AWAY=20       seconds away at least
#   SCALE_CATCHUP_AFTER=10      seconds of inserts after the catch-up
#   SCALE_CATCHUP_WINDOW=5      seconds per window of its latency (PNG)
#   SCALE_CATCHUP_MAX=600       seconds each wait (away, catching up) may take
#   SCALE_PNG=bench/scale.png
# The full test (10M rows at the end: 9.5M loaded, then 3 minutes of
# inserts).  At 1M rows the load ran at 19k rows/s (and slowing) and each
# node held 0.7-1.2 GB in /tmp on 2 cores: count on 10 minutes or more of
# load and 10 GB or more per node:
#   SCALE_PRELOAD=9500000 SCALE_SECONDS=180 SCALE_WINDOW=30 bash bench/scale.sh
# Sets up the machine and installs kalam first (setup.sh).  Run as root.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

SCALE_PRELOAD=${SCALE_PRELOAD:-200000}
SCALE_BATCH=${SCALE_BATCH:-20000}
SCALE_SECONDS=${SCALE_SECONDS:-60}
SCALE_WINDOW=${SCALE_WINDOW:-10}
SCALE_CLIENTS=${SCALE_CLIENTS:-8}
SCALE_SAMPLE=${SCALE_SAMPLE:-2}
SCALE_BASELINE=${SCALE_BASELINE:-1}
SCALE_CATCHUP=${SCALE_CATCHUP:-0}
SCALE_CATCHUP_LOG_SIZE=${SCALE_CATCHUP_LOG_SIZE:-4MB}
SCALE_CATCHUP_AWAY=${SCALE_CATCHUP_AWAY:-20}
SCALE_CATCHUP_AFTER=${SCALE_CATCHUP_AFTER:-10}
SCALE_CATCHUP_WINDOW=${SCALE_CATCHUP_WINDOW:-5}
SCALE_CATCHUP_MAX=${SCALE_CATCHUP_MAX:-600}
for v in SCALE_BATCH SCALE_SECONDS SCALE_WINDOW SCALE_CLIENTS SCALE_SAMPLE SCALE_CATCHUP_AWAY \
	SCALE_CATCHUP_AFTER SCALE_CATCHUP_WINDOW SCALE_CATCHUP_MAX; do
	if ! [[ ${!v} =~ ^[1-9][0-9]*$ ]]; then
		echo "scale.sh: $v must be a positive integer, not '${!v}'" >&2
		exit 1
	fi
done
if ! [[ $SCALE_PRELOAD =~ ^[0-9]+$ ]]; then
	echo "scale.sh: SCALE_PRELOAD must be an integer, not '$SCALE_PRELOAD'" >&2
	exit 1
fi
for v in SCALE_BASELINE SCALE_CATCHUP; do
	if ! [[ ${!v} =~ ^[01]$ ]]; then
		echo "scale.sh: $v must be 0 or 1, not '${!v}'" >&2
		exit 1
	fi
done
if ! [[ $SCALE_CATCHUP_LOG_SIZE =~ ^[1-9][0-9]*(kB|MB|GB)?$ ]]; then
	echo "scale.sh: SCALE_CATCHUP_LOG_SIZE must be a size such as 4MB, not '$SCALE_CATCHUP_LOG_SIZE'" >&2
	exit 1
fi
# the first and the last minute of the run (the whole run if shorter)
minute=$((SCALE_SECONDS < 60 ? SCALE_SECONDS : 60))

# shellcheck source=scripts/lib/temp-cluster.sh
. "$repo/scripts/lib/temp-cluster.sh"
# shellcheck source=scripts/lib/bench.sh
. "$repo/scripts/lib/bench.sh"
# the picture (resolved now: bench_init changes directory)
SCALE_PNG=$(bench_png "${SCALE_PNG:-$repo/bench/scale.png}" SCALE_PNG)
bash "$repo/scripts/setup.sh"

# pgbench_run's length (the run does not use bench's rounds)
BENCH_SECONDS=$SCALE_SECONDS
bench_init kalam-scale
# the followers may take a while to apply a large load
WAIT_SECONDS=300

# body EXPR: SQL for 192 hex digits made from the bigint EXPR (six MD5s:
# RocksDB's compression gets nothing out of them)
body() {
	local i sep=""
	for i in 1 2 3 4 5 6; do
		printf "%smd5(%s::text || '%s')" "$sep" "$1" "$i"
		sep=" || "
	done
}

# the run's pgbench scripts: ids from 10^12 up, one range per client, above
# the loaded ones (1 .. SCALE_PRELOAD)
scripts=$TEMP_BASE/scripts
mkdir "$scripts"
for table in kalam_scale heap_scale; do
	cat >"$scripts/$table.sql" <<SQL
\\set n :n + 1
\\set id (:client_id + 1) * 1000000000000 + :n
INSERT INTO bench.$table (id, body) VALUES (:id, $(body :id));
SQL
done
chown -R postgres:postgres "$scripts"

now() {
	date +%s.%N
}

elapsed() {
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'
}

# preload NAME PORT TABLE: loads SCALE_PRELOAD rows into TABLE at PORT, in
# transactions of SCALE_BATCH rows, in one session; prints progress and the
# figures of the load, and sets LOAD_LINE to them
preload() {
	local name=$1 port=$2 table=$3 from to start end step
	step=$(((SCALE_PRELOAD / 10 + SCALE_BATCH - 1) / SCALE_BATCH))
	((step > 0)) || step=1
	echo "Loading $SCALE_PRELOAD rows into $table ($name), $SCALE_BATCH a transaction..."
	start=$(now)
	for ((from = 1; from <= SCALE_PRELOAD; from += SCALE_BATCH)); do
		to=$((from + SCALE_BATCH - 1 < SCALE_PRELOAD ? from + SCALE_BATCH - 1 : SCALE_PRELOAD))
		echo "INSERT INTO $table SELECT g, $(body g) FROM generate_series($from, $to) g;"
		if (((from - 1) / SCALE_BATCH % step == step - 1)); then
			printf '\\echo loaded %s\n' "$to"
		fi
	done | { printf '\\timing on\n' && cat; } | sql "$port" |
		awk -v timing="$TEMP_BASE/load-$name.ms" '
			/^Time: / { print $2 > timing; ms += $2; next }
			/^loaded / { printf "  %d rows, %.0f s in INSERTs\n", $2, ms / 1000; fflush(); next }
			{ print }'
	end=$(now)
	LOAD_LINE=$(sort -g "$TEMP_BASE/load-$name.ms" | awk -v rows="$SCALE_PRELOAD" -v s="$(elapsed "$start" "$end")" '
		{ v[NR] = $1 }
		END {
			printf "%d rows in %.1f s: %.0f rows/s; %d transactions, ms each: p50 %.0f, max %.0f",
				rows, s, (s > 0 ? rows / s : 0), NR, v[int((NR + 1) / 2)], v[NR]
		}')
	echo "  $name load: $LOAD_LINE"
}

# growth_run NAME PORT SCRIPT: the run; the transactions' "end_s latency_ms
# client"
# (end in seconds since the first transaction started, whose epoch goes into
# $TEMP_BASE/NAME.t0) into $TEMP_BASE/NAME.tx, pgbench's output into
# $TEMP_BASE/NAME.pgbench; errors (such as KL003, which ends its client) are
# reported in ERRORS, not fatal
growth_run() {
	local name=$1 port=$2 script=$3 out=$TEMP_BASE/$1.pgbench
	sql "$port" -c CHECKPOINT >/dev/null
	echo "Running: $name, $SCALE_CLIENTS clients, port $port (${SCALE_SECONDS}s)..."
	if as_pg "$PG_BIN/pgbench" -n -M prepared -T "$SCALE_SECONDS" -p "$port" -f "$script" \
		-c "$SCALE_CLIENTS" -j $((SCALE_CLIENTS > 1 ? 2 : 1)) -D n=0 \
		--log --log-prefix="$BENCH_LOGS/$name" >"$out" 2>&1; then
		ERRORS=""
	else
		pgbench_errors "$out"
		ERRORS=${ERRORS:-$(tail -n 3 "$out" | paste -sd ' ')}
		echo "warning: pgbench failed on $name: $ERRORS" >&2
	fi
	pgbench_tx "$name"
}

# pgbench_errors OUT: ERRORS, the clients ended by an ERROR in pgbench's
# output OUT, counted (pgbench 15 ends a client at its first error)
pgbench_errors() {
	ERRORS=$({ grep '^pgbench: error: client .* aborted.*ERROR:' "$1" || true; } | sed 's/^.*ERROR: *//' |
		sort | uniq -c | awk '{ n = $1; $1 = ""; print n " client(s) ended by ERROR:" $0 }' | paste -sd ';')
}

# pgbench_tx NAME: pgbench's log of NAME's run into $TEMP_BASE/NAME.tx and
# $TEMP_BASE/NAME.t0 (see growth_run)
pgbench_tx() {
	local name=$1 out=$TEMP_BASE/$1.pgbench
	# pgbench's log: client, transaction, latency (us), script, end (s, us)
	cat "$BENCH_LOGS/$name".* | awk '$3 ~ /^[0-9]+$/ { printf "%.6f %.3f %d\n", $5 + $6 / 1e6, $3 / 1000, $1 }' >"$out.raw"
	awk -v t0="$TEMP_BASE/$name.t0" '
		NR == FNR { s = $1 - $2 / 1000; if (FNR == 1 || s < first) first = s; next }
		FNR == 1 { printf "%.6f\n", first > t0 }
		{ printf "%.6f %.3f %d\n", $1 - first, $2, $3 }' "$out.raw" "$out.raw" >"$TEMP_BASE/$name.tx"
	if ! [ -s "$TEMP_BASE/$name.tx" ]; then
		echo "no transaction in pgbench's log of $name:" >&2
		cat "$out" >&2
		exit 1
	fi
}

# window NAME FROM TO [END]: "count tps p50 p99 sd max clients" of the
# transactions of NAME's run that ended in [FROM, TO) s (TO at or past END,
# the run's end, SCALE_SECONDS unless given: all to the end), tps over TO -
# FROM, clients: how many of them finished a transaction then
window() {
	awk -v a="$2" -v b="$3" -v e="${4:-$SCALE_SECONDS}" '$1 >= a && ($1 < b || b >= e) { print $2, $3 }' \
		"$TEMP_BASE/$1.tx" | sort -g |
		awk -v d="$(elapsed "$2" "$3")" '
			{ v[NR] = $1; s += $1; ss += $1 * $1; if (!seen[$2]++) clients++ }
			END {
				if (NR == 0) { print 0, 0, "-", "-", "-", "-", 0; exit }
				m = s / NR
				var = ss / NR - m * m
				printf "%d %.1f %.2f %.2f %.2f %.2f %d\n", NR, (d > 0 ? NR / d : 0), v[int((NR * 50 + 99) / 100)],
					v[int((NR * 99 + 99) / 100)], sqrt(var > 0 ? var : 0), v[NR], clients
			}'
}

# the windows: "label from to"
windows=()
for ((from = 0; from < SCALE_SECONDS; from += SCALE_WINDOW)); do
	to=$((from + SCALE_WINDOW < SCALE_SECONDS ? from + SCALE_WINDOW : SCALE_SECONDS))
	windows+=("$from-${to}s $from $to")
done
first_minute="first ${minute}s 0 $minute"
last_minute="last ${minute}s $((SCALE_SECONDS - minute)) $SCALE_SECONDS"

# terms: "group highest-term" of every Raft group, over the nodes
terms() {
	local i
	for ((i = 1; i <= 3; i++)); do
		sql "${NODE_PORTS[i]}" -At -F ' ' -c 'SELECT group_name, term FROM kalam.groups' 2>/dev/null || true
	done | awk '$2 > t[$1] { t[$1] = $2 } END { for (g in t) print g, t[g] }' | sort
}

# elections BEFORE AFTER: the term increases between two terms outputs
elections() {
	join <(echo "$1") <(echo "$2") | awk '
		{ d = $3 - $2; n += d; if (d > 0) list = list sprintf("%s%s %d", (list == "" ? "" : ", "), $1, d) }
		END { printf "%d%s\n", n, (n > 0 ? " (" list ")" : "") }'
}

# ratio_of A B: A / B, or "-" where either has no figure (no transaction)
ratio_of() {
	if [ "$1" = - ] || [ "$2" = - ] || [ "$1" = 0 ] || [ "$2" = 0 ]; then
		echo -
	else
		ratio "$1" "$2"
	fi
}

worker_pid() {
	local pm
	pm=$(head -n 1 "$TEMP_BASE/kalam$1/postmaster.pid" 2>/dev/null) || return 1
	pgrep -P "$pm" -f 'kalam worker' | head -n 1
}

# the samplers, every SCALE_SAMPLE seconds until $TEMP_BASE/rss.stop exists
# (or this script is gone): "epoch node pid rss_kb" lines into
# $TEMP_BASE/rss.dat; "epoch group term" lines (terms, epoch when the
# answers came: a node may be slow to answer) into $TEMP_BASE/terms.dat
sample_rss() {
	local i pid rss t
	while ! [ -e "$TEMP_BASE/rss.stop" ] && kill -0 $$ 2>/dev/null; do
		t=$(now)
		for ((i = 1; i <= 3; i++)); do
			pid=$(worker_pid "$i") || continue
			[ -n "$pid" ] || continue
			rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null) || continue
			[ -n "$rss" ] && echo "$t $i $pid $rss"
		done >>"$TEMP_BASE/rss.dat"
		sleep "$SCALE_SAMPLE"
	done
}

sample_terms() {
	local answer
	while ! [ -e "$TEMP_BASE/rss.stop" ] && kill -0 $$ 2>/dev/null; do
		answer=$(terms)
		echo "$answer" | awk -v t="$(now)" 'NF == 2 { print t, $0 }' >>"$TEMP_BASE/terms.dat"
		sleep "$SCALE_SAMPLE"
	done
}

# server_trouble NAME...: the servers' log lines of level WARNING and
# above and of processes that ended, counted, timestamps and pids aside
server_trouble() {
	local name
	for name in "$@"; do
		{ grep -h -E '(WARNING|ERROR|FATAL|PANIC):|terminated by signal|exited with exit code' \
			"$TEMP_BASE/$name.log" || true; } | sed -E 's/^[0-9-]+ [0-9:.]+ [A-Z]+ \[[0-9]+\] //;
				s/PID [0-9]+/PID N/; s/[0-9]+(\.[0-9]+)? ms/N ms/g' | cut -c 1-160 |
			sort | uniq -c | sort -rn | head -n 8 | sed "s/^/  $name: /"
	done
}

# window_elections FROM TO: the term increases the sampler saw in [FROM, TO)
# s of kalam's run (TO at or past the run's end: all to its end, not into
# the catch-up)
window_elections() {
	local to=$2
	((to < SCALE_SECONDS)) || to=$(elapsed "$(cat "$TEMP_BASE/kalam.t0")" "$run_end")
	awk -v t0="$(cat "$TEMP_BASE/kalam.t0")" -v a="$1" -v b="$to" '
		($2 in term) && $3 > term[$2] && $1 - t0 >= a && $1 - t0 < b { n += $3 - term[$2] }
		{ term[$2] = $3 }
		END { print n + 0 }' "$TEMP_BASE/terms.dat"
}

# rss_range NODE FROM TO: "min max" RSS (MB) of NODE's worker sampled in
# [FROM, TO] (epoch seconds)
rss_range() {
	awk -v n="$1" -v a="$2" -v b="$3" '
		$2 == n && $1 >= a && $1 <= b {
			if (!c++ || $4 < lo) lo = $4
			if ($4 > hi) hi = $4
		}
		END { if (c) printf "%.0f %.0f\n", lo / 1024, hi / 1024; else print "- -" }' "$TEMP_BASE/rss.dat"
}

# pgbench_start NAME PORT SCRIPT: SCALE_CLIENTS clients insert at PORT in
# the background (PGBENCH_PID), for up to SCALE_CATCHUP_MAX * 3 seconds,
# ids from 10^9 on in each client's range (the run's are below); ended by
# pgbench_stop
pgbench_start() {
	sql "$2" -c CHECKPOINT >/dev/null
	as_pg "$PG_BIN/pgbench" -n -M prepared -T $((SCALE_CATCHUP_MAX * 3)) -p "$2" -f "$3" \
		-c "$SCALE_CLIENTS" -j $((SCALE_CLIENTS > 1 ? 2 : 1)) -D n=1000000000 \
		--log --log-prefix="$BENCH_LOGS/$1" >"$TEMP_BASE/$1.pgbench" 2>&1 &
	PGBENCH_PID=$!
}

# pgbench_stop NAME PORT: ends pgbench_start's clients (their sessions
# terminated: pgbench ends a client at an error), its transactions into
# $TEMP_BASE/NAME.tx (pgbench_tx) and the errors before the end into ERRORS
pgbench_stop() {
	sql "$2" -At -c "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = 'pgbench'" >/dev/null
	wait "$PGBENCH_PID" || true
	pgbench_errors "$TEMP_BASE/$1.pgbench"
	pgbench_tx "$1"
}

# raft_log NODE GROUP: "first snapshot" of GROUP's Raft log in kalam NODE's
# directory: the first index of its closed segments (libraft drops those
# behind a snapshot's trailing entries) and the index of its latest
# snapshot, 0 for none
raft_log() {
	local dir=$TEMP_BASE/kalam$1/kalam/raft/$2
	{
		find "$dir" -maxdepth 1 -name '[0-9]*-[0-9]*' -printf '%f\n' | sed -nE 's/^([0-9]{16})-[0-9]{16}$/s \1/p'
		find "$dir" -maxdepth 1 -name 'snapshot-*' -printf '%f\n' | sed -nE 's/^snapshot-[0-9]+-([0-9]+)-.*$/n \1/p'
	} 2>/dev/null | awk '
		$1 == "s" && (!f || $2 + 0 < first) { first = $2 + 0; f = 1 }
		$1 == "n" && $2 + 0 > snap { snap = $2 + 0 }
		END { printf "%d %d\n", first, snap }'
}

# vm_hwm PID: the peak RSS of process PID (MB), "-" if it is gone
vm_hwm() {
	awk '/^VmHWM:/ { printf "%.0f\n", $2 / 1024; found = 1 } END { if (!found) print "-" }' \
		"/proc/$1/status" 2>/dev/null || echo -
}

# kalam_catchup: the kalam catch-up phase (see the top); sets the C_*
# figures
kalam_catchup() {
	local i log_lines answer applied state rows kb target first snap deadline line
	kalam_group_leader "$group"
	C_LEADER=$LEADER
	C_NODE=$((C_LEADER % 3 + 1))
	for ((i = 1; i <= 3; i++)); do
		((i == C_NODE)) && continue
		sql "${NODE_PORTS[i]}" -c "ALTER SYSTEM SET kalam.snapshot_log_size = '$SCALE_CATCHUP_LOG_SIZE'" \
			-c 'SELECT pg_reload_conf()' >/dev/null
	done
	rm -f "$TEMP_BASE/rss.stop"
	sample_rss &
	sampler=$!
	sample_terms &
	term_sampler=$!
	C_TERMS=$(terms)
	echo "Catch-up: node $C_NODE, a follower of group $group, stops; $SCALE_CLIENTS clients insert on" \
		"node $C_LEADER (kalam.snapshot_log_size = $SCALE_CATCHUP_LOG_SIZE there and on the third node)..."
	C_STOP=$(now)
	stop_node "kalam$C_NODE"
	# the follower has at most the entries the leader had when it stopped:
	# committed by now, but for a few in flight
	C_INDEX=$(sql "${NODE_PORTS[C_LEADER]}" -At -c \
		"SELECT commit_index FROM kalam.groups WHERE group_name = '$group'")
	pgbench_start kalam_catchup "${NODE_PORTS[C_LEADER]}" "$scripts/kalam_scale.sql"
	deadline=$((SECONDS + SCALE_CATCHUP_MAX))
	while :; do
		sleep 1
		read -r first snap <<<"$(raft_log "$C_LEADER" "$group")"
		if ((first > C_INDEX + 64 && snap > C_INDEX)); then
			awk -v a="$(elapsed "$C_STOP" "$(now)")" -v b="$SCALE_CATCHUP_AWAY" 'BEGIN { exit !(a >= b) }' && break
		fi
		if ((SECONDS > deadline)); then
			echo "warning: after ${SCALE_CATCHUP_MAX}s the leader's log of $group still starts at $first" \
				"(snapshot $snap), the follower stopped at $C_INDEX: it may catch up from the log" >&2
			break
		fi
		if ! kill -0 "$PGBENCH_PID" 2>/dev/null; then
			echo "warning: the clients ended while node $C_NODE was away" >&2
			break
		fi
	done
	C_LOG_FIRST=$first
	C_SNAPSHOT=$snap
	C_LEADER_INDEX=$(sql "${NODE_PORTS[C_LEADER]}" -At -c \
		"SELECT commit_index FROM kalam.groups WHERE group_name = '$group'")
	log_lines=$(wc -l <"$TEMP_BASE/kalam$C_NODE.log")
	C_START=$(now)
	echo "  away $(elapsed "$C_STOP" "$C_START") s: the leader's log starts at $first, snapshot at" \
		"$snap, commit index $C_LEADER_INDEX; node $C_NODE stopped at $C_INDEX; it starts"
	start_node "kalam$C_NODE" "${NODE_PORTS[C_NODE]}"
	C_FETCH="" C_INSTALLED="" C_CAUGHT="" C_LINE="" C_ROWS_SEEN=0 C_KB_SEEN=0
	deadline=$((SECONDS + SCALE_CATCHUP_MAX))
	while ((SECONDS < deadline)); do
		target=$(sql "${NODE_PORTS[C_LEADER]}" -At -c \
			"SELECT commit_index FROM kalam.groups WHERE group_name = '$group'" 2>/dev/null) || target=""
		answer=$(sql "${NODE_PORTS[C_NODE]}" -At -F ' ' -c "SELECT applied_index,
				coalesce(replace(snapshot_install, ' ', '_'), '-'), coalesce(snapshot_rows, 0), coalesce(snapshot_bytes, 0) / 1024
			FROM kalam.groups WHERE group_name = '$group'" 2>/dev/null) || answer=""
		[ "${answer:0:1}" != " " ] || answer="-$answer"
		read -r applied state rows kb <<<"$answer"
		if [ -n "$state" ] && [ "$state" != - ]; then
			[ -n "$C_FETCH" ] || C_FETCH=$(now)
			((rows <= C_ROWS_SEEN)) || C_ROWS_SEEN=$rows
			((kb <= C_KB_SEEN)) || C_KB_SEEN=$kb
		fi
		if [ -z "$C_LINE" ]; then
			line=$(tail -n +$((log_lines + 1)) "$TEMP_BASE/kalam$C_NODE.log" |
				grep -m 1 "group \"$group\": installed a snapshot" || true)
			if [ -n "$line" ]; then
				C_INSTALLED=$(now)
				C_LINE=${line#*\": }
			fi
		fi
		# (applied_index is NULL for a while after the start)
		if [[ $target =~ ^[0-9]+$ && $applied =~ ^[0-9]+$ ]] && ((applied >= target)); then
			C_CAUGHT=$(now)
			C_HWM=$(vm_hwm "$(worker_pid "$C_NODE")")
			C_LEADER_HWM=$(vm_hwm "$(worker_pid "$C_LEADER")")
			break
		fi
		sleep 0.2
	done
	[ -n "$C_CAUGHT" ] || C_HWM=- C_LEADER_HWM=-
	catchup_end kalam_catchup "${NODE_PORTS[C_LEADER]}" "node $C_NODE" "$C_START" "$C_CAUGHT"
	C_CAUGHT=$CAUGHT C_END=$END C_ERRORS=$ERRORS
	C_TERMS_END=$(terms)
	touch "$TEMP_BASE/rss.stop"
	wait "$sampler" "$term_sampler" || true
}

# sync_catchup: the same for synchronous replication, standby s2 away for
# as long as kalam's follower was; sets the S_* figures
sync_catchup() {
	local lsn target ok pm away deadline
	sql "$SYNC_PORT" -c "ALTER SYSTEM SET wal_keep_size = '4GB'" -c 'SELECT pg_reload_conf()' >/dev/null
	away=$(elapsed "$C_STOP" "$C_START")
	echo "Catch-up: standby s2 stops for ${away}s; $SCALE_CLIENTS clients insert on the primary..."
	S_STOP=$(now)
	stop_node s2
	lsn=$(sql "$SYNC_PORT" -At -c 'SELECT pg_current_wal_lsn()')
	pgbench_start sync_catchup "$SYNC_PORT" "$scripts/heap_scale.sql"
	sleep "$(awk -v a="$away" -v s="$(elapsed "$S_STOP" "$(now)")" 'BEGIN { print (a > s ? a - s : 0) }')"
	S_BEHIND=$(sql "$SYNC_PORT" -At -c "SELECT round(pg_wal_lsn_diff(pg_current_wal_lsn(), '$lsn') / 1048576)")
	S_START=$(now)
	start_node s2 $((SYNC_PORT + 2))
	S_CAUGHT=""
	deadline=$((SECONDS + SCALE_CATCHUP_MAX))
	while ((SECONDS < deadline)); do
		target=$(sql "$SYNC_PORT" -At -c 'SELECT pg_current_wal_lsn()')
		ok=$(sql "$SYNC_PORT" -At -c "SELECT coalesce(bool_or(replay_lsn >= '$target'), false)
			FROM pg_stat_replication WHERE application_name = 's2'")
		if [ "$ok" = t ]; then
			S_CAUGHT=$(now)
			break
		fi
		sleep 0.2
	done
	pm=$(head -n 1 "$TEMP_BASE/s2/postmaster.pid")
	S_HWM="startup $(vm_hwm "$(pgrep -P "$pm" -f 'startup' | head -n 1)") MB,"
	S_HWM+=" walreceiver $(vm_hwm "$(pgrep -P "$pm" -f 'walreceiver' | head -n 1)") MB"
	catchup_end sync_catchup "$SYNC_PORT" "standby s2" "$S_START" "$S_CAUGHT"
	S_CAUGHT=$CAUGHT S_END=$END S_ERRORS=$ERRORS
}

# catchup_end NAME PORT WHO START CAUGHT: warns if CAUGHT is empty (WHO did
# not catch up), lets the clients insert SCALE_CATCHUP_AFTER seconds more
# and ends them (pgbench_stop NAME PORT); sets CAUGHT (now if it was empty)
# and END
catchup_end() {
	CAUGHT=$5
	if [ -z "$CAUGHT" ]; then
		echo "warning: $3 did not catch up within ${SCALE_CATCHUP_MAX}s" >&2
		CAUGHT=$(now)
	fi
	echo "  caught up $(elapsed "$4" "$CAUGHT") s after its start; ${SCALE_CATCHUP_AFTER}s more of inserts"
	sleep "$SCALE_CATCHUP_AFTER"
	END=$(now)
	pgbench_stop "$1" "$2"
}

machine=$(bench_machine)
echo
echo "Growth test: $SCALE_PRELOAD rows loaded ($SCALE_BATCH a transaction), then $SCALE_CLIENTS" \
	"clients insert for ${SCALE_SECONDS}s; 200-byte rows, one user"

# A: kalam
start_kalam_cluster 3 4
sql "${NODE_PORTS[1]}" <<SQL
CREATE SCHEMA bench;
CREATE FOREIGN TABLE bench.kalam_scale (id bigint NOT NULL, body text)
	SERVER kalam OPTIONS (type 'user', primary_key 'id');
SQL
wait_kalam_tables 1
group=$(sql "${NODE_PORTS[1]}" -At -c "SELECT kalam.group_for_user('postgres')")
kalam_group_leader "$group"
echo "The rows of role postgres are in group $group, led by node $LEADER"

: >"$TEMP_BASE/rss.dat"
: >"$TEMP_BASE/terms.dat"
sample_rss &
sampler=$!
sample_terms &
term_sampler=$!
terms_load=$(terms)
load_start=$(now)
preload kalam "${NODE_PORTS[LEADER]}" bench.kalam_scale
kalam_load=$LOAD_LINE
load_end=$(now)
# every node applies the whole load before the run
kalam_group_leader "$group"
leader=$LEADER
commit_index=$(sql "${NODE_PORTS[leader]}" -At -c \
	"SELECT commit_index FROM kalam.groups WHERE group_name = '$group'")
for ((i = 1; i <= 3; i++)); do
	poll "${NODE_PORTS[i]}" \
		"SELECT applied_index >= $commit_index FROM kalam.groups WHERE group_name = '$group'"
done
caught_up=$(now)
echo "  every node applied the load $(elapsed "$load_end" "$caught_up") s after it ended"
for ((i = 1; i <= 3; i++)); do
	sql "${NODE_PORTS[i]}" -c 'SELECT kalam.stat_apply_reset()' >/dev/null
done

terms_run=$(terms)
run_start=$(now)
growth_run kalam "${NODE_PORTS[leader]}" "$scripts/kalam_scale.sql"
run_end=$(now)
kalam_errors=$ERRORS
terms_end=$(terms)
touch "$TEMP_BASE/rss.stop"
wait "$sampler" "$term_sampler" || true

leader_end=$(sql "${NODE_PORTS[1]}" -At -c \
	"SELECT coalesce(leader_id::text, 'none') FROM kalam.groups WHERE group_name = '$group'")
if [ "$leader_end" != "$leader" ]; then
	echo "warning: node $leader lost the leadership of group $group during the run" \
		"(node 1 sees $leader_end leading it now)" >&2
fi
# each node's own copy (local reads: the leader may have moved)
export PGOPTIONS='-c kalam.read_consistency=local'
poll_same_count bench.kalam_scale "${NODE_PORTS[leader]}" \
	"${NODE_PORTS[leader % 3 + 1]}" "${NODE_PORTS[(leader + 1) % 3 + 1]}"
kalam_rows=$(sql "${NODE_PORTS[leader]}" -At -c 'SELECT count(*) FROM bench.kalam_scale')
unset PGOPTIONS
# the apply path of the shard during the run, per node
columns=""
for c in apply_p50_ms apply_p99_ms apply_max_ms propose_to_commit_p99_ms commit_to_apply_p99_ms; do
	columns+=", coalesce(round($c::numeric, 2)::text, '-')"
done
apply_stats=$(for ((i = 1; i <= 3; i++)); do
	sql "${NODE_PORTS[i]}" -At -F ' ' -c "SELECT '  ' || $i, entries, rows_written $columns
		FROM kalam.stat_apply WHERE group_name = '$group' AND period = 'total'"
done)
storage=$(for ((i = 1; i <= 3; i++)); do
	echo "node $i $(du -sm "$TEMP_BASE/kalam$i/kalam" | cut -f 1) MB"
done | paste -sd ',' | sed 's/,/, /g')
[ "$SCALE_CATCHUP" = 0 ] || kalam_catchup
kalam_trouble=$(server_trouble kalam1 kalam2 kalam3)
stop_kalam_cluster

# B: the baseline
if [ "$SCALE_BASELINE" = 1 ]; then
	start_sync_replication
	sql "$SYNC_PORT" <<SQL
CREATE SCHEMA bench;
CREATE TABLE bench.heap_scale (id bigint PRIMARY KEY, body text);
SQL
	preload sync "$SYNC_PORT" bench.heap_scale
	sync_load=$LOAD_LINE
	growth_run sync "$SYNC_PORT" "$scripts/heap_scale.sql"
	sync_errors=$ERRORS
	[ "$SCALE_CATCHUP" = 0 ] || sync_catchup
	poll_same_count bench.heap_scale "$SYNC_PORT" $((SYNC_PORT + 1)) $((SYNC_PORT + 2))
	stop_sync_replication
fi

# the report
echo
echo "$machine; kalam: 3 nodes, 4 user shards, group $group led by node $leader; run:" \
	"$SCALE_CLIENTS clients, ${SCALE_SECONDS}s, windows of ${SCALE_WINDOW}s by completion time;" \
	"latencies in ms"
echo "load, kalam: $kalam_load"
[ "$SCALE_BASELINE" = 1 ] && echo "load, sync replication: $sync_load"
echo "kalam rows at the end: $kalam_rows; kalam storage: $storage"
echo "kalam group $group: led by node $leader when the run started, by node $leader_end after it"
[ -z "$kalam_errors" ] || echo "kalam pgbench errors: $kalam_errors"
[ -z "${sync_errors:-}" ] || echo "sync replication pgbench errors: $sync_errors"
echo
if [ "$SCALE_BASELINE" = 1 ]; then
	fmt='%-12s %7s %7s %7s %7s %7s %3s %5s | %7s %7s %7s %7s %7s %3s | %5s %5s %5s\n'
	# shellcheck disable=SC2059 # fmt is the format
	printf '%-12s %-49s | %-43s | %s\n' "" "kalam" "sync replication" "kalam/sync"
	# shellcheck disable=SC2059 # fmt is the format
	printf "$fmt" window tps p50 p99 sd max cl elect tps p50 p99 sd max cl tps p50 p99
else
	fmt='%-12s %7s %7s %7s %7s %7s %3s %5s\n'
	# shellcheck disable=SC2059 # fmt is the format
	printf "$fmt" "kalam" tps p50 p99 sd max cl elect
fi
plot_dir=$TEMP_BASE/plot
mkdir "$plot_dir"
for w in "${windows[@]}" "$first_minute" "$last_minute"; do
	label=${w% * *}
	read -r from to <<<"${w#"$label" }"
	read -r _ k_tps k_p50 k_p99 k_sd k_max k_cl <<<"$(window kalam "$from" "$to")"
	k_elect=$(window_elections "$from" "$to")
	if [ "$SCALE_BASELINE" = 1 ]; then
		read -r _ s_tps s_p50 s_p99 s_sd s_max s_cl <<<"$(window sync "$from" "$to")"
		# shellcheck disable=SC2059 # fmt is the format
		printf "$fmt" "$label" "$k_tps" "$k_p50" "$k_p99" "$k_sd" "$k_max" "$k_cl" "$k_elect" \
			"$s_tps" "$s_p50" "$s_p99" "$s_sd" "$s_max" "$s_cl" \
			"$(ratio_of "$k_tps" "$s_tps")" "$(ratio_of "$k_p50" "$s_p50")" "$(ratio_of "$k_p99" "$s_p99")"
	else
		# shellcheck disable=SC2059 # fmt is the format
		printf "$fmt" "$label" "$k_tps" "$k_p50" "$k_p99" "$k_sd" "$k_max" "$k_cl" "$k_elect"
	fi
	if [[ $label == *-*s ]]; then
		mid=$(awk -v a="$from" -v b="$to" 'BEGIN { print (a + b) / 2 }')
		echo "$mid $k_p50 $k_p99" >>"$plot_dir/kalam.dat"
		[ "$SCALE_BASELINE" = 1 ] && echo "$mid $s_p50 $s_p99" >>"$plot_dir/sync.dat"
	fi
done
read -r _ _ _ k_first _ <<<"$(window kalam 0 "$minute")"
read -r _ _ _ k_last _ <<<"$(window kalam $((SCALE_SECONDS - minute)) "$SCALE_SECONDS")"
growth="p99 of the last ${minute}s / p99 of the first ${minute}s: kalam $(ratio_of "$k_last" "$k_first")"
growth+=" (target 1.5 at most)"
if [ "$SCALE_BASELINE" = 1 ]; then
	read -r _ _ _ s_first _ <<<"$(window sync 0 "$minute")"
	read -r _ _ _ s_last _ <<<"$(window sync $((SCALE_SECONDS - minute)) "$SCALE_SECONDS")"
	growth+=", sync replication $(ratio_of "$s_last" "$s_first")"
fi
echo "$growth"
echo "kalam elections (term increases, highest term of any node): during the load" \
	"$(elections "$terms_load" "$terms_run"), during the run $(elections "$terms_run" "$terms_end")"
echo
echo "kalam worker RSS (MB): min-max during the load | during the run"
for ((i = 1; i <= 3; i++)); do
	read -r l_lo l_hi <<<"$(rss_range "$i" "$load_start" "$load_end")"
	read -r r_lo r_hi <<<"$(rss_range "$i" "$run_start" "$run_end")"
	pids=$(awk -v n="$i" -v e="$run_end" '$2 == n && $1 <= e { print $3 }' "$TEMP_BASE/rss.dat" | uniq | wc -l)
	note=""
	((pids <= 1)) || note=" (warning: $pids worker processes: the worker restarted)"
	[ "$i" = "$leader" ] && note=" (leader)$note"
	printf '  node %d: %5s-%-5s | %5s-%-5s%s\n' "$i" "$l_lo" "$l_hi" "$r_lo" "$r_hi" "$note"
done
echo
if [ -n "$kalam_trouble" ]; then
	note=""
	[ "$SCALE_CATCHUP" = 0 ] || note="; the catch-up stopped node $C_NODE and terminated the clients' sessions"
	echo "kalam servers' logs, WARNING and above, ended processes (count, message)$note:"
	echo "$kalam_trouble"
	echo
fi
echo "kalam apply of group $group during the run (kalam.stat_apply, ms):"
echo "  node entries rows apply_p50 apply_p99 apply_max propose_to_commit_p99 commit_to_apply_p99"
echo "$apply_stats"
if [ "$SCALE_CATCHUP" = 1 ]; then
	echo
	echo "Catch-up of node $C_NODE (group $group, led by node $C_LEADER; kalam.snapshot_log_size" \
		"$SCALE_CATCHUP_LOG_SIZE on the other two): away $(elapsed "$C_STOP" "$C_START") s; it stopped at" \
		"index $C_INDEX or so; when it started the leader's log began at $C_LOG_FIRST, its latest" \
		"snapshot was at $C_SNAPSHOT, its commit index $C_LEADER_INDEX"
	fetch=-
	[ -z "$C_FETCH" ] || fetch="$(elapsed "$C_START" "$C_FETCH") s"
	installed=-
	[ -z "$C_INSTALLED" ] || installed="$(elapsed "$C_START" "$C_INSTALLED") s"
	echo "  from its start: install seen under way $fetch, installed (the log line seen) $installed," \
		"caught up (applied_index >= the leader's commit index) $(elapsed "$C_START" "$C_CAUGHT") s"
	echo "  the snapshot: ${C_LINE:-none installed (it caught up from the log)}"
	[ -z "$C_FETCH" ] || echo "  kalam.groups during the install: up to $C_ROWS_SEEN rows, $C_KB_SEEN kB seen"
	read -r _ f_hi <<<"$(rss_range "$C_NODE" "$C_START" "$C_CAUGHT")"
	read -r l_lo l_hi <<<"$(rss_range "$C_LEADER" "$C_START" "$C_CAUGHT")"
	echo "  kalam worker peak RSS (VmHWM, MB): node $C_NODE $C_HWM (since its start; sampled during the" \
		"catch-up: max $f_hi), leader $C_LEADER_HWM (since the cluster started; sampled during the catch-up:" \
		"$l_lo-$l_hi)"
	echo "  kalam elections during the phase: $(elections "$C_TERMS" "$C_TERMS_END")"
	[ -z "$C_ERRORS" ] || echo "  kalam pgbench errors: $C_ERRORS"
	if [ "$SCALE_BASELINE" = 1 ]; then
		echo "sync replication: standby s2 away $(elapsed "$S_STOP" "$S_START") s ($S_BEHIND MB of WAL" \
			"behind when it started), caught up (its replay_lsn >= the primary's LSN)" \
			"$(elapsed "$S_START" "$S_CAUGHT") s after its start; peak RSS (VmHWM): $S_HWM"
		[ -z "$S_ERRORS" ] || echo "  sync replication pgbench errors: $S_ERRORS"
	fi
	echo
	echo "leader's (primary's) latency while the node was away, caught up, after; and the run's last" \
		"${minute}s (all three nodes up)"
	# phase NAME STOP START CAUGHT END: "phase NAME from to end" lines of
	# NAME's run
	phase() {
		local t0 a b c
		t0=$(cat "$TEMP_BASE/$1.t0")
		a=$(elapsed "$t0" "$3")
		b=$(elapsed "$t0" "$4")
		c=$(elapsed "$t0" "$5")
		echo "away $1 0 $a $c"
		echo "catching-up $1 $a $b $c"
		echo "after $1 $b $c $c"
	}
	# phase_cells PHASE: the figures of PHASE ("label run from to end") in
	# c_fmt, no newline; PHASE_P its "p50 p99"
	phase_cells() {
		local label run from to end tps p50 p99 sd max cl
		read -r label run from to end <<<"$1"
		read -r _ tps p50 p99 sd max cl <<<"$(window "$run" "$from" "$to" "$end")"
		PHASE_P="$p50 $p99"
		# shellcheck disable=SC2059 # c_fmt is the format
		printf "$c_fmt" "$label" "$tps" "$p50" "$p99" "$sd" "$max" "$cl"
	}
	c_fmt='%-12s %7s %7s %7s %7s %7s %3s'
	declare -A k_row s_row
	if [ "$SCALE_BASELINE" = 1 ]; then
		# shellcheck disable=SC2059 # c_fmt is the format
		printf "%-12s %-47s | %s\n" "" kalam "sync replication"
		# shellcheck disable=SC2059 # c_fmt is the format
		printf "$c_fmt | $c_fmt\n" phase tps p50 p99 sd max cl phase tps p50 p99 sd max cl
	else
		# shellcheck disable=SC2059 # c_fmt is the format
		printf "$c_fmt\n" "kalam" tps p50 p99 sd max cl
	fi
	sync_phases=()
	[ "$SCALE_BASELINE" = 0 ] || mapfile -t sync_phases < <(phase sync_catchup "$S_STOP" "$S_START" "$S_CAUGHT" "$S_END")
	kalam_phases=("run kalam $((SCALE_SECONDS - minute)) $SCALE_SECONDS $SCALE_SECONDS")
	mapfile -t -O 1 kalam_phases < <(phase kalam_catchup "$C_STOP" "$C_START" "$C_CAUGHT" "$C_END")
	sync_phases=("run sync $((SCALE_SECONDS - minute)) $SCALE_SECONDS $SCALE_SECONDS" "${sync_phases[@]}")
	for ((p = 0; p < ${#kalam_phases[@]}; p++)); do
		phase_cells "${kalam_phases[p]}"
		k_row[${kalam_phases[p]%% *}]=$PHASE_P
		if [ "$SCALE_BASELINE" = 1 ]; then
			printf ' | '
			phase_cells "${sync_phases[p]}"
			s_row[${sync_phases[p]%% *}]=$PHASE_P
		fi
		echo
	done
	# catchup_ratios CATCHING-UP AWAY RUN: each "p50 p99" of a phase; "p50
	# a, p99 b of the away phase; p50 c, p99 d of the run"
	catchup_ratios() {
		local c50 c99 a50 a99 r50 r99
		read -r c50 c99 <<<"$1"
		read -r a50 a99 <<<"$2"
		read -r r50 r99 <<<"$3"
		echo "p50 $(ratio_of "$c50" "$a50"), p99 $(ratio_of "$c99" "$a99") of the away phase;" \
			"p50 $(ratio_of "$c50" "$r50"), p99 $(ratio_of "$c99" "$r99") of the run"
	}
	echo "latency while catching up / before: kalam $(catchup_ratios "${k_row[catching-up]}" "${k_row[away]}" "${k_row[run]}") (target 2 at most)"
	if [ "$SCALE_BASELINE" = 1 ]; then
		echo "  sync replication $(catchup_ratios "${s_row[catching-up]}" "${s_row[away]}" "${s_row[run]}")"
	fi
	# the latency per window of the catch-up phases, for the picture
	for name in kalam_catchup sync_catchup; do
		[ -s "$TEMP_BASE/$name.tx" ] || continue
		last=$(awk '$1 > m { m = $1 } END { print int(m) + 1 }' "$TEMP_BASE/$name.tx")
		for ((from = 0; from < last; from += SCALE_CATCHUP_WINDOW)); do
			read -r n _ w_p50 w_p99 _ <<<"$(window "$name" "$from" $((from + SCALE_CATCHUP_WINDOW)) 1e99)"
			if ((n > 0)); then
				echo "$((from * 2 + SCALE_CATCHUP_WINDOW)) $w_p50 $w_p99" | awk '{ print $1 / 2, $2, $3 }'
			fi
		done >"$plot_dir/$name.dat"
	done
fi
# (one file per node: gnuplot breaks a line at every point it skips)
awk -v t0="$load_start" -v dir="$plot_dir" '{ printf "%.2f %.1f\n", $1 - t0, $4 / 1024 > (dir "/rss-" $2 ".dat") }' \
	"$TEMP_BASE/rss.dat"
awk -v t0="$load_start" '($2 in term) && $3 > term[$2] { printf "%.2f\n", $1 - t0 } { term[$2] = $3 }' \
	"$TEMP_BASE/terms.dat" >"$plot_dir/elections.dat"

# catchup_lines NAME START CAUGHT COLOUR TITLE WHO Y: gnuplot's marks of
# NAME's catch-up (WHO back at START, caught up at CAUGHT: epochs; labels
# at height Y) in COLOUR; adds its p50 and p99 per window to plot
catchup_lines() {
	local t0 x
	t0=$(cat "$TEMP_BASE/$1.t0")
	x=$(elapsed "$t0" "$2")
	echo "set arrow from first $x, graph 0 to first $x, graph 1 nohead dashtype 2 lc rgb '$4'"
	echo "set label '$6 back' at first $x, graph $7 offset 1, 0 tc rgb '$4'"
	x=$(elapsed "$t0" "$3")
	echo "set arrow from first $x, graph 0 to first $x, graph 1 nohead dashtype 3 lc rgb '$4'"
	echo "set label 'caught up' at first $x, graph $7 offset 1, -1 tc rgb '$4'"
	plot+="${plot:+, }'$plot_dir/$1.dat' using 1:2 with linespoints lw 2 lc rgb '$4' title '$5 p50'"
	plot+=", '$plot_dir/$1.dat' using 1:3 with linespoints lw 2 dt 2 lc rgb '$4' title '$5 p99'"
}

# The picture: latency per window; the workers' RSS over time
commit=$(bench_commit "$repo")
{
	if [ "$SCALE_CATCHUP" = 1 ]; then
		echo "set terminal $(png_terminal 1400 1600)"
	else
		echo "set terminal $(png_terminal 1400 1100)"
	fi
	echo "set output '$SCALE_PNG'"
	printf 'set multiplot layout %d, 1 title' $((SCALE_CATCHUP == 1 ? 3 : 2))
	printf ' "%s\\n%s"\n' \
		"Growth test: $SCALE_PRELOAD rows loaded into one user's kalam table, then $SCALE_CLIENTS clients insert 200-byte rows for ${SCALE_SECONDS} s" \
		"$(date +%Y-%m-%d), ${commit:+kalam $commit, }$machine"
	echo "set grid"
	echo "set key below"
	echo "set logscale y"
	echo "set xlabel 'seconds into the run (middle of each ${SCALE_WINDOW}s window)'"
	echo "set ylabel 'latency per INSERT (ms, log scale)'"
	echo "set xrange [0:$SCALE_SECONDS]"
	echo "set title 'latency per window'"
	plot="'$plot_dir/kalam.dat' using 1:2 with linespoints lw 2 lc rgb '#1f77b4' title 'kalam p50'"
	plot+=", '$plot_dir/kalam.dat' using 1:3 with linespoints lw 2 dt 2 lc rgb '#1f77b4' title 'kalam p99'"
	if [ "$SCALE_BASELINE" = 1 ]; then
		plot+=", '$plot_dir/sync.dat' using 1:2 with linespoints lw 2 lc rgb '#555555' title 'sync replication p50'"
		plot+=", '$plot_dir/sync.dat' using 1:3 with linespoints lw 2 dt 2 lc rgb '#555555' title 'sync replication p99'"
	fi
	echo "plot $plot"
	echo "unset logscale y"
	echo "set xrange [0:*]"
	echo "set yrange [0:*]"
	echo "set xlabel 'seconds since the load started'"
	echo "set ylabel 'kalam worker RSS (MB)'"
	echo "set title 'kalam worker RSS per node (load, then run)'"
	for t in "$load_end" "$run_start" "$run_end"; do
		x=$(elapsed "$load_start" "$t")
		echo "set arrow from first $x, graph 0 to first $x, graph 1 nohead dashtype 2 lc rgb '#999999'"
	done
	echo "set label 'load' at first 0, graph 0.95 offset 1, 0 tc rgb '#777777'"
	echo "set label 'run' at first $(elapsed "$load_start" "$run_start"), graph 0.95 offset 1, 0 tc rgb '#777777'"
	if [ "$SCALE_CATCHUP" = 1 ]; then
		for t in "$C_STOP" "$C_START" "$C_CAUGHT"; do
			x=$(elapsed "$load_start" "$t")
			echo "set arrow from first $x, graph 0 to first $x, graph 1 nohead dashtype 2 lc rgb '#999999'"
		done
		echo "set label 'node $C_NODE away' at first $(elapsed "$load_start" "$C_STOP"), graph 0.95 offset 1, 0 tc rgb '#777777'"
		echo "set label 'catch-up' at first $(elapsed "$load_start" "$C_START"), graph 0.9 offset 1, 0 tc rgb '#777777'"
	fi
	plot=""
	colours=('' '#1f77b4' '#ff7f0e' '#2ca02c')
	for ((i = 1; i <= 3; i++)); do
		role=follower
		[ "$i" = "$leader" ] && role=leader
		plot+="${plot:+, }'$plot_dir/rss-$i.dat' using 1:2 with lines lw 2 lc rgb '${colours[i]}' title 'node $i ($role)'"
	done
	if [ -s "$plot_dir/elections.dat" ]; then
		echo "set y2range [0:1]"
		plot+=", '$plot_dir/elections.dat' using 1:(0.9) axes x1y2 with points pt 9 ps 1.5 lc rgb '#d62728' title 'an election (a group''s term rose)'"
	fi
	echo "plot $plot"
	if [ "$SCALE_CATCHUP" = 1 ]; then
		echo "unset arrow"
		echo "unset label"
		echo "unset y2range"
		echo "set logscale y"
		echo "set yrange [*:*]"
		echo "set xlabel 'seconds since the node stopped (middle of each ${SCALE_CATCHUP_WINDOW}s window)'"
		echo "set ylabel 'latency per INSERT on the leader (ms, log scale)'"
		echo "set title 'catch-up: a node away past compaction, then back while the clients go on'"
		plot=""
		catchup_lines kalam_catchup "$C_START" "$C_CAUGHT" '#1f77b4' kalam "node $C_NODE" 0.95
		[ "$SCALE_BASELINE" = 0 ] ||
			catchup_lines sync_catchup "$S_START" "$S_CAUGHT" '#555555' "sync replication" s2 0.85
		echo "plot $plot"
	fi
	echo "unset multiplot"
} >"$plot_dir/scale.gp"
if ! gnuplot "$plot_dir/scale.gp"; then
	echo "gnuplot failed on $plot_dir/scale.gp" >&2
	exit 1
fi
echo
echo "Latency per window and worker RSS: $SCALE_PNG"
