# Chaos: a continuous pipeline bronze -> silver -> gold (AUTO CDC, SCD type
# 2) ingests 200 files while the S3 endpoint (test/fault/fault_s3.py) injects
# a fault into 20% of its answers (SlowDown, 500, 503, RequestTimeout,
# resets mid-body, short bodies, empty replies, stalls of both kinds: mid-body
# past the low-speed limit, and before any byte of the answer past the
# first-byte limit; truncated and invalid listing XML, objects replaced
# between listing and GET), the pipeline worker is killed with SIGKILL five
# times and the server is restarted with -m immediate twice.  At the end
# bronze, silver and gold equal, row for row, the reference computed here
# from the generated files: no row lost, none duplicated; two aggregates of
# the gold table (one maintained by deltas from the AUTO CDC change feed, one
# recomputed) equal their queries; requests that got no answer were cut by
# the first-byte limit and retried; and the whole run took bounded time.
#
# The S3 time limits are scaled down (first byte 1 s, low speed 2 s) so that
# the run stays short.  MEDALLION_CHAOS_TIMEOUTS=default in the environment
# of prove (test/run-all.sh clears the environment: set $DEFAULT_TIMEOUTS to
# 1 instead) runs it with the defaults (first byte 5 s, 1 B/s for 30 s): the
# figures of the README's "Stalled requests" come from such runs.
use strict;
use warnings;

use IPC::Run ();
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use MedallionTest;
use FaultS3;

