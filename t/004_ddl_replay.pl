# Replicated DDL is replayed safely: CREATE, ALTER, RENAME, SET SCHEMA,
# DROP, GRANT and REVOKE on a kalam table reach every node, run as the
# table's owner or the role that ran them, on the table with the recorded
# id (not on a same-named table the statement names).  A
# replay that fails (a local table in the way, a missing role or privilege)
# is retried with backoff and shown in kalam.replay_state while the node's
# other work (writes, stream ttl purge) goes on and later DDL waits for it;
# once the cause is gone it runs, and kalam.replay_skip gives up on one that
# never will.  Records that can never run (a statement of another kind than
# recorded, several statements, a non-kalam table, malformed bytes) are
# refused: skipped and shown, and nothing of them runs.  REASSIGN OWNED
# reaches every node, and a kalam table dropped by DROP SCHEMA ... CASCADE
# or DROP OWNED BY is dropped everywhere (and DROP OWNED's revocations
# reach every node too).
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
	conf => "kalam.debug_ddl_records = on\nkalam.ttl_purge_interval = 1");

# what \d shows of a table: owner, columns, options
sub describe
{
	my ($node, $table) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT c.relowner::regrole || ' | ' ||
		       (SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod)
		                          || CASE WHEN attnotnull THEN ' not null' ELSE '' END,
		                          ', ' ORDER BY attnum)
		          FROM pg_attribute WHERE attrelid = c.oid AND attnum > 0 AND NOT attisdropped)
		       || ' | ' || array_to_string(ft.ftoptions, ',')
		  FROM pg_class c JOIN pg_foreign_table ft ON ft.ftrelid = c.oid
		 WHERE c.oid = '$table'::regclass});
}

sub wait_all
{
	my ($query, $what) = @_;
	for my $node (@nodes)
	{
		$node->poll_query_until('postgres', $query)
		  or die "$what did not reach " . $node->name;
	}
}

sub jobs_pid
{
	my ($node) = @_;
	return $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'kalam jobs'");
}

# roles are not replicated: alice exists everywhere and may create schemas
for my $node (@nodes)
{
	$node->safe_psql('postgres',
		'CREATE ROLE alice; GRANT CREATE ON DATABASE postgres TO alice');
}

# (1) CREATE, ALTER, RENAME, DROP as a plain role
my ($n1, $n2, $n3) = @nodes;
$n1->safe_psql('postgres', q{
	SET ROLE alice;
	CREATE SCHEMA app;
	CREATE FOREIGN TABLE app.t1 (k int NOT NULL, v text)
	  SERVER kalam OPTIONS (type 'shared', primary_key 'k');
	CREATE FOREIGN TABLE app.t2 (k int, v text)
	  SERVER kalam OPTIONS (type 'shared', primary_key 'k');
	CREATE FOREIGN TABLE app.t3 (k int, v text)
	  SERVER kalam OPTIONS (type 'shared', primary_key 'k');
	CREATE FOREIGN TABLE app.s (u int, seq int, payload text)
	  SERVER kalam OPTIONS (type 'stream', primary_key 'u, seq', ttl '3 seconds');
});
my $t1_id = $n1->safe_psql('postgres',
	"SELECT id FROM kalam.tables WHERE \"table\" = 'app.t1'::regclass");
wait_all("SELECT count(*) = 4 FROM kalam.tables WHERE \"table\"::text LIKE 'app.%'",
	'the CREATEs');
for my $node ($n2, $n3)
{
	is(describe($node, 'app.t1'), describe($n1, 'app.t1'),
		'a replayed CREATE gives the same table on ' . $node->name);
	is($node->safe_psql('postgres',
			"SELECT nspowner::regrole FROM pg_namespace WHERE nspname = 'app'"),
		'alice', 'the schema created by the replay belongs to the role that ran it on ' . $node->name);
}
like(describe($n2, 'app.t1'), qr/^alice \| .*table_id=$t1_id/,
	'owned by the role that created it, with the same table id');

$n2->safe_psql('postgres', q{
	SET ROLE alice;
	ALTER FOREIGN TABLE app.t1 ADD COLUMN note text;
	ALTER FOREIGN TABLE app.t1 RENAME COLUMN v TO val;
	ALTER TABLE app.t1 RENAME TO t1r;
	DROP FOREIGN TABLE app.t2, app.t3;
});
wait_all("SELECT to_regclass('app.t1r') IS NOT NULL AND to_regclass('app.t2') IS NULL"
	  . " AND to_regclass('app.t3') IS NULL", 'the ALTER, RENAME and DROP');
