# shellcheck shell=bash
# Shared by scripts/demo.sh and the cluster benchmarks (source it, do not run
# it): throwaway PostgreSQL 15 servers, run as the postgres OS user,
# listening only on 127.0.0.1, all in one temp directory: server NAME has
# its data directory in $TEMP_BASE/NAME, its log in $TEMP_BASE/NAME.log and
# its unix socket in $TEMP_BASE.  Sources temp-server.sh (PG_BIN, as_pg).
#
#   temp_cluster_init NAME   create the temp directory (TEMP_BASE), cd into it,
#                            export PGHOST, PGUSER, PGDATABASE, and arrange
#                            for every server in it to be stopped (with the
#                            tails of the logs printed on failure) and the
#                            directory removed when the calling script exits
#   alloc_ports COUNT        set PORTS to the first of COUNT consecutive free
#                            ports, above every port allocated before
#   init_node NAME           initdb server NAME (listen on 127.0.0.1, socket
#                            in TEMP_BASE)
#   start_node NAME PORT [LINE...]
#                            append LINEs to its postgresql.conf and start it
#   stop_node NAME           stop server NAME
#   sql PORT PSQL-ARGS...    psql -X -q -v ON_ERROR_STOP=1 as postgres
#   poll PORT QUERY          wait up to WAIT_SECONDS (default 30; set it after
#                            sourcing) for QUERY to return true
#   poll_same_count TABLE PORT OTHER-PORT...
#                            warn unless every other server shows as many
#                            rows of TABLE as the one at PORT
#   start_kalam_cluster N_NODES USER_SHARDS
#                            start a kalam cluster of servers kalam1 ..
#                            kalamN (node ids 1 .. N), CREATE EXTENSION kalam
#                            on each, wait for a leader of every group on
#                            every node; sets NODE_PORTS[i] and RAFT_PORTS[i]
#                            (i = 1 .. N) to node i's PostgreSQL port and the
#                            first of its Raft ports
#   stop_kalam_cluster       stop the servers of start_kalam_cluster
#   wait_kalam_tables COUNT  wait (poll) until every node of the cluster has
#                            COUNT kalam tables: the replicated CREATEs
#   kalam_group_leader GROUP set LEADER to the node (1 .. N) that node 1 sees
#                            leading the Raft group GROUP (kalam.groups'
#                            group_name), once that node says it leads it
#   start_sync_replication   start PostgreSQL synchronous streaming
#                            replication: server primary on SYNC_PORT and
#                            standbys s1 and s2 (pg_basebackup -R) on
#                            SYNC_PORT + 1 and + 2, synchronous_standby_names
#                            = 'ANY 1 (s1, s2)'; waits until both stream
#   stop_sync_replication    stop the servers of start_sync_replication

# shellcheck source=scripts/lib/temp-server.sh
. "$(dirname "${BASH_SOURCE[0]}")/temp-server.sh"

# seconds poll waits: for leaders, replicated DDL, standbys, replicated rows
WAIT_SECONDS=30
# alloc_ports hands out ports upwards from here
TEMP_CLUSTER_NEXT_PORT=$((20000 + RANDOM % 8000))
PORTS=""
NODE_PORTS=()
RAFT_PORTS=()

