# Streaming replication: a hot standby stays quiet and serves BI queries,
# and a failover in the middle of ingestion loses and duplicates nothing.
#
# A continuous pipeline bronze -> silver (a drop expectation) -> gold (AUTO
# CDC, SCD type 2) -> a gold aggregate runs on a primary; a streaming
# standby preloads medallion too.
#
# (a) Hot standby: while files arrive one by one, the standby runs no
#     medallion process, logs no error, and its bronze, silver, gold,
#     _current view and aggregate converge to the primary's rows; the time
#     from upload to the row being visible in gold is measured on both.
#     The freshness query a replica dashboard polls instead of LISTEN
#     (medallion.pipelines.last_update_end) is never blank and never goes
#     back.  run_pipeline and LISTEN are refused there with a clear error.
# (b) Failover: a batch of objects is uploaded and drained; the standby's
#     stream is cut while the primary keeps ingesting (an asynchronous
#     standby that lags behind), then the primary is stopped with -m
#     immediate mid-batch and the standby promoted.  The pipeline resumes
#     by itself; more objects arrive.  Every record is then exactly once in
#     bronze, silver and gold, the aggregate equals its query, and every
#     object that the old primary had committed but the standby never
#     received (read from the old primary's own ledger after the test) was
#     ingested again on the new primary, exactly once.  A triggered update
#     that was running on the old primary leaves no 'running' or "update in
#     progress" marker that blocks or misreports on the new one.  While the
#     new primary is read-only by default (default_transaction_read_only,
#     as pg_auto_failover keeps a promoted node until its monitor confirms
#     it), the worker waits quietly instead of failing in a loop.
use strict;
use warnings;

use IPC::Run ();
use List::Util qw(max sum);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use MedallionTest;

my $RECORDS = 10;      # per file
my $CUSTOMERS = 15;
my $FILES_A = 5;       # one by one, standby streaming
my $FILES_B = 80;      # one batch; the primary dies while draining it
my $FILES_C = 10;      # after promotion
my $FILES = $FILES_A + $FILES_B + $FILES_C;
my $t_start = time();

srand(20261204);
my $s3 = start_s3(buckets => ['landing']);
my $endpoint = $s3->{endpoint};
my $primary = start_node(
	'primary',
	allows_streaming => 1,
	shared_buffers => '32MB',
	max_connections => '40',
	'medallion.enable_workers' => 'on',
	'medallion.launcher_naptime' => '200ms',
	'medallion.s3_connect_timeout' => '1s');

# ---------------------------------------------------------------- the data
# Change events of customers, out of order within each customer, every one
# with its own amount (see customer_events in MedallionTest.pm); every tenth
# has a negative amount and is dropped by the silver expectation.
my @events = customer_events($FILES * $RECORDS, $CUSTOMERS);
$_->{amount} = "-$_->{amount}" for grep { $_->{event_id} % 10 == 7 } @events;
my @files;    # [name, content, last kept event_id]
for my $f (0 .. $FILES - 1)
{
	my @mine = @events[ $f * $RECORDS .. ($f + 1) * $RECORDS - 1 ];
	my $name = sprintf('part-%05d.json', $f + 1);
	$_->{file_name} = $name for @mine;
	my $content = join('',
		map {
			sprintf('{"event_id": %d, "customer_id": %d, "seq": %d, "amount": %s, "pad": "%s"}' . "\n",
				$_->{event_id}, $_->{customer_id}, $_->{seq}, $_->{amount}, 'x' x 2000)
		} @mine);
	push @files, [ $name, $content, max(map { $_->{event_id} } grep { $_->{amount} > 0 } @mine) ];
}
my @kept = grep { $_->{amount} > 0 } @events;
my @gold = scd2_versions(@kept);

