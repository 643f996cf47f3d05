# A transaction whose writes to one group exceed kalam.max_entry_size goes
# in parts, each a Raft log entry of at most that size, then a split entry
# that applies them as one command on the kalam worker's thread pool.  On
# three nodes: a 1,000,000-row INSERT ... SELECT into a shared table (about
# 60 MB of writes, one 60 MB entry whose apply held every loop for seconds
# before) while pgbench writes a user table through another node.  Every
# node holds all the rows, identical; no node applied an entry above the
# setting; no part is left; no group elected a new leader; the writer's
# transactions all succeeded.  Then a split through a follower (its parts
# forwarded), and a follower killed with kill -9 while it applies a split:
# it restarts, replays, and converges.  Last, a session killed between its
# parts and its split: the leader removes the parts it left once they are
# kalam.split_timeout old, on every node, and none of its rows is there.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use IPC::Run;
use KalamCluster;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $limit = 4 * 1024 * 1024;
my @nodes = start_kalam_cluster(
	nodes => 3,
	shards => 2,
	conf => "kalam.debug_enable_hooks = on\n");
replicated_ddl(q{
	CREATE FOREIGN TABLE big (k int NOT NULL, v text)
	  SERVER kalam OPTIONS (type 'shared', primary_key 'k');
	CREATE FOREIGN TABLE u (k bigint NOT NULL, v text)
	  SERVER kalam OPTIONS (type 'user', primary_key 'k')}, @nodes);
$_->safe_psql('postgres', 'SELECT kalam.stat_apply_reset()') for @nodes;

sub terms
{
	my ($node) = @_;
	return $node->safe_psql('postgres',
		"SELECT string_agg(group_name || '=' || term, ',' ORDER BY group_name) FROM kalam.groups");
}
my %before = map { $_->name => terms($_) } @nodes;

my $leader = group_leader($nodes[0], 'shared', @nodes);
my ($writer) = grep { $_ != $leader } @nodes;
my $load = start_inserts($writer, 'u', 2, 30);
$leader->safe_psql('postgres',
	"INSERT INTO big SELECT g, md5(g::text) FROM generate_series(1, 1000000) g");
for my $node (@nodes)
{
	$node->poll_query_until('postgres', 'SELECT count(*) = 1000000 FROM big')
	  or die $node->name . ' did not apply the 1,000,000 rows';
}
my ($written, $failed) = finish_inserts($load);
cmp_ok($written, '>', 0, "pgbench wrote the user table during the split ($written)");
is($failed, 0, 'and none of its transactions failed');

for my $node (@nodes)
{
	is(terms($node), $before{ $node->name },
		$node->name . ': no group elected a new leader');
	my ($entries, $max) = split(/\|/, $node->safe_psql('postgres',
		"SELECT entries, entry_bytes_max FROM kalam.stat_apply WHERE group_name = 'shared' AND period = 'total'"));
	cmp_ok($max, '<=', $limit, $node->name . ": no entry above kalam.max_entry_size ($max bytes)");
	cmp_ok($entries, '>=', 10, $node->name . ": the rows came in parts ($entries entries)");
	is($node->safe_psql('postgres', 'SELECT sum(parts) FROM kalam.split_parts()'),
		'0', $node->name . ': no part is left');
	ok($node->poll_query_until('postgres', "SELECT count(*) >= $written FROM u"),
		$node->name . ': the writes made meanwhile are there');
}
ok(same_contents('big', @nodes), 'the 1,000,000 rows are the same on every node');

# through a follower: its parts and its split are forwarded to the leader
$writer->safe_psql('postgres', q{
	SET kalam.max_entry_size = '64kB';
	INSERT INTO big SELECT g, 'forwarded' FROM generate_series(1000001, 1050000) g});
for my $node (@nodes)
{
	ok($node->poll_query_until('postgres',
			"SELECT count(*) = 50000 FROM big WHERE v = 'forwarded'"),
		$node->name . ': the split through a follower is applied');
}

# a follower killed while it applies a split replays it at restart
my ($victim) = grep { $_ != $leader } @nodes;
my ($bg_out, $bg_err) = ('', '');
my $bg = IPC::Run::start(
	[
		'psql', '-X', '-h', $leader->host, '-p', $leader->port, '-d', 'postgres',
		'-c', "INSERT INTO big SELECT g, 'killed' FROM generate_series(2000001, 2300000) g"
	],
	'>', \$bg_out, '2>', \$bg_err);
$victim->poll_query_until('postgres',
	"SELECT parts > 0 FROM kalam.split_parts() WHERE group_name = 'shared'")
  or die 'the victim never held a part';
kill9($victim);
$bg->finish;
is($bg_out, "INSERT 0 300000\n", 'the leader committed the split while a follower was down');
$victim->start;
for my $node (@nodes)
{
	ok($node->poll_query_until('postgres',
			"SELECT count(*) = 300000 FROM big WHERE v = 'killed'"),
		$node->name . ': the split applied whole');
	ok($node->poll_query_until('postgres',
			'SELECT sum(parts) = 0 FROM kalam.split_parts()'),
		$node->name . ': and its parts removed');
}
ok(same_contents('big', @nodes), 'the restarted node holds the rows the others hold');

# a session that dies between its parts and its split leaves its parts:
# the group's leader removes them once they are kalam.split_timeout old
for my $node (@nodes)
{
	$node->safe_psql('postgres', "ALTER SYSTEM SET kalam.split_timeout = '2s'");
	$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
}
$leader = group_leader($nodes[0], 'shared', @nodes);
my ($orphan_out, $orphan_err) = ('', '');
my $orphan = IPC::Run::start(
	[
		'psql', '-X', '-h', $leader->host, '-p', $leader->port, '-d', 'postgres',
		'-c', "SET kalam.max_entry_size = '64kB'; SET kalam.debug_pause_before_split = '60s'; "
		  . "INSERT INTO big SELECT g, 'orphan' FROM generate_series(3000001, 3020000) g"
	],
	'>', \$orphan_out, '2>', \$orphan_err);
$leader->poll_query_until('postgres',
	"SELECT parts > 0 FROM kalam.split_parts() WHERE group_name = 'shared'")
  or die 'the session never stored a part';
$leader->poll_query_until('postgres', q{
	SELECT count(*) = 1 FROM pg_stat_activity
	 WHERE wait_event_type = 'Extension' AND query LIKE '%orphan%'})
  or die 'the session does not wait before its split';
$leader->safe_psql('postgres', q{
	SELECT pg_terminate_backend(pid) FROM pg_stat_activity
	 WHERE query LIKE '%orphan%' AND pid <> pg_backend_pid()});
$orphan->finish;
for my $node (@nodes)
{
	ok($node->poll_query_until('postgres', 'SELECT sum(parts) = 0 FROM kalam.split_parts()'),
		$node->name . ': the parts left by the dead session are removed');
	is($node->safe_psql('postgres', "SELECT count(*) FROM big WHERE v = 'orphan'"),
		'0', $node->name . ': and none of its rows is there');
}
like(slurp_file($leader->logfile),
	qr/removed the parts of a transaction in group "shared" that did not commit within kalam.split_timeout/,
	'the leader logs the removal');

done_testing();
