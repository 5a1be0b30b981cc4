# Cancelling: pg_cancel_backend on a run_pipeline call interrupts a stalled
# S3 transfer promptly (the transfer checks for interrupts; the worker is
# stopped), and what was committed before stays committed; the next update
# ingests the rest exactly once.
use strict;
use warnings;

use IPC::Run ();
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use FaultS3;
use MedallionTest;

my $s3 = start_fault_s3();
my $node = start_node(
	'cancel',
	# a stalled transfer is not given up by itself during this test
	'medallion.s3_low_speed_time' => '300s',
	'medallion.allowed_endpoints' => $s3->{endpoint});
my $endpoint = $s3->{endpoint};

$s3->put_object('slow/a-1.json', qq({"n": 1}\n{"n": 2}\n));
$s3->put_object('slow/b-2.json', join('', map { qq({"n": $_}\n) } 1 .. 5000));
$s3->fault(kind => 'stall', op => 'get', key => 'slow/b-2.json', seconds => 120,
	count => 1);

$node->safe_psql(
	'postgres', qq{
	SELECT medallion.create_secret('stub', 'S3RVER', 'S3RVER');
	SELECT medallion.create_pipeline('slow');
	SELECT medallion.create_bronze('slow', 'bronze_slow', 's3://landing/slow/',
		secret_name => 'stub', endpoint => '$endpoint');
});

my ($out, $err) = ('', '');
my $run = IPC::Run::start(
	[
		'psql', '-X', '-At', '-d', $node->connstr('postgres'),
		'-c', q{SELECT * FROM medallion.run_pipeline('slow')}
	],
	'>', \$out, '2>', \$err);
ok( $node->poll_query_until(
		'postgres',
		q{SELECT count(*) = 1 FROM pg_stat_activity
		  WHERE backend_type = 'medallion update' AND query LIKE 'medallion: downloading %b-2.json'}),
	'the update is stuck in a stalled download');

my $started = time();
$node->safe_psql('postgres',
	q{SELECT pg_cancel_backend(pid) FROM pg_stat_activity
	  WHERE query LIKE '%run_pipeline(''slow'')%' AND backend_type = 'client backend'});
$run->finish;
my $elapsed = time() - $started;
like($err, qr/canceling statement due to user request/, 'run_pipeline is cancelled');
cmp_ok($elapsed, '<', 20, 'promptly, although the download had 120 s of stall to go');
ok( $node->poll_query_until(
		'postgres',
		q{SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'medallion update'}),
	'the update worker is gone');
is($node->safe_psql('postgres', 'SELECT count(*) FROM bronze_slow'),
	'2', 'the object committed before the cancel stays committed');

$s3->clear_faults;
is($node->safe_psql('postgres', q{SELECT sum(rows_written) FROM medallion.run_pipeline('slow')}),
	'5000', 'the next update ingests the rest');
is($node->safe_psql('postgres', 'SELECT count(*) - count(DISTINCT (_file_path, data)) FROM bronze_slow'),
	'0', 'exactly once');

done_testing();
