# The trust boundary between nodes: every Raft and forwarding port reads
# nothing from a peer that has not proved it holds the cluster's secret and
# is a node of kalam.peers.  Strangers sending garbage, truncated or huge
# frames, forged Raft messages, a replayed handshake, another cluster's
# secret or an unknown node id are refused, and the cluster goes on
# serving writes and reads with identical contents.  Idle connections
# cannot starve the forwarding port.  A node of a cluster without a secret
# (or with one that others may read) refuses to start, and a node that
# holds the wrong secret cannot take part until it holds the right one.
use strict;
use warnings;

use Digest::SHA qw(hmac_sha256);
use FindBin;
use lib $FindBin::RealBin;
use IO::Select;
use IO::Socket::INET;
use KalamCluster;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $secret = cluster_secret();
my @nodes = start_kalam_cluster(nodes => 3, shards => 2, secret => $secret);
my $ngroups = 4;
my ($raft_base) = $nodes[0]->safe_psql('postgres',
	"SHOW kalam.raft_address") =~ /:(\d+)$/;
my @ports = map { $raft_base + $_ } 0 .. $ngroups;    # groups, then forwarding
my $forward_port = $raft_base + $ngroups;

replicated_ddl(q{
	CREATE FOREIGN TABLE s (k int NOT NULL, v text)
	  SERVER kalam OPTIONS (type 'shared', primary_key 'k')}, @nodes);
my $next_key = 0;

# A write on every node (followers forward), then every node holds them all.
sub writes_work
{
	my ($what) = @_;
	for my $node (@nodes)
	{
		$next_key++;
		$node->safe_psql('postgres', "INSERT INTO s VALUES ($next_key, '$what')");
	}
	for my $node (@nodes)
	{
		$node->poll_query_until('postgres',
			"SELECT count(*) = $next_key FROM s")
		  or return 0;
	}
	return same_contents('s', @nodes);
}

# writes on nodes 1 and 2 only, then they hold the same rows
sub writes_work_on
{
	my ($n, $what) = @_;
	for my $node (@nodes[ 0 .. $n - 1 ])
	{
		$next_key++;
		$node->safe_psql('postgres', "INSERT INTO s VALUES ($next_key, '$what')");
	}
	for my $node (@nodes[ 0 .. $n - 1 ])
	{
		$node->poll_query_until('postgres', "SELECT count(*) = $next_key FROM s")
		  or return 0;
	}
	return same_contents('s', @nodes[ 0 .. $n - 1 ]);
}

# Does the node's log match within 15 s?
sub log_matches
{
	my ($node, $re) = @_;
	for (1 .. 150)
	{
		return 1 if slurp_file($node->logfile) =~ $re;
		usleep(100_000);
	}
	return 0;
}

sub terms
{
	return $nodes[0]->safe_psql('postgres',
		'SELECT string_agg(term::text, \',\' ORDER BY group_name) FROM kalam.groups');
}

sub connect_to
{
	my ($port) = @_;
	my $sock = IO::Socket::INET->new(
		PeerAddr => '127.0.0.1',
		PeerPort => $port,
		Proto => 'tcp');
	die "cannot connect to port $port: $!" unless $sock;
	return $sock;
}

# Read exactly $n bytes within 5 s; undef if the peer closed first.
sub read_exactly
{
	my ($sock, $n) = @_;
	my $buf = '';
	my $sel = IO::Select->new($sock);
	while (length($buf) < $n)
	{
		return undef unless $sel->can_read(7);
		my $got = sysread($sock, $buf, $n - length($buf), length($buf));
		return undef unless $got;
	}
	return $buf;
}

# Is the connection closed by the server (EOF or reset within 7 s)?
sub closed_by_server
{
	my ($sock) = @_;
	my $sel = IO::Select->new($sock);
	while ($sel->can_read(7))
	{
		my $got = sysread($sock, my $buf, 65536);
		return 1 unless $got;
	}
	return 0;
}

