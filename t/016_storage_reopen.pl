# A reader never catches up across a new MANIFEST of the primary: the kalam
# worker begins one (by opening its storage again) when the MANIFEST has
# grown past kalam.manifest_size_limit, and when it restarts.  A session
# that stays connected through both reads every committed row, a scan that
# was open across a new MANIFEST finishes with the rows of its view, and
# the MANIFEST stays small (a new connection's first read replays it).  A
# session that ends with a scan open does not bring the server down.  A
# stopped or restarted kalam reader (which answers sessions' first point
# reads) costs a session at most a second.  And a one-node cluster listens
# on no TCP port.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use KalamCluster;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('reopen');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'kalam'
kalam.flush_interval = '20ms'
kalam.flush_min_size = 0
kalam.manifest_size_limit = '8kB'
});
$node->start;

$node->safe_psql('postgres', q{
	CREATE EXTENSION kalam;
	CREATE FOREIGN TABLE t (k int, v text)
	  SERVER kalam OPTIONS (type 'shared', primary_key 'k');
});

# a one-node cluster's groups have no peer to hear from: its Raft groups
# listen on no port (they took ports of the ephemeral range before)
is(join(',', listening_ports(node_pids($node))), '',
	'a one-node cluster listens on no TCP port');

# this session reads through a RocksDB reader of its own, not the kalam
# reader process's
my $reader = $node->background_psql('postgres', on_error_stop => 0);
$reader->query_safe('SET kalam.served_reads = 0');
$reader->query_safe('SET client_min_messages = debug1');

# from here on, its DEBUG1 lines go to stderr: query(), not query_safe()

sub reader_count
{
	my ($out) = $reader->query('SELECT count(*) FROM t');
	return $out;
}

# rows committed one at a time, each read back by the long-lived session
my $offset = -s $node->logfile;
my $rows = 0;
my $wrong = 0;
for my $round (1 .. 40)
{
	for my $i (1 .. 5)
	{
		$rows++;
		$node->safe_psql('postgres', "INSERT INTO t VALUES ($rows, 'row $rows')");
	}
	my $seen = reader_count();
	$wrong++ if $seen ne $rows;
	last
	  if $round >= 10
	  && (() = slurp_file($node->logfile, $offset) =~
		/kalam began a new storage manifest/g) >= 2;
}
is($wrong, 0, 'the long-lived session read every committed row each time');
my @began = slurp_file($node->logfile, $offset) =~
  /kalam began a new storage manifest in \d+ ms/g;
cmp_ok(scalar(@began), '>=', 2,
	'the worker began new MANIFESTs as the old ones grew past the limit');
like($reader->{stderr}, qr/kalam reader opened again/,
	'the session opened its reader again instead of catching up');

# a scan open across a new MANIFEST keeps its view and finishes
$reader->query('BEGIN');
$reader->query('DECLARE c CURSOR FOR SELECT k FROM t ORDER BY k');
my ($first) = $reader->query('FETCH 1 FROM c');
is($first, '1', 'the cursor read its first row');
my $open_rows = $rows;
$offset = -s $node->logfile;
for my $i (1 .. 200)
{
	$rows++;
	$node->safe_psql('postgres', "INSERT INTO t VALUES ($rows, 'row $rows')");
	last if $i >= 5 && slurp_file($node->logfile, $offset) =~
	  /kalam began a new storage manifest/;
}
like(slurp_file($node->logfile, $offset), qr/kalam began a new storage manifest/,
	'a new MANIFEST began while the cursor was open');
my ($during) = $reader->query('SELECT count(*) FROM t');
cmp_ok($during, '>=', $open_rows,
	'a read beside the open cursor sees at least the rows of its view');
my ($rest) = $reader->query('FETCH ALL FROM c');
my @fetched = split /\n/, $rest;
cmp_ok(scalar(@fetched), '>=', $open_rows - 1,
	'the cursor fetched the rest of its rows');
is(join(',', @fetched[0 .. $open_rows - 2]), join(',', 2 .. $open_rows),
	'in key order, none lost');
$reader->query('COMMIT');
is(reader_count(), $rows, 'after the cursor, the session reads every row');

# the worker restarts (a failed write stops it with FATAL)
$offset = -s $node->logfile;
$node->safe_psql('postgres',
	'ALTER SYSTEM SET kalam.debug_fail_apply_write = on');
$node->reload;
$node->psql('postgres', "INSERT INTO t VALUES (-1, 'during the failure')");
ok($node->wait_for_log(qr/FATAL:  kalam could not write the applied entries/,
		$offset),
	'the worker stopped on the injected write failure');
$node->safe_psql('postgres', 'ALTER SYSTEM RESET kalam.debug_fail_apply_write');
$node->reload;
ok($node->wait_for_log(qr/kalam worker started as node/, $offset),
	'the postmaster restarted the worker');
$rows++;
$node->safe_psql('postgres', "INSERT INTO t VALUES ($rows, 'after')");
my $fresh = $node->safe_psql('postgres', 'SELECT count(*) FROM t');
cmp_ok($fresh, '>=', $rows, 'a new session reads every row after the restart');
is(reader_count(), $fresh,
	'the session connected through the restart reads the same');
