# Apply refuses a command that is not its group's own, alone and with the
# same verdict on every node, and the group goes on.  Crafted commands go
# in through the developer function kalam.debug_propose
# (kalam.debug_enable_hooks): a key of another group, the group's own
# metadata (table id 0), a prefix deletion with an empty key or naming no
# table, a meta key that is neither a DDL record nor a node address, a
# required meta index beyond any meta position (refused at apply) or
# beyond the leader's meta log (refused at proposal), an operation count
# that cannot fit, trailing bytes, expiries whose range leaves its table
# or is backwards, whose row limit is out of bounds or that share their
# command.  After each, a normal write commits, and at the end every node
# holds the same rows and nothing is parked.  A valid expiry deletes no
# more than its row limit and nothing outside its range.
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
	conf => "kalam.debug_enable_hooks = on\nkalam.leader_wait_timeout = 1000");

replicated_ddl(q{
	CREATE SCHEMA app;
	CREATE FOREIGN TABLE app.t (k int, v text)
	  SERVER kalam OPTIONS (type 'shared', primary_key 'k')}, @nodes);
my $table_id = $nodes[0]->safe_psql('postgres',
	"SELECT id FROM kalam.tables WHERE \"table\" = 'app.t'::regclass");

# the command format of src/codec/command.h, native (little endian) order
sub op
{
	my ($kind, $key, $value) = @_;
	$value //= '';
	return pack('C x3 V V x4 Q<', $kind, length($key), length($value), 0) . $key . $value;
}

