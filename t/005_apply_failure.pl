# A node whose RocksDB write of applied entries fails never goes on over the
# gap: its kalam worker stops with FATAL, and once restarted (the postmaster
# restarts it) replays the Raft log from the last entry written and
# converges with the others.  The failure is injected on a follower of the
# shared group with the developer setting kalam.debug_fail_apply_write.
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
	CREATE SCHEMA app;
	CREATE FOREIGN TABLE app.t (k int, v text)
	  SERVER kalam OPTIONS (type 'shared', primary_key 'k')}, @nodes);

# fail a follower of the shared group that does not lead meta either
my $leader = group_leader($nodes[0], 'shared', @nodes);
my $meta_leader = group_leader($nodes[0], 'meta', @nodes);
my ($failing) = grep { $_ != $leader && $_ != $meta_leader } @nodes;
($failing) = grep { $_ != $leader } @nodes unless defined $failing;

my $offset = -s $failing->logfile;
$failing->safe_psql('postgres',
	'ALTER SYSTEM SET kalam.debug_fail_apply_write = on');
$failing->reload;
$leader->safe_psql('postgres',
	"INSERT INTO app.t SELECT g, 'before ' || g FROM generate_series(1, 20) g");
$leader->safe_psql('postgres', "INSERT INTO app.t VALUES (21, 'alone')");
pass('writes commit on the leader while a follower cannot write');

ok( $failing->wait_for_log(
		qr/FATAL:  kalam could not write the applied entries of group "[a-z_0-9]+"/,
		$offset),
	'the failing node\'s worker stops with FATAL');
like(slurp_file($failing->logfile, $offset),
	qr/DETAIL:  RocksDB: write failure injected by kalam.debug_fail_apply_write/,
	'the FATAL carries the write error');

$offset = -s $failing->logfile;
$failing->safe_psql('postgres', 'ALTER SYSTEM RESET kalam.debug_fail_apply_write');
$failing->reload;
ok($failing->wait_for_log(qr/kalam worker started as node/, $offset),
	'the postmaster restarts the worker');

$leader->safe_psql('postgres',
	"INSERT INTO app.t SELECT g, 'after ' || g FROM generate_series(22, 40) g");
for my $node (@nodes)
{
	$node->poll_query_until('postgres', 'SELECT count(*) = 40 FROM app.t')
	  or die 'rows did not reach ' . $node->name;
}
is($failing->safe_psql('postgres',
		"SELECT count(*) FROM app.t WHERE v LIKE 'before %' OR v = 'alone'"),
	21, 'the restarted node holds every row written while it failed');
ok(same_contents('app.t', @nodes), 'every node holds the same rows');
is($failing->safe_psql('postgres',
		'SELECT count(*) FROM kalam.groups WHERE parked_entries > 0'),
	0, 'nothing waits on the restarted node');

done_testing();