my $FILES = 200;
my $RECORDS = 20;         # per file
my $CUSTOMERS = 60;
my $KILLS = 5;
my $RESTARTS = 2;
my $FAULT_RATE = 0.2;
my $DEFAULT_TIMEOUTS = ($ENV{MEDALLION_CHAOS_TIMEOUTS} // '') eq 'default';
my $STALL_SECONDS = 120;  # longer than any limit: only the client ends a stall
my $t_start = time();

srand(20240817);
my $s3 = start_fault_s3();
my $node = start_node(
	'chaos',
	'medallion.enable_workers' => 'on',
	'restart_after_crash' => 'on',
	'medallion.launcher_naptime' => '200ms',
	'medallion.s3_max_attempts' => '4',
	'medallion.s3_retry_base_delay' => '10ms',
	'medallion.s3_retry_max_delay' => '200ms',
	'medallion.s3_connect_timeout' => '1s',
	$DEFAULT_TIMEOUTS ? ()
	: ('medallion.s3_first_byte_timeout' => '1s',
		'medallion.s3_low_speed_time' => '2'));
note($DEFAULT_TIMEOUTS ? 'S3 time limits: the defaults' : 'S3 time limits: first byte 1 s, low speed 2 s');
my $endpoint = $s3->{endpoint};

sub psql { return $node->safe_psql('postgres', $_[0]); }

# ---------------------------------------------------------------- the data
# Change events of customers, out of order within each customer, every one
# with its own amount (see customer_events in MedallionTest.pm).
my @events = customer_events($FILES * $RECORDS, $CUSTOMERS);
# Every 25th file is heavy (2 MB: its records carry 100 kB of padding), so
# that the worker spends long enough ingesting it, and the silver flow
# reading it, for a kill to land there.
my @files;    # [name, content]
for my $f (0 .. $FILES - 1)
{
	my @mine = @events[ $f * $RECORDS .. ($f + 1) * $RECORDS - 1 ];
	my $name = sprintf('part-%05d.json', $f + 1);
	my $pad = $f % 25 == 12 ? 'x' x 100_000 : '';
	$_->{file_name} = $name for @mine;
	my $content = join('',
		map {
			sprintf('{"event_id": %d, "customer_id": %d, "seq": %d, "amount": %s, "op": "UPSERT", "pad": "%s"}' . "\n",
				$_->{event_id}, $_->{customer_id}, $_->{seq}, $_->{amount}, $pad)
		} @mine);
	push @files, [ $name, $content ];
}

# The gold reference: SCD type 2, one version per event, each ending where
# the next one (by seq) of its customer starts.
my @gold = scd2_versions(@events);

# ------------------------------------------------------------ the pipeline
# chaos_pause() makes the silver flow take about a millisecond per row, so
# that a kill can land inside it.
psql(
	qq{CREATE FUNCTION chaos_pause(bigint) RETURNS boolean LANGUAGE plpgsql
	       AS \$f\$ BEGIN PERFORM pg_sleep(0.001); RETURN true; END \$f\$;
	   SELECT medallion.create_secret('fs3', 'S3RVER', 'S3RVER');
	   SELECT medallion.create_pipeline('chaos', 'continuous', '200 ms');
	   SELECT medallion.create_bronze('chaos', 'bronze_events', 's3://landing/events/',
	       secret_name => 'fs3', endpoint => '$endpoint',
	       options => '{"max_files_per_batch": 10}');
	   SELECT medallion.create_silver('chaos', 'silver_events', \$q\$
	       SELECT medallion.try_cast(data->>'event_id', NULL::bigint) AS event_id,
	              medallion.try_cast(data->>'customer_id', NULL::int) AS customer_id,
	              medallion.try_cast(data->>'seq', NULL::bigint) AS seq,
	              medallion.try_cast(data->>'amount', NULL::numeric) AS amount,
	              data->>'op' AS op,
	              _file_name AS file_name
	         FROM bronze_events WHERE chaos_pause(_row_id)\$q\$);
	   SELECT medallion.create_auto_cdc_flow('chaos', 'gold_customers', 'silver_events',
	       keys => ARRAY['customer_id'], sequence_by => 'seq',
	       stored_as_scd_type => 2,
	       except_column_list => ARRAY['seq', 'op', 'file_name']);
	   SELECT medallion.create_aggregate('chaos', 'gold_buckets', 'gold_customers',
	       group_by => ARRAY['customer_id % 7 AS bucket'],
	       aggregates => ARRAY['count(*) AS customers', 'sum(amount) AS amount',
	                           'count(DISTINCT event_id) AS events', 'max(amount) AS peak'],
	       filter => '__end_at IS NULL');
	   SELECT medallion.create_aggregate('chaos', 'gold_medians', 'gold_customers',
	       group_by => ARRAY['customer_id % 7 AS bucket'],
	       aggregates => ARRAY['percentile_disc(0.5) WITHIN GROUP (ORDER BY amount) AS median',
	                           'count(*) AS versions']);});
# what the aggregates must equal: a delta-maintained one (its changes come
# from the AUTO CDC flow's change feed) and a recomputed one
my $aggregate_mismatches = q{
	SELECT (SELECT count(*) FROM (TABLE gold_buckets EXCEPT
	          SELECT customer_id % 7, count(*), sum(amount), count(DISTINCT event_id), max(amount)
	            FROM gold_customers WHERE __end_at IS NULL GROUP BY 1) a)
	     + (SELECT count(*) FROM (SELECT customer_id % 7, count(*), sum(amount), count(DISTINCT event_id),
	                                     max(amount)
	            FROM gold_customers WHERE __end_at IS NULL GROUP BY 1 EXCEPT TABLE gold_buckets) b)
	     + (SELECT count(*) FROM (TABLE gold_medians EXCEPT
	          SELECT customer_id % 7, percentile_disc(0.5) WITHIN GROUP (ORDER BY amount), count(*)
	            FROM gold_customers GROUP BY 1) c)
	     + (SELECT count(*) FROM (SELECT customer_id % 7, percentile_disc(0.5) WITHIN GROUP (ORDER BY amount),
	                                     count(*)
	            FROM gold_customers GROUP BY 1 EXCEPT TABLE gold_medians) d)};

# the reference tables, filled from Perl
psql(
	q{CREATE TABLE ref_events (event_id bigint, customer_id int, seq bigint, amount numeric, file_name text);
	  CREATE TABLE ref_gold (customer_id int, event_id bigint, amount numeric, __start_at bigint, __end_at bigint);});
for my $chunk (0 .. int($#events / 1000))
{
	my @part = grep { defined } @events[ $chunk * 1000 .. $chunk * 1000 + 999 ];
	psql('INSERT INTO ref_events VALUES '
		  . join(',', map { "($_->{event_id}, $_->{customer_id}, $_->{seq}, $_->{amount}, '$_->{file_name}')" } @part));
}
for my $chunk (0 .. int($#gold / 1000))
{
	my @part = grep { defined } @gold[ $chunk * 1000 .. $chunk * 1000 + 999 ];
	psql('INSERT INTO ref_gold VALUES ' . join(',', map { '(' . join(', ', @$_) . ')' } @part));
}

# ------------------------------------------------------------------ chaos
$s3->fault(
	name => 'chaos',
	op => 'data',
	probability => $FAULT_RATE,
	seed => 42,
	kinds => [
		qw(slowdown slowdown internal_error internal_error service_unavailable
		  request_timeout reset reset short_body short_body close
		  truncated_xml invalid_xml change_object stall no_response)
	],
	bytes => 100,
	seconds => $STALL_SECONDS);

my $kills = 0;
my $restarts = 0;
my @killed_while;

# Poll pg_stat_activity inside the server (fast) until the worker reports a
# step matching $pattern; returns "pid|step", or after 3 s the worker's,
# whatever it does.
psql(
	q{CREATE FUNCTION chaos_worker(pattern text) RETURNS text LANGUAGE plpgsql AS $$
	  DECLARE
	    found text;
	    deadline timestamptz := clock_timestamp() + interval '3 s';
	  BEGIN
	    LOOP
	      PERFORM pg_stat_clear_snapshot();
	      SELECT pid || '|' || query INTO found FROM pg_stat_activity
	       WHERE application_name = 'medallion worker: chaos' AND state = 'active'
	         AND query LIKE pattern LIMIT 1;
	      IF found IS NOT NULL THEN RETURN found; END IF;
	      EXIT WHEN clock_timestamp() > deadline;
	      PERFORM pg_sleep(0.0002);
	    END LOOP;
	    SELECT pid || '|' || coalesce(query, '') INTO found FROM pg_stat_activity
	     WHERE application_name = 'medallion worker: chaos' LIMIT 1;
	    RETURN found;
	  END $$});

# A kill: the watcher starts polling in the background, then the wave is
# uploaded, and the worker is killed as soon as the watcher sees the step.
sub kill_worker
{
	my ($pattern, $upload) = @_;
	ok( $node->poll_query_until(
			'postgres',
			q{SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name = 'medallion worker: chaos'}),
		'the pipeline worker is running') or return;
	my ($out, $err) = ('', '');
	my $watcher = IPC::Run::start(
		[ 'psql', '-XAtq', '-d', $node->connstr('postgres'),
		  '-c', "SELECT chaos_worker('$pattern')" ],
		'>', \$out, '2>', \$err);
	$upload->();
	$watcher->finish;
	chomp $out;
	my ($pid, $doing) = split /\|/, $out, 2;
	ok($pid && kill('KILL', $pid), "SIGKILL the worker (kill " . ($kills + 1) . ")")
	  or diag($err);
	$kills++;
	note("killed worker " . ($pid // '?') . " while: " . ($doing // '?'));
	push @killed_while, $doing // '?';
	# the postmaster reinitialises everything; wait until it is back
	$node->poll_query_until('postgres', 'SELECT true') or die 'the server did not come back';
}

sub restart_immediate
{
	my ($upload) = @_;
	$upload->();
	$node->stop('immediate');
	$node->start;
	$restarts++;
	pass("server restarted with -m immediate (restart $restarts)");
}

# each wave's heavy file goes last, so that the kill finds it
my @disruptions = (
	sub { kill_worker('medallion: ingesting %', @_) },
	sub { kill_worker('medallion: flow public.silver%', @_) },
	\&restart_immediate,
	sub { kill_worker('medallion: downloading %', @_) },
	sub { kill_worker('medallion: ingesting %', @_) },
	\&restart_immediate,
	sub { kill_worker('medallion: flow public.gold%', @_) },
);
my $waves = @disruptions + 1;
my $per_wave = int(($FILES + $waves - 1) / $waves);
my $uploaded = 0;
for my $wave (0 .. $waves - 1)
{
	my @mine = grep { $_ < $FILES } $wave * $per_wave .. ($wave + 1) * $per_wave - 1;
	@mine = ((grep { $_ % 25 != 12 } @mine), (grep { $_ % 25 == 12 } @mine));
	my $upload = sub {
		for my $f (@mine)
		{
			$s3->put_object("events/$files[$f][0]", $files[$f][1]);
			$uploaded++;
		}
	};
	if ($wave < @disruptions)
	{
		$disruptions[$wave]->($upload);
	}
	else
	{
		$upload->();
	}
}
is($uploaded, $FILES, "$FILES files uploaded in $waves waves");
my $t_uploaded = time();

# let it converge, faults still firing (with the default limits, a stall
# costs up to 30 s, so allow for more)
local $PostgreSQL::Test::Utils::timeout_default = 900 if $DEFAULT_TIMEOUTS;
my $rows = $FILES * $RECORDS;
ok( $node->poll_query_until(
		'postgres',
		qq{SELECT (SELECT count(*) FROM medallion.ingested_files WHERE pipeline_name = 'chaos') = $FILES
		      AND (SELECT count(*) FROM gold_customers) >= $rows
		      AND (SELECT watermark FROM medallion.flows WHERE flow_name = 'public.gold_customers')
		          = (SELECT max(_row_id) FROM silver_events)
		      AND (SELECT watermark FROM medallion.flows WHERE flow_name = 'public.silver_events')
		          = (SELECT max(_row_id) FROM bronze_events)
		      AND ($aggregate_mismatches) = 0}),
	'the pipeline converges by itself, faults still firing')
  or diag(psql(q{SELECT count(*) || ' of the files ingested' FROM medallion.ingested_files
                 WHERE pipeline_name = 'chaos'}));
my $t_converged = time();
my $counters = $s3->counters;
$s3->clear_faults;

# ------------------------------------------------------------- the verdict
sub lost_and_duplicated
{
	my ($actual) = @_;
	my $lost = psql("SELECT count(*) FROM (TABLE ref_events EXCEPT ALL $actual) d");
	my $dup = psql("SELECT count(*) FROM ($actual EXCEPT ALL TABLE ref_events) d");
	return ($lost, $dup);
}

my ($bronze_lost, $bronze_dup) = lost_and_duplicated(
	q{SELECT (data->>'event_id')::bigint, (data->>'customer_id')::int, (data->>'seq')::bigint,
	         (data->>'amount')::numeric, _file_name FROM bronze_events});
my ($silver_lost, $silver_dup) = lost_and_duplicated(
	q{SELECT event_id, customer_id, seq, amount, file_name FROM silver_events});
my $gold_lost = psql(
	q{SELECT count(*) FROM (TABLE ref_gold EXCEPT ALL
	    SELECT customer_id, event_id, amount, __start_at, __end_at FROM gold_customers) d});
my $gold_dup = psql(
	q{SELECT count(*) FROM (SELECT customer_id, event_id, amount, __start_at, __end_at FROM gold_customers
	    EXCEPT ALL TABLE ref_gold) d});
my $rows_lost = $bronze_lost + $silver_lost + $gold_lost;
my $rows_dup = $bronze_dup + $silver_dup + $gold_dup;
my $faults = $counters->{injected_total};
my $requests = $counters->{requests_total};

is("$bronze_lost/$bronze_dup", '0/0', "bronze: $rows rows, 0 lost, 0 duplicated (of $FILES files)");
is("$silver_lost/$silver_dup", '0/0', "silver: $rows rows, 0 lost, 0 duplicated");
is("$gold_lost/$gold_dup", '0/0', sprintf('gold SCD2: %d versions, 0 lost, 0 duplicated', scalar @gold));
is(psql('SELECT count(*) FROM bronze_events WHERE data IS NULL'), '0', 'no record was rescued');
is( psql(
		q{SELECT count(*) || '/' || count(DISTINCT path) || '/' || sum(row_count) FROM medallion.ingested_files
		   WHERE pipeline_name = 'chaos' AND status = 'ingested'}),
	"$FILES/$FILES/$rows",
	'the ledger has every file once, with its rows');
is( psql(
		q{SELECT count(*) FROM gold_customers_current}),
	scalar(keys %{ { map { $_->{customer_id} => 1 } @events } }),
	'one current version per customer');
cmp_ok($faults, '>=', 0.1 * $requests, "faults injected: $faults of $requests S3 requests");
is($kills, $KILLS, "the worker was killed with SIGKILL $KILLS times");
is($restarts, $RESTARTS, "the server was restarted with -m immediate $RESTARTS times");
is(psql($aggregate_mismatches), '0',
	'gold aggregates equal their queries (one by deltas over the change feed, one recomputed)');
is( psql(
		q{SELECT string_agg(definition->>'maintenance', ',' ORDER BY flow_name) FROM medallion.flows
		   WHERE pipeline_name = 'chaos' AND flow_type = 'aggregate'}),
	'delta,recompute', 'one aggregate is maintained by deltas, the other recomputed');
is($rows_lost, 0, "rows lost: $rows_lost");
is($rows_dup, 0, "rows duplicated: $rows_dup");

# Stalls: both kinds fired; requests that got no answer at all were cut by
# the first-byte limit (the retry events say so; without it they would wait
# for the low-speed limit); and the run ended in bounded time.
my $no_response = $counters->{injected}{no_response} // 0;
my $mid_body = $counters->{injected}{stall} // 0;
cmp_ok($no_response, '>', 0, "stalls before any byte injected: $no_response");
cmp_ok($mid_body, '>', 0, "stalls mid-body injected: $mid_body");
my $no_response_events = psql(
	q{SELECT count(*) FROM medallion.event_log WHERE pipeline_name = 'chaos' AND event_type = 'retry'
	    AND message LIKE '%no response within % ms%'});
cmp_ok($no_response_events, '>', 0,
	"requests without an answer were cut by the first-byte limit and retried ($no_response_events retry events)");
my $bound = $DEFAULT_TIMEOUTS ? 900 : 300;
cmp_ok(time() - $t_start, '<', $bound, "the run took less than $bound s");

my $retry_events = psql(
	q{SELECT count(*) FROM medallion.event_log WHERE pipeline_name = 'chaos' AND event_type = 'retry'});
my $summary = sprintf(
	'chaos: files %d, rows %d, S3 requests %d, faults injected %d (%s), retry events %s '
	  . '(%d "no response"), kills %d, restarts %d, rows lost %d, rows duplicated %d, '
	  . 'converged %.0f s after the last upload, %.0f s in all (S3 time limits: %s)',
	$FILES, $rows, $requests, $faults,
	join(', ', map { "$_ $counters->{injected}{$_}" } sort keys %{ $counters->{injected} }),
	$retry_events, $no_response_events, $kills, $restarts, $rows_lost, $rows_dup,
	$t_converged - $t_uploaded, time() - $t_start,
	$DEFAULT_TIMEOUTS ? 'defaults' : 'first byte 1 s, low speed 2 s');
diag($summary);
diag('kills landed while the worker was: ' . join('; ', map { s/ s3:\/\/landing\/events\// /r } @killed_while));

done_testing();
