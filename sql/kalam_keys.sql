--
-- kalam_keys: for every key type, byte order is SQL order (a scan returns
-- rows in key order) and conditions on the key seek instead of scanning
--
CREATE FOREIGN TABLE app.k_int (k int, v text) SERVER kalam OPTIONS (type 'shared', primary_key 'k');
INSERT INTO app.k_int SELECT g, g::text FROM generate_series(-5, 5) g;
INSERT INTO app.k_int VALUES (-2147483648, 'min'), (2147483647, 'max');
SELECT array_agg(k) FROM app.k_int;
SELECT k FROM app.k_int WHERE k > -3 AND k <= 2;
SELECT k FROM app.k_int WHERE k BETWEEN -1 AND 1;
SELECT k FROM app.k_int WHERE k >= 4;
SELECT k FROM app.k_int WHERE k < -4;
SELECT k FROM app.k_int WHERE k IN (3, -4, 99) ORDER BY k;
SELECT k FROM app.k_int WHERE k = 2::bigint OR k = 3;
SELECT k FROM app.k_int WHERE k < 0::bigint AND k > -3::smallint;
SELECT k FROM app.k_int WHERE k = NULL::int;
SELECT k FROM app.k_int WHERE k IN (1, NULL) ;
PREPARE k_by_key(int) AS SELECT v FROM app.k_int WHERE k = $1;
EXECUTE k_by_key(5);
EXECUTE k_by_key(-2147483648);
EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM app.k_int WHERE k = 1;
EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM app.k_int WHERE k IN (1, 2);
EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM app.k_int WHERE k BETWEEN 1 AND 3;
EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM app.k_int WHERE v = '1';
EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM app.k_int WHERE k + 1 = 2;
EXPLAIN (VERBOSE, COSTS OFF) EXECUTE k_by_key(5);

CREATE FOREIGN TABLE app.k_big (k bigint, v int) SERVER kalam OPTIONS (type 'shared', primary_key 'k');
INSERT INTO app.k_big VALUES (9223372036854775807, 1), (-9223372036854775808, 2), (0, 3), (-1, 4), (1, 5), (4294967296, 6);
SELECT array_agg(k) FROM app.k_big;
SELECT k FROM app.k_big WHERE k > 1 AND k < 9223372036854775807;

CREATE FOREIGN TABLE app.k_text (k text COLLATE "C", v int) SERVER kalam OPTIONS (type 'shared', primary_key 'k');
INSERT INTO app.k_text VALUES ('b', 1), ('a', 2), ('ab', 3), ('', 4), ('B', 5), ('a b', 6), ('é', 7), ('z', 8), ('aa', 9);
SELECT array_agg(k) FROM app.k_text;
SELECT (SELECT array_agg(k) FROM app.k_text) = (SELECT array_agg(k ORDER BY k) FROM app.k_text) AS key_order;
SELECT k FROM app.k_text WHERE k >= 'a' AND k < 'b';
SELECT k FROM app.k_text WHERE k > 'a' AND k <= 'ab';
SELECT v FROM app.k_text WHERE k = '';
EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM app.k_text WHERE k > 'a';

-- under a collation whose order is not byte order, only equality seeks,
-- and ranges are still answered right
CREATE FOREIGN TABLE app.k_icu (k text COLLATE "und-x-icu", v int) SERVER kalam OPTIONS (type 'shared', primary_key 'k');
INSERT INTO app.k_icu VALUES ('b', 1), ('a', 2), ('B', 3), ('A', 4);
SELECT k FROM app.k_icu WHERE k > 'a' ORDER BY k;
SELECT v FROM app.k_icu WHERE k = 'B';
EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM app.k_icu WHERE k > 'a';
EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM app.k_icu WHERE k = 'a';

CREATE FOREIGN TABLE app.k_uuid (k uuid, v int) SERVER kalam OPTIONS (type 'shared', primary_key 'k');
INSERT INTO app.k_uuid VALUES ('ffffffff-0000-0000-0000-000000000000', 1), ('00000000-0000-0000-0000-000000000001', 2),
  ('7fffffff-ffff-ffff-ffff-ffffffffffff', 3), ('80000000-0000-0000-0000-000000000000', 4);
