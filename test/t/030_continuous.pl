# Continuous mode: the launcher, the schedulers and the pipeline workers run
# pipelines by themselves.
#
# Covers: files uploaded with the AWS CLI reach bronze with nobody calling
# run_pipeline; stop_pipeline stops, start_pipeline resumes; a backlog is
# drained back to back; a transient failure (S3 down) is retried with
# backoff while the pipeline stays running; a data error (wrong secret) fails
# only its own pipeline while another database's pipeline keeps ingesting;
# the worker killed with SIGKILL and the server restarted with -m immediate
# resume with exactly the expected rows; DROP EXTENSION makes the workers
# go away; workers are visible in pg_stat_activity.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use MedallionTest;

my $s3 = start_s3(buckets => ['landing']);
my $node = start_node(
	'continuous',
	'medallion.enable_workers' => 'on',
	'restart_after_crash' => 'on',
	'medallion.launcher_naptime' => '200ms',
	'medallion.s3_max_attempts' => '1',
	'medallion.s3_connect_timeout' => '1s');
my $endpoint = $s3->{endpoint};

sub psql { return $node->safe_psql($_[1] // 'postgres', $_[0]); }

sub records
{
	my ($first, $count) = @_;
	return join('', map { qq({"id": $_}\n) } $first .. $first + $count - 1);
}

psql(
	qq{SELECT medallion.create_secret('s3rver', 'S3RVER', 'S3RVER');
	   SELECT medallion.create_pipeline('live', 'continuous', '300 ms');
	   SELECT medallion.create_bronze('live', 'bronze_live', 's3://landing/live/',
	       secret_name => 's3rver', endpoint => '$endpoint');});

ok( $node->poll_query_until(
		'postgres',
		q{SELECT count(*) = 1 FROM pg_stat_activity
		  WHERE backend_type = 'medallion worker' AND application_name = 'medallion worker: live'}),
	'a worker runs the continuous pipeline, visible in pg_stat_activity');
is( psql(
		q{SELECT count(*) FROM pg_stat_activity WHERE backend_type IN ('medallion launcher', 'medallion scheduler')}),
	'2',
	'one launcher and one scheduler (database postgres)');

s3_upload_string($s3, records(1, 10), 'live/f-0001.json');
ok($node->poll_query_until('postgres', 'SELECT count(*) = 10 FROM bronze_live'),
	'an uploaded file reaches bronze without anyone running anything');

# stop: nothing moves; start: the rows arrive
psql(q{SELECT medallion.stop_pipeline('live')});
ok( $node->poll_query_until(
		'postgres',
		q{SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'medallion worker'}),
	'the worker leaves when its pipeline is stopped');
s3_upload_string($s3, records(11, 5), 'live/f-0002.json');
usleep(1_500_000);    # five trigger intervals
is(psql('SELECT count(*) FROM bronze_live'), '10', 'a stopped pipeline ingests nothing');
psql(q{SELECT medallion.start_pipeline('live')});
ok($node->poll_query_until('postgres', 'SELECT count(*) = 15 FROM bronze_live'),
	'after start_pipeline the rows arrive');

# a backlog is drained back to back, not one batch per interval
psql(
	qq{SELECT medallion.create_pipeline('burst', 'continuous', '5 s');
	   SELECT medallion.create_bronze('burst', 'bronze_burst', 's3://landing/burst/',
	       secret_name => 's3rver', endpoint => '$endpoint',
	       options => '{"max_files_per_batch": 5}');});
ok($node->poll_query_until('postgres',
		q{SELECT count(*) > 0 FROM medallion.pipelines WHERE pipeline_name = 'burst' AND last_update_end IS NOT NULL}),
	'the burst pipeline ran once');
my $burst_dir = PostgreSQL::Test::Utils::tempdir();
for my $n (1 .. 30)
{
	open my $fh, '>', sprintf('%s/b-%04d.json', $burst_dir, $n) or die;
	print $fh records($n * 100, 2);
	close $fh;
}
aws_cli($s3, 's3', 'cp', $burst_dir, 's3://landing/burst/', '--recursive', '--only-show-errors');
ok($node->poll_query_until('postgres', 'SELECT count(*) = 60 FROM bronze_burst'),
	'a burst of 30 files is ingested');
is( psql(
		q{WITH u AS (SELECT update_id, min(ts) FILTER (WHERE event_type = 'update_start') AS started,
		                    max(ts) FILTER (WHERE event_type = 'update_end') AS ended
		               FROM medallion.event_log WHERE pipeline_name = 'burst' GROUP BY update_id),
		      busy AS (SELECT u.*, lag(ended) OVER (ORDER BY update_id) AS previous_end FROM u
		                WHERE update_id IN (SELECT update_id FROM medallion.event_log
		                                     WHERE pipeline_name = 'burst' AND event_type = 'flow_progress'
		                                       AND (details->>'rows_written')::int > 0))
		 SELECT count(*) FILTER (WHERE started - previous_end < interval '2 s') >= 5 FROM busy}),
	't',
	'the six batches ran back to back, not one per 5-second interval');

# transient failure: S3 down; retried with backoff while the pipeline stays running
$s3->stop;
ok( $node->poll_query_until(
		'postgres',
		q{SELECT count(*) >= 2 FROM medallion.event_log WHERE pipeline_name = 'live' AND event_type = 'retry'}),
	'S3 unreachable: retry events are logged');
is(psql(q{SELECT state FROM medallion.pipelines WHERE pipeline_name = 'live'}),
	'running', 'a transient error keeps the pipeline running');
like(psql(q{SELECT last_error FROM medallion.pipelines WHERE pipeline_name = 'live'}),
	qr/could not (connect|list)/i, 'and records the error');
$s3->start;
s3_upload_string($s3, records(16, 5), 'live/f-0003.json');
ok($node->poll_query_until('postgres', 'SELECT count(*) = 20 FROM bronze_live'),
	'once S3 is back the pipeline catches up by itself');
ok( $node->poll_query_until(
		'postgres',
		q{SELECT consecutive_failures = 0 AND last_error IS NULL FROM medallion.pipelines WHERE pipeline_name = 'live'}),
	'and the failure count is reset');

# two databases at once; a wrong secret fails only its own pipeline
psql('CREATE DATABASE other');
psql(
	qq{CREATE EXTENSION medallion;
	   SELECT medallion.create_secret('wrong', 'S3RVER', 'not-the-secret');
	   SELECT medallion.create_pipeline('bad', 'continuous', '300 ms');
	   SELECT medallion.create_bronze('bad', 'bronze_bad', 's3://landing/live/',
	       secret_name => 'wrong', endpoint => '$endpoint');
	   SELECT medallion.create_secret('s3rver', 'S3RVER', 'S3RVER');
	   SELECT medallion.create_pipeline('good', 'continuous', '300 ms');
	   SELECT medallion.create_bronze('good', 'bronze_good', 's3://landing/live/',
	       secret_name => 's3rver', endpoint => '$endpoint');},
	'other');
ok( $node->poll_query_until(
		'other', q{SELECT state = 'failed' FROM medallion.pipelines WHERE pipeline_name = 'bad'}),
	'the pipeline with a wrong secret fails');
like(psql(q{SELECT last_error FROM medallion.pipelines WHERE pipeline_name = 'bad'}, 'other'),
	qr/SignatureDoesNotMatch/, 'with a clear last_error');
ok($node->poll_query_until('other', 'SELECT count(*) = 20 FROM bronze_good'),
	'the other pipeline of that database ingests');
s3_upload_string($s3, records(21, 5), 'live/f-0004.json');
ok($node->poll_query_until('postgres', 'SELECT count(*) = 25 FROM bronze_live'),
	'and the pipeline of database postgres keeps ingesting');
ok($node->poll_query_until('other', 'SELECT count(*) = 25 FROM bronze_good'),
	'both databases run at the same time');
is( psql(
		q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'medallion worker' AND datname = 'other'}),
	'1',
	'a failed pipeline has no worker');

# SIGKILL the worker in the middle of an ingestion
my $big = join('', map { qq({"id": $_, "padding": ") . ('y' x 300) . qq("}\n) } 1 .. 200_000);
s3_upload_string($s3, $big, 'live/f-0005-big.json');
my $pid = '';
for (1 .. 1000)
{
	$pid = psql(
		q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'medallion worker'
		  AND datname = 'postgres' AND application_name = 'medallion worker: live'
		  AND query LIKE 'medallion: ingesting %big%'});
	last if $pid ne '';
	usleep(10_000);
}
isnt($pid, '', 'caught the worker while it ingests the big object');
kill 'KILL', $pid if $pid ne '';
$node->poll_query_until('postgres', 'SELECT true');
ok($node->poll_query_until('postgres', 'SELECT count(*) = 200025 FROM bronze_live'),
	'after the crash the worker comes back and resumes');