is(describe($_, 'app.t1r'), describe($n2, 'app.t1r'),
	'ALTER and RENAME give the same table on ' . $_->name) for ($n1, $n3);
like(describe($n1, 'app.t1r'), qr/k integer not null, val text, note text \| .*table_id=$t1_id/,
	'with the new column and the renamed one');
is($_->safe_psql('postgres', 'SELECT count(*) FROM kalam.replay_state'), 0,
	'nothing failed or was refused on ' . $_->name) for @nodes;

# (2) a local table in the way of a replicated CREATE, on a node that leads
# a user shard (its jobs worker purges that shard's stream rows)
my $blocked = group_leader($n1, 'user_0', @nodes);
my ($origin) = grep { $_ != $blocked } @nodes;
my $user;
for my $i (1 .. 100)
{
	next unless $n1->safe_psql('postgres', "SELECT kalam.group_for_user('user$i')") eq 'user_0';
	$user = "user$i";
	last;
}
my $jobs_pid = jobs_pid($blocked);
$blocked->safe_psql('postgres', 'CREATE TABLE public.clash (a int)');
$origin->safe_psql('postgres', q{
	CREATE FOREIGN TABLE public.clash (k int, v text)
	  SERVER kalam OPTIONS (type 'shared', primary_key 'k')});
my $clash_id = $origin->safe_psql('postgres',
	"SELECT id FROM kalam.tables WHERE \"table\" = 'public.clash'::regclass");
# a later DDL of the log waits for the failed one
$origin->safe_psql('postgres', 'ALTER FOREIGN TABLE app.t1r ADD COLUMN later text');

$blocked->poll_query_until('postgres', qq{
	SELECT attempts > 1 FROM kalam.replay_state
	 WHERE state = 'retrying' AND kind = 'create' AND table_id = $clash_id})
  or die 'the failing replay is not retried';
my $state = $blocked->safe_psql('postgres', q{
	SELECT origin || ' ' || role || ' ' || last_error || ' ' || (next_attempt > last_attempt)
	  FROM kalam.replay_state});
my $origin_id = $origin->name =~ s/node//r;
like($state, qr/^$origin_id \S+ relation "clash" already exists true$/,
	'kalam.replay_state shows the failing replay: origin, role, error, next attempt');
is($blocked->safe_psql('postgres',
		"SELECT count(*) FROM pg_attribute WHERE attrelid = 'app.t1r'::regclass AND attname = 'later'"),
	0, 'the later ALTER waits for it');

# the node's other work goes on
$blocked->safe_psql('postgres', "INSERT INTO app.t1r (k, val) VALUES (1, 'while blocked')");
$n1->poll_query_until('postgres', 'SELECT count(*) = 1 FROM app.t1r')
  or die 'the write on the blocked node did not reach node1';
pass('writes to other kalam tables go on on the blocked node');
$blocked->safe_psql('postgres', qq{
	SET kalam.as_user = '$user';
	INSERT INTO app.s SELECT 1, g, 'expires' FROM generate_series(1, 5) g});
isnt($blocked->safe_psql('postgres', "SELECT kalam.table_digest('app.s')"),
	$blocked->safe_psql('postgres', "SELECT md5('')"), 'stream rows are stored');
$blocked->poll_query_until('postgres', "SELECT kalam.table_digest('app.s') = md5('')")
  or die 'the expired stream rows were not purged';
is($blocked->safe_psql('postgres',
		"SELECT count(*) FROM kalam.replay_state WHERE state = 'retrying'"),
	1, 'the ttl purge goes on while the replay is retried');
is(jobs_pid($blocked), $jobs_pid, 'the jobs worker did not restart');

# the cause goes away: the replay runs, and the later ALTER after it
$blocked->safe_psql('postgres', 'DROP TABLE public.clash');
$blocked->poll_query_until('postgres', qq{
	SELECT count(*) = 1 FROM kalam.tables WHERE "table" = to_regclass('public.clash') AND id = $clash_id})
  or die 'the replay did not run once the conflict was gone';
$blocked->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_attribute WHERE attrelid = 'app.t1r'::regclass AND attname = 'later'")
  or die 'the later ALTER did not run';
is($blocked->safe_psql('postgres', 'SELECT count(*) FROM kalam.replay_state'), 0,
	'once it ran, kalam.replay_state is empty');
