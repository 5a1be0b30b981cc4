# Fair workers: the slots of medallion.max_workers are shared between
# pipelines and roles.
#
# Covers: with max_workers = 2 held by two continuous pipelines of alice (one
# idle, one draining a backlog of 150 objects one per batch), bob's new
# continuous pipeline gets its first update within a few trigger intervals
# (the time is measured and printed); alice's backlog still drains; while
# every slot is held by a worker busy in an update, a due pipeline shows the
# state waiting in medallion.pipelines, writes a waiting event and a log line
# naming medallion.max_workers, and runs once a slot is free again.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use MedallionTest;
use FaultS3;

my $s3 = start_fault_s3();
my $endpoint = $s3->{endpoint};
my $node = start_node(
	'fair',
	'medallion.enable_workers' => 'on',
	'medallion.max_workers' => '2',
	'medallion.launcher_naptime' => '200ms',
	'medallion.allowed_endpoints' => $endpoint);

sub psql { return $node->safe_psql('postgres', $_[0]); }
sub as_role { return $node->safe_psql('postgres', $_[1], extra_params => [ '-U', $_[0] ]); }

sub state_of
{
	return psql(qq{SELECT state FROM medallion.pipelines WHERE pipeline_name = '$_[0]'});
}

psql(
	q{CREATE ROLE alice LOGIN;
	  CREATE ROLE bob LOGIN;
	  CREATE SCHEMA alice AUTHORIZATION alice;
	  CREATE SCHEMA bob AUTHORIZATION bob;});

# alice: a backlog of 150 objects, ingested one per batch, and an idle pipeline
$s3->put_object(sprintf('busy/f-%04d.json', $_), qq({"id": $_}\n)) for 1 .. 150;
as_role(
	'alice',
	qq{SELECT medallion.create_secret('alice_key', 'S3RVER', 'S3RVER');
	   BEGIN;
	   SELECT medallion.create_pipeline('a_busy', 'continuous', '1 s');
	   SELECT medallion.create_bronze('a_busy', 'alice.busy', 's3://landing/busy/',
	       secret_name => 'alice_key', endpoint => '$endpoint',
	       options => '{"max_files_per_batch": 1}');
	   SELECT medallion.create_pipeline('a_idle', 'continuous', '1 s');
	   SELECT medallion.create_bronze('a_idle', 'alice.idle', 's3://landing/idle/',
	       secret_name => 'alice_key', endpoint => '$endpoint');
	   COMMIT;});
ok( $node->poll_query_until(
		'postgres',
		q{SELECT count(DISTINCT application_name) = 2 FROM pg_stat_activity
		   WHERE backend_type = 'medallion worker'
		     AND application_name IN ('medallion worker: a_busy', 'medallion worker: a_idle')}),
	"alice's two pipelines hold the two worker slots");
my $busy_rows = psql('SELECT count(*) FROM alice.busy');
cmp_ok($busy_rows, "<", 150, "alice's backlog is still being drained ($busy_rows of 150 rows)");

# bob's pipeline gets its first update within a few trigger intervals
$s3->put_object('bob/f-0001.json', qq({"id": 1}\n{"id": 2}\n));
as_role(
	'bob',
	qq{SELECT medallion.create_secret('bob_key', 'S3RVER', 'S3RVER');
	   BEGIN;
	   SELECT medallion.create_pipeline('b_live', 'continuous', '1 s');
	   SELECT medallion.create_bronze('b_live', 'bob.live', 's3://landing/bob/',
	       secret_name => 'bob_key', endpoint => '$endpoint');
	   COMMIT;});
my $created = time();
my $first_update;
while (time() - $created < 60)
{
	if (psql(q{SELECT last_update_end IS NOT NULL FROM medallion.pipelines WHERE pipeline_name = 'b_live'})
		eq 't')
	{
		$first_update = time() - $created;
		last;
	}
	usleep(50_000);
}
ok(defined $first_update, "bob's continuous pipeline gets an update while alice's hold the slots");
$first_update //= 60;
# the same, measured in the server: from the creating transaction to the
# end of the first update
my $server_side = psql(
	q{SELECT round(extract(epoch FROM min(e.ts) - min(p.created_at))::numeric, 2)
	    FROM medallion.event_log e JOIN medallion.pipelines p USING (pipeline_name)
	   WHERE pipeline_name = 'b_live' AND event_type = 'update_end'});
note(sprintf("bob's first update came %.2f s after his pipeline was created (in the server: %s s)",
		$first_update, $server_side));
