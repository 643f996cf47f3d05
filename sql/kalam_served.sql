-- A session's first reads are answered by the kalam reader process
-- (kalam.served_reads of them): lookups by key, and key ranges whose rows
-- take up to 1 MB, sent in parts of 32 kB.  Until then the session opens
-- no RocksDB reader of its own, which would leave a secondary directory
-- named after its pid under kalam.data_dir.
CREATE FOREIGN TABLE served (k int, v text)
  SERVER kalam OPTIONS (type 'shared', primary_key 'k');
INSERT INTO served SELECT g, 'v' || g FROM generate_series(1, 10) g;
-- 40 rows of 1000 bytes: more than the reader sends at once
INSERT INTO served SELECT g, repeat('y', 1000) FROM generate_series(1000, 1039) g;
-- 1100 rows of 1000 bytes: more than it reads for a session
INSERT INTO served SELECT g, repeat('z', 1000) FROM generate_series(2000, 3099) g;
-- the kalam reader catches up with the loads of the tests before this one
-- now, whoever serves this session
SELECT count(*) FROM served WHERE k < 100;
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
-- small ranges, merged with the transaction's own writes
SELECT string_agg(v, ',' ORDER BY k) FROM served WHERE k BETWEEN 2 AND 4;
SELECT count(*), string_agg(v, ',' ORDER BY k) FROM served WHERE k < 100;
BEGIN;
INSERT INTO served VALUES (12, 'twelve');
DELETE FROM served WHERE k = 1;
SELECT string_agg(v, ',' ORDER BY k) FROM served WHERE k < 100;
ROLLBACK;
SELECT count(*) FROM served WHERE k BETWEEN 20 AND 30;
SELECT own_reader();
-- a range larger than a slot comes in parts, all of one moment, merged
-- with the transaction's own writes
SELECT count(*), sum(length(v)), min(k), max(k) FROM served WHERE k BETWEEN 1000 AND 1999;
BEGIN;
DELETE FROM served WHERE k = 1020;
INSERT INTO served VALUES (1500, 'mid');
SELECT count(*), sum(length(v)), string_agg(k || ':' || left(v, 3), ',' ORDER BY k) FILTER (WHERE k IN (1019, 1020, 1021, 1500)) FROM served WHERE k BETWEEN 1000 AND 1999;
ROLLBACK;
SELECT own_reader();
-- a range of more than 1 MB opens the session's own reader, which reads
-- the same
SELECT count(*), sum(length(v)) FROM served WHERE k >= 1000;
SELECT own_reader();
SELECT count(*), string_agg(v, ',' ORDER BY k) FROM served WHERE k < 100;

\c
SET kalam.served_reads = 2;
SELECT v FROM served WHERE k = 1;
SELECT count(*) FROM served WHERE k BETWEEN 1 AND 5;
SELECT own_reader();
SELECT v FROM served WHERE k = 4;
SELECT own_reader();

\c
SET kalam.served_reads = 0;
SELECT v FROM served WHERE k = 5;
SELECT own_reader();

-- a value larger than the reader sends is read by the session itself
\c
INSERT INTO served VALUES (100, repeat('x', 40000));
SELECT length(v) FROM served WHERE k = 100;
SELECT own_reader();

DROP FUNCTION own_reader();
DROP FOREIGN TABLE served;
