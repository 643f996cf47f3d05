--
-- kalam_ddl: the extension, table options and what DDL may change
--
CREATE EXTENSION kalam;
CREATE SCHEMA app;

-- missing and invalid options
CREATE FOREIGN TABLE app.bad (id int) SERVER kalam;
CREATE FOREIGN TABLE app.bad (id int) SERVER kalam OPTIONS (type 'user');
CREATE FOREIGN TABLE app.bad (id int) SERVER kalam OPTIONS (primary_key 'id');
CREATE FOREIGN TABLE app.bad (id int) SERVER kalam OPTIONS (type 'private', primary_key 'id');
CREATE FOREIGN TABLE app.bad (id int) SERVER kalam OPTIONS (type 'user', primary_key 'id', colour 'red');
CREATE FOREIGN TABLE app.bad (id int) SERVER kalam OPTIONS (type 'stream', primary_key 'id');
CREATE FOREIGN TABLE app.bad (id int) SERVER kalam OPTIONS (type 'stream', primary_key 'id', ttl '-1 hour');
CREATE FOREIGN TABLE app.bad (id int) SERVER kalam OPTIONS (type 'user', primary_key 'id', ttl '1 hour');
CREATE FOREIGN TABLE app.bad (id int) SERVER kalam OPTIONS (type 'user', primary_key 'nope');
CREATE FOREIGN TABLE app.bad (id int) SERVER kalam OPTIONS (type 'user', primary_key 'id,id');
CREATE FOREIGN TABLE app.bad (id numeric) SERVER kalam OPTIONS (type 'user', primary_key 'id');
CREATE FOREIGN TABLE app.bad (id int) SERVER kalam OPTIONS (type 'user', primary_key '');
CREATE SERVER other FOREIGN DATA WRAPPER kalam OPTIONS (host 'x');

-- a table id is kalam's to assign
CREATE ROLE kalam_ddl_user;
GRANT CREATE, USAGE ON SCHEMA app TO kalam_ddl_user;
SET ROLE kalam_ddl_user;
CREATE FOREIGN TABLE app.bad (id int) SERVER kalam OPTIONS (type 'user', primary_key 'id', table_id '7');
RESET ROLE;

-- good tables
CREATE FOREIGN TABLE app.messages (
    id      bigint NOT NULL,
    room    text,
    body    text,
    sent_at timestamptz DEFAULT now()
) SERVER kalam OPTIONS (type 'user', primary_key 'id');
CREATE FOREIGN TABLE app.rooms (name text, topic text)
  SERVER kalam OPTIONS (type 'shared', primary_key 'name');
CREATE FOREIGN TABLE app.events (room text, seq int, payload jsonb)
  SERVER kalam OPTIONS (type 'stream', primary_key 'room, seq', ttl '1 hour');
SELECT "table", type, primary_key, ttl FROM kalam.tables ORDER BY id;
SELECT count(DISTINCT id) = 3 AS distinct_ids FROM kalam.tables;

-- what cannot change once rows may be stored
ALTER FOREIGN TABLE app.messages OPTIONS (SET primary_key 'room');
ALTER FOREIGN TABLE app.messages OPTIONS (SET type 'shared');
ALTER FOREIGN TABLE app.messages OPTIONS (SET table_id '99');
ALTER FOREIGN TABLE app.messages ALTER COLUMN body TYPE varchar(10);
ALTER FOREIGN TABLE app.messages RENAME COLUMN id TO msg_id;
ALTER FOREIGN TABLE app.messages DROP COLUMN id;
-- and what can
ALTER FOREIGN TABLE app.events OPTIONS (SET ttl '2 hours');
ALTER FOREIGN TABLE app.messages RENAME COLUMN body TO text_body;
ALTER FOREIGN TABLE app.messages RENAME COLUMN text_body TO body;
SELECT "table", ttl FROM kalam.tables WHERE type = 'stream';

-- ADD COLUMN: old rows read the new column as NULL
INSERT INTO app.rooms VALUES ('general', 'anything');
ALTER FOREIGN TABLE app.rooms ADD COLUMN owner text;
INSERT INTO app.rooms VALUES ('random', 'other', 'alice');
SELECT * FROM app.rooms ORDER BY name;
-- DROP COLUMN: the stored value is skipped
ALTER FOREIGN TABLE app.rooms DROP COLUMN topic;
SELECT * FROM app.rooms ORDER BY name;

-- DROP TABLE removes the rows at commit; a new table does not see them
CREATE FOREIGN TABLE app.scratch (k int, v text) SERVER kalam OPTIONS (type 'shared', primary_key 'k');
INSERT INTO app.scratch VALUES (1, 'one'), (2, 'two');
BEGIN;
DROP FOREIGN TABLE app.scratch;
ROLLBACK;
SELECT * FROM app.scratch ORDER BY k;
SELECT id AS scratch_id FROM kalam.tables WHERE "table" = 'app.scratch'::regclass \gset
DROP FOREIGN TABLE app.scratch;
-- a superuser may re-create a table over a table id: nothing is left there
CREATE FOREIGN TABLE app.scratch (k int, v text)
  SERVER kalam OPTIONS (type 'shared', primary_key 'k', table_id :'scratch_id');
SELECT * FROM app.scratch ORDER BY k;
DROP FOREIGN TABLE app.scratch;

-- the extension lives in kalam.database only
SHOW kalam.database;

-- DDL of other nodes: none ran or failed here; writing records by hand is
-- a developer function, off unless kalam.debug_ddl_records is on
SELECT * FROM kalam.replay_state;
SELECT count(*) FROM kalam.replay_position;
SHOW kalam.debug_ddl_records;
SELECT kalam.debug_put_ddl_record('\x00');
