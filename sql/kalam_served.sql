-- A session's first point reads are served by the kalam reader process
-- (kalam.served_point_reads of them): the session opens no RocksDB reader
-- of its own, which would leave a secondary directory named after its pid
-- under kalam.data_dir, until a scan or a read past that number.
CREATE FOREIGN TABLE served (k int, v text)
  SERVER kalam OPTIONS (type 'shared', primary_key 'k');
INSERT INTO served SELECT g, 'v' || g FROM generate_series(1, 10) g;
CREATE FUNCTION own_reader() RETURNS boolean LANGUAGE sql AS $$
  SELECT EXISTS (SELECT FROM pg_ls_dir(current_setting('data_directory') || '/' ||
                                      current_setting('kalam.data_dir') || '/secondary') d
                 WHERE d = pg_backend_pid()::text) $$;

\c
SELECT v FROM served WHERE k = 3;
SELECT v FROM served WHERE k = 42;
SELECT own_reader();
-- a session reads what it just committed, through the reader too
INSERT INTO served VALUES (11, 'eleven');
SELECT v FROM served WHERE k = 11;
UPDATE served SET v = 'three' WHERE k = 3;
SELECT v FROM served WHERE k = 3;
DELETE FROM served WHERE k = 11;
SELECT v FROM served WHERE k = 11;
SELECT own_reader();
-- a scan opens the session's own reader, which reads the same
SELECT count(*), string_agg(v, ',' ORDER BY k) FROM served;
SELECT own_reader();

\c
SET kalam.served_point_reads = 2;
SELECT v FROM served WHERE k = 1;
SELECT v FROM served WHERE k = 2;
SELECT own_reader();
SELECT v FROM served WHERE k = 4;
SELECT own_reader();

\c
SET kalam.served_point_reads = 0;
SELECT v FROM served WHERE k = 5;
SELECT own_reader();

-- a value larger than the reader's slot is read by the session itself
\c
INSERT INTO served VALUES (100, repeat('x', 10000));
SELECT length(v) FROM served WHERE k = 100;
SELECT own_reader();

DROP FUNCTION own_reader();
DROP FOREIGN TABLE served;
