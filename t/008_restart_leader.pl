# A leader killed with kill -9 under write load and restarted at once
# rejoins, ten times in a row: its groups start (its Raft ports lie below
# the ephemeral port range, so no outgoing connection holds them), it
# follows the leaders the others elected, catches up, and every node ends
# with the same rows.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use IPC::Run;
use KalamCluster;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my @nodes = start_kalam_cluster(nodes => 3, shards => 2);
replicated_ddl(q{
	CREATE FOREIGN TABLE s (k int NOT NULL, v text)
	  SERVER kalam OPTIONS (type 'shared', primary_key 'k')}, @nodes);

my $script = "$PostgreSQL::Test::Utils::tmp_check/restart_load.sql";
open(my $fh, '>', $script) or die "cannot write $script: $!";
print $fh "\\set k random(1, 100000000)\n"
  . "INSERT INTO s VALUES (:k, 'load') ON CONFLICT DO NOTHING;\n";
close($fh);

my $rejoined = 0;
my $background = 0;
for my $round (1 .. 10)
{
	my $leader = group_leader($nodes[0], 'shared', @nodes);
	my ($writer) = grep { $_ != $leader } @nodes;
	my ($out, $err) = ('', '');
	my $load = IPC::Run::start(
		[
			'pgbench', '-n', '-c', '4', '-T', '2', '-f', $script,
			'-h', $writer->host, '-p', $writer->port, 'postgres'
		],
		'>', \$out, '2>', \$err);
	usleep(700_000);
	kill9($leader);
	$leader->start;
	$load->finish;
	$background += $1 if $out =~ /number of transactions actually processed: (\d+)/;

	# it rejoined: it knows a leader for every group, and applied what the
	# shared group's leader committed
	my $ok = $leader->poll_query_until('postgres',
		'SELECT count(*) = 0 FROM kalam.groups WHERE leader_id IS NULL');
	my $now_leader = group_leader($writer, 'shared', @nodes);
	my $committed = $now_leader->safe_psql('postgres',
		"SELECT commit_index FROM kalam.groups WHERE group_name = 'shared'");
	$ok &&= $leader->poll_query_until('postgres',
		"SELECT applied_index >= $committed FROM kalam.groups WHERE group_name = 'shared'");
	$rejoined++ if $ok;
	diag("round $round: node " . $leader->name . ' did not rejoin') unless $ok;
}
is($rejoined, 10, 'a leader killed under load and restarted rejoined every time (10 rounds)');
cmp_ok($background, '>', 0, 'the clients wrote during the rounds');
unlike(slurp_file($_->logfile), qr/kalam could not .* Raft group/,
	$_->name . ' never failed to start a group')
  for @nodes;

my $count = $nodes[0]->safe_psql('postgres', 'SELECT count(*) FROM s');
$_->poll_query_until('postgres', "SELECT count(*) = $count FROM s") for @nodes;
ok(same_contents('s', @nodes), 'every node holds the same rows');

done_testing();
