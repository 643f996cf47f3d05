# shellcheck shell=bash
# Shared by bench/cluster_bench.sh, bench/read_bench.sh and bench/scale.sh
# (source it after temp-cluster.sh): interleaved pgbench runs and their
# summary, and what the benchmarks' pictures need.
#
#   bench_init NAME          check BENCH_SECONDS (default 5) and BENCH_ROUNDS
#                            (default 3), set the C locale (the parsing
#                            expects it), temp_cluster_init NAME, and make
#                            BENCH_LOGS, the directory of pgbench's logs
#   bench NAME PORT SCRIPT CLIENTS
#                            one run of the pgbench SCRIPT against the
#                            server at PORT (with -D run=<run number> and
#                            -D n=0, for scripts that make unique keys);
#                            adds its tps to the runs of NAME and CLIENTS
#   summary NAME CLIENTS     "tps p50_ms p99_ms": the median tps of the runs
#                            of NAME with CLIENTS, nearest-rank percentiles
#                            of the latencies of all their transactions
#   latencies NAME CLIENTS   the latencies (us) of all the transactions of
#                            the runs of NAME with CLIENTS, sorted, one a line
#   cdf NAME CLIENTS         their empirical distribution: "ms fraction"
#                            lines, one per distinct latency, fraction = the
#                            share of transactions at or below it (for plots)
#   ratio A B                A / B with two decimals (0 if B is 0)
#   bench_png PATH VAR       print PATH made absolute (relative to the
#                            current directory: call it before bench_init),
#                            the picture named by the setting VAR; fail if
#                            its directory does not exist; install
#                            gnuplot-nox if gnuplot is missing
#   png_terminal W H         gnuplot's terminal line for a W x H PNG
#                            (pngcairo where gnuplot has it)
#   bench_machine            "PostgreSQL <version>, <n> CPUs (<model>),
#                            loopback, fsync on", for titles
#   bench_commit REPO        REPO's short commit, "+ uncommitted changes" if
#                            tracked files other than bench/*.png changed

declare -A tps runs
run=0

bench_init() {
	BENCH_SECONDS=${BENCH_SECONDS:-5}
	BENCH_ROUNDS=${BENCH_ROUNDS:-3}
	if ! [[ $BENCH_SECONDS =~ ^[1-9][0-9]*$ && $BENCH_ROUNDS =~ ^[1-9][0-9]*$ ]]; then
		echo "$1: BENCH_SECONDS and BENCH_ROUNDS must be positive integers" >&2
		exit 1
	fi
	# pgbench and printf format numbers by locale
	export LC_ALL=C
	temp_cluster_init "$1"
	BENCH_LOGS=$TEMP_BASE/pgbench-logs
	mkdir "$BENCH_LOGS"
	chown postgres:postgres "$BENCH_LOGS"
}

# run_pgbench PORT SCRIPT RUN PGBENCH-ARGS...: prints the tps of one run,
# logging each transaction to $BENCH_LOGS/runRUN.*
run_pgbench() {
	local port=$1 script=$2 run=$3 r
	shift 3
	sql "$port" -c CHECKPOINT >/dev/null || return
	r=$(pgbench_run -p "$port" -f "$script" -D run="$run" -D n=0 \
		--log --log-prefix="$BENCH_LOGS/run$run" "$@") || return
	echo "${r%% *}"
}

bench() {
	local name=$1 port=$2 script=$3 clients=$4 t
	run=$((run + 1))
	echo "Running: $name, $clients client(s), port $port (${BENCH_SECONDS}s)..."
	t=$(run_pgbench "$port" "$script" "$run" -c "$clients" -j $((clients > 1 ? 2 : 1)))
	tps[$name,$clients]+=" $t"
	runs[$name,$clients]+=" $run"
}

# latencies NAME CLIENTS: the latencies (us in the logs' third field) of all
# the transactions of the runs of NAME with CLIENTS, sorted
latencies() {
	local r files=()
	for r in ${runs[$1,$2]}; do
		files+=("$BENCH_LOGS/run$r".*)
	done
	cat "${files[@]}" | awk '$3 ~ /^[0-9]+$/ { print $3 }' | sort -n
}

# summary NAME CLIENTS: "tps p50_ms p99_ms": the median tps of the rounds,
# nearest-rank percentiles of the latencies of all their transactions
summary() {
	local name=$1 clients=$2 median
	# shellcheck disable=SC2086 # split the list of numbers
	median=$(printf '%s\n' ${tps[$name,$clients]} | sort -g |
		awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }')
	if ! latencies "$name" "$clients" |
		awk -v tps="$median" '
			{ lat[NR] = $1 }
			END {
				if (NR == 0) exit 1
				printf "%s %.3f %.3f\n", tps,
					lat[int((NR * 50 + 99) / 100)] / 1000, lat[int((NR * 99 + 99) / 100)] / 1000
			}'; then
		echo "no latencies in pgbench's logs of $name, $clients client(s)" >&2
		return 1
	fi
}

# cdf NAME CLIENTS: "ms fraction" at each distinct latency of the
# transactions of NAME with CLIENTS (the last line is "max 1")
cdf() {
	latencies "$1" "$2" |
		awk '
			{ v[NR] = $1 }
			END {
				for (i = 1; i <= NR; i++)
					if (i == NR || v[i + 1] != v[i])
						printf "%.3f %.6f\n", v[i] / 1000, i / NR
			}'
}

ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'
}

bench_png() {
	local png=$1
	[[ $png == /* ]] || png=$PWD/$png
	if ! [ -d "$(dirname "$png")" ]; then
		echo "$(basename "$0"): no directory for $2=$png" >&2
		return 1
	fi
	if ! command -v gnuplot >/dev/null; then
		echo "Installing gnuplot-nox (for $png)..." >&2
		if ! apt-get install -y -qq --no-install-recommends gnuplot-nox >/dev/null; then
			apt-get update -qq
			apt-get install -y -qq --no-install-recommends gnuplot-nox >/dev/null
		fi
	fi
	echo "$png"
}

png_terminal() {
	if gnuplot -e 'set terminal pngcairo' 2>/dev/null; then
		echo "pngcairo size $1,$2 font 'DejaVu Sans,11' noenhanced"
	else
		echo "png size $1,$2 noenhanced"
	fi
}

bench_machine() {
	local machine cpu
	machine="PostgreSQL $("$PG_BIN/postgres" -V | awk '{print $3}'), $(nproc) CPUs"
	cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1) || cpu=
	[ -n "$cpu" ] && machine+=" ($cpu)"
	echo "$machine, loopback, fsync on"
}

# the tree a benchmark measured (setup.sh installed kalam from it); the
# pictures themselves aside
bench_commit() {
	local commit
	commit=$(git -C "$1" rev-parse --short HEAD 2>/dev/null) || return 0
	if [ -n "$(git -C "$1" status --porcelain --untracked-files=no -- . \
		':(exclude)bench/*.png' 2>/dev/null)" ]; then
		commit+=" + uncommitted changes"
	fi
	echo "$commit"
}
