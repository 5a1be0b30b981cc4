# Launcher restart: whatever ends the launcher, a scheduler or a worker,
# continuous mode converges to one scheduler per database and one worker
# per running pipeline, and no slot of medallion.max_workers leaks.
#
# Covers: pg_terminate_backend of the launcher (it comes back and starts no
# second scheduler or worker), of a scheduler (its successor adopts the live
# workers instead of starting duplicates), and of a worker; SIGKILL of a
# worker (crash restart); pipelines keep ingesting after each; creating,
# stopping and terminating many pipelines leaves every slot usable; a
# database with medallion but no continuous pipeline can be a template; DROP
# DATABASE of a database with a running pipeline succeeds without FORCE.
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
	'restart',
	'medallion.enable_workers' => 'on',
	'medallion.max_workers' => '4',
	'medallion.launcher_naptime' => '200ms',
	'restart_after_crash' => 'on');

sub psql { return $node->safe_psql($_[1] // 'postgres', $_[0]); }

sub create_pipeline
{
	my ($name, $db) = @_;
	psql(
		qq{SELECT medallion.create_secret('key_$name', 'S3RVER', 'S3RVER');
		   BEGIN;
		   SELECT medallion.create_pipeline('$name', 'continuous', '300 ms');
		   SELECT medallion.create_bronze('$name', 'bronze_$name', 's3://landing/$name/',
		       secret_name => 'key_$name', endpoint => '$endpoint');
		   COMMIT;},
		$db);
}

# schedulers and workers, as "database:type:application_name", sorted
my $topology_sql = q{SELECT string_agg(datname || ':' || backend_type || ':' || application_name, ','
                                       ORDER BY datname, backend_type, application_name)
                       FROM pg_stat_activity
                      WHERE backend_type IN ('medallion scheduler', 'medallion worker')};
my $expected = join(',',
	'other:medallion scheduler:medallion scheduler',
	'other:medallion worker:medallion worker: p3',
	'postgres:medallion scheduler:medallion scheduler',
	'postgres:medallion worker:medallion worker: p1',
	'postgres:medallion worker:medallion worker: p2');

# Wait until the topology is the expected one, then see that it stays so
# for a while (a duplicate started by a restarted process would show).
sub converges
{
	my ($name) = @_;
	my $reached = $node->poll_query_until('postgres', "SELECT ($topology_sql) = '$expected'");
	my $stable = 1;
	my $seen = '';
	if ($reached)
	{
		my $start = time();
		while (time() - $start < 3)
		{
			$seen = psql($topology_sql);
			if ($seen ne $expected)
			{
				$stable = 0;
				last;
			}
			usleep(100_000);
		}
	}
	ok($reached && $stable, "$name: one scheduler per database, one worker per pipeline")
	  or diag("seen: " . psql($topology_sql));
}

my $rows = 0;
sub ingests
{
	my ($name) = @_;
	$rows++;
	$s3->put_object("p1/r-$rows.json", qq({"id": $rows}\n));
	ok($node->poll_query_until('postgres', "SELECT count(*) = $rows FROM bronze_p1"),
		"$name: the pipelines keep ingesting");
}

sub pid_of
{
	my ($where) = @_;
	return psql("SELECT pid FROM pg_stat_activity WHERE $where");
}

# Terminate the process matching $where, and wait for another to take its place.
sub terminate_and_replace
{
	my ($where, $name) = @_;
	my $pid = pid_of($where);
	psql("SELECT pg_terminate_backend($pid)");
	ok( $node->poll_query_until(
			'postgres', "SELECT count(*) = 1 FROM pg_stat_activity WHERE $where AND pid <> $pid"),
		$name);
}

my $workers_sql = q{SELECT string_agg(pid::text, ',' ORDER BY pid) FROM pg_stat_activity
                     WHERE backend_type = 'medallion worker'};

psql('CREATE DATABASE other');
psql('CREATE EXTENSION medallion', 'other');
create_pipeline('p1');
create_pipeline('p2');
create_pipeline('p3', 'other');
converges('at start');
ingests('at start');

# the launcher is terminated; it comes back (bgw_restart_time) and finds the
# schedulers that still run
my $worker_pids = psql($workers_sql);
terminate_and_replace(q{backend_type = 'medallion launcher'},
	'the launcher comes back after pg_terminate_backend');
converges('launcher terminated');
is(psql($workers_sql), $worker_pids, 'the workers kept running');
ingests('launcher terminated');

# a scheduler is terminated; its successor adopts the live workers
terminate_and_replace(q{backend_type = 'medallion scheduler' AND datname = 'postgres'},
	'a new scheduler replaces the terminated one');
converges('scheduler terminated');
is(psql($workers_sql), $worker_pids, 'and adopts the workers that still run');
ingests('scheduler terminated');

# a worker is terminated; the scheduler starts one again
terminate_and_replace(q{application_name = 'medallion worker: p2'},
	'a terminated worker is replaced');
converges('worker terminated');

# a worker is killed with SIGKILL: the server restarts after the crash
my $worker = pid_of(q{application_name = 'medallion worker: p1'});
kill 'KILL', $worker;
ok( $node->poll_query_until(
		'postgres',
		qq{SELECT count(*) = 1 FROM pg_stat_activity
		    WHERE application_name = 'medallion worker: p1' AND pid <> $worker}),
	'after a worker is killed (crash restart), the workers come back');
converges('worker killed');
ingests('worker killed');

# slots do not leak: many pipelines created, stopped, dropped, terminated,
# while one slot of four is free
for my $n (1 .. 12)
{
	create_pipeline("t$n");
	$node->poll_query_until('postgres',
		qq{SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name = 'medallion worker: t$n'})
	  or diag("t$n got no worker");
	if ($n % 3 == 0)
	{
		psql(qq{SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		         WHERE application_name = 'medallion worker: t$n'});
	}
	psql(qq{SELECT medallion.stop_pipeline('t$n')});
	psql(qq{SELECT medallion.drop_pipeline('t$n')}) if $n % 2 == 0;
	$node->poll_query_until('postgres',
		qq{SELECT count(*) = 0 FROM pg_stat_activity WHERE application_name = 'medallion worker: t$n'});
}
create_pipeline('last');
ok( $node->poll_query_until(
		'postgres',
		q{SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name = 'medallion worker: last'}),
	'after many pipelines came and went, a new one still gets the free slot');
is(psql(q{SELECT count(*) FROM medallion.pipelines WHERE state = 'waiting'}),
	'0', 'and nothing waits');
psql(q{SELECT medallion.stop_pipeline('last')});
converges('after the churn');

# a database with medallion but no continuous pipeline keeps no scheduler
# connected: it can serve as a template
psql('CREATE DATABASE quiet');
psql(q{CREATE EXTENSION medallion; SELECT medallion.create_pipeline('q_triggered');}, 'quiet');
my ($ret, $out, $err) = $node->psql('postgres', 'CREATE DATABASE quiet_copy TEMPLATE quiet');
is($ret, 0, 'CREATE DATABASE from a database with medallion and no continuous pipeline succeeds')
  or diag($err);

# DROP DATABASE of a database with a running pipeline, without FORCE
($ret, $out, $err) = $node->psql('postgres', 'DROP DATABASE other');
is($ret, 0, 'DROP DATABASE succeeds while a pipeline runs there') or diag($err);
ok( $node->poll_query_until(
		'postgres',
		q{SELECT count(*) = 0 FROM pg_stat_activity
		   WHERE backend_type LIKE 'medallion%' AND datname = 'other'}),
	'nothing of medallion is left in the dropped database');
ingests('after DROP DATABASE');

done_testing();
