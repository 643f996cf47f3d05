#!/usr/bin/perl
# The client of bench/live_bench.sh: one process, so that every timestamp
# comes from one clock and one event loop.  Connects over the unix socket
# in --host as postgres.
#
#   live_client.pl latency --host DIR --write-port P --table T --run R
#       --writers N --seconds S --out FILE [--channel C] LISTENER...
#     LISTENER is NAME=PORT: a connection that LISTENs on the channel of
#     table T, kalam.channel(T) unless --channel names one (a plain
#     PostgreSQL channel).  N writer connections to P each INSERT one row
#     (id, room, body) at a time into T, in autocommit, asynchronously, for
#     S seconds: a writer sends its next INSERT as soon as the last one
#     returned.  Ids are (R * 1000 + writer) * 10^12 + n, as pgbench's
#     insert scripts make them (temp-server.sh), so that no two collide.
#     A notification counts if it comes from the notifier
#     (kalam.notifier_pid() of its node; for a plain channel, from any
#     writer) and names a key that a writer inserted; its latency is the
#     time it was read minus the time the INSERT's result was read.  After
#     the writers stop, waits up to 10 s for the notifications not yet in.
#     Writes "NAME AFTER_COMMIT_MS AFTER_SEND_MS" per notification to FILE
#     (its latency, and the time from sending the INSERT to the
#     notification), and prints
#       commits COUNT PER_SECOND
#       NAME received COUNT PER_SECOND missing COUNT foreign COUNT
#     (PER_SECOND: of what arrived within the S seconds; missing: commits
#     whose notification had not come 2 s after the last one; foreign:
#     notifications from another sender, or of keys nobody inserted here).
#
#   live_client.pl listen --host DIR --table T --count N [--role-prefix R] [--hold] PORT...
#     N connections, round-robin over the PORTs, LISTEN on kalam.channel(T)
#     (as roles R1 .. RN, each on its own channel, with --role-prefix; as
#     postgres otherwise) and read whatever arrives (with --hold: nothing
#     until SIGUSR1, a listener that does not read); prints "ready" once all listen.  On SIGUSR1
#     reads until 2 s pass without a notification (20 s at most), then
#     prints "PORT CONNECTIONS RECEIVED" per port and "cpu USER SYS" (its
#     own CPU seconds) and exits.
use strict;
use warnings;

use DBD::Pg qw(:async);
use DBI;
use Getopt::Long;
use IO::Select;
use Time::HiRes qw(time);

$| = 1;

my $mode = shift @ARGV // '';
my %opt = (writers => 1, seconds => 5, count => 100);
GetOptions(\%opt, 'host=s', 'write-port=i', 'table=s', 'run=i', 'writers=i',
	'seconds=f', 'out=s', 'channel=s', 'count=i', 'role-prefix=s', 'hold')
  or die "live_client.pl: bad options\n";
die "live_client.pl: --host and --table are required\n"
  unless defined $opt{host} && defined $opt{table};

