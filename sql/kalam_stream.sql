--
-- kalam_stream: rows of a stream table are invisible once older than its
-- ttl, and the kalam jobs worker deletes them from storage
--
CREATE FOREIGN TABLE app.typing (room text, seq int, who text)
  SERVER kalam OPTIONS (type 'stream', primary_key 'room,seq', ttl '1 second');
INSERT INTO app.typing VALUES ('general', 1, 'alice'), ('general', 2, 'bob');
SELECT * FROM app.typing ORDER BY seq;
SELECT pg_sleep(1.2);
SELECT * FROM app.typing;
SELECT * FROM app.typing WHERE room = 'general' AND seq = 1;
-- a key whose row expired can be written again
INSERT INTO app.typing VALUES ('general', 1, 'carol');
SELECT * FROM app.typing;

-- the same table id with a long ttl shows what storage still holds: wait
-- until the jobs worker (kalam.ttl_purge_interval = 1s here) removed the
-- expired row
SELECT id AS typing_id FROM kalam.tables WHERE "table" = 'app.typing'::regclass \gset
CREATE FOREIGN TABLE app.typing_all (room text, seq int, who text)
  SERVER kalam OPTIONS (type 'stream', primary_key 'room,seq', ttl '100 years', table_id :'typing_id');
DO $$
BEGIN
  FOR i IN 1..300 LOOP
    EXIT WHEN NOT EXISTS (SELECT 1 FROM app.typing_all WHERE who = 'bob');
    PERFORM pg_sleep(0.1);
  END LOOP;
END $$;
SELECT count(*) AS bob_rows_stored FROM app.typing_all WHERE who = 'bob';

-- a purge of more rows than kalam.ttl_purge_batch goes in steps (log
-- entries) of at most that many stored rows each; rows that have not
-- expired, between and after the expired ones, stay
ALTER SYSTEM SET kalam.ttl_purge_batch = 100;
SELECT pg_reload_conf();
CREATE FOREIGN TABLE app.steps (k int, v text)
  SERVER kalam OPTIONS (type 'stream', primary_key 'k', ttl '5 seconds');
INSERT INTO app.steps SELECT 2 * g, 'old' FROM generate_series(1, 1000) g;
SELECT pg_sleep(5.2);
INSERT INTO app.steps SELECT 2 * g + 1, 'new' FROM generate_series(1, 200) g;
SELECT id AS steps_id FROM kalam.tables WHERE "table" = 'app.steps'::regclass \gset
CREATE FOREIGN TABLE app.steps_all (k int, v text)
  SERVER kalam OPTIONS (type 'stream', primary_key 'k', ttl '100 years', table_id :'steps_id');
DO $$
BEGIN
  FOR i IN 1..300 LOOP
    EXIT WHEN NOT EXISTS (SELECT 1 FROM app.steps_all WHERE v = 'old');
    PERFORM pg_sleep(0.1);
  END LOOP;
END $$;
SELECT v, count(*) AS stored FROM app.steps_all GROUP BY v ORDER BY v;
-- each expired row is a delete in the change log, at its entry's position
SELECT count(*) AS expired, count(DISTINCT entry) >= 10 AS ten_entries_or_more,
       max(per_entry) <= 100 AS at_most_100_per_entry
  FROM (SELECT split_part(pos, ':', 2) AS entry,
               count(*) OVER (PARTITION BY split_part(pos, ':', 2)) AS per_entry
          FROM kalam.changes('app.steps') WHERE op = 'delete') d;
ALTER SYSTEM RESET kalam.ttl_purge_batch;
SELECT pg_reload_conf();
