# A node that was away past log compaction installs the groups it missed
# from another node, in chunks, not as one buffer (issue 12).  Snapshots
# here come only from kalam.snapshot_log_size (64 kB; the entry threshold,
# 10000, is never reached), and a chunk holds at most 4 kB
# (kalam.snapshot_chunk_size), far less than the group.  Node 3 stops;
# 30,000 rows go into a user table and 300 of 400 bytes, one by one, into
# a shared table; node 3
# comes back with kalam.debug_pause_install holding its installs after a
# chunk, shows the install in kalam.groups, and is killed -9 in the
# middle.  Restarted without the pause, it installs both groups again, at
# kalam.snapshot_transfer_rate (1 MB/s) at most, says so in its log (many
# chunks), and ends with the same rows as the others; writes after that
# reach it as usual.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use KalamCluster;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my @nodes = start_kalam_cluster(
	nodes => 3,
	shards => 2,
	conf => q{
kalam.snapshot_threshold = 10000
kalam.snapshot_log_size = 64
kalam.snapshot_chunk_size = 4
kalam.debug_enable_hooks = on
});
replicated_ddl(q{
	CREATE FOREIGN TABLE msgs (k int NOT NULL, v text)
	  SERVER kalam OPTIONS (type 'user', primary_key 'k');
	CREATE FOREIGN TABLE s (k int NOT NULL, v text)
	  SERVER kalam OPTIONS (type 'shared', primary_key 'k')}, @nodes);

my $shard = $nodes[0]->safe_psql('postgres', "SELECT kalam.group_for_user('postgres')");
my $away = $nodes[2];
$away->stop;
$nodes[0]->poll_query_until('postgres',
	'SELECT count(*) = 0 FROM kalam.groups WHERE leader_id IS NULL OR leader_id = 3')
  or die 'no leader among the two nodes left';

my $shard_leader = group_leader($nodes[0], $shard, @nodes[0, 1]);
for my $b (0 .. 119)
{
	my $from = $b * 250;
	$shard_leader->safe_psql('postgres',
		"INSERT INTO msgs SELECT g, md5(g::text) FROM generate_series($from, $from + 249) g");
}
my $shared_leader = group_leader($nodes[0], 'shared', @nodes[0, 1]);
$shared_leader->safe_psql('postgres', "INSERT INTO s VALUES ($_, repeat('s', 400))") for 1 .. 300;

my @snapshots = glob($shard_leader->data_dir . "/kalam/raft/$shard/snapshot-*");
cmp_ok(scalar(@snapshots), '>', 0,
	'the shard took snapshots by log size (the entry threshold is not reached)');

# back, holding its installs after a chunk
$away->append_conf('postgresql.conf', 'kalam.debug_pause_install = on');
$away->start;
$away->poll_query_until('postgres', qq{
	SELECT snapshot_install = 'fetching' AND snapshot_rows > 0
	  FROM kalam.groups WHERE group_name = '$shard'})
  or die 'node 3 does not show an install of the shard';
my ($source, $bytes) = split(/\|/, $away->safe_psql('postgres',
	"SELECT snapshot_source, snapshot_bytes FROM kalam.groups WHERE group_name = '$shard'"));
ok($source == 1 || $source == 2, "kalam.groups names the node the shard comes from ($source)");
cmp_ok($bytes, '<=', 3 * 4096, 'the install holds back after a chunk or two');
cmp_ok($away->safe_psql('postgres', 'SELECT count(*) FROM msgs'), '<', 30000,
	'the rows are not there yet');

kill9($away);
$away->append_conf('postgresql.conf',
	"kalam.debug_pause_install = off\nkalam.snapshot_transfer_rate = 1024");
$away->start;
for my $check (['msgs', 30000], ['s', 300])
{
	my ($table, $rows) = @$check;
	$away->poll_query_until('postgres', "SELECT count(*) = $rows FROM $table")
	  or die "node 3 does not get the $rows rows of $table";
	ok(same_contents($table, @nodes), "node 3 holds the rows of $table the others hold");
}

my $log = slurp_file($away->logfile);
my @installed = $log =~ /group "(\w+)": installed a snapshot from node \d+ at index \d+: (\d+) rows, (\d+) kB in (\d+) chunks and \d+ files, in (\d+) ms/g;
my (%chunks, %kb, %ms);
while (my ($group, $rows, $kb, $n, $ms) = splice(@installed, 0, 5))
{
	($chunks{$group}, $kb{$group}, $ms{$group}) = ($n, $kb, $ms);
}
cmp_ok($chunks{$shard} // 0, '>', 100, "the shard came in many chunks ($chunks{$shard})");
# kalam.snapshot_transfer_rate = 1024 (kB/s): every chunk but the last waits
# for its turn
cmp_ok($ms{$shard} // 0, '>=', ($kb{$shard} - 8) * 1000 / 1024,
	"the transfer kept to kalam.snapshot_transfer_rate ($kb{$shard} kB in $ms{$shard} ms)");
ok(defined $chunks{shared}, 'the shared group was installed too');
is($away->safe_psql('postgres',
	"SELECT count(*) FROM kalam.groups WHERE snapshot_install IS NOT NULL"),
	'0', 'no install is left running');

# the group goes on as usual
$shard_leader = group_leader($nodes[0], $shard, @nodes);
$shard_leader->safe_psql('postgres', "INSERT INTO msgs VALUES (-1, 'after')");
$away->poll_query_until('postgres', 'SELECT count(*) = 1 FROM msgs WHERE k = -1')
  or die 'a write after the install does not reach node 3';
ok(same_contents('msgs', @nodes), 'and the nodes stay identical');

$_->stop for @nodes;
done_testing();
