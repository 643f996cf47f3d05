--
-- kalam_groups: the Raft groups of a one-node cluster (kalam.peers empty):
-- meta, shared and kalam.user_shards user shards, all led by this node
--
SHOW kalam.user_shards;
SELECT group_name, leader_id, is_leader, term >= 1 AS has_term,
       applied_index <= commit_index AS applied_within_committed
  FROM kalam.groups ORDER BY group_name;
-- a write to a shared table goes through the shared group
SELECT applied_index AS before FROM kalam.groups WHERE group_name = 'shared' \gset
INSERT INTO app.rooms VALUES ('groups-test', NULL);
SELECT applied_index > :before AS shared_advanced FROM kalam.groups WHERE group_name = 'shared';
SELECT node_id, reachable FROM kalam.nodes;
-- a user's shard is a fixed hash of the name: the same on every node
SELECT kalam.leader_for_user('alice') AS leader, kalam.is_leader_for_user('alice') AS here;
-- the group of a user's rows; nothing waits for the meta group here
SELECT kalam.group_for_user('alice') AS alice, kalam.group_for_user('bob') AS bob;
SELECT sum(parked_entries) AS parked FROM kalam.groups;