is(psql('SELECT count(*) - count(DISTINCT data) FROM bronze_live'),
	'0', 'no record is duplicated');

# restart -m immediate
s3_upload_string($s3, records(30, 7), 'live/f-0006.json');
$node->stop('immediate');
$node->start;
ok($node->poll_query_until('postgres', 'SELECT count(*) = 200032 FROM bronze_live'),
	'after an immediate restart the workers come back by themselves');
is(psql('SELECT count(*) - count(DISTINCT data) FROM bronze_live'),
	'0', 'still no duplicate');

# DROP EXTENSION: the workers of that database go away
psql('DROP EXTENSION medallion CASCADE', 'other');
ok( $node->poll_query_until(
		'postgres',
		q{SELECT count(*) = 0 FROM pg_stat_activity WHERE datname = 'other' AND backend_type LIKE 'medallion%'}),
	'after DROP EXTENSION no medallion worker remains in that database');
psql('DROP DATABASE other');

# medallion.enable_workers = off stops everything
$node->append_conf('postgresql.conf', 'medallion.enable_workers = off');
$node->reload;
ok( $node->poll_query_until(
		'postgres',
		q{SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type IN ('medallion worker', 'medallion scheduler')}),
	'with enable_workers off the workers stop (SIGHUP reload)');

done_testing();