cmp_ok($first_update, '<', 5, 'within five trigger intervals (1 s each)');
cmp_ok($server_side, '<', 5, 'also measured in the server');
is(psql('SELECT count(*) FROM bob.live'), '2', "bob's first update ingested his object");

ok($node->poll_query_until('postgres', 'SELECT count(*) = 150 FROM alice.busy'),
	"alice's backlog still drains completely");
my $since = psql('SELECT clock_timestamp()');
ok( $node->poll_query_until(
		'postgres',
		qq{SELECT last_update_start > '$since' FROM medallion.pipelines WHERE pipeline_name = 'a_idle'}),
	"alice's idle pipeline keeps getting updates too");

# every slot busy in an update: a due pipeline waits, and says so
my $locker = $node->background_psql('postgres');
$locker->query_safe('BEGIN; LOCK TABLE alice.busy, bob.live IN SHARE MODE;');
$s3->put_object(sprintf('busy/g-%04d.json', $_), qq({"id": $_}\n)) for 1 .. 3;
$s3->put_object('bob/f-0002.json', qq({"id": 3}\n));
ok( $node->poll_query_until(
		'postgres',
		q{SELECT state = 'waiting' FROM medallion.pipelines WHERE pipeline_name = 'a_idle'}),
	'with both slots held by updates waiting on a lock, the idle pipeline shows waiting');
is(psql(q{SELECT count(*) FROM medallion.pipelines WHERE state = 'waiting'}),
	'1', 'and only that one: the pipelines that hold a slot are running');
ok( $node->poll_query_until(
		'postgres',
		q{SELECT count(*) > 0 FROM medallion.event_log
		   WHERE pipeline_name = 'a_idle' AND event_type = 'waiting'
		     AND message LIKE '%medallion.max_workers%'}),
	'a waiting event names medallion.max_workers');
like(psql(q{SELECT medallion.pipeline_report('a_idle')}), qr/WAITING/,
	'pipeline_report shows the state');
my $found_log = 0;
for (1 .. 100)
{
	$found_log = 1, last
	  if slurp_file($node->logfile) =~
	  /continuous pipeline "a_idle" is waiting for a worker slot.*\n.*DETAIL:.*medallion\.max_workers/;
	usleep(100_000);
}
ok($found_log, 'and a log line names the setting to raise');

$locker->query_safe('COMMIT;');
$locker->quit;
ok( $node->poll_query_until(
		'postgres',
		q{SELECT count(*) = 0 FROM medallion.pipelines WHERE state = 'waiting'}),
	'once the updates finish, nothing waits any more');
ok($node->poll_query_until('postgres', 'SELECT count(*) = 153 FROM alice.busy'),
	"alice's new objects arrive");
ok($node->poll_query_until('postgres', 'SELECT count(*) = 3 FROM bob.live'),
	"and bob's");
$since = psql('SELECT clock_timestamp()');
ok( $node->poll_query_until(
		'postgres',
		qq{SELECT last_update_start > '$since' FROM medallion.pipelines WHERE pipeline_name = 'a_idle'}),
	'the pipeline that waited runs again');

# medallion.max_workers_per_role = 1: while one of alice's updates is stuck,
# her other pipeline waits although bob's pipeline leaves a slot free
psql(q{ALTER SYSTEM SET medallion.max_workers_per_role = 1; SELECT pg_reload_conf();});
$locker = $node->background_psql('postgres');
$locker->query_safe('BEGIN; LOCK TABLE alice.busy, alice.idle IN SHARE MODE;');
$s3->put_object('busy/h-0001.json', qq({"id": 1}\n));
$s3->put_object('idle/h-0001.json', qq({"id": 1}\n));
ok( $node->poll_query_until(
		'postgres',
		q{SELECT count(*) = 1 FROM medallion.pipelines
		   WHERE state = 'waiting' AND owner = 'alice'::regrole AND pipeline_name LIKE 'a\_%'}),
	'with a cap of one worker per role, one of alice\'s pipelines waits while the other is stuck');
$since = psql('SELECT clock_timestamp()');
ok( $node->poll_query_until(
		'postgres',
		qq{SELECT last_update_start > '$since' FROM medallion.pipelines WHERE pipeline_name = 'b_live'}),
	"while bob's pipeline keeps running");
is( psql(
		q{SELECT count(*) FROM pg_stat_activity
		   WHERE backend_type = 'medallion worker' AND application_name LIKE 'medallion worker: a\_%'}),
	'1',
	'alice holds one worker');
$locker->query_safe('COMMIT;');
$locker->quit;
ok($node->poll_query_until('postgres', 'SELECT count(*) = 1 FROM alice.idle'),
	"alice's waiting pipeline runs once her other update is done");

done_testing();
