# A TRUNCATE (and a DROP) of a large table is one range tombstone per
# group, applied in constant time, not a deletion per row on the kalam
# worker's loop, which also sends the heartbeats of every group: deleting
# 200k rows key by key held the loop for about 260 ms, and it grows with
# the table.  On three
# nodes: 200,000 rows bulk-loaded into a shared table, then TRUNCATE while
# pgbench writes a user table (another group) through another node.  No
# group elects a new leader (every term unchanged on every node), the
# table is empty on every node and takes rows again, the writer's rows are
# all there, identical everywhere, and the change log holds one truncate.
# Then a DROP of a user table with 50,000 rows in each of two shards, a
# transaction across groups, elects no leader either.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use KalamCluster;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my @nodes = start_kalam_cluster(nodes => 3, shards => 2);
replicated_ddl(q{
	CREATE FOREIGN TABLE big (k int NOT NULL, v text)
	  SERVER kalam OPTIONS (type 'shared', primary_key 'k');
	CREATE FOREIGN TABLE u (k bigint NOT NULL, v text)
	  SERVER kalam OPTIONS (type 'user', primary_key 'k')}, @nodes);

my $leader = group_leader($nodes[0], 'shared', @nodes);
my ($writer) = grep { $_ != $leader } @nodes;
$leader->safe_psql('postgres',
	"INSERT INTO big SELECT g, md5(g::text) FROM generate_series(1, 200000) g");
for my $node (@nodes)
{
	$node->poll_query_until('postgres', 'SELECT count(*) = 200000 FROM big')
	  or die $node->name . ' did not apply the 200,000 rows';
}
# The load (16 MB) went in parts and was applied off the loops
# (t/015_split.pl): the leaders are those of the start.
$_->poll_query_until('postgres', 'SELECT count(*) = 0 FROM kalam.groups WHERE leader_id IS NULL')
  for @nodes;
$leader = group_leader($nodes[0], 'shared', @nodes);
($writer) = grep { $_ != $leader } @nodes;

sub terms
{
	my ($node) = @_;
	return $node->safe_psql('postgres',
		"SELECT string_agg(group_name || '=' || term, ',' ORDER BY group_name) FROM kalam.groups");
}
my %before = map { $_->name => terms($_) } @nodes;

my $load = start_inserts($writer, 'u', 4, 4);
sleep(1);
$leader->safe_psql('postgres', 'TRUNCATE big');
my ($written, $failed) = finish_inserts($load);
cmp_ok($written, '>', 0, 'pgbench wrote the user table during the TRUNCATE');
is($failed, 0, 'and none of its transactions failed');

for my $node (@nodes)
{
	ok($node->poll_query_until('postgres', 'SELECT count(*) = 0 FROM big'),
		$node->name . ': the shared table is empty');
	ok($node->poll_query_until('postgres', "SELECT count(*) = $written FROM u"),
		$node->name . ": the $written rows written meanwhile are there");
	is(terms($node), $before{ $node->name },
		$node->name . ': no group elected a new leader during the load and the TRUNCATE');
}
ok(same_contents('u', @nodes), 'the user table is the same on every node');


$writer->safe_psql('postgres', "INSERT INTO big VALUES (1, 'after the truncate')");
for my $node (@nodes)
{
	ok($node->poll_query_until('postgres', "SELECT v = 'after the truncate' FROM big WHERE k = 1"),
		$node->name . ': the table takes rows again');
}
is($leader->safe_psql('postgres',
		"SELECT count(*) FROM kalam.changes('big') WHERE op = 'truncate'"),
	'1', 'the change log holds the truncate as one change');

# A DROP of a user table with rows in every shard is a transaction across
# the meta group and the shards: each shard's prepare remembers the range
# instead of staging 50,000 deletions, and its resolution writes one range
# tombstone.
$nodes[0]->safe_psql('postgres', 'CREATE ROLE alice; CREATE ROLE bob');
$_->safe_psql('postgres', 'CREATE ROLE alice; CREATE ROLE bob') for @nodes[ 1 .. 2 ];
replicated_ddl(q{
	CREATE FOREIGN TABLE wide (k int NOT NULL, v text)
	  SERVER kalam OPTIONS (type 'user', primary_key 'k')}, @nodes);
isnt($nodes[0]->safe_psql('postgres', "SELECT kalam.group_for_user('alice')"),
	$nodes[0]->safe_psql('postgres', "SELECT kalam.group_for_user('bob')"),
	'alice and bob have their rows in different shards');
for my $user ('alice', 'bob')
{
	my $at = group_leader($nodes[0],
		$nodes[0]->safe_psql('postgres', "SELECT kalam.group_for_user('$user')"), @nodes);
	$at->safe_psql('postgres',
		"SET kalam.as_user = '$user'; INSERT INTO wide SELECT g, md5(g::text) FROM generate_series(1, 50000) g");
}
sleep(3);
$_->poll_query_until('postgres', 'SELECT count(*) = 0 FROM kalam.groups WHERE leader_id IS NULL')
  for @nodes;
%before = map { $_->name => terms($_) } @nodes;
$nodes[1]->safe_psql('postgres', 'DROP FOREIGN TABLE wide');
for my $node (@nodes)
{
	ok($node->poll_query_until('postgres', "SELECT to_regclass('wide') IS NULL"),
		$node->name . ': the dropped table is gone');
	is(terms($node), $before{ $node->name },
		$node->name . ': no group elected a new leader during the DROP');
}

done_testing();
