#!/usr/bin/env bash
# A short demo of kalam: sets up the machine and installs kalam (setup.sh),
# starts a throwaway server with kalam preloaded, creates a 'user' table and
# shows that two roles each see only their own rows, then the kalam.tables
# catalog and a query plan.  The server and its files are removed on exit.
# Run as root.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$repo/scripts/setup.sh"
# shellcheck source=scripts/lib/temp-server.sh
. "$repo/scripts/lib/temp-server.sh"

temp_server_init kalam-demo
# shellcheck disable=SC2119 # no extra settings
temp_server_start
echo "Server running on 127.0.0.1:$PGPORT (data directory $TEMP_BASE/data)."

as_pg "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 --echo-queries <<'SQL'
\echo
\echo '==== 1. Create the extension: it brings FOREIGN DATA WRAPPER kalam and SERVER kalam'
CREATE EXTENSION kalam;

\echo
\echo '==== 2. A user table (type ''user''): every role sees only its own rows'
CREATE SCHEMA app;
CREATE FOREIGN TABLE app.messages (
    id      bigint NOT NULL,
    room    text,
    body    text,
    sent_at timestamptz DEFAULT now()
) SERVER kalam OPTIONS (type 'user', primary_key 'id');

\echo
\echo '==== 3. Two ordinary roles, alice and bob, with ordinary privileges'
CREATE ROLE alice LOGIN;
CREATE ROLE bob LOGIN;
GRANT USAGE ON SCHEMA app TO alice, bob;
GRANT SELECT, INSERT, UPDATE, DELETE ON app.messages TO alice, bob;

\echo
\echo '==== 4. alice inserts ids 1 and 2'
SET ROLE alice;
INSERT INTO app.messages (id, room, body) VALUES
    (1, 'general', 'hi, alice here'),
    (2, 'random', 'alice again');
RESET ROLE;

\echo
\echo '==== 5. bob inserts ids 1 and 3: his id 1 does not clash with alice''s id 1'
SET ROLE bob;
INSERT INTO app.messages (id, room, body) VALUES
    (1, 'general', 'hello from bob'),
    (3, 'general', 'bob, second message');
RESET ROLE;

\echo
\echo '==== 6. alice sees only her own rows (ids 1 and 2)'
SET ROLE alice;
SELECT current_user, id, room, body FROM app.messages ORDER BY id;
RESET ROLE;

\echo
\echo '==== 7. bob sees only his own rows (ids 1 and 3)'
SET ROLE bob;
SELECT current_user, id, room, body FROM app.messages ORDER BY id;
RESET ROLE;

\echo
\echo '==== 8. The kalam catalog: tables kalam manages'
SELECT * FROM kalam.tables;

\echo
\echo '==== 9. The plan of a key lookup, as alice'
SET ROLE alice;
EXPLAIN (VERBOSE) SELECT * FROM app.messages WHERE id = 1;
RESET ROLE;
SQL

echo
echo "Demo done; stopping the server and removing $TEMP_BASE."
