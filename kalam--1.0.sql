/* kalam--1.0.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION kalam" to load this file. \quit

CREATE FUNCTION kalam_fdw_handler()
RETURNS fdw_handler
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT;

CREATE FUNCTION kalam_fdw_validator(text[], oid)
RETURNS void
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT;

CREATE FOREIGN DATA WRAPPER kalam
  HANDLER kalam_fdw_handler
  VALIDATOR kalam_fdw_validator;

CREATE SERVER kalam FOREIGN DATA WRAPPER kalam;

-- ids of kalam tables, shifted left by 8 bits and or'ed with the node id
CREATE SEQUENCE table_id_seq;

-- how far the kalam jobs worker has run the DDL of other nodes: the meta
-- log position and key of the last DDL record it ran or skipped
CREATE TABLE replay_position (ddl_index bigint NOT NULL, ddl_key bytea NOT NULL);
INSERT INTO replay_position VALUES (0, '');

-- DDL records of other nodes that failed here and are retried, or that
-- were refused and skipped
CREATE TABLE replay_state (
    position bigint NOT NULL,           -- meta log position of the record
    record_key bytea NOT NULL,          -- its key, among those of the position
    origin integer NOT NULL,            -- node that ran the statement first
    table_id bigint,                    -- NULL if the record is malformed
    kind text,                          -- create, alter, rename, drop
    role text,                          -- role that ran it at its origin
    state text NOT NULL CHECK (state IN ('retrying', 'skipped')),
    attempts integer NOT NULL,
    last_error text NOT NULL,
    last_attempt timestamptz NOT NULL,
    next_attempt timestamptz,           -- retrying: when it is tried again
    PRIMARY KEY (position, record_key));

-- let the DDL replay go past a record that keeps failing here: it is
-- skipped, and the records after it run (superusers only)
CREATE FUNCTION replay_skip(record_position bigint)
RETURNS boolean
LANGUAGE sql VOLATILE STRICT
AS $$
WITH pending AS (
    UPDATE kalam.replay_state
       SET state = 'skipped', next_attempt = NULL,
           last_error = last_error || ' (skipped by ' || current_user || ')'
     WHERE position = record_position AND state = 'retrying'
    RETURNING position, record_key),
moved AS (
    UPDATE kalam.replay_position
       SET ddl_index = pending.position, ddl_key = pending.record_key
      FROM pending
    RETURNING 1)
SELECT count(*) = 1 FROM moved
$$;
REVOKE ALL ON FUNCTION replay_skip(bigint) FROM PUBLIC;

-- developer function: write unchecked bytes as a DDL record of this node
-- (only with kalam.debug_ddl_records = on)
CREATE FUNCTION debug_put_ddl_record(bytea)
RETURNS void
AS 'MODULE_PATHNAME', 'kalam_debug_put_ddl_record'
LANGUAGE C STRICT VOLATILE;
REVOKE ALL ON FUNCTION debug_put_ddl_record(bytea) FROM PUBLIC;

CREATE VIEW tables AS
SELECT c.oid::regclass AS "table",
       o.type,
       o.primary_key,
       o.table_id::int AS id,
       o.ttl::interval AS ttl
  FROM pg_foreign_table ft
  JOIN pg_class c ON c.oid = ft.ftrelid
  JOIN pg_foreign_server s ON s.oid = ft.ftserver
  JOIN pg_foreign_data_wrapper w ON w.oid = s.srvfdw AND w.fdwname = 'kalam'
 CROSS JOIN LATERAL (
       SELECT max(option_value) FILTER (WHERE option_name = 'type') AS type,
              max(option_value) FILTER (WHERE option_name = 'primary_key') AS primary_key,
              max(option_value) FILTER (WHERE option_name = 'table_id') AS table_id,
              max(option_value) FILTER (WHERE option_name = 'ttl') AS ttl
         FROM pg_options_to_table(ft.ftoptions)) o;

CREATE FUNCTION stats(
    OUT commands_applied bigint,
    OUT commands_failed bigint,
    OUT batches_written bigint,
    OUT rows_written bigint,
    OUT apply_time_ms double precision,
    OUT applied_index bigint,
    OUT worker_pid integer,
    OUT multi_group_committed bigint,
    OUT multi_group_aborted bigint,
    OUT multi_group_commit_avg_ms double precision,
    OUT transactions_recovered bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'kalam_stats'
LANGUAGE C STRICT VOLATILE;

CREATE VIEW stats AS SELECT * FROM stats();

-- the apply path of each Raft group on this node, over the last minute and
-- since stat_apply_reset() (src/cluster/apply_metrics.c)
CREATE FUNCTION stat_apply(
    OUT group_name text,
    OUT period text,
    OUT since timestamptz,
    OUT entries bigint,
    OUT commands bigint,
    OUT rows_written bigint,
    OUT bytes bigint,
    OUT entry_bytes_max bigint,
    OUT apply_p50_ms double precision,
    OUT apply_p99_ms double precision,
    OUT apply_max_ms double precision,
    OUT propose_to_commit_p50_ms double precision,
    OUT propose_to_commit_p99_ms double precision,
    OUT commit_to_apply_p50_ms double precision,
    OUT commit_to_apply_p99_ms double precision,
    OUT forwarded bigint,
    OUT forward_rtt_p50_ms double precision,
    OUT forward_rtt_p99_ms double precision,
    OUT parked_entries bigint,
    OUT parked_wait_p50_ms double precision,
    OUT parked_wait_p99_ms double precision,
    OUT parked_wait_max_ms double precision)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'kalam_stat_apply'
LANGUAGE C STRICT VOLATILE;

CREATE VIEW stat_apply AS SELECT * FROM stat_apply();

CREATE FUNCTION stat_apply_reset()
RETURNS void
AS 'MODULE_PATHNAME', 'kalam_stat_apply_reset'
LANGUAGE C STRICT VOLATILE;
REVOKE ALL ON FUNCTION stat_apply_reset() FROM PUBLIC;

-- the Raft groups and nodes, as this node sees them
CREATE FUNCTION groups(
    OUT group_name text,
    OUT leader_id integer,
    OUT leader_address text,
    OUT term bigint,
    OUT commit_index bigint,
    OUT applied_index bigint,
    OUT is_leader boolean,
    OUT parked_entries bigint,
    OUT parked_on_disk bigint,
    OUT snapshot_install text,
    OUT snapshot_source integer,
    OUT snapshot_rows bigint,
    OUT snapshot_bytes bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'kalam_groups'
LANGUAGE C STRICT VOLATILE;

CREATE VIEW groups AS SELECT * FROM groups();

CREATE FUNCTION nodes(
    OUT node_id integer,
    OUT raft_address text,
    OUT client_address text,
    OUT reachable boolean)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'kalam_nodes'
LANGUAGE C STRICT VOLATILE;

CREATE VIEW nodes AS SELECT * FROM nodes();

-- MD5 of every stored row of a kalam table, all users, from local storage:
-- equal on nodes that hold the same contents
CREATE FUNCTION table_digest(regclass)
RETURNS text
AS 'MODULE_PATHNAME', 'kalam_table_digest'
LANGUAGE C STRICT VOLATILE;

-- the parts of split commands stored on this node, per data group
-- (src/fdw/digest.c)
CREATE FUNCTION split_parts(
    OUT group_name text,
    OUT parts bigint,
    OUT bytes bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'kalam_split_parts'
LANGUAGE C STRICT VOLATILE;

-- node id of the leader of the user's shard, NULL if none is known
CREATE FUNCTION leader_for_user(text)
RETURNS integer
AS 'MODULE_PATHNAME', 'kalam_leader_for_user'
LANGUAGE C STRICT VOLATILE;

-- the Raft group that holds the user's rows of user and stream tables
CREATE FUNCTION group_for_user(text)
RETURNS text
AS 'MODULE_PATHNAME', 'kalam_group_for_user'
LANGUAGE C STRICT STABLE;

CREATE FUNCTION is_leader_for_user(text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'kalam_is_leader_for_user'
LANGUAGE C STRICT VOLATILE;

-- the log positions of this session's last COMMIT that wrote kalam tables,
-- as a token for kalam.read_after; NULL if none
CREATE FUNCTION last_commit()
RETURNS text
AS 'MODULE_PATHNAME', 'kalam_last_commit'
LANGUAGE C VOLATILE;

GRANT USAGE ON SCHEMA kalam TO PUBLIC;
GRANT SELECT ON tables, stats, stat_apply, groups, nodes TO PUBLIC;
GRANT USAGE ON FOREIGN SERVER kalam TO PUBLIC;

-- developer-only (kalam.debug_enable_hooks): propose raw command bytes to
-- a Raft group and return the outcome
CREATE FUNCTION debug_propose("group" integer, command bytea)
RETURNS text
AS 'MODULE_PATHNAME', 'kalam_debug_propose'
LANGUAGE C STRICT VOLATILE;

REVOKE ALL ON FUNCTION debug_propose(integer, bytea) FROM PUBLIC;

-- live queries (src/live): the session's channel of a table's changes
CREATE FUNCTION channel(regclass)
RETURNS text
AS 'MODULE_PATHNAME', 'kalam_channel'
LANGUAGE C STRICT VOLATILE;

-- a channel of the session's own, with the changes whose row satisfies
-- the filter; the session LISTENs to it once the transaction ends
CREATE FUNCTION subscribe(tbl regclass, filter text DEFAULT NULL)
RETURNS text
AS 'MODULE_PATHNAME', 'kalam_subscribe'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;

CREATE FUNCTION unsubscribe(channel text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'kalam_unsubscribe'
LANGUAGE C STRICT VOLATILE;

-- the process every kalam notification comes from
CREATE FUNCTION notifier_pid()
RETURNS integer
AS 'MODULE_PATHNAME', 'kalam_notifier_pid'
LANGUAGE C STRICT VOLATILE;

-- the calling user's changes of a table after a position, in commit order
CREATE FUNCTION changes(tbl regclass, since text DEFAULT NULL)
RETURNS TABLE (pos text, op text, key jsonb, "row" jsonb)
AS 'MODULE_PATHNAME', 'kalam_changes'
LANGUAGE C CALLED ON NULL INPUT VOLATILE ROWS 100;

CREATE FUNCTION notifications(
    OUT notifier_pid integer,
    OUT notifications_sent bigint,
    OUT changes_read bigint,
    OUT transactions bigint,
    OUT retries bigint,
    OUT pending_entries bigint,
    OUT oldest_pending interval,
    OUT listeners integer)
RETURNS record
AS 'MODULE_PATHNAME', 'kalam_notifications'
LANGUAGE C STRICT VOLATILE;

CREATE VIEW notifications AS SELECT * FROM notifications();