sub connect_to
{
	my ($port, $user) = @_;
	return DBI->connect("dbi:Pg:host=$opt{host};port=$port;dbname=postgres",
		$user // 'postgres', '', { AutoCommit => 1, RaiseError => 1, PrintError => 0 });
}

# LISTEN on the table's kalam channel, or on --channel; returns the pid the
# notifications must come from (undef: any)
sub listen_on
{
	my ($dbh) = @_;
	if (defined $opt{channel})
	{
		$dbh->do(qq{LISTEN "$opt{channel}"});
		return undef;
	}
	my ($channel) =
	  $dbh->selectrow_array('SELECT kalam.channel($1::regclass)', undef, $opt{table});
	$dbh->do(qq{LISTEN "$channel"});
	my ($pid) = $dbh->selectrow_array('SELECT kalam.notifier_pid()');
	die "no kalam notifier runs on this node\n" unless $pid;
	return $pid;
}

# the key's id of a notification's payload (a kalam one or the baseline
# trigger's, which have the same shape)
sub key_of
{
	my ($payload) = @_;
	return $payload =~ /"key"\s*:\s*\{\s*"id"\s*:\s*(\d+)\s*\}/ ? $1 : undef;
}

sub latency
{
	my %listener;    # name => { dbh, pid, fd }
	my @names;
	for my $arg (@ARGV)
	{
		my ($name, $port) = $arg =~ /^(\w+)=(\d+)$/
		  or die "live_client.pl: listener '$arg' is not NAME=PORT\n";
		my $dbh = connect_to($port);
		$listener{$name} = { dbh => $dbh, pid => listen_on($dbh) };
		push @names, $name;
	}
	die "live_client.pl: no listener\n" unless @names;

	my $sql = "INSERT INTO $opt{table} (id, room, body) VALUES (\$1, 'room 1', 'a benchmark message')";
	my (@writers, %writer_pid);
	for my $w (1 .. $opt{writers})
	{
		my $dbh = connect_to($opt{'write-port'});
		my $sth = $dbh->prepare($sql, { pg_async => PG_ASYNC });
		push @writers, { dbh => $dbh, sth => $sth, n => 0, id => undef,
			base => ($opt{run} * 1000 + $w) * 1_000_000_000_000 };
		$writer_pid{ $dbh->{pg_pid} } = 1;
	}

	my (%committed, %arrived, %received, %in_window, %foreign);
	my $sel = IO::Select->new;
	my %by_fd;
	for my $w (@writers)
	{
		$by_fd{ $w->{dbh}{pg_socket} } = [ writer => $w ];
		$sel->add($w->{dbh}{pg_socket});
	}
	for my $name (@names)
	{
		$by_fd{ $listener{$name}{dbh}{pg_socket} } = [ listener => $name ];
		$sel->add($listener{$name}{dbh}{pg_socket});
		$received{$name} = $in_window{$name} = $foreign{$name} = 0;
	}

	my $send = sub {
		my ($w) = @_;
		$w->{id} = $w->{base} + ++$w->{n};
		$w->{sent} = time;
		$w->{sth}->execute($w->{id});
	};
	my $stop = time + $opt{seconds};
	my ($commits, $commits_in_window, $in_flight) = (0, 0, 0);
	$send->($_), $in_flight++ for @writers;
	my $last_news = time;
	while (1)
	{
		my $now = time;
		# after the writers: until 2 s pass without news, 10 s at most
		last
		  if $in_flight == 0
		  && (!%committed || $now - $last_news > 2 || $now - $stop > 10);
		my @ready = $sel->can_read(0.5);
		# a result and a notification ready at once: the result first
		for my $fd (sort { $by_fd{$b}[0] cmp $by_fd{$a}[0] } @ready)
		{
			my ($kind, $what) = @{ $by_fd{$fd} };
			if ($kind eq 'writer')
			{
				my $w = $what;
				next unless $w->{dbh}->pg_ready;
				$w->{dbh}->pg_result;
				my $t = time;
				$commits++;
				$commits_in_window++ if $t <= $stop;
				my $c = { t => $t, sent => $w->{sent},
					waiting => { map { $_ => 1 } @names } };
				for my $name (@names)
				{
					my $at = delete $arrived{$name}{ $w->{id} };
					next unless defined $at;
					record($name, $at, $c);
					delete $c->{waiting}{$name};
				}
				$committed{ $w->{id} } = $c if %{ $c->{waiting} };
				if ($t < $stop) { $send->($w) }
				else { $in_flight--; $sel->remove($w->{dbh}{pg_socket}) }
			}
			else
			{
				my $name = $what;
				my $l = $listener{$name};
				while (my $n = $l->{dbh}->pg_notifies)
				{
					my $t = time;
					my (undef, $pid, $payload) = @$n;
					my $id = key_of($payload);
					my $ours = defined $l->{pid} ? $pid == $l->{pid} : $writer_pid{$pid};
					if (!$ours || !defined $id)
					{
						$foreign{$name}++;
						next;
					}
					$last_news = $t;
					$received{$name}++;
					$in_window{$name}++ if $t <= $stop;
					my $c = $committed{$id};
					if ($c && delete $c->{waiting}{$name})
					{
						record($name, $t, $c);
						delete $committed{$id} unless %{ $c->{waiting} };
					}
					else
					{
						# before its INSERT's result was read
						$arrived{$name}{$id} = $t;
					}
				}
			}
		}
	}
	close_out();

	my %missing = map { $_ => 0 } @names;
	for my $id (keys %committed)
	{
		$missing{$_}++ for keys %{ $committed{$id}{waiting} };
	}
	printf "commits %d %.1f\n", $commits, $commits_in_window / $opt{seconds};
	for my $name (@names)
	{
		my $stray = keys %{ $arrived{$name} // {} };
		printf "%s received %d %.1f missing %d foreign %d\n", $name,
		  $received{$name} - $stray, $in_window{$name} / $opt{seconds},
		  $missing{$name}, $foreign{$name} + $stray;
	}
}

# record NAME, ARRIVAL, COMMIT: one line of --out, "NAME AFTER_COMMIT_MS
# AFTER_SEND_MS"
my $out;

sub record
{
	my ($name, $arrival, $c) = @_;
	unless ($out)
	{
		open($out, '>', $opt{out}) or die "live_client.pl: $opt{out}: $!\n";
	}
	printf $out "%s %.3f %.3f\n", $name, ($arrival - $c->{t}) * 1000,
	  ($arrival - $c->{sent}) * 1000;
}

sub close_out
{
	if ($out) { close($out) or die "live_client.pl: $opt{out}: $!\n" }
	else { open($out, '>', $opt{out}) && close($out) }
}

sub listen_many
{
	my @ports = @ARGV or die "live_client.pl: no port\n";
	my (@conns, %count, %received);
	for my $i (0 .. $opt{count} - 1)
	{
		my $port = $ports[ $i % @ports ];
		my $dbh = connect_to($port,
			defined $opt{'role-prefix'} ? $opt{'role-prefix'} . ($i + 1) : undef);
		push @conns, { dbh => $dbh, port => $port, pid => listen_on($dbh) };
		$count{$port}++;
		$received{$port} = 0;
	}
	my %by_fd = map { $_->{dbh}{pg_socket} => $_ } @conns;
	my $sel = IO::Select->new(map { $_->{dbh}{pg_socket} } @conns);
	my $drain = 0;
	local $SIG{USR1} = sub { $drain = 1 };
	print "ready\n";
	my ($quiet_since, $drain_start);
	while (1)
	{
		if ($opt{hold} && !$drain)
		{
			select(undef, undef, undef, 0.2);
			next;
		}
		my @ready = $sel->can_read(0.2);
		my $now = time;
		if ($drain)
		{
			$drain_start //= $now;
			$quiet_since //= $now;
			$quiet_since = $now if @ready;
			last if $now - $quiet_since >= 2 || $now - $drain_start >= 20;
		}
		for my $fh (@ready)
		{
			my $c = $by_fd{$fh};
			while (my $n = $c->{dbh}->pg_notifies)
			{
				$received{ $c->{port} }++ if $n->[1] == $c->{pid};
			}
		}
	}
	print "$_ $count{$_} $received{$_}\n" for @ports;
	my ($user, $sys) = times;
	printf "cpu %.2f %.2f\n", $user, $sys;
}

if ($mode eq 'latency') { latency() }
elsif ($mode eq 'listen') { listen_many() }
else { die "usage: live_client.pl latency|listen OPTIONS...\n" }