# ------------------------------------------------------------ the pipeline
# replica_pause() makes the silver flow take a few milliseconds per row, so
# that the batch takes seconds to drain and the crash lands inside it.
$primary->safe_psql(
	'postgres',
	qq{CREATE FUNCTION replica_pause() RETURNS boolean LANGUAGE plpgsql
	       AS \$f\$ BEGIN PERFORM pg_sleep(0.003); RETURN true; END \$f\$;
	   SELECT medallion.create_secret('s3rver', 'S3RVER', 'S3RVER');
	   SELECT medallion.create_pipeline('live', 'continuous', '200 ms');
	   SELECT medallion.create_bronze('live', 'bronze_events', 's3://landing/events/',
	       secret_name => 's3rver', endpoint => '$endpoint',
	       options => '{"max_files_per_batch": 2}');
	   SELECT medallion.create_silver('live', 'silver_events', \$q\$
	       SELECT medallion.try_cast(data->>'event_id', NULL::bigint) AS event_id,
	              medallion.try_cast(data->>'customer_id', NULL::int) AS customer_id,
	              medallion.try_cast(data->>'seq', NULL::bigint) AS seq,
	              medallion.try_cast(data->>'amount', NULL::numeric) AS amount,
	              _file_name AS file_name
	         FROM bronze_events WHERE replica_pause()\$q\$);
	   SELECT medallion.add_expectation('silver_events', 'positive_amount', 'amount > 0', 'drop');
	   SELECT medallion.create_auto_cdc_flow('live', 'gold_customers', 'silver_events',
	       keys => ARRAY['customer_id'], sequence_by => 'seq',
	       stored_as_scd_type => 2, except_column_list => ARRAY['seq', 'file_name']);
	   SELECT medallion.create_aggregate('live', 'gold_buckets', 'gold_customers',
	       group_by => ARRAY['customer_id % 4 AS bucket'],
	       aggregates => ARRAY['count(*) AS customers', 'sum(amount) AS amount',
	                           'max(amount) AS peak'],
	       filter => '__end_at IS NULL');
	   CREATE TABLE ref_events (event_id bigint, customer_id int, seq bigint, amount numeric,
	                            file_name text);
	   CREATE TABLE ref_gold (customer_id int, event_id bigint, amount numeric,
	                          __start_at bigint, __end_at bigint);});
$primary->safe_psql('postgres',
	'INSERT INTO ref_events VALUES '
	  . join(',', map { "($_->{event_id}, $_->{customer_id}, $_->{seq}, $_->{amount}, '$_->{file_name}')" } @events));
$primary->safe_psql('postgres',
	'INSERT INTO ref_gold VALUES ' . join(',', map { '(' . join(', ', @$_) . ')' } @gold));

my $aggregate_mismatches = q{
	SELECT (SELECT count(*) FROM (TABLE gold_buckets EXCEPT
	          SELECT customer_id % 4, count(*), sum(amount), max(amount)
	            FROM gold_customers WHERE __end_at IS NULL GROUP BY 1) a)
	     + (SELECT count(*) FROM (SELECT customer_id % 4, count(*), sum(amount), max(amount)
	            FROM gold_customers WHERE __end_at IS NULL GROUP BY 1 EXCEPT TABLE gold_buckets) b)};

# the standby: a base backup of the primary, streaming, medallion preloaded
# with the same configuration (workers on)
$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->append_conf('postgresql.conf', 'hot_standby_feedback = on');
$standby->start;

sub query { my ($node, $sql) = @_; return $node->safe_psql('postgres', $sql); }

# Poll until $sql returns t; the time it first did, or undef after $limit s.
sub visible_at
{
	my ($node, $sql, $limit) = @_;
	my $deadline = time() + $limit;
	while (time() < $deadline)
	{
		return time() if query($node, $sql) eq 't';
		usleep(5_000);
	}
	return undef;
}

my $medallion_backends =
  q{SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'medallion%'};

# ------------------------------------------------- (a) the hot standby
ok($primary->poll_query_until('postgres',
		q{SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name = 'medallion worker: live'}),
	'the pipeline worker runs on the primary');
is(query($standby, 'SELECT pg_is_in_recovery()'), 't', 'the standby is in recovery');
my $standby_log_start = -s $standby->logfile;

