--
-- kalam_txn: a transaction's writes are one command at COMMIT; it reads
-- its own writes; ROLLBACK and errors discard them; savepoints work
--
CREATE FOREIGN TABLE app.t (k int, v text) SERVER kalam OPTIONS (type 'user', primary_key 'k');

BEGIN;
INSERT INTO app.t VALUES (1, 'one'), (2, 'two'), (3, 'three');
SELECT * FROM app.t ORDER BY k;
UPDATE app.t SET v = 'TWO' WHERE k = 2;
DELETE FROM app.t WHERE k = 3;
SELECT * FROM app.t ORDER BY k;
SELECT * FROM app.t WHERE k = 3;
SELECT * FROM app.t WHERE k BETWEEN 2 AND 9;
ROLLBACK;
SELECT count(*) FROM app.t;

BEGIN;
INSERT INTO app.t VALUES (1, 'one'), (2, 'two'), (3, 'three');
COMMIT;
SELECT * FROM app.t ORDER BY k;

-- stored rows changed, deleted and re-inserted within one transaction
BEGIN;
UPDATE app.t SET v = v || '+' WHERE k >= 2;
DELETE FROM app.t WHERE k = 1;
INSERT INTO app.t VALUES (1, 'one again');
INSERT INTO app.t VALUES (4, 'four');
UPDATE app.t SET v = 'four!' WHERE k = 4;
INSERT INTO app.t VALUES (5, 'five');
DELETE FROM app.t WHERE k = 5;
SELECT * FROM app.t ORDER BY k;
COMMIT;
SELECT * FROM app.t ORDER BY k;

-- an error before COMMIT discards everything
BEGIN;
INSERT INTO app.t VALUES (10, 'ten');
INSERT INTO app.t VALUES (1, 'duplicate');
COMMIT;
SELECT * FROM app.t WHERE k = 10;

-- a duplicate of the transaction's own insert
BEGIN;
INSERT INTO app.t VALUES (11, 'eleven');
INSERT INTO app.t VALUES (11, 'again');
ROLLBACK;

-- savepoints
BEGIN;
INSERT INTO app.t VALUES (20, 'kept');
SAVEPOINT a;
INSERT INTO app.t VALUES (21, 'undone');
UPDATE app.t SET v = 'undone' WHERE k = 20;
DELETE FROM app.t WHERE k = 2;
SAVEPOINT b;
INSERT INTO app.t VALUES (22, 'undone too');
ROLLBACK TO a;
SELECT * FROM app.t ORDER BY k;
SAVEPOINT c;
INSERT INTO app.t VALUES (23, 'kept');
RELEASE c;
SAVEPOINT d;
INSERT INTO app.t VALUES (24, 'kept too');
SAVEPOINT e;
TRUNCATE app.t;
SELECT count(*) FROM app.t;
ROLLBACK TO e;
RELEASE d;
-- a failed statement inside a savepoint
SAVEPOINT f;
INSERT INTO app.t VALUES (25, 'undone'), (20, 'dup');
ROLLBACK TO f;
COMMIT;
SELECT * FROM app.t ORDER BY k;

-- TRUNCATE then insert, in one transaction
BEGIN;
TRUNCATE app.t;
INSERT INTO app.t VALUES (1, 'alone');
SELECT * FROM app.t;
COMMIT;
SELECT * FROM app.t;

-- two-phase commit is refused
BEGIN;
INSERT INTO app.t VALUES (2, 'prepared');
PREPARE TRANSACTION 'kalam';
SELECT * FROM app.t ORDER BY k;

-- the worker counts what it applies
SELECT commands_applied > 0 AS applied, rows_written > 0 AS written, applied_index > 0 AS advanced,
       apply_time_ms > 0 AS timed
  FROM kalam.stats;