is(describe($blocked, 'public.clash'), describe($origin, 'public.clash'),
	'the table is the replicated one, with its table id');

# (3) crafted records, written on node 1 through the meta group's log
sub record_bytes
{
	my ($kind, $table_id, $schema, $statement, $version, $role) = @_;
	my $bytes = pack('a2 C C N', 'KD', $version // 1, $kind, $table_id);
	$bytes .= pack('N', length($_)) . $_ . "\0"
	  for ($role // 'postgres', '"$user", public', $schema, $statement);
	return $bytes;
}

sub put_record
{
	my ($bytes) = @_;
	$n1->safe_psql('postgres',
		"SELECT kalam.debug_put_ddl_record('\\x" . unpack('H*', $bytes) . "')");
}

my $kalam_create = q{CREATE FOREIGN TABLE pwned (k int) SERVER kalam OPTIONS (type 'shared', primary_key 'k')};
put_record(record_bytes(1, 9000001, 'public', 'CREATE TABLE pwned (a int)'));
put_record(record_bytes(1, 9000002, 'public', "$kalam_create; CREATE TABLE pwned2 (a int)"));
put_record(record_bytes(2, $t1_id, '', 'DROP FOREIGN TABLE app.t1r'));
put_record(record_bytes(1, 9000003, 'public', $kalam_create, 7));
put_record(record_bytes(1, 9000004, 'public', 'CREATE FOREIGN TABLE pwned ('));
put_record('garbage');
put_record(record_bytes(1, 9000005, 'public',
	q{CREATE FOREIGN TABLE pwned (k int) SERVER kalam OPTIONS (type 'shared', primary_key 'k', table_id '42')}));
# malformed: each check of the decoder
my $good = record_bytes(1, 9000007, 'public', $kalam_create);
put_record(record_bytes(9, 9000007, 'public', $kalam_create));
put_record(record_bytes(1, 0, 'public', $kalam_create));
put_record(substr($good, 0, -3));
put_record(substr($good, 0, -1) . 'X');
put_record(substr($good, 0, 8) . pack('N', 5) . "po\0es\0" . substr($good, 8 + 4 + 9));
put_record($good . "\0\0");
put_record(record_bytes(1, 9000007, '', $kalam_create));
$n1->safe_psql('postgres', q{
	CREATE FOREIGN TABLE app.after (k int) SERVER kalam OPTIONS (type 'shared', primary_key 'k')});
for my $node ($n2, $n3)
{
	$node->poll_query_until('postgres', "SELECT to_regclass('app.after') IS NOT NULL")
	  or die 'a DDL after refused records did not reach ' . $node->name;
	is($node->safe_psql('postgres', q{
			SELECT count(*) FROM pg_class WHERE relname IN ('pwned', 'pwned2')}),
		0, 'nothing of the crafted records ran on ' . $node->name);
	is($node->safe_psql('postgres', 'SELECT count(*) FROM kalam.tables WHERE "table"::text = \'app.t1r\''),
		1, 'a record whose statement is of another kind than recorded did not run on ' . $node->name);
	is($node->safe_psql('postgres', q{
			SELECT string_agg(coalesce(kind, '?') || ': ' || last_error, E'\n' ORDER BY position, record_key)
			  FROM kalam.replay_state WHERE state = 'skipped' AND attempts = 1}),
		join("\n",
			'create: the statement of a create record is not CREATE FOREIGN TABLE',
			'create: the record holds 2 statements, not one',
			'alter: the statement of an alter record is not ALTER TABLE or ALTER FOREIGN TABLE',
			'?: the record has an unknown format version',
			'create: syntax error at end of input',
			'?: the record is shorter than its header',
			'create: the statement\'s table_id option is not the record\'s table id',
			'?: the record has an unknown statement kind',
			'?: the record names no table id',
			'?: a string runs past the end of the record',
			'?: a string is not terminated where its length says',
			'?: a string is not terminated where its length says',
			'?: the record has bytes after its statement',
			'?: the record\'s schema does not fit its kind'),
		'kalam.replay_state shows each refused record as skipped on ' . $node->name);
	is($node->safe_psql('postgres', "SELECT count(*) FROM kalam.replay_state WHERE state <> 'skipped'"),
		0, 'and nothing waits on ' . $node->name);
}
# (4) a record that keeps failing (no table has its id) blocks the later
# DDL until an administrator skips it
put_record(record_bytes(2, 9000006, '', 'ALTER FOREIGN TABLE gone ADD COLUMN x int'));
$n1->safe_psql('postgres', q{
	CREATE FOREIGN TABLE app.after_skip (k int) SERVER kalam OPTIONS (type 'shared', primary_key 'k')});
for my $node ($n2, $n3)
{
	$node->poll_query_until('postgres', q{
		SELECT attempts > 1 FROM kalam.replay_state
		 WHERE state = 'retrying' AND table_id = 9000006
		   AND last_error = 'no kalam table has table id 9000006 on this node'})
	  or die 'the failing ALTER is not retried on ' . $node->name;
	is($node->safe_psql('postgres', "SELECT to_regclass('app.after_skip') IS NULL"), 't',
		'a DDL after it waits on ' . $node->name);
	is($node->safe_psql('postgres',
			"SELECT kalam.replay_skip(position) FROM kalam.replay_state WHERE state = 'retrying'"),
		't', 'kalam.replay_skip skips it on ' . $node->name);
	$node->poll_query_until('postgres', "SELECT to_regclass('app.after_skip') IS NOT NULL")
	  or die 'the DDL after a skipped record did not run on ' . $node->name;
	like($node->safe_psql('postgres',
			"SELECT state || ': ' || last_error FROM kalam.replay_state WHERE table_id = 9000006"),
		qr/^skipped: no kalam table has table id 9000006 on this node \(skipped by \S+\)$/,
		'and kalam.replay_state shows it skipped on ' . $node->name);
}

# (5) a CREATE runs as its recorded role: it waits until an administrator
# creates the role, and grants nothing that role lacks
put_record(record_bytes(1, 9000008, 'public',
	q{CREATE FOREIGN TABLE by_carol (k int) SERVER kalam OPTIONS (type 'shared', primary_key 'k')},
	1, 'carol'));
for my $node ($n2, $n3)
{
	$node->poll_query_until('postgres', q{
		SELECT last_error = 'role "carol" does not exist on this node'
		  FROM kalam.replay_state WHERE state = 'retrying' AND role = 'carol'})
	  or die 'a missing role does not show on ' . $node->name;
	$node->safe_psql('postgres', 'CREATE ROLE carol');
	$node->poll_query_until('postgres', q{
		SELECT last_error = 'permission denied for schema public'
		  FROM kalam.replay_state WHERE state = 'retrying' AND role = 'carol'})
	  or die 'the replay ran without the privilege on ' . $node->name;
	$node->safe_psql('postgres', 'GRANT CREATE ON SCHEMA public TO carol');
	$node->poll_query_until('postgres', q{
		SELECT count(*) = 1 FROM kalam.tables t JOIN pg_class c ON c.oid = t."table"
		 WHERE t.id = 9000008 AND c.relowner = 'carol'::regrole})
	  or die 'the CREATE did not run once the role could on ' . $node->name;
	pass('a CREATE waits for its role and its privilege, then runs as that role on ' . $node->name);
}

is($n1->safe_psql('postgres', "SELECT count(*) FROM pg_class WHERE relname IN ('pwned', 'pwned2')"),
	0, 'nor on the node that wrote them, which replays no record of its own');

ok($n2->log_contains(qr/WARNING:  kalam: refused the DDL record of node 1 at meta position \d+/),
	'a refused record is logged');

# (6) a change acts on the table with the recorded id, whatever the
# statement names: not on a same-named table in another schema
for my $node ($n2, $n3)
{
	$node->safe_psql('postgres', 'CREATE SCHEMA decoy; CREATE TABLE decoy.t1r (a int)');
}
put_record(record_bytes(3, $t1_id, '', 'ALTER TABLE decoy.t1r RENAME TO t1_by_id'));
for my $node ($n2, $n3)
{
	$node->poll_query_until('postgres', "SELECT to_regclass('app.t1_by_id') IS NOT NULL")
	  or die 'the rename by id did not run on ' . $node->name;
	is($node->safe_psql('postgres', qq{
			SELECT to_regclass('decoy.t1r') IS NOT NULL AND to_regclass('decoy.t1_by_id') IS NULL
			   AND (SELECT id FROM kalam.tables WHERE "table" = 'app.t1_by_id'::regclass) = $t1_id}),
		't', 'a rename acts on the kalam table by its id, not on a same-named table, on ' . $node->name);
}

# (7) privileges, owners and schemas follow the table: GRANT and REVOKE
# (by name, or on all the tables of a schema), ALTER ... OWNER TO and SET
# SCHEMA reach every node, on the kalam table only
for my $node (@nodes)
{
	$node->safe_psql('postgres', 'CREATE ROLE bob; CREATE ROLE dave; CREATE SCHEMA app2');
}
$n2->safe_psql('postgres', 'CREATE TABLE app.heap_local (a int)');
$n1->safe_psql('postgres', q{
	SET ROLE alice;
	CREATE FOREIGN TABLE app.g1 (k int, v text)
	  SERVER kalam OPTIONS (type 'shared', primary_key 'k');
	GRANT SELECT, INSERT ON app.g1 TO bob;
});
my $g1_id = $n1->safe_psql('postgres',
	"SELECT id FROM kalam.tables WHERE \"table\" = 'app.g1'::regclass");
$n1->safe_psql('postgres', 'GRANT SELECT ON ALL TABLES IN SCHEMA app TO dave');

# privileges of bob and dave on a table, as "SELECT,INSERT,UPDATE" flags
sub privileges
{
	my ($node, $table) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT string_agg(r || ':' || p || '=' || left(has_table_privilege(r, '$table', p)::text, 1), ' '
		                  ORDER BY r, p)
		  FROM unnest(ARRAY['bob', 'dave']) r, unnest(ARRAY['SELECT', 'INSERT', 'UPDATE']) p});
}
for my $node ($n2, $n3)
{
	$node->poll_query_until('postgres', "SELECT has_table_privilege('dave', 'app.g1', 'SELECT')")
	  or die 'the GRANTs did not reach ' . $node->name;
	is(privileges($node, 'app.g1'), privileges($n1, 'app.g1'),
		'GRANT by name and on all tables in schema give the same privileges on ' . $node->name);
	is($node->safe_psql('postgres', qq{
			SELECT grantor::regrole FROM pg_class, aclexplode(relacl)
			 WHERE oid = 'app.g1'::regclass AND grantee = 'bob'::regrole LIMIT 1}),
		'alice', 'granted by the role that granted it on ' . $node->name);
}
like(privileges($n2, 'app.g1'),
	qr/^bob:INSERT=t bob:SELECT=t bob:UPDATE=f dave:INSERT=f dave:SELECT=t dave:UPDATE=f$/,
	'bob may select and insert, dave select');
