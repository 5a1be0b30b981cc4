# Smoke test of the first README command (scripts/demo.sh): it starts its
# own PostgreSQL and S3 server, creates the example pipeline in continuous
# mode, uploads batches of order events and shows the gold tables, on an
# 80x24 screen, with the bronze rows reconciled and rescued records and warn
# expectations occurring; Ctrl-C (SIGINT) stops everything it started.
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
# A shell ignores SIGINT in what it starts in the background (`.ci/run &`),
# and a signal ignored on entry cannot be trapped: the demo would never see
# the Ctrl-C below.  Its own terminal's Ctrl-C reaches it as usual.
local $SIG{INT} = 'DEFAULT';
# should it hang anyway, the test fails instead of waiting forever
my $demo = IPC::Run::start([ 'bash', "$root/scripts/demo.sh" ],
	'<', \undef, '>', \$out, '2>', \$err, IPC::Run::timeout(900));

# The screens shown so far that are complete (a screen starts with its
# title line and ends with the psql hint).
sub screens
{
	return grep { /^Look around: psql/m } split /^(?=medallion demo, batch \d+:)/m, $out;
}

# Wait for a screen with gold rows, rescued records and warned rows: a line
# of gold.daily_sales (order_date | revenue | ...), "rescued N" with N > 0,
# and a warn expectation with failures.
my $seen = 0;
for (1 .. 1800)
{
	$demo->pump_nb;
	for my $screen (screens())
	{
		next unless $screen =~ /^\s*\d{4}-\d{2}-\d{2} \|\s+[\d.]+ \|\s+\d+ \|\s+\d+\s*$/m;
		next unless $screen =~ /\+ rescued [1-9]/;
		next unless $screen =~ /^.*\b(known_category|plausible_discount)\s+warn\*\s+[1-9]/m;
		$seen = 1;
	}
	last if $seen;
	last unless $demo->pumpable;
	usleep(100_000);
}
ok($seen, 'the demo shows gold rows, rescued records and warn expectations that counted rows')
  or diag "stdout:\n$out\nstderr:\n$err";
like($out, qr/psql -h 127\.0\.0\.1 -p $pgport/, 'it says how to connect with psql');
like($out, qr/valid_quantity\s+drop\s+\d+/, 'it shows the drop expectations');

# Every screen: at most 80 columns and 23 lines, and its bronze rows
# reconcile (bronze = silver + deduplicated + quarantined + rescued [+ rows
# not yet in silver]), with numbers that do add up.
my @screens = screens();
ok(@screens > 0, 'complete screens were shown');
my @wide = grep { length($_) > 80 } split /\n/, $out;
is_deeply(\@wide, [], 'no line is wider than 80 columns');
my ($bad_height, $bad_sum, $reconciled, $gold_latency) = (0, 0, 0, 0);
for my $screen (@screens)
{
	$bad_height++ if ($screen =~ tr/\n//) > 23;
	if ($screen =~ /^Every\ bronze\ row\ accounted\ for,\ it\ adds\ up:\n
			bronze\ (\d+)\ =\ silver\ (\d+)\ \+\ deduplicated\ (\d+)\s+
			\+\ quarantined\ (\d+)\ \+\ rescued\ (\d+)
			(?:\ \+\ not\ yet\ in\ silver\ (\d+))?$/mx)
	{
		my ($bronze, @parts) = ($1, $2, $3, $4, $5, $6 // 0);
		my $sum = 0;
		$sum += $_ for @parts;
		$sum == $bronze && $bronze > 0 ? $reconciled++ : $bad_sum++;
	}
	else
	{
		$bad_sum++;
	}
	$gold_latency++ if $screen =~ /^upload -> visible in every gold table: \d+\.\d\d s /m;
}
is($bad_height, 0, 'every screen fits in 24 lines');
note "the last screen:\n$screens[-1]" if @screens;
is($bad_sum, 0, 'every screen shows the reconciliation line, and it adds up')
  or diag $out;
is($gold_latency, scalar(@screens), 'every screen shows the latency to gold');
like($out, qr/\+ deduplicated [1-9]\d*\s+\+ quarantined [1-9]/,
	'duplicates and quarantined rows occur');

# Ctrl-C
$demo->signal('INT');
my $finished = eval { $demo->finish; 1 };
$demo->kill_kill unless $finished;
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
