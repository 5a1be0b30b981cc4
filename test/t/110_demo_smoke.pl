# Smoke test of the first README command (scripts/demo.sh): it starts its
# own PostgreSQL and S3 server, creates the example pipeline in continuous
# mode, uploads batches of order events and shows the gold tables; Ctrl-C
# (SIGINT) stops everything it started.
use strict;
use warnings;

use File::Temp qw(tempdir);
use IPC::Run ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use MedallionTest;

my $root = $MedallionTest::root;
my $work = tempdir(CLEANUP => 1) . '/demo';
my $pgport = PostgreSQL::Test::Cluster::get_free_port();
my $s3port = PostgreSQL::Test::Cluster::get_free_port();

my ($out, $err) = ('', '');
local $ENV{MEDALLION_SKIP_PREPARE} = '1';    # the harness built and installed it
local $ENV{DEMO_WORK} = $work;
local $ENV{DEMO_PGPORT} = $pgport;
local $ENV{DEMO_S3PORT} = $s3port;
local $ENV{DEMO_INTERVAL} = '1';
local $ENV{DEMO_EVENTS} = '100';
local $ENV{TERM} = 'dumb';
my $demo = IPC::Run::start([ 'bash', "$root/scripts/demo.sh" ],
	'<', \undef, '>', \$out, '2>', \$err);

# wait for a gold row: a line of gold.daily_sales (order_date | revenue | ...)
my $seen_gold = 0;
for (1 .. 1800)
{
	$demo->pump_nb;
	if ($out =~ /^\s*\d{4}-\d{2}-\d{2} \|\s+[\d.]+ \|\s+\d+ \|\s+\d+\s*$/m)
	{
		$seen_gold = 1;
		last;
	}
	last unless $demo->pumpable;
	usleep(100_000);
}
ok($seen_gold, 'the demo shows gold rows') or diag "stdout:\n$out\nstderr:\n$err";
like($out, qr/psql -h 127\.0\.0\.1 -p $pgport/, 'it says how to connect with psql');
like($out, qr/silver quarantine/, 'it shows the rows per layer');
like($out, qr/valid_quantity/, 'and the expectations');

# Ctrl-C
$demo->signal('INT');
my $finished = eval { $demo->finish; 1 };
ok($finished, 'the demo exits after Ctrl-C, with status 0');
like($out, qr/stopped: PostgreSQL and the S3 server are down/, 'it says it stopped everything');
ok(!-e "$work/pgdata/postmaster.pid", 'its PostgreSQL is stopped');
my @left;
for my $proc (glob('/proc/[0-9]*'))
{
	open my $fh, '<', "$proc/cmdline" or next;
	my $cmdline = do { local $/; <$fh> } // '';
	close $fh;
	push @left, $proc if $cmdline =~ /server\.js/ && index($cmdline, "$work/s3data") >= 0;
}
is(scalar(@left), 0, 'its S3 server is stopped');

done_testing();