# The client half of kalam's handshake.  Returns the socket once the server
# proved itself, or undef if it refused (closed the connection); with
# $capture, the client's proof message too.
sub handshake
{
	my (%o) = @_;
	my $sock = connect_to($o{port});
	my $hello = read_exactly($sock, 40);
	die 'no server hello' unless defined $hello && substr($hello, 0, 8) eq 'KLMAUTH1';
	my $server_nonce = substr($hello, 8, 32);
	my $client_nonce = join('', map { chr(int(rand(256))) } 1 .. 32);
	my $proof = $o{replay} // 'KLMAUTH1' . pack('NN', $o{id}, $o{channel})
	  . $client_nonce
	  . hmac_sha256('kalam client' . $server_nonce . $client_nonce
		  . pack('NNN', $o{id}, $o{server}, $o{channel}), $o{secret});
	syswrite($sock, $proof);
	my $answer = read_exactly($sock, 32);
	return (undef, $proof) unless defined $answer;
	my $expected = hmac_sha256('kalam server' . $client_nonce . $server_nonce
		  . pack('NNN', $o{server}, $o{id}, $o{channel}), $o{secret});
	die 'the server answered with a wrong proof' unless $answer eq $expected;
	return ($sock, $proof);
}

# --- wrong credentials ------------------------------------------------------
my ($sock, $proof) = handshake(port => $forward_port, secret => 'another cluster secret',
	id => 2, server => 1, channel => 0xFFFF);
ok(!defined $sock, "another cluster's secret is refused");
($sock) = handshake(port => $forward_port, secret => $secret,
	id => 9, server => 1, channel => 0xFFFF);
ok(!defined $sock, 'a node id that is not in kalam.peers is refused');
($sock) = handshake(port => $raft_base, secret => $secret,
	id => 2, server => 1, channel => 0xFFFF);
ok(!defined $sock, 'a proof for the forwarding port does not open a Raft port');
($sock, $proof) = handshake(port => $forward_port, secret => $secret,
	id => 2, server => 1, channel => 0xFFFF);
ok(defined $sock, 'the right secret and node id are accepted');
my ($replayed) = handshake(port => $forward_port, secret => $secret, replay => $proof,
	id => 2, server => 1, channel => 0xFFFF);
ok(!defined $replayed, 'a recorded proof replayed on a new connection is refused');

# authenticated, the frames are still checked: a reply on a connection the
# peer opened, and a frame above the size limit, close it
{
	my $body = "\x02" . pack('Q<', 1) . ("\0" x 300);
	syswrite($sock, pack('V', length($body)) . $body);
	ok(closed_by_server($sock), 'a reply frame on a connection the peer opened closes it');
	($sock) = handshake(port => $forward_port, secret => $secret,
		id => 3, server => 1, channel => 0xFFFF);
	syswrite($sock, pack('V', 0xFFFFFFF0) . "\x01");
	ok(closed_by_server($sock), 'a frame above the size limit closes the connection');
}

# --- strangers -------------------------------------------------------------
my $terms_before = terms();
for my $port (@ports)
{
	my $sock = connect_to($port);
	syswrite($sock, join('', map { chr(int(rand(256))) } 1 .. 4096));
	ok(closed_by_server($sock), "garbage on port $port: connection closed");

	# a frame header announcing 4 GiB, as a forwarding frame or a Raft message
	$sock = connect_to($port);
	syswrite($sock, pack('V', 0xFFFFFFFF) . "\x01" . ("\xFF" x 80));
	ok(closed_by_server($sock), "huge length on port $port: closed");
}

# truncated handshakes, then silence: closed once the handshake times out
my @silent = map { connect_to($_) } @ports;
syswrite($_, "KLMAUTH1\0\0") for @silent;
ok(closed_by_server($silent[$_]), "truncated handshake on port $ports[$_]: closed after the timeout")
  for 0 .. $#silent;

# A forged RequestVote with term 10^9, as libraft encodes it: message type
# 2, then term, candidate id, last log index and term.  Unauthenticated,
# it is never decoded.
for my $port (@ports[ 0 .. $ngroups - 1 ])
{
	my $sock = connect_to($port);
	my $preamble = pack('Q<Q<Q<', 1, 2, 16) . "127.0.0.1:$port\0";
	my $vote = pack('Q<Q<', 2, 32) . pack('Q<Q<Q<Q<', 1_000_000_000, 2, 1000, 1000);
	syswrite($sock, $preamble . $vote);
	ok(closed_by_server($sock), "a forged RequestVote on port $port is refused");
}
is(terms(), $terms_before, 'no group took the forged term');