SELECT (SELECT array_agg(k) FROM app.k_uuid) = (SELECT array_agg(k ORDER BY k) FROM app.k_uuid) AS key_order;
SELECT v FROM app.k_uuid WHERE k > '7fffffff-ffff-ffff-ffff-ffffffffffff';

CREATE FOREIGN TABLE app.k_ts (k timestamptz, v int) SERVER kalam OPTIONS (type 'shared', primary_key 'k');
INSERT INTO app.k_ts VALUES ('2026-01-01 00:00+00', 1), ('1960-05-05 12:00+00', 2), ('infinity', 3), ('-infinity', 4), ('2000-01-01 00:00+00', 5), ('1999-12-31 23:59:59.999999+00', 6);
SELECT (SELECT array_agg(k) FROM app.k_ts) = (SELECT array_agg(k ORDER BY k) FROM app.k_ts) AS key_order;
SELECT v FROM app.k_ts WHERE k >= '1999-12-31 23:59:59.999999+00' AND k < 'infinity';
EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM app.k_ts WHERE k >= '1999-12-31 23:59:59.999999+00' AND k < 'infinity';

CREATE FOREIGN TABLE app.k_tsz (k timestamp, v int) SERVER kalam OPTIONS (type 'shared', primary_key 'k');
INSERT INTO app.k_tsz VALUES ('2026-01-01', 1), ('1900-01-01', 2), ('2000-01-01 00:00:01', 3);
SELECT (SELECT array_agg(k) FROM app.k_tsz) = (SELECT array_agg(k ORDER BY k) FROM app.k_tsz) AS key_order;

CREATE FOREIGN TABLE app.k_date (k date, v int) SERVER kalam OPTIONS (type 'shared', primary_key 'k');
INSERT INTO app.k_date VALUES ('2026-01-01', 1), ('1900-01-01', 2), ('infinity', 3), ('1999-12-31', 4);
SELECT (SELECT array_agg(k) FROM app.k_date) = (SELECT array_agg(k ORDER BY k) FROM app.k_date) AS key_order;

CREATE FOREIGN TABLE app.k_bytea (k bytea, v int) SERVER kalam OPTIONS (type 'shared', primary_key 'k');
INSERT INTO app.k_bytea VALUES ('\x00', 1), ('\x', 2), ('\x0000', 3), ('\x01', 4), ('\xff', 5), ('\x00ff', 6);
SELECT (SELECT array_agg(k) FROM app.k_bytea) = (SELECT array_agg(k ORDER BY k) FROM app.k_bytea) AS key_order;
SELECT v FROM app.k_bytea WHERE k = '\x00';

-- composite keys: equality on leading columns, then a range
CREATE FOREIGN TABLE app.k_multi (room text COLLATE "C", seq int, body text)
  SERVER kalam OPTIONS (type 'shared', primary_key 'room,seq');
INSERT INTO app.k_multi SELECT r, s, r || s FROM unnest(ARRAY['a', 'b', 'c']) r, generate_series(1, 5) s;
INSERT INTO app.k_multi VALUES ('a', 5, 'dup');
SELECT body FROM app.k_multi WHERE room = 'b' AND seq > 3;
SELECT body FROM app.k_multi WHERE room IN ('a', 'c') AND seq BETWEEN 2 AND 3;
SELECT body FROM app.k_multi WHERE room = 'c' AND seq = 5;
SELECT body FROM app.k_multi WHERE seq = 1;
EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM app.k_multi WHERE room = 'b' AND seq > 3;
EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM app.k_multi WHERE room = 'c' AND seq = 5;
EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM app.k_multi WHERE seq = 1;

-- EXPLAIN ANALYZE counts the stored keys a scan looked at: a seek reads
-- only its range
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT * FROM app.k_multi WHERE room = 'b' AND seq > 3;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT * FROM app.k_multi WHERE room IN ('a', 'c') AND seq = 2;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT * FROM app.k_multi WHERE seq = 2;

-- joins
SELECT m.body, t.v FROM app.k_multi m JOIN app.k_int t ON t.k = m.seq WHERE m.room = 'a' ORDER BY m.seq;
