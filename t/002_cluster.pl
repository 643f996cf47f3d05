# A three-node cluster: the nodes form one cluster from kalam.peers on first
# start, every group elects a leader, a write committed on a group's leader
# is applied on every node, a write on a follower is forwarded to the leader
# and readable on the follower as soon as COMMIT returns, DDL on a kalam
# table on any node appears on every node with the same table id, after the
# leader is killed (also with kill -9 under write load) the others elect a
# new one, no acknowledged write is lost, a follower killed under write load
# catches up, a restarted node catches up (from a snapshot
# of rows when the log it missed was compacted), a full restart keeps
# everything, and without a quorum a commit fails with KL002 once no leader
# appears.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use IPC::Run;
use KalamCluster;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my @nodes = start_kalam_cluster(
	nodes => 3,
	shards => 2,
	conf => 'kalam.snapshot_threshold = 16');
pass('three nodes formed one cluster and agree on a leader for every group');
is($nodes[0]->safe_psql('postgres', 'SELECT count(*) FROM kalam.nodes'), 3,
	'kalam.nodes lists the three nodes');

# every node writes its client address into meta: any leader can be named
for my $node (@nodes)
{
	$node->poll_query_until('postgres',
		'SELECT count(*) = 3 FROM kalam.nodes WHERE client_address IS NOT NULL')
	  or die 'client addresses missing on ' . $node->name;
}
my $port2 = $nodes[1]->port;
like($nodes[0]->safe_psql('postgres', 'SELECT client_address FROM kalam.nodes WHERE node_id = 2'),
	qr/:$port2$/, "node 1 knows node 2's client address");
is($nodes[2]->safe_psql('postgres', 'SELECT count(*) FROM kalam.groups WHERE leader_address IS NULL'),
	0, 'kalam.groups names every leader\'s client address');

# a node listens on its Raft ports (one per group) and its forwarding port,
# all below the ephemeral range, and on no port the kernel chose
my ($raft_base) = $nodes[0]->safe_psql('postgres', 'SHOW kalam.raft_address') =~ /:(\d+)$/;
my $ngroups = $nodes[0]->safe_psql('postgres', 'SELECT count(*) FROM kalam.groups');
my @ports = listening_ports(node_pids($nodes[0]));
is(join(',', grep { $_ >= $raft_base && $_ <= $raft_base + $ngroups } @ports),
	join(',', $raft_base .. $raft_base + $ngroups),
	'node 1 listens on its Raft and forwarding ports');
is(scalar(grep { $_ >= 32768 } @ports), 0, 'node 1 listens on no port of the ephemeral range');

# DDL on a follower of the meta group is forwarded and replayed everywhere
my $meta_leader = $nodes[0]->safe_psql('postgres',
	"SELECT leader_id FROM kalam.groups WHERE group_name = 'meta'");
my ($ddl_node) = grep { $_->name ne "node$meta_leader" } @nodes;
$ddl_node->safe_psql('postgres', q{
	CREATE SCHEMA app;
	CREATE FOREIGN TABLE app.shared_t (k int, v text)
	  SERVER kalam OPTIONS (type 'shared', primary_key 'k')});
my $table_id = $ddl_node->safe_psql('postgres',
	"SELECT id FROM kalam.tables WHERE \"table\" = 'app.shared_t'::regclass");
for my $node (@nodes)
{
	$node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM kalam.tables WHERE \"table\"::text = 'app.shared_t' AND id = $table_id")
	  or die 'the CREATE did not reach ' . $node->name;
}
pass('a CREATE FOREIGN TABLE on a follower appears on every node with the same table id');

# the leader of the shared group, as the given node sees it
sub shared_leader
{
	my ($asked) = @_;
	return group_leader($asked, 'shared', @nodes);
}

my $leader = shared_leader($nodes[0]);
$leader->safe_psql('postgres',
	"INSERT INTO app.shared_t SELECT g, 'row ' || g FROM generate_series(1, 100) g");