sub command
{
	my (%c) = @_;
	my @ops = @{ $c{ops} };
	return pack('a C v V q< Q<', 'K', 1, 0, $c{nops} // scalar(@ops), 0,
		$c{required} // 0) . join('', @ops) . ($c{tail} // '');
}

my ($INSERT, $DELETE_PREFIX, $EXPIRE, $PUT) = (1, 5, 6, 7);
sub key { my ($group, $table, $rest) = @_; return pack('n N', $group, $table) . ($rest // ''); }
my $row_key = key(1, $table_id, pack('Q>', 7 ^ (1 << 63)));

my $next = 1;

# on the group's leader: a proposal that waits there for its deadline is
# not also timed out by a follower that forwarded it
sub propose
{
	my ($group, $bytes) = @_;
	my $hex = unpack('H*', $bytes);
	my $leader = group_leader($nodes[0], $group == 0 ? 'meta' : 'shared', @nodes);
	return $leader->safe_psql('postgres',
		"SELECT kalam.debug_propose($group, '\\x$hex')");
}

sub refused
{
	my ($group, $bytes, $expect, $name) = @_;
	like(propose($group, $bytes), $expect, $name);
	$nodes[0]->safe_psql('postgres', "INSERT INTO app.t VALUES ($next, 'ok')");
	$next++;
}

refused(1, command(ops => [ op($INSERT, key(2, $table_id, 'x'), 'v') ]),
	qr/^bad command: key outside the group of the command$/,
	'a key of another group is refused');
refused(1, command(ops => [ op($PUT, key(1, 0, 'applied_index'), pack('Q<', 1)) ]),
	qr/^bad command: key of the group's own metadata \(table id 0\)$/,
	'a write of the group\'s applied index is refused');
refused(1, command(ops => [ op($DELETE_PREFIX, '') ]),
	qr/^bad command: key outside the group of the command$/,
	'a prefix deletion with an empty key is refused');
refused(1, command(ops => [ op($DELETE_PREFIX, pack('n', 1)) ]),
	qr/^bad command: range deletion does not name a table$/,
	'a prefix deletion of a whole group is refused');
# an expiry's value: cut-off, row limit, reserved, then the range's end
sub expiry { my ($max_rows, $end) = @_; return pack('q< V V', 1 << 62, $max_rows, 0) . ($end // ''); }
refused(1, command(ops => [ op($EXPIRE, key(1, 0), expiry(100)) ]),
	qr/^bad command: range deletion of the group's own metadata/,
	'an expiry of the group\'s metadata is refused');
refused(1, command(ops => [ op($EXPIRE, key(1, $table_id), expiry(100, key(1, $table_id + 1))) ]),
	qr/^bad command: expire range ends outside its table$/,
	'an expiry whose range leaves its table is refused');
refused(1, command(ops => [ op($EXPIRE, key(1, $table_id, 'b'), expiry(100, key(1, $table_id, 'a'))) ]),
	qr/^bad command: expire range ends before it starts$/,
	'an expiry whose range ends before it starts is refused');
refused(1, command(ops => [ op($EXPIRE, key(1, $table_id), expiry(0)) ]),
	qr/^bad command: expire operation with a row limit out of range$/,
	'an expiry that may examine no row is refused');
refused(1, command(ops => [ op($EXPIRE, key(1, $table_id), expiry(20_001)) ]),
	qr/^bad command: expire operation with a row limit out of range$/,
	'an expiry that may examine more than 20000 rows is refused');
refused(1, command(ops => [ op($EXPIRE, key(1, $table_id), pack('q<', 1 << 62)) ]),
	qr/^bad command: expire operation without its cut-off and row limit$/,
	'an expiry in the format before bounded ranges is refused');
refused(1, command(ops => [ op($EXPIRE, key(1, $table_id), expiry(100)), op($INSERT, $row_key, 'v') ]),
	qr/^bad command: expire operation shares its command$/,
	'an expiry with another operation in its command is refused');
refused(0, command(ops => [ op($PUT, key(0, 0, 'applied_index'), pack('Q<', 1)) ]),
	qr/^bad command: key of the meta group that is neither a DDL record nor a node address$/,
	'a write of the meta group\'s applied index is refused');
refused(0, command(ops => [ op($PUT, key(0, $table_id, 'x'), 'v') ]),
	qr/^bad command: key of the meta group that is neither/,
	'a table row in the meta group is refused');
refused(1, command(ops => [ op($INSERT, $row_key, 'v') ], required => ~0),
	qr/^bad command: required meta index is beyond any meta group position$/,
	'a required meta index of 2^64 - 1 is refused at apply');
refused(1, command(ops => [ op($INSERT, $row_key, 'v') ], required => 1 << 40),
	qr/^bad command: the command requires meta group position 1099511627776, but the meta log of node \d+/,
	'a required meta index beyond the leader\'s meta log is refused');
refused(1, command(ops => [ op($INSERT, $row_key, 'v') ], nops => 0xFFFFFFFF),
	qr/^bad command: operation count exceeds what the command holds$/,
	'an operation count of 2^32 - 1 is refused');
refused(1, command(ops => [ op($INSERT, $row_key, 'v') ], tail => 'junk'),
	qr/^bad command: bytes follow the last operation of the command$/,
	'trailing bytes are refused');
refused(1, command(ops => [ op($INSERT, $row_key, 'v'), op($INSERT, key(2, $table_id, 'y'), 'v') ]),
	qr/^bad command: key outside the group of the command$/,
	'a command with one foreign key is refused whole');

is($nodes[0]->safe_psql('postgres', "SELECT count(*) FROM app.t WHERE k = 7 AND v <> 'ok'"),
	0, 'no refused operation wrote anything');
my $rows = $next - 1;
for my $node (@nodes)
{
	$node->poll_query_until('postgres', "SELECT count(*) = $rows FROM app.t")
	  or die 'rows did not reach ' . $node->name;
	is($node->safe_psql('postgres',
			'SELECT count(*) FROM kalam.groups WHERE parked_entries > 0'),
		0, 'nothing is parked on ' . $node->name);
}
ok(same_contents('app.t', @nodes), 'every node holds the same rows');

# a valid expiry examines at most its row limit of its range, in key order,
# on every node: of five rows all written before its cut-off, a limit of 2
# takes the first two, and the range [4, 5) takes 4 alone
replicated_ddl(q{
	CREATE FOREIGN TABLE app.x (k int, v text)
	  SERVER kalam OPTIONS (type 'shared', primary_key 'k')}, @nodes);
my $x_id = $nodes[0]->safe_psql('postgres',
	"SELECT id FROM kalam.tables WHERE \"table\" = 'app.x'::regclass");
$nodes[0]->safe_psql('postgres', "INSERT INTO app.x SELECT g, 'x' FROM generate_series(1, 5) g");
sub int_key { return key(1, $x_id, pack('Q>', $_[0] ^ (1 << 63))); }
is(propose(1, command(ops => [ op($EXPIRE, key(1, $x_id), expiry(2)) ])),
	'ok', 'an expiry of at most two rows of a table is applied');
is(propose(1, command(ops => [ op($EXPIRE, int_key(4), expiry(10, int_key(5))) ])),
	'ok', 'an expiry of a range is applied');
for my $node (@nodes)
{
	$node->poll_query_until('postgres',
		"SELECT string_agg(k::text, ',' ORDER BY k) = '3,5' FROM app.x")
	  or die 'the expiries did not leave rows 3 and 5 on ' . $node->name;
}
pass('an expiry deletes no more rows than its limit, and none outside its range');
ok(same_contents('app.x', @nodes), 'every node holds the same rows after the expiries');

# the meta group goes on too: DDL after its refused commands
$nodes[0]->safe_psql('postgres', q{
	CREATE FOREIGN TABLE app.t2 (k int, v text)
	  SERVER kalam OPTIONS (type 'shared', primary_key 'k')});
for my $node (@nodes)
{
	$node->poll_query_until('postgres', "SELECT to_regclass('app.t2') IS NOT NULL")
	  or die 'the CREATE after the refused meta commands did not reach ' . $node->name;
}
pass('DDL replicates after the refused meta commands');

# a restart reads the applied index that no command could overwrite
$nodes[1]->restart;
$nodes[0]->safe_psql('postgres', "INSERT INTO app.t VALUES ($next, 'ok')");
$nodes[1]->poll_query_until('postgres', "SELECT count(*) = $next FROM app.t")
  or die 'node2 did not catch up after its restart';
ok(same_contents('app.t', @nodes), 'every node holds the same rows after a restart');

done_testing();
