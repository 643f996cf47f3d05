# shellcheck shell=bash
# Used by bench/bench.sh and scripts/lib/temp-cluster.sh (source it, do not run it):
# a throwaway PostgreSQL 15 server with kalam preloaded, run as the postgres
# OS user, listening only on 127.0.0.1 at a free port, with its data
# directory, log and unix socket all inside one temp directory.
#
#   temp_server_init NAME    create the temp directory (TEMP_BASE) and arrange
#                            for the server to be stopped and the directory
#                            removed when the calling script exits
#   temp_server_start [LINE...]
#                            initdb, append LINEs to postgresql.conf, start;
#                            exports PGHOST, PGPORT, PGUSER, PGDATABASE
#   as_pg CMD...             run CMD as the postgres OS user
#   init_data_dir DIR        initdb DIR, listening on 127.0.0.1 with its
#                            unix socket in TEMP_BASE
#   write_insert_scripts DIR write DIR/insert-heap.sql and insert-kalam.sql,
#                            pgbench scripts of single-row INSERTs
#   pgbench_run PGBENCH-ARGS...
#                            run pgbench -n -M prepared -T $BENCH_SECONDS as
#                            postgres; print "tps latency_ms", or fail with
#                            pgbench's output if it failed, processed nothing
#                            or had failed transactions

PG_BIN=/usr/lib/postgresql/15/bin
TEMP_BASE=""

as_pg() {
	runuser -u postgres -- "$@"
}

temp_server_init() {
	# Under /tmp rather than $TMPDIR: the postgres user must be able to reach it.
	TEMP_BASE=$(mktemp -d "/tmp/$1.XXXXXX")
	chown postgres:postgres "$TEMP_BASE"
	# Commands run as postgres need a cwd they can enter (not e.g. /root).
	cd "$TEMP_BASE" || return
	trap temp_server_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

temp_server_cleanup() {
	local status=$?
	cd /
	if [ -f "$TEMP_BASE/data/postmaster.pid" ]; then
		as_pg "$PG_BIN/pg_ctl" -D "$TEMP_BASE/data" -m fast -w -t 60 stop >/dev/null ||
			as_pg "$PG_BIN/pg_ctl" -D "$TEMP_BASE/data" -m immediate -w stop >/dev/null ||
			echo "warning: could not stop the server in $TEMP_BASE/data" >&2
	fi
	rm -rf "$TEMP_BASE"
	exit "$status"
}

# Prints a TCP port on which nothing accepts connections on 127.0.0.1, below
# Linux's ephemeral range (32768-60999) so that no outgoing connection holds it.
free_port() {
	local port _
	for _ in $(seq 1 200); do
		port=$((20000 + RANDOM % 12000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "$port"
			return 0
		fi
	done
	echo "no free port found on 127.0.0.1" >&2
	return 1
}

init_data_dir() {
	if ! as_pg "$PG_BIN/initdb" -D "$1" -U postgres -A trust -E UTF8 --no-locale \
		>"$TEMP_BASE/initdb.log" 2>&1; then
		cat "$TEMP_BASE/initdb.log" >&2
		return 1
	fi
	{
		echo "listen_addresses = '127.0.0.1'"
		echo "unix_socket_directories = '$TEMP_BASE'"
	} >>"$1/postgresql.conf"
}

# An inserted id is (run * 1000 + client) * 10^12 + n, where n counts the
# client's transactions (pgbench keeps a client's variables from one
# transaction to the next; -D n=0 starts it): no two inserts collide.
write_insert_scripts() {
	local kind
	for kind in heap kalam; do
		cat >"$1/insert-$kind.sql" <<SQL
\set n :n + 1
\set id (:run * 1000 + :client_id) * 1000000000000 + :n
INSERT INTO bench.${kind}_ins (id, room, body) VALUES (:id, 'room 1', 'a benchmark message');
SQL
	done
}

pgbench_run() {
	local out=$TEMP_BASE/pgbench.out
	if ! as_pg "$PG_BIN/pgbench" -n -M prepared -T "$BENCH_SECONDS" "$@" >"$out" 2>&1; then
		echo "pgbench $* failed:" >&2
		cat "$out" >&2
		return 1
	fi
	if ! awk '
		/^number of transactions actually processed: / { done = $6 }
		/^number of failed transactions: / { failed = $5 }
		/^latency average = [0-9.]+ ms$/ { lat = $4 }
		/^tps = [0-9.]+ / { tps = $3 }
		END {
			if (done + 0 == 0 || failed + 0 != 0 || lat == "" || tps == "") exit 1
			print tps, lat
		}' "$out"; then
		echo "unexpected output of pgbench $*:" >&2
		cat "$out" >&2
		return 1
	fi
}

temp_server_start() {
	local data=$TEMP_BASE/data log=$TEMP_BASE/server.log port _ line
	init_data_dir "$data" || return
	{
		echo "shared_preload_libraries = 'kalam'"
		for line in "$@"; do
			echo "$line"
		done
	} >>"$data/postgresql.conf"
	# Another process may take the port between free_port and the bind: retry.
	for _ in 1 2 3 4 5; do
		port=$(free_port)
		rm -f "$log"
		if as_pg "$PG_BIN/pg_ctl" -D "$data" -l "$log" -w -t 120 -o "-p $port" start >/dev/null; then
			export PGHOST=$TEMP_BASE PGPORT=$port PGUSER=postgres PGDATABASE=postgres
			return 0
		fi
		grep -q 'could not bind\|could not create any TCP/IP sockets' "$log" || break
	done
	echo "the server did not start; its log:" >&2
	cat "$log" >&2
	return 1
}