my (@to_primary, @to_standby, @standby_backends, @replay_lag);
for my $f (0 .. $FILES_A - 1)
{
	s3_upload_string($s3, $files[$f][1], "events/$files[$f][0]");
	my $uploaded = time();
	my $sql = "SELECT EXISTS (SELECT FROM gold_customers WHERE event_id = $files[$f][2])";
	my $on_primary = visible_at($primary, $sql, 30);
	my $on_standby = visible_at($standby, $sql, 30);
	push @standby_backends, query($standby, $medallion_backends);
	push @replay_lag, query($primary,
		q{SELECT coalesce(extract(epoch FROM replay_lag)::text, '0') FROM pg_stat_replication});
	if (!defined $on_primary || !defined $on_standby)
	{
		fail("file $files[$f][0] reached gold on the primary and the standby");
		last;
	}
	push @to_primary, $on_primary - $uploaded;
	push @to_standby, $on_standby - $uploaded;
}
is(scalar @to_standby, $FILES_A, "$FILES_A files uploaded one by one reach gold on the standby");
is(join(',', @standby_backends), join(',', ('0') x $FILES_A),
	'the standby runs no medallion launcher, scheduler or worker');
cmp_ok(query($primary, $medallion_backends), '>=', 3,
	'while the primary runs its launcher, scheduler and worker');

