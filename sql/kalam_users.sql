--
-- kalam_users: each role reads and writes only its own rows of user and
-- stream tables; superusers may act for a user through kalam.as_user
--
CREATE ROLE alice;
CREATE ROLE bob;
GRANT USAGE ON SCHEMA app TO alice, bob;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON app.messages TO alice, bob;

SET ROLE alice;
INSERT INTO app.messages (id, room, body) VALUES (1, 'general', 'alice one'), (2, 'general', 'alice two');
SELECT id, body FROM app.messages ORDER BY id;
SET ROLE bob;
-- the same key, another user: no conflict
INSERT INTO app.messages (id, room, body) VALUES (1, 'general', 'bob one');
SELECT id, body FROM app.messages ORDER BY id;
SELECT id, body FROM app.messages WHERE id = 2;
UPDATE app.messages SET body = 'bob was here' WHERE id = 2;
DELETE FROM app.messages WHERE id = 2;
TRUNCATE app.messages;
SELECT count(*) FROM app.messages;
SET ROLE alice;
SELECT id, body FROM app.messages ORDER BY id;
UPDATE app.messages SET body = 'alice edited' WHERE id = 1;
SET ROLE bob;
INSERT INTO app.messages (id, room, body) VALUES (1, 'general', 'bob again');
SELECT id, body FROM app.messages ORDER BY id;

-- only superusers act for another user ("user" is a keyword: quote it,
-- or use set_config)
SET kalam.as_user = 'alice';
RESET ROLE;
SET kalam.as_user = 'alice';
SELECT id, body FROM app.messages ORDER BY id;
SELECT set_config('kalam.as_user', 'bob', false);
SELECT id, body FROM app.messages ORDER BY id;
INSERT INTO app.messages (id, room, body) VALUES (3, 'general', 'written for bob');
RESET kalam.as_user;
SELECT count(*) FROM app.messages;
SET ROLE bob;
SELECT id, body FROM app.messages ORDER BY id;
RESET ROLE;

-- stream tables are per user too
GRANT SELECT, INSERT ON app.events TO alice, bob;
SET ROLE alice;
INSERT INTO app.events VALUES ('general', 1, '{"typing": true}');
SET ROLE bob;
SELECT * FROM app.events;
INSERT INTO app.events VALUES ('general', 1, '{"typing": false}');
SELECT * FROM app.events;
SET ROLE alice;
SELECT * FROM app.events;
RESET ROLE;

-- table privileges still apply
CREATE ROLE mallory;
SET ROLE mallory;
SELECT * FROM app.messages;
RESET ROLE;