is(privileges($n2, 'app.heap_local'),
	'bob:INSERT=f bob:SELECT=f bob:UPDATE=f dave:INSERT=f dave:SELECT=f dave:UPDATE=f',
	'the GRANT on all tables in schema leaves a local table of the schema alone');

$n1->safe_psql('postgres', 'SET ROLE alice; REVOKE INSERT ON app.g1 FROM bob');
$n1->safe_psql('postgres', 'REVOKE ALL ON ALL TABLES IN SCHEMA app FROM dave');
for my $node ($n2, $n3)
{
	$node->poll_query_until('postgres', "SELECT NOT has_table_privilege('dave', 'app.g1', 'SELECT')")
	  or die 'the REVOKEs did not reach ' . $node->name;
	is(privileges($node, 'app.g1'),
		'bob:INSERT=f bob:SELECT=t bob:UPDATE=f dave:INSERT=f dave:SELECT=f dave:UPDATE=f',
		'REVOKE takes the privileges away on ' . $node->name);
}

# a record of a GRANT that names other tables too acts on its table only
put_record(record_bytes(5, $g1_id, '', 'GRANT UPDATE ON app.heap_local, app.g1 TO bob'));
$n1->safe_psql('postgres', q{
	ALTER FOREIGN TABLE app.g1 OWNER TO bob;
	ALTER FOREIGN TABLE app.g1 SET SCHEMA app2;
});
for my $node ($n2, $n3)
{
	$node->poll_query_until('postgres', "SELECT to_regclass('app2.g1') IS NOT NULL")
	  or die 'the SET SCHEMA did not reach ' . $node->name;
	is($node->safe_psql('postgres', qq{
			SELECT c.relowner::regrole || ' ' || t.id FROM kalam.tables t
			  JOIN pg_class c ON c.oid = t."table" WHERE t."table" = 'app2.g1'::regclass}),
		"bob $g1_id", 'ALTER ... OWNER TO and SET SCHEMA reach ' . $node->name);
	is($node->safe_psql('postgres', 'SELECT count(*) FROM kalam.replay_state WHERE table_id = ' . $g1_id),
		0, 'none of them failed on ' . $node->name);
}
is($n2->safe_psql('postgres', q{
		SELECT has_table_privilege('bob', 'app.heap_local', 'UPDATE')}),
	'f', 'a crafted GRANT record naming a local table does not touch it');

