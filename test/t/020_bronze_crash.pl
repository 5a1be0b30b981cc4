# Crash safety of bronze ingestion: the process running an update, and
# then the whole server, are killed with SIGKILL while a large object is
# being ingested.  After the restart and another run, bronze holds exactly
# the expected rows: nothing lost, nothing duplicated, and the ledger
# agrees with the table at every moment.
use strict;
use warnings;

use File::Temp qw(tempdir);
use IPC::Run ();
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use MedallionTest;

my $s3 = start_s3(buckets => ['landing']);
my $node = start_node('crash', restart_after_crash => 'on');
my $endpoint = $s3->{endpoint};
my $work = tempdir(CLEANUP => 1);

sub psql { return $node->safe_psql('postgres', $_[0]); }

# Upload small objects around one large one, for two flows.
my %expected;
for my $prefix (qw(one two))
{
	my $rows = 0;
	for my $n (1 .. 3)
	{
		s3_upload_string($s3,
			join('', map { qq({"n": $_, "object": "a$n"}\n) } 1 .. 100),
			"$prefix/a-$n.json");
		$rows += 100;
	}
	my $big = "$work/$prefix-big.json";
	open my $fh, '>', $big or die;
	my $line_count = 300_000;
	for my $line (1 .. $line_count)
	{
		print $fh qq({"n": $line, "object": "big", "padding": "),
		  'x' x 200, qq("}\n);
	}
	close $fh;
	s3_upload($s3, $big, "$prefix/b-big.json");
	$rows += $line_count;
	for my $n (1 .. 3)
	{
		s3_upload_string($s3,
			join('', map { qq({"n": $_, "object": "c$n"}\n) } 1 .. 100),
			"$prefix/c-$n.json");
		$rows += 100;
	}
	$expected{$prefix} = $rows;
	psql(
		qq{SELECT medallion.create_pipeline('crash_$prefix');
		   SELECT medallion.create_bronze('crash_$prefix', 'bronze_$prefix', 's3://landing/$prefix/',
		       endpoint => '$endpoint');});
}
psql(q{SELECT medallion.create_secret('unused', 'x', 'y')});

# Start an update in the background and wait until it ingests the big one.
sub start_update_and_wait_for_big
{
	my ($pipeline) = @_;
	my ($out, $err) = ('', '');
	my $handle = IPC::Run::start(
		[
			'psql', '-X', '-d', $node->connstr('postgres'),
			'-c', "SELECT * FROM medallion.run_pipeline('$pipeline')"
		],
		'>', \$out, '2>', \$err);
	my $pid = '';
	for (1 .. 600)
	{
		$pid = $node->safe_psql('postgres',
			q{SELECT pid FROM pg_stat_activity
			  WHERE backend_type = 'medallion update'
			    AND query LIKE 'medallion: ingesting %b-big.json'});
		last if $pid ne '';
		usleep(20_000);
	}
	return ($handle, $pid);
}

sub check_consistent
{
	my ($prefix, $label) = @_;
	is( psql(
			"SELECT count(*) = coalesce((SELECT sum(row_count) FROM medallion.ingested_files WHERE flow_name = 'public.bronze_$prefix'), 0) FROM bronze_$prefix"
		),
		't',
		"$label: bronze rows and ledger agree");
}

# 1. kill -9 the update worker in the middle of the big object
my ($handle, $pid) = start_update_and_wait_for_big('crash_one');
isnt($pid, '', 'the update worker is ingesting the big object');
kill 'KILL', $pid if $pid ne '';
$handle->finish;
$node->poll_query_until('postgres', 'SELECT true') or die 'server did not come back';
is( psql(
		"SELECT count(*) FROM medallion.ingested_files WHERE flow_name = 'public.bronze_one' AND path LIKE '%b-big.json'"
	),
	'0',
	'the big object was not committed when its worker was killed');
check_consistent('one', 'after the worker was killed');
psql("SELECT * FROM medallion.run_pipeline('crash_one')");
is(psql('SELECT count(*) FROM bronze_one'), $expected{one},
	'after another run bronze has exactly the expected rows');
is( psql(
		q{SELECT count(*) FROM (SELECT data FROM bronze_one GROUP BY data HAVING count(*) > 1) d}),
	'0',
	'no record is duplicated');

# 2. kill -9 the whole server (postmaster and every child at once)
($handle, $pid) = start_update_and_wait_for_big('crash_two');
isnt($pid, '', 'the update worker is ingesting the big object');
my $postmaster = $node->{_pid};
my @children = split /\s+/, `pgrep -P $postmaster`;
kill 'KILL', $postmaster, grep { /^\d+$/ } @children;
$handle->finish;
# wait until every process of the old server is gone
for (1 .. 500)
{
	last unless grep { kill(0, $_) } ($postmaster, grep { /^\d+$/ } @children);
	usleep(20_000);
}
# the postmaster is gone; let the test cluster forget it and start again
$node->{_pid} = undef;
unlink($node->data_dir . '/postmaster.pid');
$node->start;
check_consistent('two', 'after the server was killed');
psql("SELECT * FROM medallion.run_pipeline('crash_two')");
is(psql('SELECT count(*) FROM bronze_two'), $expected{two},
	'after restart and another run bronze has exactly the expected rows');
is( psql(
		q{SELECT count(*) FROM (SELECT data FROM bronze_two GROUP BY data HAVING count(*) > 1) d}),
	'0',
	'no record is duplicated');
is( psql(
		"SELECT count(*) FROM medallion.ingested_files WHERE flow_name = 'public.bronze_two'"),
	'7',
	'every object is in the ledger once');

done_testing();
