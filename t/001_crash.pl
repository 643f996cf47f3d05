# Crash safety: a COMMIT that returned is never lost when the kalam worker
# is killed with SIGKILL or the server stops with -m immediate, and a
# server without kalam in shared_preload_libraries refuses it with a hint.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

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

# a COMMIT waiting for a stalled worker can be cancelled: the command is
# withdrawn before the worker takes it, so nothing is written
my $stalled = worker_pid();
kill 'STOP', $stalled;
my ($cret, $cout, $cerr) = $node->psql('postgres',
	"SET statement_timeout = '300ms'; INSERT INTO acked VALUES (1000, 'cancelled')");
kill 'CONT', $stalled;
isnt($cret, 0, 'a COMMIT waiting for a stopped worker ends at statement_timeout');
like($cerr, qr/canceling statement due to statement timeout/, 'it reports the timeout');
is($node->safe_psql('postgres', 'SELECT count(*) FROM acked WHERE k = 1000'),
	0, 'the withdrawn command was not applied');

# and so can it by pg_cancel_backend
kill 'STOP', $stalled;
my ($cancel_out, $cancel_err) = ('', '');
my $cancelled = IPC::Run::start(
	[ 'psql', '-X', '-d', $node->connstr('postgres'), '-c',
		"INSERT INTO acked VALUES (1001, 'cancelled')" ],
	'>', \$cancel_out, '2>', \$cancel_err);
my $waiting = "FROM pg_stat_activity WHERE query LIKE 'INSERT INTO acked VALUES (1001%'";
$node->poll_query_until('postgres', "SELECT count(*) = 1 $waiting")
  or die 'the INSERT did not start';
$node->safe_psql('postgres', "SELECT pg_cancel_backend(pid) $waiting");
$cancelled->finish;
kill 'CONT', $stalled;
like($cancel_err, qr/canceling statement due to user request/, 'a waiting COMMIT can be cancelled');
is($node->safe_psql('postgres', 'SELECT count(*) FROM acked WHERE k = 1001'),
	0, 'the cancelled command was not applied');

$node->safe_psql('postgres', "INSERT INTO acked VALUES (1000, 'after')");
is($node->safe_psql('postgres', 'SELECT v FROM acked WHERE k = 1000'),
	'after', 'the session commits again once the worker runs');

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
