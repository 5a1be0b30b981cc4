# A triggered update processes all available data (Trigger.AvailableNow):
# one run_pipeline call ingests, batch after batch of max_files_per_batch,
# every object listed as new when the update started, and the flows
# downstream process each batch; the result rows sum over the batches and
# each batch has its flow_progress event.
#
# Covers: 25 objects with max_files_per_batch = 10 in one call (three
# batches, silver gets everything); objects uploaded while the update runs
# wait for the next call; progress (objects done / total) is visible in
# medallion.pipelines while the update runs; a cancel in the middle keeps
# the committed batch and the next call continues exactly once; the opt-in
# cap max_batches_per_update.  The update is held in its silver step by an
# advisory lock the test holds (no fixed sleeps: the test polls).
use strict;
use warnings;

use File::Temp qw(tempdir);
use IPC::Run ();
use PostgreSQL::Test::Utils;
use Test::More;
use MedallionTest;

my $s3 = start_s3(buckets => ['landing']);
my $node = start_node('available_now',
	'medallion.allowed_endpoints' => $s3->{endpoint});
my $endpoint = $s3->{endpoint};
my $work = tempdir(CLEANUP => 1);

sub psql { return $node->safe_psql('postgres', $_[0]); }

# Upload objects $prefix/o-NNNN.json, numbers $first .. $last, two records
# each (ids 2n and 2n + 1), with one AWS CLI call.
sub upload_objects
{
	my ($prefix, $first, $last) = @_;
	my $dir = "$work/$prefix-$first";
	mkdir $dir or die "mkdir $dir: $!";
	for my $n ($first .. $last)
	{
		open my $fh, '>', sprintf('%s/o-%04d.json', $dir, $n) or die;
		printf $fh qq({"id": %d}\n{"id": %d}\n), 2 * $n, 2 * $n + 1;
		close $fh;
	}
	aws_cli($s3, 's3', 'cp', $dir, "s3://landing/$prefix/", '--recursive',
		'--only-show-errors');
}

# A session holding advisory lock 4242 until it is terminated: the silver
# flow's gate() waits for it.
sub hold_gate
{
	my $gate = IPC::Run::start(
		[
			'psql', '-X', '-At', '-d',
			$node->connstr('postgres') . ' application_name=gate',
			'-c', 'SELECT pg_advisory_lock(4242), pg_sleep(600)'
		],
		'>', \my $out, '2>', \my $err);
	$node->poll_query_until('postgres',
		q{SELECT count(*) = 1 FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242 AND granted})
	  or die 'the gate session did not take its lock';
	return $gate;
}

sub release_gate
{
	my ($gate) = @_;
	psql(q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'gate'});
	$gate->finish;
}

sub start_run
{
	my ($out, $err) = ('', '');
	my $run = IPC::Run::start(
		[
			'psql', '-X', '-At', '-d', $node->connstr('postgres'),
			'-c', q{SELECT flow_type, rows_written FROM medallion.run_pipeline('an') ORDER BY 1}
		],
		'>', \$out, '2>', \$err);
	return ($run, \$out, \$err);
}

# the update waits at the gate: its first batch is committed
sub update_waits_at_gate
{
	return $node->poll_query_until('postgres',
		q{SELECT count(*) = 1 FROM pg_locks l JOIN pg_stat_activity a USING (pid)
		   WHERE l.locktype = 'advisory' AND l.objid = 4242 AND NOT l.granted
		     AND a.backend_type = 'medallion update'});
}

sub objects_in { return psql("SELECT count(DISTINCT _file_path) FROM $_[0]"); }

psql(
	qq{CREATE FUNCTION gate(bigint) RETURNS boolean LANGUAGE plpgsql
	       AS \$f\$ BEGIN PERFORM pg_advisory_xact_lock_shared(4242); RETURN true; END \$f\$;
	   SELECT medallion.create_secret('s3rver', 'S3RVER', 'S3RVER');
	   SELECT medallion.create_pipeline('an');
	   SELECT medallion.create_bronze('an', 'bronze_an', 's3://landing/an/',
	       secret_name => 's3rver', endpoint => '$endpoint',
	       options => '{"max_files_per_batch": 10}');
	   SELECT medallion.create_silver('an', 'silver_an',
	       \$q\$SELECT (data->>'id')::int AS id FROM bronze_an WHERE gate(_row_id)\$q\$);});

# ---------------------------------------------- all of it, in three batches
upload_objects('an', 1, 25);
is( psql(q{SELECT string_agg(flow_type || '=' || rows_written, ',' ORDER BY flow_type)
	          FROM medallion.run_pipeline('an')}),
	'bronze=50,silver=50',
	'one call ingests all 25 objects (50 rows), one result row per flow summing the batches');