# (8) REASSIGN OWNED gives the kalam tables away on every node
$n1->safe_psql('postgres', 'REASSIGN OWNED BY bob TO alice');
for my $node ($n2, $n3)
{
	ok($node->poll_query_until('postgres',
			"SELECT relowner::regrole::text = 'alice' FROM pg_class WHERE oid = 'app2.g1'::regclass"),
		'REASSIGN OWNED reaches ' . $node->name);
}

# (9) a kalam table dropped by another statement than DROP FOREIGN TABLE
# (DROP SCHEMA ... CASCADE, DROP OWNED BY) is dropped on every node, not
# only its rows (they went with the dropping transaction everywhere), and
# DROP OWNED BY revokes the role's privileges on the others everywhere
$n1->safe_psql('postgres', q{
	SET ROLE alice;
	CREATE SCHEMA app3;
	CREATE FOREIGN TABLE app3.d1 (k int, v text)
	  SERVER kalam OPTIONS (type 'shared', primary_key 'k');
	CREATE FOREIGN TABLE app3.d2 (k int, v text)
	  SERVER kalam OPTIONS (type 'shared', primary_key 'k');
	INSERT INTO app3.d1 VALUES (1, 'one');
	CREATE FOREIGN TABLE app.o1 (k int, v text)
	  SERVER kalam OPTIONS (type 'shared', primary_key 'k');
	RESET ROLE;
	ALTER FOREIGN TABLE app.o1 OWNER TO dave;
	GRANT SELECT ON app2.g1 TO dave;
});
# the replayed DROP runs as the table's owner, who needs to reach it
$_->safe_psql('postgres', 'GRANT USAGE ON SCHEMA app TO dave') for @nodes;
wait_all("SELECT to_regclass('app3.d2') IS NOT NULL AND "
	  . "(SELECT relowner::regrole::text = 'dave' FROM pg_class WHERE oid = to_regclass('app.o1'))"
	  . " AND has_table_privilege('dave', 'app2.g1', 'SELECT')",
	'the tables to drop');