sub percentile
{
	my ($p, @values) = @_;
	my @sorted = sort { $a <=> $b } @values;
	return $sorted[ int($p * $#sorted + 0.5) ];
}
my @replica_lag = map { $to_standby[$_] - $to_primary[$_] } 0 .. $#to_standby;
my $lag_summary = sprintf(
	'upload -> gold row visible: primary p50 %.2f s max %.2f s; standby p50 %.2f s max %.2f s; '
	  . 'standby behind primary by at most %.3f s (polling every ~20 ms); '
	  . 'pg_stat_replication.replay_lag at most %.4f s',
	percentile(0.5, @to_primary), max(@to_primary), percentile(0.5, @to_standby),
	max(@to_standby), max(@replica_lag), max(@replay_lag));
diag($lag_summary);

# BI on the standby: every layer converges to the primary's rows
my @bi_tables = qw(bronze_events silver_events gold_customers gold_customers_current gold_buckets);
my $fingerprints = join(' UNION ALL ',
	map { "SELECT '$_', count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM $_ t" }
	  @bi_tables);
my $expected_fingerprints = query($primary, $fingerprints);
ok($standby->poll_query_until('postgres', $fingerprints, $expected_fingerprints),
	'bronze, silver, gold, the _current view and the aggregate on the standby equal the primary');
is(query($standby, $aggregate_mismatches), '0', 'the aggregate equals its query on the standby');
# The freshness a replica dashboard polls instead of LISTEN: the end of the
# last completed update, never blank, never going back, while the pipeline
# keeps updating every 200 ms.
my @freshness;
for (1 .. 40)
{
	push @freshness, query($standby,
		q{SELECT coalesce(extract(epoch FROM last_update_end)::text, 'null') || ' '
		      || extract(epoch FROM clock_timestamp())
		    FROM medallion.pipelines WHERE pipeline_name = 'live'});
	usleep(20_000);
}
my @ends = map { (split / /)[0] } @freshness;
my @ages = map { my ($end, $now) = split / /; $end eq 'null' ? 0 : $now - $end } @freshness;
is(scalar(grep { $_ eq 'null' } @ends), 0,
	'the freshness query on the standby (last_update_end) is never blank during updates');
is(scalar(grep { $ends[$_] ne 'null' && $ends[ $_ - 1 ] ne 'null' && $ends[$_] < $ends[ $_ - 1 ] } 1 .. $#ends),
	0, 'and never goes back');
cmp_ok(scalar(keys %{ { map { $_ => 1 } @ends } }), '>', 1, 'and advances with every update');
my $freshness_summary = sprintf('age of last_update_end seen on the standby: p50 %.2f s, max %.2f s',
	percentile(0.5, @ages), max(@ages));
diag($freshness_summary);
my $metrics = q{SELECT passed_records || '/' || failed_records FROM medallion.expectation_metrics
	   WHERE expectation_name = 'positive_amount'};
is(query($standby, $metrics), query($primary, $metrics), 'expectation_metrics on the standby equal the primary');
is( query($standby,
		q{SELECT count(*) >= 5 FROM medallion.event_log
		   WHERE pipeline_name = 'live' AND event_type = 'update_end'
		     AND jsonb_array_length(details->'changed_tables') > 0}),
	't', 'the updates that changed data (what NOTIFY announces) can be polled from the event log on the standby');
like(query($standby, q{SELECT medallion.pipeline_report('live')}),
	qr/pipeline live \(continuous/, 'pipeline_report works on the standby');
is(query($standby, $medallion_backends), '0', 'still no medallion process on the standby');
note('layer_rows on the standby: '
	  . query($standby, q{SELECT layer_rows FROM medallion.pipelines WHERE pipeline_name = 'live'})
	  . ', on the primary: '
	  . query($primary, q{SELECT layer_rows FROM medallion.pipelines WHERE pipeline_name = 'live'}));

my $standby_log = substr(slurp_file($standby->logfile), $standby_log_start);
my @errors = grep { /\b(ERROR|FATAL|PANIC):/ } split /\n/, $standby_log;
is(scalar @errors, 0, 'the standby logged no error while the pipeline ran on the primary')
  or diag(join("\n", @errors[ 0 .. ($#errors < 9 ? $#errors : 9) ]));

my ($rc, $out, $err) = $standby->psql('postgres', q{SELECT * FROM medallion.run_pipeline('live')});
like($err, qr/cannot run a pipeline during recovery/, 'run_pipeline is refused on the standby');
($rc, $out, $err) = $standby->psql('postgres', q{LISTEN "medallion_live"});
like($err, qr/cannot execute LISTEN during recovery/,
	'LISTEN is refused on a standby: a replica dashboard polls instead');

# ---------------------------------------------------------- (b) failover
# A triggered update still running on the primary when it dies: its stored
# state 'running' reaches the standby.
$primary->safe_psql(
	'postgres',
	q{CREATE TABLE slow_control (seconds float8);
	  INSERT INTO slow_control VALUES (0);
	  CREATE FUNCTION slow_pause() RETURNS boolean LANGUAGE plpgsql
	      AS $f$ BEGIN PERFORM pg_sleep((SELECT seconds FROM slow_control)); RETURN true; END $f$;
	  CREATE TABLE slow_source (_row_id bigint GENERATED BY DEFAULT AS IDENTITY, v int);
	  SELECT medallion.create_pipeline('slow');
	  SELECT medallion.create_silver('slow', 'slow_target',
	      'SELECT v FROM slow_source WHERE slow_pause()');});
$primary->safe_psql('postgres',
	q{UPDATE slow_control SET seconds = 0;
	  INSERT INTO slow_source (v) VALUES (1);
	  SELECT * FROM medallion.run_pipeline('slow');
	  UPDATE slow_control SET seconds = 300;
	  INSERT INTO slow_source (v) VALUES (2), (3);});
my $slow_last_update = query($primary,
	q{SELECT last_update_end FROM medallion.pipelines WHERE pipeline_name = 'slow'});
my ($slow_out, $slow_err) = ('', '');
my $slow_run = IPC::Run::start(
	[ 'psql', '-XAtq', '-d', $primary->connstr('postgres'),
	  '-c', q{SELECT * FROM medallion.run_pipeline('slow')} ],
	'>', \$slow_out, '2>', \$slow_err);
ok($primary->poll_query_until('postgres',
		q{SELECT state = 'running' FROM medallion.pipelines WHERE pipeline_name = 'slow'}),
	'a triggered update runs on the primary');
ok($standby->poll_query_until('postgres',
		q{SELECT state = 'running' FROM medallion.pipeline WHERE pipeline_name = 'slow'}),
	'its stored state running has reached the standby');

# the batch, uploaded in the background
my $batch_dir = PostgreSQL::Test::Utils::tempdir();
for my $f ($FILES_A .. $FILES_A + $FILES_B - 1)
{
	open my $fh, '>', "$batch_dir/$files[$f][0]" or die;
	print $fh $files[$f][1];
	close $fh;
}
my ($up_out, $up_err) = ('', '');
my $uploader;
{
	my %env = aws_env();
	local @ENV{ keys %env } = values %env;
	$uploader = IPC::Run::start(
		[ '/usr/bin/aws', '--endpoint-url', $endpoint, 's3', 'cp', $batch_dir,
		  's3://landing/events/', '--recursive', '--only-show-errors' ],
		'<', \undef, '>', \$up_out, '2>', \$up_err);
}
my $ledger_count = q{SELECT count(*) FROM medallion.ingested_files WHERE pipeline_name = 'live'};
ok($primary->poll_query_until('postgres', "SELECT ($ledger_count) >= " . ($FILES_A + 10)),
	'the primary is draining the batch');

# The standby falls behind: its WAL stream is cut (as an asynchronous standby
# lagging at the moment of the crash), while the primary goes on ingesting.
$standby->append_conf('postgresql.conf', "primary_conninfo = ''");
$standby->reload;
ok($standby->poll_query_until('postgres', 'SELECT count(*) = 0 FROM pg_stat_wal_receiver'),
	'the standby no longer receives WAL');
my $at_cut = query($primary, $ledger_count);
ok($primary->poll_query_until('postgres', "SELECT ($ledger_count) >= " . ($at_cut + 8)),
	'the primary ingests more objects that the standby never receives');
my $worker_doing = query($primary,
	q{SELECT state || ': ' || coalesce(query, '') FROM pg_stat_activity
	   WHERE application_name = 'medallion worker: live'});
my $lost_wal = query($primary, 'SELECT pg_current_wal_insert_lsn()');
$primary->stop('immediate');
note("primary stopped with -m immediate while its worker was $worker_doing");

my $standby_ledger = query($standby, $ledger_count);
cmp_ok($standby_ledger, '<', $FILES_A + $FILES_B, 'the standby has only part of the batch');
my $standby_lsn = query($standby, 'SELECT pg_last_wal_replay_lsn()');
my $lost_bytes = query($standby, "SELECT pg_wal_lsn_diff('$lost_wal', '$standby_lsn')");
my $standby_paths = query($standby,
	q{SELECT string_agg(path, ',' ORDER BY path) FROM medallion.ingested_files WHERE pipeline_name = 'live'});

my $promote_requested = time();
$standby->promote;
my $new_primary = $standby;
ok($new_primary->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()'), 'the standby is promoted');
my $promoted = time();

# the pipeline resumes by itself; its first update has the rest of the
# batch to ingest, so it writes an update_start event
ok( $new_primary->poll_query_until(
		'postgres',
		qq{SELECT last_update_start > to_timestamp($promote_requested)
		     FROM medallion.pipelines WHERE pipeline_name = 'live'}),
	'the continuous pipeline resumes on the new primary by itself');
my $first_update = query($new_primary,
	qq{SELECT extract(epoch FROM min(ts)) - $promote_requested FROM medallion.event_log
	    WHERE pipeline_name = 'live' AND event_type = 'update_start' AND ts > to_timestamp($promote_requested)});
ok($new_primary->poll_query_until('postgres',
		qq{SELECT count(*) > 0 FROM medallion.ingested_files WHERE ingested_at > to_timestamp($promote_requested)}),
	'and ingests again');
my $first_ingest = query($new_primary,
	qq{SELECT extract(epoch FROM min(ingested_at)) - $promote_requested FROM medallion.ingested_files
	    WHERE ingested_at > to_timestamp($promote_requested)});
cmp_ok($first_update, '<', 10, sprintf('first update %.2f s after the promote request', $first_update));
ok($new_primary->poll_query_until('postgres',
		q{SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name = 'medallion worker: live'}),
	'one worker runs the pipeline on the new primary');

# the triggered update that died with the old primary: no stale 'running'
is(query($new_primary, q{SELECT state FROM medallion.pipelines WHERE pipeline_name = 'slow'}),
	'idle', 'the triggered update that died with the old primary is not shown running');
is(query($new_primary, q{SELECT last_update_end FROM medallion.pipelines WHERE pipeline_name = 'slow'}),
	$slow_last_update, 'and the last completed update is still shown, not an update in progress');
unlike(query($new_primary, q{SELECT medallion.pipeline_report('slow')}),
	qr/last update: never|took -/, 'pipeline_report shows the last completed update');
$slow_run->finish;
query($new_primary, 'UPDATE slow_control SET seconds = 0');
is( query($new_primary,
		q{SELECT rows_written FROM medallion.run_pipeline('slow')}),
	'2', 'run_pipeline of that pipeline works on the new primary');
is(query($new_primary, q{SELECT state FROM medallion.pipeline WHERE pipeline_name = 'slow'}),
	'idle', 'and its stored state is idle again');

# more uploads, after the batch has finished uploading
ok($uploader->finish, 'the batch upload finished') or diag($up_err);
my $after_dir = PostgreSQL::Test::Utils::tempdir();
for my $f ($FILES_A + $FILES_B .. $FILES - 1)
{
	open my $fh, '>', "$after_dir/$files[$f][0]" or die;
	print $fh $files[$f][1];
	close $fh;
}
aws_cli($s3, 's3', 'cp', $after_dir, 's3://landing/events/', '--recursive', '--only-show-errors');

ok( $new_primary->poll_query_until(
		'postgres',
		qq{SELECT ($ledger_count) = $FILES
		      AND (SELECT watermark FROM medallion.flows WHERE flow_name = 'public.silver_events')
		          >= (SELECT max(_row_id) FROM bronze_events)
		      AND (SELECT watermark FROM medallion.flows WHERE flow_name = 'public.gold_customers')
		          >= (SELECT coalesce(max(_row_id), 0) FROM silver_events)
		      AND ($aggregate_mismatches) = 0}),
	'the new primary ingests everything by itself');

# ------------------------------------------------------------- the verdict
sub lost_and_duplicated
{
	my ($reference, $actual) = @_;
	my $lost = query($new_primary, "SELECT count(*) FROM ($reference EXCEPT ALL $actual) d");
	my $dup = query($new_primary, "SELECT count(*) FROM ($actual EXCEPT ALL $reference) d");
	return "$lost/$dup";
}
my %verdict = (
	bronze => lost_and_duplicated('SELECT file_name, event_id FROM ref_events',
		q{SELECT _file_name, (data->>'event_id')::bigint FROM bronze_events}),
	silver => lost_and_duplicated('SELECT * FROM ref_events WHERE amount > 0',
		'SELECT event_id, customer_id, seq, amount, file_name FROM silver_events'),
	gold => lost_and_duplicated('TABLE ref_gold',
		'SELECT customer_id, event_id, amount, __start_at, __end_at FROM gold_customers'),
);
my $rows = $FILES * $RECORDS;
is($verdict{bronze}, '0/0', "bronze: $rows records, 0 lost, 0 duplicated");
is($verdict{silver}, '0/0', scalar(@kept) . ' silver rows, 0 lost, 0 duplicated');
is($verdict{gold}, '0/0', scalar(@gold) . ' gold SCD2 versions, 0 lost, 0 duplicated');
is(query($new_primary, 'SELECT count(*) FROM gold_customers_current'),
	scalar(keys %{ { map { $_->{customer_id} => 1 } @kept } }), 'one current version per customer');
is(query($new_primary, $aggregate_mismatches), '0', 'the aggregate equals its query');
is( query($new_primary,
		q{SELECT passed_records || '/' || failed_records FROM medallion.expectation_metrics
		   WHERE expectation_name = 'positive_amount'}),
	scalar(@kept) . '/' . ($rows - @kept),
	'the expectation counted every record once');
is( query($new_primary,
		q{SELECT count(*) || '/' || count(DISTINCT path) || '/' || sum(row_count) FROM medallion.ingested_files
		   WHERE pipeline_name = 'live' AND status = 'ingested'}),
	"$FILES/$FILES/$rows", 'the ledger has every object once, with its rows');
is( query($new_primary,
		q{SELECT state || '/' || consecutive_failures || '/' || coalesce(last_error, '-')
		    FROM medallion.pipelines WHERE pipeline_name = 'live'}),
	'running/0/-', 'the continuous pipeline is healthy on the new primary');

# A primary that is read-only by default, as pg_auto_failover keeps a
# promoted node until its monitor confirms it: the worker waits quietly, and
# runs again once the server is writable.
my $log_offset = -s $new_primary->logfile;
my $worker_pid = query($new_primary,
	q{SELECT pid FROM pg_stat_activity WHERE application_name = 'medallion worker: live'});
$new_primary->safe_psql('postgres',
	q{ALTER SYSTEM SET default_transaction_read_only = on; SELECT pg_reload_conf();});
my $read_only_wait = 0;
for (1 .. 300)
{
	last if ($read_only_wait = slurp_file($new_primary->logfile) =~ /waits: default_transaction_read_only is on/);
	usleep(50_000);
}
ok($read_only_wait, 'with default_transaction_read_only on, the worker says once that it waits');
s3_upload_string($s3, qq({"event_id": 0}\n), 'events/read-only.json');
usleep(1_500_000);    # seven trigger intervals
my @read_only_errors =
  grep { /\b(ERROR|FATAL|PANIC):/ } split /\n/, substr(slurp_file($new_primary->logfile), $log_offset);
is(scalar @read_only_errors, 0, 'and logs no error meanwhile')
  or diag(join("\n", @read_only_errors[ 0 .. ($#read_only_errors < 4 ? $#read_only_errors : 4) ]));
is( query($new_primary,
		q{SELECT pid FROM pg_stat_activity WHERE application_name = 'medallion worker: live'}),
	$worker_pid, 'the same worker stays');
$new_primary->safe_psql('postgres',
	q{ALTER SYSTEM RESET default_transaction_read_only; SELECT pg_reload_conf();});
ok($new_primary->poll_query_until('postgres',
		q{SELECT count(*) = 1 FROM bronze_events WHERE _file_name = 'read-only.json'}),
	'once the server is writable, the object uploaded meanwhile is ingested');

# What the old primary had committed: its own ledger, read with its workers
# off so that it ingests nothing more.
$primary->append_conf('postgresql.conf', 'medallion.enable_workers = off');
$primary->start;
my @old_paths = split /,/, query($primary,
	q{SELECT string_agg(path, ',' ORDER BY path) FROM medallion.ingested_files WHERE pipeline_name = 'live'});
$primary->stop('fast');
my %on_standby = map { $_ => 1 } split /,/, $standby_paths;
my @lost = grep { !$on_standby{$_} } @old_paths;
cmp_ok(scalar @lost, '>=', 8,
	sprintf('the failover lost %d objects the old primary had committed (%s bytes of WAL)',
		scalar @lost, $lost_bytes));
my $lost_list = join(',', map { "'$_'" } @lost);
is( query($new_primary,
		qq{SELECT count(*) || '/' || count(DISTINCT path) FROM medallion.ingested_files
		    WHERE path IN ($lost_list) AND ingested_at > to_timestamp($promote_requested)}),
	scalar(@lost) . '/' . scalar(@lost),
	'each of them was ingested again on the new primary, once');
my $reingested = query($new_primary,
	qq{SELECT count(*) FROM medallion.ingested_files
	    WHERE path IN (SELECT unnest(string_to_array('} . join(',', @old_paths) . qq{', ',')))
	      AND ingested_at > to_timestamp($promote_requested)});
is($reingested, scalar @lost, 'and no object the standby had received was ingested again');

my $summary = sprintf(
	'failover: %d objects, %d records; promote request -> promoted %.2f s, -> first update %.2f s, '
	  . '-> first object ingested %.2f s; objects re-ingested %d (lost with %s bytes of WAL); '
	  . 'rows lost %d, duplicated %d; %.0f s in all',
	$FILES, $rows, $promoted - $promote_requested, $first_update, $first_ingest, $reingested,
	$lost_bytes, sum(map { (split m{/})[0] } values %verdict),
	sum(map { (split m{/})[1] } values %verdict), time() - $t_start);
diag($summary);

done_testing();