for my $node (@nodes)
{
	$node->poll_query_until('postgres', 'SELECT count(*) = 100 FROM app.shared_t')
	  or die 'rows did not reach ' . $node->name;
}
pass('a write on the leader is applied on every node');

my ($follower) = grep { $_ != $leader } @nodes;
is( $follower->safe_psql(
		'postgres', q{
	INSERT INTO app.shared_t VALUES (1000, 'from a follower');
	SELECT v FROM app.shared_t WHERE k = 1000}),
	'from a follower',
	'a write on a follower is forwarded and readable there after COMMIT');
for my $node (@nodes)
{
	$node->poll_query_until('postgres', 'SELECT count(*) = 1 FROM app.shared_t WHERE k = 1000')
	  or die 'the forwarded row did not reach ' . $node->name;
}
$follower->safe_psql('postgres', 'DELETE FROM app.shared_t WHERE k = 1000');

# kill the leader: the other two elect a new one and go on
$leader->stop('immediate');
my @alive = grep { $_ != $leader } @nodes;
$alive[0]->poll_query_until('postgres',
	"SELECT leader_id IS NOT NULL AND leader_id <> " . ($leader->name =~ s/node//r)
	  . " FROM kalam.groups WHERE group_name = 'shared'")
  or die 'no new leader';
my $new_leader = shared_leader($alive[0]);
$new_leader->safe_psql('postgres',
	"INSERT INTO app.shared_t SELECT g, 'after' FROM generate_series(101, 150) g");
for my $node (@alive)
{
	$node->poll_query_until('postgres', 'SELECT count(*) = 150 FROM app.shared_t')
	  or die 'rows did not reach ' . $node->name;
}
pass('after the leader was killed a new leader commits on the remaining nodes');

# the killed node comes back and catches up from the log
$leader->start;
$leader->poll_query_until('postgres', 'SELECT count(*) = 150 FROM app.shared_t')
  or die 'the restarted node did not catch up';
pass('the restarted node caught up');

ok(same_contents('app.shared_t', @nodes), 'all nodes hold identical rows');

# Write through $writer while $victim is killed with kill -9 halfway: four
# pgbench clients insert random keys in the background, and one client
# inserts keys $first .. $first + 99 one by one.  The victim comes back.
# Returns the keys whose COMMIT succeeded.
sub write_while_killing
{
	my ($writer, $victim, $first) = @_;
	my $script = "$PostgreSQL::Test::Utils::tmp_check/load.sql";
	my @acked;

	open(my $fh, '>', $script) or die "cannot write $script: $!";
	print $fh "\\set k random(100000, 999999)\n"
	  . "INSERT INTO app.shared_t VALUES (:k, 'background') ON CONFLICT DO NOTHING;\n";
	close($fh);
	my ($out, $err);
	my $load = IPC::Run::start(
		[
			'pgbench', '-n', '-c', '4', '-T', '4', '-f', $script,
			'-h', $writer->host, '-p', $writer->port, 'postgres'
		],
		'>', \$out, '2>', \$err);
	for my $k ($first .. $first + 99)
	{
		kill9($victim) if $k == $first + 50;
		my ($ret) = $writer->psql('postgres', "INSERT INTO app.shared_t VALUES ($k, 'load')");
		push @acked, $k if $ret == 0;
	}
	$load->finish;
	$victim->start;
	my ($background) = $out =~ /number of transactions actually processed: (\d+)/;
	cmp_ok($background // 0, '>', 0, 'the background clients wrote too');
	return @acked;
}

# every acknowledged write reaches every node, and all end up identical
sub check_acked
{
	my ($what, @acked) = @_;
	my $acked_list = join(',', @acked);

	cmp_ok(scalar(@acked), '>=', 50, "writes went on when $what");
	for my $node (@nodes)
	{
		$node->poll_query_until('postgres',
			"SELECT count(*) = " . scalar(@acked) . " FROM app.shared_t WHERE k IN ($acked_list)")
		  or die 'acknowledged writes missing on ' . $node->name;
	}
	pass("every acknowledged write is on every node after $what");

	# the restarted node has caught up once it applied what the leader did
	my $leader = shared_leader($nodes[0]);
	my $committed = $leader->safe_psql('postgres',
		"SELECT commit_index FROM kalam.groups WHERE group_name = 'shared'");
	for my $node (@nodes)
	{
		$node->poll_query_until('postgres',
			"SELECT applied_index >= $committed FROM kalam.groups WHERE group_name = 'shared'")
		  or die 'no catch-up on ' . $node->name;
	}
	ok(same_contents('app.shared_t', @nodes), "all nodes hold identical rows after $what");
}

# kill -9 of the leader while a follower's clients write
$leader = shared_leader($nodes[0]);
($follower) = grep { $_ != $leader } @nodes;
check_acked('the leader was killed under load', write_while_killing($follower, $leader, 200));

# kill -9 of a follower while the leader's clients write
$leader = shared_leader($nodes[0]);
($follower) = grep { $_ != $leader } @nodes;
check_acked('a follower was killed under load', write_while_killing($leader, $follower, 1000));

# a node that misses more than the log keeps is rebuilt from a snapshot
my $away = $nodes[2];
$away->stop('immediate');
my $writer = shared_leader($nodes[0]);
$writer = $nodes[0] if $writer == $away;
for my $k (300 .. 399)
{
	$writer->psql('postgres', "INSERT INTO app.shared_t VALUES ($k, 'while away')");
}
$away->start;
$away->poll_query_until('postgres', "SELECT count(*) = 100 FROM app.shared_t WHERE k BETWEEN 300 AND 399")
  or die 'the node that was away did not catch up';
my @snapshots = glob($away->data_dir . '/kalam/raft/shared/snapshot-*');
cmp_ok(scalar(@snapshots), '>', 0, 'the node that was away holds a snapshot');
ok(same_contents('app.shared_t', @nodes), 'and the same rows as the others');

# a full restart keeps everything and elects leaders again
my $before = $nodes[0]->safe_psql('postgres', "SELECT kalam.table_digest('app.shared_t')");
$_->stop('immediate') for @nodes;
$_->start for @nodes;
for my $node (@nodes)
{
	$node->poll_query_until('postgres',
		'SELECT count(*) = 0 FROM kalam.groups WHERE leader_id IS NULL')
	  or die 'no leaders after the full restart on ' . $node->name;
}
is($nodes[1]->safe_psql('postgres', "SELECT kalam.table_digest('app.shared_t')"),
	$before, 'a full restart keeps every row');

# ALTER and DROP travel the same way
$nodes[2]->safe_psql('postgres', 'ALTER FOREIGN TABLE app.shared_t ADD COLUMN note text');
$nodes[0]->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM information_schema.columns WHERE table_name = 'shared_t' AND column_name = 'note'")
  or die 'the ALTER did not reach node1';
pass('an ALTER on one node reaches the others');

# without a quorum nothing commits: a commit gives up with KL002 (no leader
# appeared), or, when it had reached a leader that then lost its place,
# with KL003 (the outcome is unknown); never with success
my $last = $nodes[2];
$_->stop('immediate') for @nodes[0, 1];
my ($ret, $out, $err) = $last->psql('postgres',
	"INSERT INTO app.shared_t VALUES (2000, 'no quorum')", extra_params => ['-v', 'VERBOSITY=verbose']);
isnt($ret, 0, 'a commit without a quorum fails');
like($err,
	qr/KL002: no leader could take .*group "shared" has had no leader for \d+ ms|KL003: the outcome of this commit is unknown.*may or may not have been applied/s,
	'with KL002 naming the group, or KL003');
$last->stop('immediate');
@nodes = ($last);

done_testing();
