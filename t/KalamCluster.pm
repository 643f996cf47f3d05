# Helpers for TAP tests of a kalam cluster on loopback: start N nodes that
# form one cluster, find the leader of a group, kill a node the hard way,
# compare the contents of a table across nodes.
package KalamCluster;

use strict;
use warnings;

use Exporter 'import';
use IO::Socket::INET;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Time::HiRes qw(usleep);

our @EXPORT =
  qw(run_sql start_kalam_cluster replicated_ddl group_leader kill9 node_pids same_contents
  cluster_secret write_secret start_inserts finish_inserts listening_ports);

# Run SQL on a node as its superuser; returns (stdout, stderr) with the
# SQLSTATEs of errors shown (VERBOSITY verbose).
sub run_sql
{
	my ($node, $sql) = @_;
	my ($out, $err) = ('', '');
	$node->psql('postgres', "\\set VERBOSITY verbose\n$sql",
		stdout => \$out, stderr => \$err);
	return ($out, $err);
}

# each node needs consecutive free ports: one per group, one for forwarding
sub can_bind
{
	my ($port) = @_;
	my $sock = IO::Socket::INET->new(
		LocalAddr => '127.0.0.1',
		LocalPort => $port,
		Proto => 'tcp',
		ReuseAddr => 1,
		Listen => 1);
	return 0 unless $sock;
	close($sock);
	return 1;
}

sub leaders
{
	my ($node) = @_;
	return $node->safe_psql('postgres',
		"SELECT string_agg(group_name || '=' || coalesce(leader_id::text, '?'), ',' ORDER BY group_name) FROM kalam.groups");
}

# Start $n nodes with $shards user shards (and any further settings), create
# the extension on each, and wait until every node knows a leader for every
# group and all agree on them.  Returns the nodes, node i + 1 at index i.
sub start_kalam_cluster
{
	my (%opts) = @_;
	my $n = $opts{nodes} // 3;
	my $shards = $opts{shards} // 2;
	my $ngroups = 2 + $shards;
	my $conf = $opts{conf} // '';
	# tests look at each node's own copy: local reads, unless they ask
	my $reads = $opts{reads} // 'local';
	my (@nodes, @raft_ports);

	for my $i (1 .. $n)
	{
		my $base;
		# below Linux's ephemeral range (32768-60999), from which outgoing
		# connections take their ports: a restarted node must find its own
		do
		{
			$base = PostgreSQL::Test::Cluster::get_free_port();
		  } while ($base + $ngroups >= 32768
			or grep { !can_bind($_) } $base .. $base + $ngroups
			or grep { abs($_ - $base) <= $ngroups } @raft_ports);
		push @raft_ports, $base;
	}
	my $peers = join(',', map { ($_ + 1) . "\@127.0.0.1:$raft_ports[$_]" } 0 .. $n - 1);
	my $secret = $opts{secret} // cluster_secret();

	for my $i (1 .. $n)
	{
		my $node = PostgreSQL::Test::Cluster->new("node$i");
		$node->init;
		write_secret($node, $secret);
		$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'kalam'
kalam.node_id = $i
kalam.raft_address = '127.0.0.1:$raft_ports[$i - 1]'
kalam.peers = '$peers'
kalam.cluster_secret_file = 'kalam_secret'
kalam.user_shards = $shards
kalam.election_timeout = 300
kalam.read_consistency = $reads
$conf
});
		push @nodes, $node;
	}
	$_->start for @nodes;

	for my $node (@nodes)
	{
		$node->safe_psql('postgres', 'CREATE EXTENSION kalam');
		$node->poll_query_until('postgres',
			"SELECT count(*) = $ngroups FROM kalam.groups WHERE leader_id IS NOT NULL")
		  or die 'no leader for every group on ' . $node->name;
	}

	# all nodes agree on the leaders, once the elections settle
	for (1 .. 50)
	{
		my @seen = map { leaders($_) } @nodes;
		return @nodes unless grep { $_ ne $seen[0] || /\?/ } @seen;
		usleep(200_000);
	}
	die 'the nodes do not agree on the leaders: ' . join(' / ', map { leaders($_) } @nodes);
}

# A fresh random cluster secret, as hex.
sub cluster_secret
{
	open(my $fh, '<', '/dev/urandom') or die "cannot read /dev/urandom: $!";
	read($fh, my $bytes, 32) == 32 or die 'short read from /dev/urandom';
	close($fh);
	return unpack('H*', $bytes);
}

# Write a secret into the node's data directory as kalam_secret, mode 0600.
sub write_secret
{
	my ($node, $secret) = @_;
	my $path = $node->data_dir . '/kalam_secret';
	open(my $fh, '>', $path) or die "cannot write $path: $!";
	print $fh "$secret\n";
	close($fh);
	chmod(0600, $path) or die "cannot chmod $path: $!";
}