temp_cluster_init() {
	# Under /tmp rather than $TMPDIR: the postgres user must be able to reach it.
	TEMP_BASE=$(mktemp -d "/tmp/$1.XXXXXX")
	chown postgres:postgres "$TEMP_BASE"
	# Commands run as postgres need a cwd they can enter (not e.g. /root).
	cd "$TEMP_BASE" || return
	export PGHOST=$TEMP_BASE PGUSER=postgres PGDATABASE=postgres
	trap temp_cluster_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

temp_cluster_cleanup() {
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
		stop_node "$(basename "$(dirname "$pid_file")")"
	done
	rm -rf "$TEMP_BASE"
	exit "$status"
}

stop_node() {
	as_pg "$PG_BIN/pg_ctl" -D "$TEMP_BASE/$1" -m fast -w -t 60 stop >/dev/null ||
		as_pg "$PG_BIN/pg_ctl" -D "$TEMP_BASE/$1" -m immediate -w stop >/dev/null ||
		echo "warning: could not stop the server in $TEMP_BASE/$1" >&2
}

# alloc_ports COUNT: sets PORTS to the first of COUNT consecutive ports on
# which nothing accepts connections on 127.0.0.1, above all ports allocated
# before and below Linux's ephemeral range (32768-60999).
alloc_ports() {
	local count=$1 port
	while ((TEMP_CLUSTER_NEXT_PORT + count <= 32768)); do
		for ((port = TEMP_CLUSTER_NEXT_PORT; port < TEMP_CLUSTER_NEXT_PORT + count; port++)); do
			if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
				break
			fi
		done
		if ((port == TEMP_CLUSTER_NEXT_PORT + count)); then
			PORTS=$TEMP_CLUSTER_NEXT_PORT
			TEMP_CLUSTER_NEXT_PORT=$port
			return 0
		fi
		TEMP_CLUSTER_NEXT_PORT=$((port + 1))
	done
	echo "no $count consecutive free ports on 127.0.0.1" >&2
	return 1
}

init_node() {
	init_data_dir "$TEMP_BASE/$1"
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

# start_kalam_cluster N_NODES USER_SHARDS: node i is server kalam<i> with
# kalam.node_id i, PostgreSQL on NODE_PORTS[i], its Raft groups (meta,
# shared, then the user shards) on RAFT_PORTS[i] + 0 .. USER_SHARDS + 1 and
# forwarding on RAFT_PORTS[i] + USER_SHARDS + 2: consecutive ports.  The
# nodes share a fresh random secret (kalam.cluster_secret_file), 0600 in
# each data directory.  KALAM_SETTINGS, if set, adds settings to every
# node, separated by semicolons ("kalam.flush_interval = 0; ..."), for
# comparing runs.
start_kalam_cluster() {
	local n_nodes=$1 user_shards=$2 i peers="" secret
	local -a extra=()
	IFS=';' read -r -a extra <<<"${KALAM_SETTINGS:-}"
	NODE_PORTS=()
	RAFT_PORTS=()
	for ((i = 1; i <= n_nodes; i++)); do
		alloc_ports $((1 + 2 + user_shards + 1)) || return
		NODE_PORTS[i]=$PORTS
		RAFT_PORTS[i]=$((PORTS + 1))
		peers+="${peers:+,}$i@127.0.0.1:${RAFT_PORTS[i]}"
	done
	echo "Starting a kalam cluster (PostgreSQL ports ${NODE_PORTS[*]}," \
		"Raft ports ${RAFT_PORTS[*]} + 0..$((2 + user_shards)))..."
	secret=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
	for ((i = 1; i <= n_nodes; i++)); do
		init_node "kalam$i" || return
		(umask 077 && echo "$secret" >"$TEMP_BASE/kalam$i/kalam_secret")
		chown postgres:postgres "$TEMP_BASE/kalam$i/kalam_secret"
		start_node "kalam$i" "${NODE_PORTS[i]}" \
			"shared_preload_libraries = 'kalam'" \
			"kalam.cluster_secret_file = 'kalam_secret'" \
			"kalam.node_id = $i" \
			"kalam.raft_address = '127.0.0.1:${RAFT_PORTS[i]}'" \
			"kalam.peers = '$peers'" \
			"kalam.user_shards = $user_shards" "${extra[@]}" || return
	done
	for ((i = 1; i <= n_nodes; i++)); do
		sql "${NODE_PORTS[i]}" -c 'CREATE EXTENSION kalam' || return
	done
	for ((i = 1; i <= n_nodes; i++)); do
		poll "${NODE_PORTS[i]}" 'SELECT count(*) = 0 FROM kalam.groups WHERE leader_id IS NULL' ||
			return
	done
}

stop_kalam_cluster() {
	local i
	for ((i = 1; i <= ${#NODE_PORTS[@]}; i++)); do
		stop_node "kalam$i"
	done
}

wait_kalam_tables() {
	local i
	for ((i = 1; i <= ${#NODE_PORTS[@]}; i++)); do
		poll "${NODE_PORTS[i]}" "SELECT count(*) = $1 FROM kalam.tables" || return
	done
}

kalam_group_leader() {
	local group=$1
	LEADER=$(sql "${NODE_PORTS[1]}" -At -c \
		"SELECT leader_id FROM kalam.groups WHERE group_name = '$group'") || return
	if ! [[ $LEADER =~ ^[1-9][0-9]*$ ]] || [ -z "${NODE_PORTS[LEADER]:-}" ]; then
		echo "node 1 sees '$LEADER' as the leader of group $group" >&2
		return 1
	fi
	poll "${NODE_PORTS[LEADER]}" "SELECT is_leader FROM kalam.groups WHERE group_name = '$group'"
}

start_sync_replication() {
	local i
	alloc_ports 3 || return
	SYNC_PORT=$PORTS
	echo "Starting a primary (port $SYNC_PORT) and two synchronous standbys..."
	init_node primary || return
	start_node primary "$SYNC_PORT" "synchronous_standby_names = 'ANY 1 (s1, s2)'" || return
	for i in 1 2; do
		# -R writes primary_conninfo with this application_name into the standby
		if ! as_pg "$PG_BIN/pg_basebackup" -D "$TEMP_BASE/s$i" -R -c fast \
			-d "host=$TEMP_BASE port=$SYNC_PORT user=postgres application_name=s$i" \
			>"$TEMP_BASE/basebackup.out" 2>&1; then
			cat "$TEMP_BASE/basebackup.out" >&2
			return 1
		fi
		start_node "s$i" $((SYNC_PORT + i)) || return
	done
	poll "$SYNC_PORT" "SELECT count(*) = 2 FROM pg_stat_replication
		WHERE application_name IN ('s1', 's2') AND state = 'streaming'
		AND sync_state IN ('sync', 'quorum')"
}

stop_sync_replication() {
	stop_node s1
	stop_node s2
	stop_node primary
}
