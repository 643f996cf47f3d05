--
-- kalam_read: read levels on a one-node cluster, which leads every group.
-- The cluster's own cases (KL004 on followers, linearizable reads there)
-- are in t/009_read_levels.pl.
--
SHOW kalam.read_consistency;
-- nothing committed yet in this session
SELECT kalam.last_commit() IS NULL AS no_commit_yet;
-- DDL is written into the meta group
CREATE FOREIGN TABLE read_u (id int NOT NULL, v text)
  SERVER kalam OPTIONS (type 'user', primary_key 'id');
CREATE FOREIGN TABLE read_s (id int NOT NULL, v text)
  SERVER kalam OPTIONS (type 'shared', primary_key 'id');
SELECT kalam.last_commit() ~ '^meta:[0-9]+$' AS token_of_meta;
INSERT INTO read_u VALUES (1, 'one');
-- the token names the user's shard and the position its command took
SELECT kalam.last_commit() ~ ('^' || kalam.group_for_user(current_user) || ':[0-9]+$') AS token_of_user_shard;
BEGIN;
INSERT INTO read_u VALUES (2, 'two');
INSERT INTO read_s VALUES (1, 'shared one');
COMMIT;
SELECT kalam.last_commit() ~ '^(shared:[0-9]+,user_[0-9]+:[0-9]+|user_[0-9]+:[0-9]+,shared:[0-9]+)$' AS token_of_both;
-- the leader serves every level
EXPLAIN (COSTS OFF) SELECT * FROM read_u WHERE id = 1;
SELECT * FROM read_u ORDER BY id;
SET kalam.read_consistency = linearizable;
EXPLAIN (COSTS OFF) SELECT * FROM read_s;
SELECT * FROM read_u JOIN read_s USING (id);
UPDATE read_s SET v = 'shared uno' WHERE id = 1;
SELECT * FROM read_s;
SET kalam.read_consistency = local;
SELECT count(*) FROM read_u;
SET kalam.read_consistency = 'eventual';
RESET kalam.read_consistency;
-- read after a commit: the token of the last one
SELECT set_config('kalam.read_after', kalam.last_commit(), false) IS NOT NULL AS set;
SELECT * FROM read_s;
-- a position this node has not reached: waits kalam.leader_wait_timeout, then KL002
SET kalam.read_after = 'shared:999999999';
\set VERBOSITY terse
SELECT * FROM read_s;
\set VERBOSITY default
-- tokens that are not tokens
SET kalam.read_after = 'bogus';
SET kalam.read_after = 'nosuch:5';
SET kalam.read_after = 'shared:x';
SET kalam.read_after = 'shared:1,shared:2';
RESET kalam.read_after;
-- an internal read level cannot be set by a client
SET kalam.read_consistency = internal;
DROP FOREIGN TABLE read_u, read_s;
