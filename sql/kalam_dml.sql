--
-- kalam_dml: INSERT, SELECT, UPDATE, DELETE, RETURNING, TRUNCATE, COPY
-- give the answers a heap table gives
--
CREATE FOREIGN TABLE app.notes (
    id      bigint NOT NULL,
    room    text NOT NULL,
    body    text,
    tags    text[],
    meta    jsonb,
    amount  numeric,
    data    bytea,
    at      timestamptz DEFAULT '2026-01-01 00:00:00+00'
) SERVER kalam OPTIONS (type 'user', primary_key 'id');
CREATE TABLE heap_notes (LIKE app.notes INCLUDING DEFAULTS);
ALTER TABLE heap_notes ADD PRIMARY KEY (id);

-- every statement below runs on both and the answers are compared
INSERT INTO app.notes (id, room, body, tags, meta, amount, data)
VALUES (1, 'general', 'hello', '{a,b}', '{"x": 1}', 1.50, '\x0001ff'),
       (2, 'general', NULL, NULL, NULL, NULL, NULL),
       (3, 'random', 'third', '{}', '[1, 2, {"y": null}]', -12345678901234567890.123, '\x');
INSERT INTO heap_notes SELECT * FROM app.notes;
SELECT * FROM app.notes ORDER BY id;
(SELECT * FROM app.notes EXCEPT SELECT * FROM heap_notes)
UNION ALL
(SELECT * FROM heap_notes EXCEPT SELECT * FROM app.notes);

-- RETURNING
INSERT INTO app.notes (id, room) VALUES (4, 'quiet') RETURNING id, room, at;
INSERT INTO heap_notes (id, room) VALUES (4, 'quiet');
UPDATE app.notes SET body = body || '!' WHERE room = 'general' RETURNING id, body;
UPDATE heap_notes SET body = body || '!' WHERE room = 'general';
DELETE FROM app.notes WHERE id = 3 RETURNING id, room, body;
DELETE FROM heap_notes WHERE id = 3;
-- UPDATE of the key moves the row
UPDATE app.notes SET id = 40 WHERE id = 4 RETURNING id, room;
UPDATE heap_notes SET id = 40 WHERE id = 4;
SELECT id, room, body FROM app.notes ORDER BY id;
(SELECT * FROM app.notes EXCEPT SELECT * FROM heap_notes)
UNION ALL
(SELECT * FROM heap_notes EXCEPT SELECT * FROM app.notes);

-- a key that already exists: 23505, and nothing of the statement is written
\set VERBOSITY default
INSERT INTO app.notes (id, room) VALUES (100, 'x'), (1, 'dup');
SELECT count(*) FROM app.notes WHERE id = 100;
UPDATE app.notes SET id = 2 WHERE id = 1;
-- ON CONFLICT DO NOTHING skips it; DO UPDATE is refused
INSERT INTO app.notes (id, room) VALUES (1, 'dup'), (5, 'five') ON CONFLICT DO NOTHING RETURNING id;
INSERT INTO app.notes (id, room) VALUES (1, 'dup') ON CONFLICT (id) DO UPDATE SET room = 'dup';
INSERT INTO app.notes (id, room) VALUES (1, 'dup') ON CONFLICT (id) DO NOTHING;
SELECT id, room FROM app.notes WHERE id IN (1, 5) ORDER BY id;

-- NULL in a key or NOT NULL column: 23502
INSERT INTO app.notes (id, room) VALUES (NULL, 'x');
INSERT INTO app.notes (id, room) VALUES (6, NULL);
UPDATE app.notes SET room = NULL WHERE id = 1;

-- INSERT ... SELECT and COPY
INSERT INTO app.notes (id, room, body) SELECT g, 'bulk', 'row ' || g FROM generate_series(1000, 1999) g;
COPY app.notes (id, room, body) FROM STDIN;
2000	copy	first
2001	copy	second
\.
SELECT count(*), min(id), max(id) FROM app.notes WHERE id >= 1000;
SELECT room, count(*) FROM app.notes GROUP BY room ORDER BY room;
COPY (SELECT id, room, body FROM app.notes WHERE id BETWEEN 2000 AND 2001 ORDER BY id) TO STDOUT;

-- rows of 1 MB and more
INSERT INTO app.notes (id, room, body) VALUES (7, 'big', repeat('x', 1024 * 1024)), (8, 'big', repeat('yz', 1024 * 1024));
SELECT id, length(body), md5(body) FROM app.notes WHERE room = 'big' ORDER BY id;
SELECT md5(repeat('x', 1024 * 1024)), md5(repeat('yz', 1024 * 1024));

-- TRUNCATE
TRUNCATE app.notes;
SELECT count(*) FROM app.notes;
INSERT INTO app.notes (id, room) VALUES (1, 'again');
SELECT id, room FROM app.notes;

-- a shared table: one set of rows for every role with privileges
CREATE ROLE kalam_dml_user;
GRANT USAGE ON SCHEMA app TO kalam_dml_user;
GRANT SELECT, INSERT ON app.rooms TO kalam_dml_user;
INSERT INTO app.rooms VALUES ('music', 'bob');
SET ROLE kalam_dml_user;
SELECT * FROM app.rooms ORDER BY name;
INSERT INTO app.rooms VALUES ('books', NULL);
UPDATE app.rooms SET owner = 'me';
SELECT * FROM app.notes;
RESET ROLE;
SELECT * FROM app.rooms ORDER BY name;

-- a scan decodes only the leading columns up to the last one the query
-- reads: none for count(*); all for a whole-row reference or FOR UPDATE
CREATE FOREIGN TABLE app.wide (k int, a text, b int, c text) SERVER kalam OPTIONS (type 'shared', primary_key 'k');
INSERT INTO app.wide VALUES (1, 'a1', 10, 'c1'), (2, 'a2', NULL, 'c2'), (3, NULL, 30, NULL);
EXPLAIN (VERBOSE, COSTS OFF) SELECT count(*) FROM app.wide;
SELECT count(*) FROM app.wide;
EXPLAIN (VERBOSE, COSTS OFF) SELECT k, a FROM app.wide WHERE b > 5;
SELECT k, a FROM app.wide WHERE b > 5 ORDER BY k;
EXPLAIN (VERBOSE, COSTS OFF) SELECT w FROM app.wide w;
SELECT w FROM app.wide w ORDER BY k;
SELECT c, k FROM app.wide ORDER BY k FOR UPDATE;
SELECT count(*) FILTER (WHERE c IS NULL) AS c_null, count(a) AS a_set FROM app.wide;
DROP FOREIGN TABLE app.wide;
