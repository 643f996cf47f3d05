--
-- kalam_split: a transaction's writes to one group larger than
-- kalam.max_entry_size go in parts, each an entry of at most that size,
-- then one split entry applies them as one command, all or nothing, off
-- the worker's loop
--
CREATE EXTENSION IF NOT EXISTS dblink;
SET kalam.max_entry_size = '64kB';
CREATE FOREIGN TABLE app.split (k int, v text) SERVER kalam OPTIONS (type 'shared', primary_key 'k');
SELECT dblink_connect('other', 'dbname=contrib_regression port=' || current_setting('port'));
SELECT kalam.stat_apply_reset();

-- a bulk insert of about 1.1 MB: every row there, no entry above 64 kB
INSERT INTO app.split SELECT g, repeat('x', 40) FROM generate_series(1, 20000) g;
SELECT count(*), min(k), max(k), sum(k) = 20000::bigint * 20001 / 2 AS all_keys,
       bool_and(v = repeat('x', 40)) AS values
  FROM app.split;
SELECT entries >= 18 AS in_parts, entry_bytes_max <= 64 * 1024 AS bounded,
       rows_written >= 20000 AS rows_written
  FROM kalam.stat_apply WHERE group_name = 'shared' AND period = 'total';

-- a key another session took between the INSERT and the COMMIT: 23505,
-- naming the key, and nothing of the 20000 rows
BEGIN;
INSERT INTO app.split SELECT g, 'mine' FROM generate_series(20001, 40000) g;
SELECT dblink_exec('other', 'INSERT INTO app.split VALUES (39000, ''theirs'')');
COMMIT;
SELECT count(*), max(k) FROM app.split WHERE k > 20000;

-- ON CONFLICT DO NOTHING skips it and writes the others
INSERT INTO app.split SELECT g, 'mine' FROM generate_series(20001, 40000) g
    ON CONFLICT DO NOTHING;
SELECT count(*) AS rows, count(*) FILTER (WHERE v = 'theirs') AS theirs
  FROM app.split WHERE k > 20000;

-- updates and deletes take the ordinary path, still all or nothing
UPDATE app.split SET v = 'updated' WHERE k <= 20000;
SELECT count(*) FILTER (WHERE v = 'updated') AS updated FROM app.split;
BEGIN;
UPDATE app.split SET v = 'lost' WHERE k > 20000;
SELECT dblink_exec('other', 'UPDATE app.split SET v = ''changed'' WHERE k = 30000');
COMMIT;
SELECT count(*) FILTER (WHERE v = 'lost') AS lost, count(*) FILTER (WHERE v = 'changed') AS changed
  FROM app.split;
DELETE FROM app.split WHERE k % 2 = 0;
SELECT count(*), bool_and(k % 2 = 1) AS odd_only FROM app.split;

-- a TRUNCATE and the rows after it in one transaction
BEGIN;
TRUNCATE app.split;
INSERT INTO app.split SELECT g, 'after' FROM generate_series(1, 15000) g;
COMMIT;
SELECT count(*), bool_and(v = 'after') AS after FROM app.split;

-- the changes of a split are those of one command, in key order
SELECT count(*) AS inserts, count(DISTINCT split_part(pos, ':', 2)) AS commands
  FROM kalam.changes('app.split') WHERE op = 'insert' AND "row"->>'v' = 'after';

-- every split removed its parts, those that failed too
SELECT sum(parts) AS parts_left, count(*) = (SELECT count(*) - 1 FROM kalam.groups) AS a_row_per_data_group
  FROM kalam.split_parts();

-- a user table's shard splits too
CREATE FOREIGN TABLE app.split_user (k int, v text) SERVER kalam OPTIONS (type 'user', primary_key 'k');
INSERT INTO app.split_user SELECT g, repeat('u', 40) FROM generate_series(1, 10000) g;
SELECT count(*), sum(k) = 10000::bigint * 10001 / 2 AS all_keys FROM app.split_user;

RESET kalam.max_entry_size;
SELECT dblink_disconnect('other');
DROP FOREIGN TABLE app.split;
DROP FOREIGN TABLE app.split_user;