# Run DDL on the first node and wait until every other node replayed it:
# until each has as many kalam tables as the first.
sub replicated_ddl
{
	my ($sql, @nodes) = @_;
	$nodes[0]->safe_psql('postgres', $sql);
	my $count = $nodes[0]->safe_psql('postgres', 'SELECT count(*) FROM kalam.tables');
	for my $node (@nodes[ 1 .. $#nodes ])
	{
		$node->poll_query_until('postgres', "SELECT count(*) = $count FROM kalam.tables")
		  or die 'the DDL did not reach ' . $node->name;
	}
}

# The node that leads a group, as $asked sees it, among @nodes.
sub group_leader
{
	my ($asked, $group, @nodes) = @_;
	my $id = $asked->safe_psql('postgres',
		"SELECT leader_id FROM kalam.groups WHERE group_name = '$group'");
	return $nodes[ $id - 1 ];
}

# The postmaster of a node and every process it started.
sub node_pids
{
	my ($node) = @_;
	my $postmaster = $node->{_pid};
	my @pids = ($postmaster);

	opendir(my $proc, '/proc') or die "cannot read /proc: $!";
	for my $pid (grep { /^\d+$/ } readdir($proc))
	{
		open(my $fh, '<', "/proc/$pid/stat") or next;
		my $stat = <$fh>;
		close($fh);
		# pid (comm) state ppid ...: comm may hold spaces, not ')'+space
		push @pids, $pid if $stat =~ /\) \S+ (\d+) / && $1 == $postmaster;
	}
	closedir($proc);
	return @pids;
}

# The TCP ports on which any of the processes listen (sockets in state
# LISTEN in /proc/net/tcp and tcp6 whose inode is one of their open files).
sub listening_ports
{
	my (@pids) = @_;
	my (%inodes, %ports);

	for my $pid (@pids)
	{
		opendir(my $fds, "/proc/$pid/fd") or next;
		for my $fd (readdir($fds))
		{
			my $link = readlink("/proc/$pid/fd/$fd") // next;
			$inodes{$1} = 1 if $link =~ /^socket:\[(\d+)\]$/;
		}
		closedir($fds);
	}
	for my $table ('/proc/net/tcp', '/proc/net/tcp6')
	{
		open(my $fh, '<', $table) or next;
		<$fh>;
		while (my $line = <$fh>)
		{
			# sl local_address rem_address st ... uid timeout inode
			my @f = split ' ', $line;
			next unless $f[3] eq '0A' && $inodes{ $f[9] };
			$ports{ hex((split /:/, $f[1])[-1]) } = 1;
		}
		close($fh);
	}
	return sort { $a <=> $b } keys %ports;
}

# kill -9 of a whole node: the postmaster and every process it started,
# with no chance to shut anything down.
sub kill9
{
	my ($node) = @_;
	my @pids = node_pids($node);

	kill 'KILL', @pids;
	for (1 .. 100)
	{
		last unless grep { kill 0, $_ } @pids;
		usleep(100_000);
	}
	$node->_update_pid(-1);
}

# pgbench inserting single rows with random keys into a table of (k
# bigint, v text) through a node: clients for seconds.  Returns what
# finish_inserts takes.
sub start_inserts
{
	my ($node, $table, $clients, $seconds) = @_;
	my $script = "$PostgreSQL::Test::Utils::tmp_check/inserts_$table.sql";
	my %run = (out => '', err => '');

	open(my $fh, '>', $script) or die "cannot write $script: $!";
	print $fh "\\set k random(1, 1000000000000)\n"
	  . "INSERT INTO $table VALUES (:k, 'inserted meanwhile');\n";
	close($fh);
	$run{harness} = IPC::Run::start(
		[
			'pgbench', '-n', '-c', $clients, '-T', $seconds, '-f', $script,
			'-h', $node->host, '-p', $node->port, 'postgres'
		],
		'>', \$run{out}, '2>', \$run{err});
	return \%run;
}

# Wait for start_inserts' pgbench; returns (transactions written, failed).
sub finish_inserts
{
	my ($run) = @_;

	$run->{harness}->finish;
	my ($written) = $run->{out} =~ /number of transactions actually processed: (\d+)/;
	my ($failed) = $run->{out} =~ /number of failed transactions: (\d+)/;
	return ($written // 0, $failed // 0);
}

# Do the nodes hold identical rows of the table?
sub same_contents
{
	my ($table, @nodes) = @_;
	my @digests = map {
		$_->safe_psql('postgres', "SELECT kalam.table_digest('$table')")
	} @nodes;
	return scalar(grep { $_ eq $digests[0] } @digests) == scalar(@nodes);
}

1;
