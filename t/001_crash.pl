# Crash safety: a COMMIT that returned is never lost when the kalam worker
# is killed with SIGKILL or the server stops with -m immediate, and a
# server without kalam in shared_preload_libraries refuses it with a hint.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('crash');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'kalam'\nrestart_after_crash = on\n");
$node->start;

$node->safe_psql('postgres', q{
	CREATE EXTENSION kalam;
	CREATE FOREIGN TABLE acked (k int, v text)
	  SERVER kalam OPTIONS (type 'shared', primary_key 'k');
});

sub worker_pid
{
	return $node->safe_psql('postgres', 'SELECT worker_pid FROM kalam.stats');
}

# Insert rows one autocommit transaction at a time, remembering which
# COMMITs returned; kill the kalam worker in the middle of it.
my @acked;
my $killed = 0;
for my $k (1 .. 300)
{
	if ($k == 150)
	{
		my $pid = worker_pid();
		ok($pid =~ /^\d+$/, 'kalam worker is running');
		kill 'KILL', $pid;
		$killed = 1;
	}
	my ($ret, $stdout, $stderr) = $node->psql('postgres',
		"INSERT INTO acked VALUES ($k, 'row $k')");
	push @acked, $k if $ret == 0;
}
ok($killed, 'kalam worker was killed during the writes');
cmp_ok(scalar(@acked), '>', 200, 'most writes were acknowledged');

# the postmaster restarts everything after the worker's crash
$node->poll_query_until('postgres', 'SELECT count(*) > 0 FROM acked')
  or die 'server did not come back';

sub missing_acked
{
	my $present = $node->safe_psql('postgres',
		'SELECT string_agg(k::text, \',\' ORDER BY k) FROM acked');
	my %have = map { $_ => 1 } split /,/, $present;
	return grep { !$have{$_} } @acked;
}

my @missing = missing_acked();
is(scalar(@missing), 0, 'every acknowledged row survived SIGKILL of the kalam worker')
  or diag("missing: @missing");

# more acknowledged writes, then an immediate stop
for my $k (301 .. 400)
{
	my ($ret) = $node->psql('postgres',
		"INSERT INTO acked VALUES ($k, 'row $k')");
	push @acked, $k if $ret == 0;
}
$node->safe_psql('postgres', q{
	BEGIN;
	UPDATE acked SET v = 'updated' WHERE k <= 10;
	DELETE FROM acked WHERE k BETWEEN 11 AND 20;
	COMMIT;
});
@acked = grep { $_ < 11 || $_ > 20 } @acked;
$node->stop('immediate');
$node->start;

@missing = missing_acked();
is(scalar(@missing), 0, 'every acknowledged row survived an immediate stop')
  or diag("missing: @missing");
is($node->safe_psql('postgres', "SELECT count(*) FROM acked WHERE v = 'updated'"),
	10, 'acknowledged updates survived');
is($node->safe_psql('postgres', 'SELECT count(*) FROM acked WHERE k BETWEEN 11 AND 20'),
	0, 'acknowledged deletes survived');

# the applied index continues after the restarts instead of starting over
cmp_ok($node->safe_psql('postgres', 'SELECT applied_index FROM kalam.stats'),
	'>=', scalar(@acked), 'applied index survived the restarts');
$node->stop;

# without shared_preload_libraries kalam refuses to load, and says how
my $bare = PostgreSQL::Test::Cluster->new('bare');
$bare->init;
$bare->start;
my ($ret, $stdout, $stderr) = $bare->psql('postgres', 'CREATE EXTENSION kalam');
isnt($ret, 0, 'CREATE EXTENSION fails without preloading');
like($stderr, qr/kalam must be loaded via shared_preload_libraries/, 'the error names the cause');
like($stderr, qr/HINT:\s+Add 'kalam' to shared_preload_libraries/, 'the hint says how to fix it');
$bare->stop;

done_testing();
