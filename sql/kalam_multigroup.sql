--
-- kalam_multigroup: a transaction that writes several Raft groups (a user
-- table and a shared table, two users' tables, DDL and rows) commits all
-- or nothing.  INSERT finds a duplicate key already stored at once, so the
-- conflicts that only COMMIT can see are made by another session
-- (elsewhere(), through dblink) between the statements and the COMMIT.
--
CREATE EXTENSION IF NOT EXISTS dblink;
CREATE FUNCTION elsewhere(who text, stmt text) RETURNS void
SECURITY DEFINER LANGUAGE sql AS $$
  SELECT dblink_exec('dbname=contrib_regression port=' || current_setting('port'),
                     format('SET ROLE %I; %s', who, stmt))
$$;
CREATE FOREIGN TABLE app.ms (k int, v text) SERVER kalam OPTIONS (type 'shared', primary_key 'k');
CREATE FOREIGN TABLE app.mu (k int, v text) SERVER kalam OPTIONS (type 'user', primary_key 'k');
CREATE ROLE carol;
CREATE ROLE dave;
GRANT USAGE ON SCHEMA app TO carol, dave;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON app.ms, app.mu TO carol, dave;
GRANT EXECUTE ON FUNCTION elsewhere(text, text) TO carol, dave;
-- carol's and dave's rows live in different user shards
SELECT kalam.group_for_user('carol') <> kalam.group_for_user('dave') AS different_shards;

SELECT multi_group_committed AS committed_before,
       multi_group_aborted AS aborted_before
  FROM kalam.stats \gset

INSERT INTO app.ms VALUES (1, 'shared one');
SET ROLE carol;

-- the user shard (a participant) fails: the shared insert must not survive
BEGIN;
INSERT INTO app.ms VALUES (42, 'should not survive');
INSERT INTO app.mu VALUES (2, 'mine');
SELECT elsewhere('carol', 'INSERT INTO app.mu VALUES (2, ''committed first'')');
COMMIT;
SELECT * FROM app.ms ORDER BY k;
SELECT * FROM app.mu ORDER BY k;

-- the shared group (the coordinator) fails: the user row must not survive,
-- and its key is not left locked
BEGIN;
INSERT INTO app.mu VALUES (3, 'should not survive');
INSERT INTO app.ms VALUES (43, 'mine');
SELECT elsewhere('carol', 'INSERT INTO app.ms VALUES (43, ''committed first'')');
COMMIT;
SELECT * FROM app.ms ORDER BY k;
SELECT * FROM app.mu ORDER BY k;
INSERT INTO app.mu VALUES (3, 'written after the abort');

-- a row changed after the transaction read it, in either group: 40001
BEGIN;
UPDATE app.ms SET v = 'stale' WHERE k = 1;
UPDATE app.mu SET v = 'stale' WHERE k = 3;
SELECT elsewhere('carol', 'UPDATE app.mu SET v = ''changed meanwhile'' WHERE k = 3');
COMMIT;
BEGIN;
UPDATE app.ms SET v = 'stale' WHERE k = 1;
UPDATE app.mu SET v = 'stale' WHERE k = 3;
SELECT elsewhere('carol', 'UPDATE app.ms SET v = ''changed meanwhile'' WHERE k = 1');
COMMIT;
SELECT * FROM app.ms ORDER BY k;
SELECT * FROM app.mu ORDER BY k;

-- both succeed: both are there
BEGIN;
INSERT INTO app.ms VALUES (2, 'shared two');
UPDATE app.mu SET v = v || ', updated with the shared row' WHERE k = 3;
DELETE FROM app.mu WHERE k = 2;
COMMIT;
SELECT * FROM app.ms ORDER BY k;
SELECT * FROM app.mu ORDER BY k;

-- a TRUNCATE and an insert of a key it removed, with a shared row: the
-- prepare sees the key gone; the resolution writes the range tombstone,
-- then the row
BEGIN;
TRUNCATE app.mu;
INSERT INTO app.mu VALUES (3, 'after the truncate');
INSERT INTO app.ms VALUES (3, 'with the truncate');
COMMIT;
SELECT * FROM app.mu ORDER BY k;
SELECT * FROM app.ms WHERE k = 3;

-- two users' shards in one transaction, as a superuser switching users
RESET ROLE;
BEGIN;
SET LOCAL ROLE carol;
INSERT INTO app.mu VALUES (10, 'carol''s');
SET LOCAL ROLE dave;
INSERT INTO app.mu VALUES (10, 'dave''s');
COMMIT;
BEGIN;
SET LOCAL ROLE carol;
INSERT INTO app.mu VALUES (12, 'should not survive');
SET LOCAL ROLE dave;
INSERT INTO app.mu VALUES (11, 'dave''s');
SELECT elsewhere('dave', 'INSERT INTO app.mu VALUES (11, ''committed first'')');
COMMIT;
SET ROLE carol;
SELECT * FROM app.mu ORDER BY k;
SET ROLE dave;
SELECT * FROM app.mu ORDER BY k;

-- a table created in a transaction whose COMMIT fails is not created
-- (the DDL record goes to the meta group with the rows' prepares)
RESET ROLE;
BEGIN;
CREATE FOREIGN TABLE app.born (k int, v text) SERVER kalam OPTIONS (type 'shared', primary_key 'k');
INSERT INTO app.born VALUES (1, 'row of a table that should not exist');
SET LOCAL ROLE carol;
INSERT INTO app.mu VALUES (20, 'mine');
SELECT elsewhere('carol', 'INSERT INTO app.mu VALUES (20, ''committed first'')');
COMMIT;
SELECT count(*) FROM pg_class WHERE relname = 'born';
-- and one whose COMMIT succeeds is, with its rows
BEGIN;
CREATE FOREIGN TABLE app.born (k int, v text) SERVER kalam OPTIONS (type 'shared', primary_key 'k');
INSERT INTO app.born VALUES (1, 'row of a new table');
SET LOCAL ROLE carol;
INSERT INTO app.mu VALUES (21, 'with the new table');
COMMIT;
SELECT * FROM app.born;
DROP FOREIGN TABLE app.born;

SELECT multi_group_committed - :committed_before AS committed,
       multi_group_aborted - :aborted_before AS aborted,
       multi_group_commit_avg_ms > 0 AS has_latency
  FROM kalam.stats;

-- DROP of a user table deletes its rows in every user shard
DROP FOREIGN TABLE app.ms, app.mu;
REVOKE ALL ON SCHEMA app FROM carol, dave;
DROP FUNCTION elsewhere(text, text);
DROP ROLE carol;
DROP ROLE dave;
