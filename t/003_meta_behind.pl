# A node whose meta group is behind parks the data entries that need DDL it
# has not applied: it never stores rows of a table before the CREATE of
# that table.  The meta group of one node is held back
# (kalam.debug_hold_meta_apply); another node creates a table and writes
# into it and into an older table.  The held node applies the write to the
# older table at once, parks the write to the new one (committed, not
# applied) and, once meta is released, replays the CREATE and then applies
# the parked write.  The other nodes never wait for it.  The held node has
# kalam.parked_memory = 0: every entry it parks waits in RocksDB, and is
# read back from there when it is applied.
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
	shards => 4,
	conf => 'kalam.snapshot_threshold = 16');

my $ddl = 'CREATE FOREIGN TABLE %s (k int, v text) SERVER kalam OPTIONS (type \'user\', primary_key \'k\')';
$nodes[0]->safe_psql('postgres', sprintf($ddl, 'older'));
for my $node (@nodes)
{
	$node->poll_query_until('postgres', "SELECT to_regclass('older') IS NOT NULL")
	  or die 'the CREATE did not reach ' . $node->name;
}

# hold back a node that does not lead meta, the one of the two that leads
# fewer user shards (at most 2 of the 4), so that two shards are led by
# other nodes; write on the other one
my $meta_leader = $nodes[0]->safe_psql('postgres',
	"SELECT leader_id FROM kalam.groups WHERE group_name = 'meta'");
my %shards_led = map { $_ => 0 } 1 .. 3;
$shards_led{$_}++ for split /\n/, $nodes[0]->safe_psql('postgres',
	"SELECT leader_id FROM kalam.groups WHERE group_name LIKE 'user_%'");
my ($held, $writer) =
  sort { $shards_led{ $a->name =~ s/node//r } <=> $shards_led{ $b->name =~ s/node//r } }
  grep { $_->name ne "node$meta_leader" } @nodes;
my $held_id = $held->name =~ s/node//r;
my $log_offset = -s $held->logfile;
$held->append_conf('postgresql.conf',
	"kalam.debug_hold_meta_apply = on\nkalam.parked_memory = 0");
$held->reload;
$held->wait_for_log(qr/holding back the meta group's entries/, $log_offset);

# two users in different shards, neither led by the held node: their
# commits never wait for it
my %group_of;
my @users;
for my $i (1 .. 200)
{
	my ($group, $leader) = split /\|/, $writer->safe_psql('postgres',
		"SELECT kalam.group_for_user('user$i'), kalam.leader_for_user('user$i')");
	next if $leader == $held_id || grep { $group_of{$_} eq $group } @users;
	$group_of{"user$i"} = $group;
	push @users, "user$i";
	last if @users == 2;
}
die 'no two users in shards led by other nodes' unless @users == 2;
my ($new_user, $old_user) = @users;

$writer->safe_psql('postgres', sprintf($ddl, 'newer'));
$writer->safe_psql('postgres', qq{
	SET kalam.as_user = '$new_user';
	INSERT INTO newer SELECT g, 'new ' || g FROM generate_series(1, 3) g;
	SET kalam.as_user = '$old_user';
	INSERT INTO older VALUES (1, 'old');
});
pass('commits on the other nodes do not wait for the node that is behind');

# the older table's write needs no DDL the held node lacks: applied at once
{
	local $ENV{PGOPTIONS} = "-c kalam.as_user=$old_user";
	$held->poll_query_until('postgres', "SELECT count(*) = 1 FROM older WHERE v = 'old'")
	  or die 'the write to the older table did not reach the held node';
}
pass('a node behind on meta applies writes whose DDL it has');

# the newer table's write is committed there but parked
my $parked = "SELECT commit_index > applied_index AND parked_entries > 0 FROM kalam.groups WHERE group_name = '$group_of{$new_user}'";
$held->poll_query_until('postgres', $parked)
  or die 'the write to the new table is not parked on the held node';
pass('a node behind on meta parks a committed write that needs the DDL it lacks');
is($held->safe_psql('postgres', "SELECT to_regclass('newer') IS NULL"), 't',
	'and has not created the table');
is($held->safe_psql('postgres',
	"SELECT bool_and(parked_on_disk = parked_entries) FROM kalam.groups WHERE parked_entries > 0"),
	't', 'with kalam.parked_memory = 0, what it parks waits in RocksDB');
is($held->safe_psql('postgres',
	"SELECT commit_index > applied_index AND parked_entries > 0 FROM kalam.groups WHERE group_name = 'meta'"),
	't', 'its meta group has committed entries it has not applied');

# Let the held node's meta group go on, and wait until it has replayed
# the CREATE of the table and applied what was parked: $rows rows of the
# table for $new_user.
sub release
{
	my ($table, $rows) = @_;

	$held->append_conf('postgresql.conf', 'kalam.debug_hold_meta_apply = off');
	$held->reload;
	$held->poll_query_until('postgres', "SELECT to_regclass('$table') IS NOT NULL")
	  or die "the held node did not replay the CREATE of $table";
	local $ENV{PGOPTIONS} = "-c kalam.as_user=$new_user";
	$held->poll_query_until('postgres', "SELECT count(*) = $rows FROM $table")
	  or die "the held node did not apply what was parked for $table";
}

release('newer', 3);
is($held->safe_psql('postgres', 'SELECT sum(parked_entries) + sum(parked_on_disk) FROM kalam.groups'), 0,
	'once meta caught up nothing is parked');
ok(same_contents('newer', @nodes), 'and the node holds the same rows as the others');
is( $held->safe_psql('postgres',
		"SELECT parked_entries > 0 AND parked_wait_max_ms > 0 FROM kalam.stat_apply WHERE group_name = '$group_of{$new_user}' AND period = 'total'"),
	't', 'kalam.stat_apply counts the parked entries and their wait');

# The node is away while a table is created and more writes go into its
# shard than the log keeps (snapshot threshold 16): it comes back behind on
# meta and gets the rows as a snapshot, which waits for the CREATE too.
$held->stop;
$writer->safe_psql('postgres', sprintf($ddl, 'newest'));
$writer->safe_psql('postgres',
	qq{SET kalam.as_user = '$new_user';\n}
	  . join('', map { "INSERT INTO newest VALUES ($_, 'while away');\n" } 1 .. 150));
$held->append_conf('postgresql.conf', 'kalam.debug_hold_meta_apply = on');
$held->start;
$held->poll_query_until('postgres', $parked)
  or die 'nothing is parked on the node that came back';
my @snapshots = glob($held->data_dir . "/kalam/raft/$group_of{$new_user}/snapshot-*");
cmp_ok(scalar(@snapshots), '>', 0, 'the node that came back got a snapshot of the shard');
my ($snapshot_index) = sort { $b <=> $a } map { /snapshot-\d+-(\d+)-\d+$/ ? $1 : () } @snapshots;
cmp_ok($held->safe_psql('postgres',
		"SELECT applied_index FROM kalam.groups WHERE group_name = '$group_of{$new_user}'"),
	'<', $snapshot_index, 'the snapshot waits for the meta group too');
is($held->safe_psql('postgres', "SELECT to_regclass('newest') IS NULL"), 't',
	'and, behind on meta, has not created the table');

release('newest', 150);
ok(same_contents('newest', @nodes),
	'once meta caught up the snapshot is restored: the same rows as the others');

done_testing();
