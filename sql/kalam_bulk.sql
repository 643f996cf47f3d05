--
-- kalam_bulk: a large INSERT is one command of inserts in key order, which
-- apply checks with one pass over the stored keys and writes in one batch;
-- it decides duplicates as any insert does
--
CREATE EXTENSION IF NOT EXISTS dblink;
CREATE FOREIGN TABLE app.bulk (k int, v text) SERVER kalam OPTIONS (type 'shared', primary_key 'k');
SELECT dblink_connect('other', 'dbname=contrib_regression port=' || current_setting('port'));

-- into an empty table, then interleaved with what is stored
INSERT INTO app.bulk SELECT g, 'odd' FROM generate_series(1, 999, 2) g;
INSERT INTO app.bulk SELECT g, 'even' FROM generate_series(2, 1000, 2) g;
SELECT count(*), min(k), max(k), count(*) FILTER (WHERE v = 'even') AS even,
       sum(k) = 1000 * 1001 / 2 AS all_keys
  FROM app.bulk;

-- a key another session took between the INSERT and the COMMIT: 23505,
-- and nothing of the 400 rows
BEGIN;
INSERT INTO app.bulk SELECT g, 'mine' FROM generate_series(1001, 1400) g;
SELECT dblink_exec('other', 'INSERT INTO app.bulk VALUES (1300, ''theirs'')');
COMMIT;
SELECT count(*), max(k) FROM app.bulk WHERE k > 1000;

-- ON CONFLICT DO NOTHING skips it and writes the others
BEGIN;
INSERT INTO app.bulk SELECT g, 'mine' FROM generate_series(1001, 1400) g
    ON CONFLICT DO NOTHING;
SELECT dblink_exec('other', 'INSERT INTO app.bulk VALUES (1200, ''theirs'')');
COMMIT;
SELECT count(*) AS rows, count(*) FILTER (WHERE v = 'theirs') AS theirs
  FROM app.bulk WHERE k > 1000;

-- the rows read back as written; each command's changes are in key order
SELECT k, v FROM app.bulk WHERE k IN (1, 2, 999, 1000, 1001, 1200, 1300, 1400) ORDER BY k;
SELECT count(*) AS inserts, count(DISTINCT command) AS commands,
       bool_and(in_order) AS in_key_order
  FROM (SELECT split_part(pos, ':', 2) AS command,
               (key->>'k')::int > lag((key->>'k')::int, 1, 0)
                 OVER (PARTITION BY split_part(pos, ':', 2)
                       ORDER BY split_part(pos, ':', 3)::int) AS in_order
          FROM kalam.changes('app.bulk')
         WHERE op = 'insert' AND (key->>'k')::int <= 1000) s;

-- text keys alike in their first 16 bytes, keys that begin others, short
-- ones, inserted out of order: the command's changes still in key order
CREATE FOREIGN TABLE app.bulk_text (k text, v int) SERVER kalam OPTIONS (type 'shared', primary_key 'k');
INSERT INTO app.bulk_text
SELECT CASE WHEN g % 10 = 0 THEN chr(97 + g % 26)
            ELSE 'a key that is long ' || (g % 50) || repeat('z', g % 3) END, g
  FROM generate_series(150, 1, -1) g
    ON CONFLICT DO NOTHING;
SELECT count(*) AS inserts, count(DISTINCT command) AS commands,
       bool_and(in_order) AS in_key_order
  FROM (SELECT split_part(pos, ':', 2) AS command,
               (key->>'k') COLLATE "C" > lag(key->>'k', 1, '')
                 OVER (PARTITION BY split_part(pos, ':', 2)
                       ORDER BY split_part(pos, ':', 3)::int) AS in_order
          FROM kalam.changes('app.bulk_text')
         WHERE op = 'insert') s;

SELECT dblink_disconnect('other');
DROP FOREIGN TABLE app.bulk, app.bulk_text;
