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