# forged forwarding frames (a request and a reply) without a handshake
{
	my $sock = connect_to($forward_port);
	my $body = "\x01" . pack('Q<', 1) . pack('v', 0) . ('K' x 64);
	syswrite($sock, pack('V', length($body)) . $body);
	$body = "\x02" . pack('Q<', 1) . ("\0" x 300);
	syswrite($sock, pack('V', length($body)) . $body);
	ok(closed_by_server($sock), 'forged forwarding frames without a handshake: closed');
}

ok(writes_work('after strangers'), 'the cluster still writes and reads, same rows on every node');
ok(log_matches($nodes[0],
		qr/refused a connection from 127\.0\.0\.1:\d+ to the forwarding port of node 1: wrong cluster secret/),
	'the refusal is logged with its reason');

# --- idle connections do not starve the forwarding port ---------------------
# The follower restarts, so that it must open a new connection to the
# leader while 80 strangers hold connections to the leader's port.
my $shared_leader = $nodes[0]->safe_psql('postgres',
	"SELECT leader_id FROM kalam.groups WHERE group_name = 'shared'");
my ($follower) = grep { $_->name ne "node$shared_leader" } @nodes;
my $leader = $nodes[ $shared_leader - 1 ];
my ($leader_raft) = $leader->safe_psql('postgres', 'SHOW kalam.raft_address') =~ /:(\d+)$/;
$follower->stop;
my @idle = map { connect_to($leader_raft + $ngroups) } 1 .. 80;
$follower->start;
$next_key++;
my $t0 = time();
$follower->safe_psql('postgres',
	"SET statement_timeout = '20s'; INSERT INTO s VALUES ($next_key, 'past idle connections')");
ok(time() - $t0 < 15, '80 idle connections on the leader\'s forwarding port do not stop a forwarded INSERT');
close($_) for @idle;

# --- a node with another secret, and nodes without a proper one -------------
$nodes[2]->stop;
write_secret($nodes[2], 'this is not the cluster secret at all');
$nodes[2]->start;
ok(writes_work_on(2, 'while node 3 holds another secret'), 'nodes 1 and 2 go on while node 3 holds another secret');
$nodes[2]->poll_query_until('postgres', q{SELECT count(*) = 0 FROM kalam.groups WHERE leader_id IS NOT NULL})
  or diag('node 3 knows a leader');
ok(log_matches($nodes[2], qr/could not authenticate to node \d at 127\.0\.0\.1:\d+/),
	'node 3 says it cannot authenticate');
is($nodes[2]->safe_psql('postgres', 'SELECT count(*) FROM kalam.groups WHERE leader_id IS NOT NULL'),
	0, 'node 3 follows no leader with the wrong secret');
$nodes[2]->stop;
write_secret($nodes[2], $secret);
$nodes[2]->start;
$nodes[2]->poll_query_until('postgres', "SELECT count(*) = $next_key FROM s")
  or die 'node 3 did not catch up';
ok(same_contents('s', @nodes), 'with the right secret node 3 rejoins and catches up');

my $lonely = PostgreSQL::Test::Cluster->new('no_secret');
$lonely->init;
my $lonely_raft = $raft_base + 20;
$lonely->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'kalam'
kalam.node_id = 1
kalam.raft_address = '127.0.0.1:$lonely_raft'
kalam.peers = '1\@127.0.0.1:$lonely_raft,2\@127.0.0.1:1'
});
ok(!$lonely->start(fail_ok => 1), 'a node of a cluster without kalam.cluster_secret_file does not start');
like(slurp_file($lonely->logfile), qr/kalam\.peers is set but kalam\.cluster_secret_file is not/,
	'and says what to set');
write_secret($lonely, $secret);
chmod(0644, $lonely->data_dir . '/kalam_secret');
$lonely->append_conf('postgresql.conf', "kalam.cluster_secret_file = 'kalam_secret'\n");
ok(!$lonely->start(fail_ok => 1), 'a secret file that others may read is refused');
like(slurp_file($lonely->logfile), qr/kalam\.cluster_secret_file "kalam_secret" may be read by others/,
	'and the message says why');

done_testing();