is(objects_in('bronze_an'), '25', 'bronze has the 25 objects');
is(psql('SELECT count(*) FROM silver_an'), '50', 'silver downstream has all their rows');
is( psql(
		q{SELECT string_agg(details->>'objects_ingested', ',' ORDER BY id)
		    FROM medallion.event_log
		   WHERE flow_name = 'public.bronze_an' AND event_type = 'flow_progress'
		     AND update_id = (SELECT max(update_id) FROM medallion.event_log WHERE pipeline_name = 'an')}),
	'10,10,5',
	'three batches, one flow_progress event each');
is( psql(
		q{SELECT count(*) FROM medallion.event_log
		   WHERE flow_name = 'public.silver_an' AND event_type = 'flow_progress'
		     AND (details->>'rows_written')::int > 0
		     AND update_id = (SELECT max(update_id) FROM medallion.event_log WHERE pipeline_name = 'an')}),
	'3',
	'silver processed each batch in its own step');
is( psql(
		q{SELECT update_objects_done || '/' || update_objects_total || ' backlog ' || backlog_objects
		    FROM medallion.pipelines WHERE pipeline_name = 'an'}),
	'25/25 backlog 0',
	'medallion.pipelines shows the update done');

# ------------------------- objects arriving during the update wait, progress
upload_objects('an', 26, 50);
my $gate = hold_gate();
my ($run, $out, $err) = start_run();
ok(update_waits_at_gate(), 'the update waits at the gate after its first batch');
is( psql(
		q{SELECT state || ' ' || update_objects_done || '/' || update_objects_total
		    FROM medallion.pipelines WHERE pipeline_name = 'an'}),
	'running 10/25',
	'a running update shows its progress: objects done / total');
upload_objects('an', 51, 55);
release_gate($gate);
$run->finish;
$$out =~ s/\s+\z//;
is($$out, "bronze|50\nsilver|50", 'the update ingests the 25 objects listed at its start')
  or diag($$err);
is(objects_in('bronze_an'), '50', 'the 5 objects uploaded during the update are not ingested');
is( psql(q{SELECT rows_written FROM medallion.run_pipeline('an') WHERE flow_type = 'bronze'}),
	'10', 'the next call ingests them');
is(objects_in('bronze_an'), '55', 'all 55 objects are in bronze');

# ------------------------------------------ a cancel keeps committed batches
upload_objects('an', 56, 80);
$gate = hold_gate();
($run, $out, $err) = start_run();
ok(update_waits_at_gate(), 'the next update waits at the gate after its first batch');
psql(
	q{SELECT pg_cancel_backend(pid) FROM pg_stat_activity
	  WHERE query LIKE '%run_pipeline(''an'')%' AND backend_type = 'client backend'});
$run->finish;
like($$err, qr/canceling statement due to user request/, 'run_pipeline is cancelled');
ok( $node->poll_query_until('postgres',
		q{SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'medallion update'}),
	'the update worker is gone');
release_gate($gate);
is(objects_in('bronze_an'), '65', 'the batch committed before the cancel stays committed');
is( psql(q{SELECT string_agg(flow_type || '=' || rows_written, ',' ORDER BY flow_type)
	          FROM medallion.run_pipeline('an')}),
	'bronze=30,silver=50',
	'the next call ingests the 15 other objects, silver catches up with all 25');
is( psql(
		q{SELECT count(*) || ' ' || count(DISTINCT id) || ' ' || min(id) || ' ' || max(id)
		    FROM silver_an}),
	'160 160 2 161',
	'exactly once, bronze to silver');

# -------------------------------------------------------- the opt-in cap
psql(
	qq{SELECT medallion.create_pipeline('capped');
	   SELECT medallion.create_bronze('capped', 'bronze_capped', 's3://landing/cap/',
	       secret_name => 's3rver', endpoint => '$endpoint',
	       options => '{"max_files_per_batch": 10, "max_batches_per_update": 2}');});
upload_objects('cap', 1, 25);
is(psql(q{SELECT rows_written FROM medallion.run_pipeline('capped')}),
	'40', 'max_batches_per_update = 2 caps an update at two batches (20 objects)');
is( psql(q{SELECT backlog_objects FROM medallion.pipelines WHERE pipeline_name = 'capped'}),
	'5', 'the rest is reported as backlog');
is(psql(q{SELECT rows_written FROM medallion.run_pipeline('capped')}),
	'10', 'the next update ingests the rest');

done_testing();
