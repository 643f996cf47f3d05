#!/usr/bin/perl
# The client of bench/first_read.sh.  Connects over the unix socket in
# --host as postgres; run it as root (it reads /proc/<backend pid>/status).
#
#   first_read_client.pl probe --host DIR --port P --conns N --warm W
#       --query SQL
#     N times: open a new connection, time the first run of SQL, then W
#     more runs of it on the same connection (warm), disconnect.  Prints,
#     in ms, nearest-rank percentiles over the N connections (warm: over
#     all N * W runs):
#       first_p50 first_p99 warm_p50 warm_p99 connect_p50
#
#   first_read_client.pl rss --host DIR --port P --conns N --query SQL
#     Opens N connections, runs SQL once on each (a full scan), then reads
#     /proc/<pid>/status of each backend, keeping every connection open until
#     all are measured.  Prints, in MB:
#       rssanon_max rssanon_avg rssfile_avg rssshmem_avg vmrss_max rssanon_sum
use strict;
use warnings;

use DBI;
use Getopt::Long;
use Time::HiRes qw(time);

my $mode = shift @ARGV or die "usage: first_read_client.pl probe|rss ...\n";
my ($host, $port, $conns, $warm, $query) = ('', 0, 20, 20, '');
GetOptions(
	'host=s'  => \$host,
	'port=i'  => \$port,
	'conns=i' => \$conns,
	'warm=i'  => \$warm,
	'query=s' => \$query,
) or die "bad options\n";

my $dsn = "dbi:Pg:host=$host;port=$port;dbname=postgres";

sub connect_db {
	return DBI->connect($dsn, 'postgres', '',
		{ RaiseError => 1, AutoCommit => 1, PrintError => 0 });
}

# nearest-rank percentile of a list of numbers
sub pct {
	my ($p, @v) = @_;
	@v = sort { $a <=> $b } @v;
	my $i = int($p / 100 * @v + 0.999999) - 1;
	$i = 0 if $i < 0;
	return $v[$i];
}

sub timed {
	my ($dbh) = @_;
	my $t0 = time;
	$dbh->selectall_arrayref($query);
	return (time - $t0) * 1000;
}

if ($mode eq 'probe') {
	my (@first, @warm, @connect);
	for my $i (1 .. $conns) {
		my $t0 = time;
		my $dbh = connect_db();
		push @connect, (time - $t0) * 1000;
		push @first, timed($dbh);
		push @warm, timed($dbh) for 1 .. $warm;
		$dbh->disconnect;
	}
	printf "%.3f %.3f %.3f %.3f %.3f\n",
		pct(50, @first), pct(99, @first), pct(50, @warm), pct(99, @warm),
		pct(50, @connect);
} elsif ($mode eq 'rss') {
	my @dbh;
	for my $i (1 .. $conns) {
		my $dbh = connect_db();
		$dbh->selectall_arrayref($query);
		push @dbh, $dbh;
	}
	my (@anon, @file, @shmem, @vmrss);
	for my $dbh (@dbh) {
		my ($pid) = $dbh->selectrow_array('SELECT pg_backend_pid()');
		open(my $fh, '<', "/proc/$pid/status") or die "/proc/$pid/status: $!\n";
		while (<$fh>) {
			push @anon,  $1 / 1024 if /^RssAnon:\s+(\d+)/;
			push @file,  $1 / 1024 if /^RssFile:\s+(\d+)/;
			push @shmem, $1 / 1024 if /^RssShmem:\s+(\d+)/;
			push @vmrss, $1 / 1024 if /^VmRSS:\s+(\d+)/;
		}
		close $fh;
	}
	my $avg = sub { my $s = 0; $s += $_ for @_; return $s / @_ };
	printf "%.2f %.2f %.2f %.2f %.2f %.1f\n",
		pct(100, @anon), $avg->(@anon), $avg->(@file), $avg->(@shmem),
		pct(100, @vmrss), $avg->(@anon) * @anon;
	$_->disconnect for @dbh;
} else {
	die "unknown mode $mode\n";
}
