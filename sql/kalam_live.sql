--
-- kalam_live: the channels of live queries, who may LISTEN and NOTIFY on
-- them, filtered subscriptions, and kalam.changes (the notifications
-- themselves are checked by t/011_live.pl: psql prints the sender's pid)
--
CREATE ROLE live_alice;
CREATE ROLE live_bob;
CREATE ROLE live_carol;
CREATE FOREIGN TABLE live_msg (id int NOT NULL, room text, body text)
  SERVER kalam OPTIONS (type 'user', primary_key 'id');
CREATE FOREIGN TABLE live_room (id int NOT NULL, name text)
  SERVER kalam OPTIONS (type 'shared', primary_key 'id');
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON live_msg, live_room
  TO live_alice, live_bob;
-- run a statement; its error without the channel names, which differ
-- from run to run (their key is drawn at server start here)
CREATE FUNCTION live_try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' ||
        regexp_replace(SQLERRM, 'kalam_([ts])[0-9a-f]{32}', 'kalam_\1...', 'g');
END $$;

-- a channel per role and table, the same at every call
SET ROLE live_alice;
SELECT kalam.channel('live_msg') AS alice_msg \gset
SELECT kalam.channel('live_room') AS alice_room \gset
SELECT :'alice_msg' ~ '^kalam_t[0-9a-f]{32}$' AS shaped,
       kalam.channel('live_msg') = :'alice_msg' AS stable,
       :'alice_room' <> :'alice_msg' AS per_table;
SET ROLE live_bob;
SELECT kalam.channel('live_msg') AS bob_msg \gset
SELECT kalam.channel('live_room') AS bob_room \gset
SELECT :'bob_msg' <> :'alice_msg' AS per_user,
       :'bob_room' <> :'alice_room' AS per_role_of_shared;

-- bob may listen to his channels, not to alice's; nobody sends on them
LISTEN :bob_msg;
LISTEN :bob_room;
SELECT count(*) AS bob_listens FROM pg_listening_channels();
SELECT live_try(format('LISTEN %s', :'alice_msg'));
SELECT live_try(format('LISTEN %s', :'alice_room'));
LISTEN kalam_t00000000000000000000000000000000;
LISTEN kalam_anything;
LISTEN some_other_channel;
SELECT live_try(format('NOTIFY %s, ''forged''', :'bob_msg'));
SELECT c = 'some_other_channel' AS other, count(*)
  FROM pg_listening_channels() c GROUP BY 1 ORDER BY 1;
UNLISTEN *;
RESET ROLE;
SELECT listeners FROM kalam.notifications;

-- no SELECT privilege, no channel
SET ROLE live_carol;
SELECT kalam.channel('live_msg');
SELECT kalam.subscribe('live_msg');
RESET ROLE;
SELECT kalam.channel('pg_class');

-- filters are checked as WHERE clauses over the table
SET ROLE live_alice;
SELECT kalam.subscribe('live_msg', 'nope = 1');
SELECT kalam.subscribe('live_msg', 'id + 1');
SELECT kalam.subscribe('live_msg', 'true; DROP TABLE live_msg');
SELECT kalam.subscribe('live_msg', 'true FROM pg_authid');
SELECT kalam.subscribe('live_msg', 'id IN (SELECT 1)');
SELECT kalam.subscribe('live_msg', 'count(*) > 1');
SELECT kalam.subscribe('live_msg', 'random() > 0.5');
SELECT kalam.subscribe(NULL, 'true');
SELECT kalam.subscribe('live_msg', 'room = ''general'' AND id > 2') AS sub \gset
SELECT :'sub' ~ '^kalam_s[0-9a-f]{32}$' AS shaped,
       pg_listening_channels() = :'sub' AS listening;
RESET ROLE;
SELECT listeners FROM kalam.notifications;
-- another role's subscription channel cannot be listened to or ended
SET ROLE live_bob;
SELECT live_try(format('LISTEN %s', :'sub'));
SELECT kalam.unsubscribe(:'sub');
SET ROLE live_alice;
SELECT kalam.unsubscribe(:'sub');
SELECT kalam.unsubscribe(:'sub');
SELECT count(*) FROM pg_listening_channels();
-- DISCARD ALL (connection pools) ends the session's listenings too
SELECT kalam.subscribe('live_msg') IS NOT NULL AS subscribed;
RESET ROLE;
SELECT listeners FROM kalam.notifications;
DISCARD ALL;
SELECT listeners FROM kalam.notifications;
SET ROLE live_alice;

-- kalam.changes: the user's changes in commit order
INSERT INTO live_msg VALUES (1, 'general', 'one'), (2, 'general', 'two');
UPDATE live_msg SET body = 'one!' WHERE id = 1;
UPDATE live_msg SET id = 3 WHERE id = 2;
DELETE FROM live_msg WHERE id = 1;
TRUNCATE live_msg;
SET ROLE live_bob;
INSERT INTO live_msg VALUES (1, 'bob', 'not alice''s');
SET ROLE live_alice;
SELECT op, key, "row" FROM kalam.changes('live_msg');
SELECT count(*) = count(DISTINCT pos) AS distinct_positions,
       bool_and(pos ~ '^[0-9]+:[0-9]+:[0-9]+$') AS shaped
  FROM kalam.changes('live_msg');
-- after a position: the changes that follow it
SELECT pos AS second FROM kalam.changes('live_msg') OFFSET 1 LIMIT 1 \gset
SELECT op, key FROM kalam.changes('live_msg', :'second');
SELECT count(*) FROM kalam.changes('live_msg', (SELECT max(pos COLLATE "C") FROM kalam.changes('live_msg') WHERE op = 'truncate'));
SELECT * FROM kalam.changes('live_msg', 'not a position');
SELECT * FROM kalam.changes('live_msg', '1:1:0');
SET ROLE live_bob;
SELECT op, key, "row" FROM kalam.changes('live_msg');
SET ROLE live_carol;
SELECT * FROM kalam.changes('live_msg');
RESET ROLE;

-- shared tables: every row, for every role that may SELECT it
INSERT INTO live_room VALUES (1, 'general');
SET ROLE live_alice;
SELECT op, key, "row" FROM kalam.changes('live_room');
RESET ROLE;

-- a position older than the change log keeps: KL005
ALTER SYSTEM SET kalam.change_retention = '1s';
SELECT pg_reload_conf();
SET ROLE live_alice;
SELECT pos AS first_pos FROM kalam.changes('live_msg') LIMIT 1 \gset
SELECT pos AS last_pos
  FROM (SELECT pos, row_number() OVER () AS n FROM kalam.changes('live_msg')) c
 ORDER BY n DESC LIMIT 1 \gset
RESET ROLE;
SELECT pg_sleep(3);
SET ROLE live_alice;
\set VERBOSITY sqlstate
SELECT count(*) FROM kalam.changes('live_msg', :'first_pos');
\set VERBOSITY default
SELECT count(*) FROM kalam.changes('live_msg', :'last_pos');
SELECT count(*) FROM kalam.changes('live_msg');
RESET ROLE;
ALTER SYSTEM RESET kalam.change_retention;
SELECT pg_reload_conf();

SELECT kalam.notifier_pid() = (SELECT pid FROM pg_stat_activity
                                WHERE backend_type = 'kalam notifier') AS notifier;

DROP FOREIGN TABLE live_msg, live_room;
DROP FUNCTION live_try(text);
DROP ROLE live_alice, live_bob, live_carol;
