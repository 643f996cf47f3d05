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

-- how far the kalam jobs worker has run the DDL of other nodes
CREATE TABLE replay_state (ddl_index bigint NOT NULL);
INSERT INTO replay_state VALUES (0);

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
    OUT worker_pid integer)
RETURNS record
AS 'MODULE_PATHNAME', 'kalam_stats'
LANGUAGE C STRICT VOLATILE;

CREATE VIEW stats AS SELECT * FROM stats();

-- the Raft groups and nodes, as this node sees them
CREATE FUNCTION groups(
    OUT group_name text,
    OUT leader_id integer,
    OUT leader_address text,
    OUT term bigint,
    OUT commit_index bigint,
    OUT applied_index bigint,
    OUT is_leader boolean,
    OUT parked_entries bigint)
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

GRANT USAGE ON SCHEMA kalam TO PUBLIC;
GRANT SELECT ON tables, stats, groups, nodes TO PUBLIC;
GRANT USAGE ON FOREIGN SERVER kalam TO PUBLIC;

-- developer-only (kalam.debug_enable_hooks): propose raw command bytes to
-- a Raft group and return the outcome
CREATE FUNCTION debug_propose("group" integer, command bytea)
RETURNS text
AS 'MODULE_PATHNAME', 'kalam_debug_propose'
LANGUAGE C STRICT VOLATILE;

REVOKE ALL ON FUNCTION debug_propose(integer, bytea) FROM PUBLIC;