unlike($reader->{stderr}, qr/ERROR/, 'none of the session\'s reads failed');
$reader->quit;

# a session that ends with a scan open (here, a cursor) closes its reader
# after its transaction is aborted: closing it first failed an assertion of
# RocksDB's in the exiting backend, and the server restarted
my $cursor = $node->background_psql('postgres', on_error_stop => 0);
$cursor->query_safe('BEGIN');
$cursor->query_safe('DECLARE c CURSOR FOR SELECT k FROM t ORDER BY k');
like($cursor->query_safe('FETCH 1 FROM c'), qr/^-?\d+$/, 'a cursor is open');
my $pid = $cursor->query_safe('SELECT pg_backend_pid()');
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
$node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $pid")
  or die 'the terminated session did not go';
$cursor->{run}->finish;
is($node->safe_psql('postgres', 'SELECT count(*) FROM t'), $fresh,
	'the server goes on after a session ended with a cursor open');

# A session's first point reads are answered by the kalam reader process;
# a session that opened no reader of its own has no secondary directory.
# While the reader does not answer (stopped here), a session waits for it
# at most a second and then reads by itself; once it answers again, new
# sessions are served again; a reader that exits is started again.
my $own_reader = q{SELECT EXISTS (SELECT FROM pg_ls_dir(current_setting('data_directory') || '/kalam/secondary') d WHERE d = pg_backend_pid()::text)};

sub kalam_reader_pid
{
	for my $pid (node_pids($node))
	{
		open(my $fh, '<', "/proc/$pid/cmdline") or next;
		my $cmd = <$fh> // '';
		close($fh);
		return $pid if $cmd =~ /kalam reader/;
	}
	return undef;
}

my $served_pid = kalam_reader_pid();
ok(defined $served_pid, 'the kalam reader runs');
is($node->safe_psql('postgres', "SELECT v FROM t WHERE k = 1; $own_reader"),
	"row 1\nf", 'a new session\'s point read is answered by the kalam reader');
kill 'STOP', $served_pid;
my $started = time;
is($node->safe_psql('postgres', "SELECT v FROM t WHERE k = 1; $own_reader"),
	"row 1\nt", 'with the kalam reader stopped, a session reads by itself');
cmp_ok(time - $started, '<=', 5, 'after waiting for the reader about a second');
kill 'CONT', $served_pid;
is($node->safe_psql('postgres', "SELECT v FROM t WHERE k = 2; $own_reader"),
	"row 2\nf", 'once the kalam reader answers again, it serves new sessions');
kill 'TERM', $served_pid;
my $restarted;
for (1 .. 100)
{
	$restarted = kalam_reader_pid();
	last if defined $restarted && $restarted != $served_pid;
	usleep(100_000);
}
ok(defined $restarted && $restarted != $served_pid,
	'a kalam reader that exits is started again');
ok($node->poll_query_until('postgres', "SELECT v FROM t WHERE k = 3; $own_reader",
		"row 3\nf"),
	'the restarted kalam reader serves new sessions');

# A row read, then updated and flushed by the primary: a long-lived reader
# (a session's own, or the kalam reader's) that replayed the row's older
# value from the log must not go on serving it.  RocksDB 7.8's secondary
# keeps what it replayed from a log the primary has since flushed in its
# memtable, above the flushed table file (RocksDB issue 15051), so the
# reader opens again instead of catching up across a flush.
my $own = $node->background_psql('postgres', on_error_stop => 1);
$own->query_safe('SET kalam.served_reads = 0');
$node->safe_psql('postgres', "INSERT INTO t VALUES (900000, 'v0')");
is($own->query_safe('SELECT v FROM t WHERE k = 900000'), 'v0',
	'a long-lived session reads a row');
is($node->safe_psql('postgres', 'SELECT v FROM t WHERE k = 900000'), 'v0',
	'so does the kalam reader');
my $stale = 0;
for my $round (1 .. 5)
{
	$node->safe_psql('postgres', "UPDATE t SET v = 'v$round' WHERE k = 900000");
	# kalam.flush_interval is 20ms here: the update is in a table file
	usleep(300_000);
	$stale++ if $own->query_safe('SELECT v FROM t WHERE k = 900000') ne "v$round";
	$stale++
	  if $node->safe_psql('postgres', 'SELECT v FROM t WHERE k = 900000') ne "v$round";
}
is($stale, 0, 'after each update and flush, both read the new value');
$own->quit;

unlike(slurp_file($node->logfile),
	qr/terminated by signal|was terminated|Assertion/,
	'no process of the server crashed');

my $db = $node->data_dir . '/kalam/db';
opendir(my $dh, $db) or die "cannot list $db: $!";
my @manifests = grep { /^MANIFEST-/ } readdir($dh);
closedir($dh);
my ($largest) = sort { $b <=> $a } map { -s "$db/$_" } @manifests;
cmp_ok($largest, '<', 64 * 1024, "the MANIFEST stays small ($largest bytes)");

done_testing();
