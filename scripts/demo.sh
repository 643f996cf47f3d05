#!/usr/bin/env bash
# A short demo of kalam: sets up the machine and installs kalam (setup.sh),
# starts a throwaway 3-node kalam cluster on 127.0.0.1 (2 user shards),
# shows its Raft groups and nodes, creates a 'user' table on node 2 (kalam
# replicates it to the other nodes), has alice write on node 3 and bob on
# node 1, then shows that a read on a node that does not lead the rows'
# group fails with KL004 naming the leader, that at the linearizable read
# level every node shows each role only its own rows, the groups as each
# node sees them, and a query plan.  The servers and their files are removed on exit.  Run as root.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$repo/scripts/setup.sh"
# shellcheck source=scripts/lib/temp-cluster.sh
. "$repo/scripts/lib/temp-cluster.sh"

temp_cluster_init kalam-demo

# psql on node NODE (1, 2 or 3), showing each statement before its result
demo_sql() {
	sql "${NODE_PORTS[$1]}" --echo-queries
}

echo
echo '==== 1. Start three kalam nodes: one PostgreSQL server each, on this machine'
start_kalam_cluster 3 2
echo "The kalam settings of node 1 (nodes 2 and 3 differ in node_id and raft_address):"
grep '^kalam\.' "$TEMP_BASE/kalam1/postgresql.conf" | sed 's/^/    /'
echo "CREATE EXTENSION kalam has run on every node and every Raft group has a leader."

demo_sql 1 <<'SQL'
\echo
\echo '==== 2. On node 1: the Raft groups (meta: DDL, shared: shared tables, user_0 and user_1: the user shards) and the nodes'
SELECT * FROM kalam.groups;
SELECT * FROM kalam.nodes;
SQL

demo_sql 2 <<'SQL'
\echo
\echo '==== 3. On node 2: a user table (type ''user''): every role sees only its own rows'
CREATE SCHEMA app;
CREATE FOREIGN TABLE app.messages (
    id      bigint NOT NULL,
    room    text,
    body    text,
    sent_at timestamptz DEFAULT now()
) SERVER kalam OPTIONS (type 'user', primary_key 'id');
SQL

echo
echo '==== 4. Two ordinary roles, alice and bob: roles are not replicated, so each node'
echo '====    creates its own; on node 2, ordinary privileges on the table (replicated)'
for node in 1 3 2; do
	echo "-- node $node:"
	demo_sql "$node" <<'SQL'
CREATE ROLE alice LOGIN;
CREATE ROLE bob LOGIN;
SQL
done
demo_sql 2 <<'SQL'
GRANT USAGE ON SCHEMA app TO alice, bob;
GRANT SELECT, INSERT, UPDATE, DELETE ON app.messages TO alice, bob;
SQL

echo
echo '==== 5. kalam replicates the table (and creates schema app) and its GRANT on nodes 1'
echo '====    and 3; a GRANT on a schema is not replicated: each node makes its own'
for node in 1 3; do
	poll "${NODE_PORTS[node]}" "SELECT count(*) = 1 FROM kalam.tables WHERE has_table_privilege('bob', \"table\", 'INSERT')"
	echo
	echo "-- node $node:"
	demo_sql "$node" <<'SQL'
SELECT "table", type, primary_key, has_table_privilege('alice', "table", 'INSERT') AS alice_may_insert
  FROM kalam.tables;
GRANT USAGE ON SCHEMA app TO alice, bob;
SQL
done

demo_sql 3 <<'SQL'
\echo
\echo '==== 6. On node 3, alice inserts ids 1 and 2 (if node 3 does not lead her shard, the COMMIT is forwarded to the node that does)'
SELECT kalam.leader_for_user('alice') AS leader_of_alices_shard;
SET ROLE alice;
INSERT INTO app.messages (id, room, body) VALUES
    (1, 'general', 'hi, alice here'),
    (2, 'random', 'alice again');
RESET ROLE;
SQL

demo_sql 1 <<'SQL'
\echo
\echo '==== 7. On node 1, bob inserts ids 1 and 3: his id 1 does not clash with alice''s id 1'
SELECT kalam.leader_for_user('bob') AS leader_of_bobs_shard;
SET ROLE bob;
INSERT INTO app.messages (id, room, body) VALUES
    (1, 'general', 'hello from bob'),
    (3, 'general', 'bob, second message');
RESET ROLE;
SQL

echo
echo '==== 8. Reads are served by the leader of the rows'"'"' group by default: on a node that'
echo '====    does not lead alice'"'"'s shard, her read fails with KL004 naming the leader'
alice_leader=$(sql "${NODE_PORTS[1]}" -At -c "SELECT kalam.leader_for_user('alice')")
other=$((alice_leader % 3 + 1))
echo "-- node $other (alice's shard is led by node $alice_leader):"
demo_sql "$other" <<'SQL'
\set ON_ERROR_STOP off
\set VERBOSITY verbose
SET ROLE alice;
SELECT id, body FROM app.messages;
RESET ROLE;
SQL

echo
echo '==== 9. At kalam.read_consistency linearizable a read is correct on any node: on every'
echo '====    node alice sees only her rows (ids 1 and 2), bob only his (ids 1 and 3)'
for node in 1 2 3; do
	echo
	echo "-- node $node:"
	demo_sql "$node" <<'SQL'
SET kalam.read_consistency = linearizable;
SET ROLE alice;
SELECT current_user, id, room, body FROM app.messages ORDER BY id;
SET ROLE bob;
SELECT current_user, id, room, body FROM app.messages ORDER BY id;
RESET ROLE;
SQL
done

echo
echo '==== 10. The Raft groups as each node sees them: one leader per group, the same on every node'
for node in 1 2 3; do
	echo
	echo "-- node $node:"
	demo_sql "$node" <<'SQL'
SELECT group_name, leader_id, term, commit_index, applied_index, is_leader FROM kalam.groups;
SQL
done

demo_sql 1 <<'SQL'
\echo
\echo '==== 11. On node 1: the plan of a key lookup, as alice, at the linearizable read level'
SET kalam.read_consistency = linearizable;
SET ROLE alice;
EXPLAIN (VERBOSE) SELECT * FROM app.messages WHERE id = 1;
RESET ROLE;
SQL

echo
echo '==== 12. Live queries: alice LISTENs on node 3 to her channel of app.messages; she'
echo '====     writes on node 1; node 3 notifies her right after it applied the row'
echo '====     (psql prints notifications once its current statement, a pg_sleep, ends)'
listened=$TEMP_BASE/listen.out
demo_sql 3 >"$listened" 2>&1 <<'SQL' &
SET ROLE alice;
SELECT kalam.channel('app.messages') AS channel \gset
LISTEN :channel;
SELECT pg_sleep(3);
SQL
listener=$!
sleep 1
demo_sql 1 <<'SQL'
SET ROLE alice;
INSERT INTO app.messages (id, room, body) VALUES (4, 'general', 'alice, live');
RESET ROLE;
SQL
wait "$listener"
echo
echo "-- node 3, alice's session:"
cat "$listened"

echo
echo '==== 13. Stop the three nodes'
stop_kalam_cluster
echo "Demo done; removing $TEMP_BASE."