my $dropped_ids = $n1->safe_psql('postgres', q{
	SELECT string_agg(id::text, ',') FROM kalam.tables
	 WHERE "table" IN ('app3.d1'::regclass, 'app3.d2'::regclass, 'app.o1'::regclass)});
$n1->safe_psql('postgres', 'SET ROLE alice; DROP SCHEMA app3 CASCADE');
$n2->safe_psql('postgres', 'DROP OWNED BY dave');
for my $node (@nodes)
{
	ok($node->poll_query_until('postgres',
			"SELECT to_regclass('app3.d1') IS NULL AND to_regclass('app3.d2') IS NULL"
			  . " AND to_regclass('app.o1') IS NULL"),
		'DROP SCHEMA ... CASCADE and DROP OWNED BY drop the kalam tables on ' . $node->name);
	ok($node->poll_query_until('postgres', "SELECT NOT has_table_privilege('dave', 'app2.g1', 'SELECT')"),
		'DROP OWNED BY takes the role\'s privileges on the others away on ' . $node->name);
	is($node->safe_psql('postgres',
			"SELECT count(*) FROM kalam.replay_state WHERE table_id IN ($dropped_ids)"),
		0, 'nothing of them failed on ' . $node->name);
}
like(slurp_file($n3->logfile), qr/\(drop, table id \d+\): DROP FOREIGN TABLE app3\.d1 CASCADE\n/,
	'the record of a table that DROP SCHEMA ... CASCADE dropped is a DROP FOREIGN TABLE ... CASCADE');
like(slurp_file($n3->logfile), qr/\(drop, table id \d+\): DROP FOREIGN TABLE app\.o1\n/,
	'and of one that DROP OWNED BY dropped, with its RESTRICT');

# the developer function is refused where the setting is off
my ($ret, $out, $err) = $n1->psql('postgres', q{
	SET ROLE alice; SELECT kalam.debug_put_ddl_record('\x00')});
like($err, qr/permission denied for function debug_put_ddl_record/,
	'kalam.debug_put_ddl_record is for superusers only');

done_testing();
