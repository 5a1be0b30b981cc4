# Append flows: several flows writing one table.
#
# 1. Two S3 prefixes feed one bronze table through two bronze flows, each
#    with its own ledger; the update worker is killed with SIGKILL while
#    each flow ingests a large object, and after the restart and another
#    run every object is in the table exactly once, in the ledger of its
#    own flow only, and a silver flow reading the table has every row once.
#    Overlapping sources are refused when the flow is created.  The second
#    source replaced (replace => true) keeps its ledger and rows; its new
#    prefix applies to new objects.
# 2. A `once` append flow backfills a silver table from a history bronze
#    table: it runs in one update only, again after a full refresh, and
#    again on demand (refresh_tables naming it); the silver table's
#    expectations, quarantine and dedup keys apply to its rows, and a flow
#    reading the silver table sees every appended row once.
#    An append flow replaced, and the silver flow of its target replaced,
#    recompute the target with every flow into it, each row once.
# 3. Observability names each flow; drop_flow of one flow of a shared
#    target keeps the table and the other flows.
use strict;
use warnings;

use File::Temp qw(tempdir);
use IPC::Run ();
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use MedallionTest;

my $s3 = start_s3(buckets => ['landing']);
my $node = start_node(
	'append',
	restart_after_crash => 'on',
	'medallion.allowed_endpoints' => $s3->{endpoint},
	'log_statement' => 'none');
my $endpoint = $s3->{endpoint};
my $work = tempdir(CLEANUP => 1);

sub psql { return $node->safe_psql('postgres', $_[0]); }

# The error of a statement that must fail.
sub psql_error
{
	my ($sql) = @_;
	my ($ret, $out, $err) = $node->psql('postgres', $sql);
	return $ret == 0 ? '(no error)' : $err;
}

# ---------- 1. two prefixes into one bronze table, with crashes ----------

# Per region: small objects around a big one; what each object holds.
my %object_rows;
for my $region (qw(us eu))
{
	for my $n (1 .. 3)
	{
		s3_upload_string($s3,
			join('', map { qq({"n": $_, "region": "$region", "object": "a$n"}\n) } 1 .. 50),
			"$region/a-$n.json");
		$object_rows{"s3://landing/$region/a-$n.json"} = 50;
	}
	my $big = "$work/$region-big.json";
	open my $fh, '>', $big or die;
	for my $line (1 .. 200_000)
	{
		print $fh qq({"n": $line, "region": "$region", "object": "big", "padding": "),
		  'x' x 200, qq("}\n);
	}
	close $fh;
	s3_upload($s3, $big, "$region/b-big.json");
	$object_rows{"s3://landing/$region/b-big.json"} = 200_000;
	for my $n (1 .. 2)
	{
		s3_upload_string($s3,
			join('', map { qq({"n": $_, "region": "$region", "object": "c$n"}\n) } 1 .. 50),
			"$region/c-$n.json");
		$object_rows{"s3://landing/$region/c-$n.json"} = 50;
	}
}
my $total_rows = 0;
$total_rows += $_ for values %object_rows;

psql(
	qq{SELECT medallion.create_secret('s3rver', 'S3RVER', 'S3RVER');
	   SELECT medallion.create_pipeline('multi');
	   SELECT medallion.create_bronze('multi', 'orders_raw', 's3://landing/us/',
	       secret_name => 's3rver', endpoint => '$endpoint');});

like(
	psql_error(
		qq{SELECT medallion.create_bronze('multi', 'orders_raw', 's3://landing/eu/',
		       secret_name => 's3rver', endpoint => '$endpoint')}),
	qr/table public\.orders_raw already has a bronze flow.*HINT:  Pass flow_name/s,
	'a second source into a bronze table without a flow name is refused with a hint');
psql(
	qq{SELECT medallion.create_bronze('multi', 'orders_raw', 's3://landing/eu/',
	       secret_name => 's3rver', endpoint => '$endpoint', flow_name => 'orders_eu')});
is( psql(
		q{SELECT string_agg(flow_name || ':' || flow_type || ':' || target_table::text, ',' ORDER BY flow_name)
		    FROM medallion.flows WHERE pipeline_name = 'multi'}),
	'public.orders_eu:bronze:orders_raw,public.orders_raw:bronze:orders_raw',
	'the second source is a flow of its own into the same table');

# overlapping sources: the same object reachable by two flows
like(
	psql_error(
		qq{SELECT medallion.create_bronze('multi', 'orders_raw', 's3://landing/us/late/',
		       secret_name => 's3rver', endpoint => '$endpoint', flow_name => 'orders_late')}),
	qr/source s3:\/\/landing\/us\/late\/ overlaps the source of flow "public\.orders_raw"/,
	'a prefix under another flow\'s prefix is refused');
like(
	psql_error(
		qq{SELECT medallion.create_bronze('multi', 'orders_raw', 's3://landing/',
		       secret_name => 's3rver', endpoint => '$endpoint', flow_name => 'orders_all',
		       options => '{"path_glob": "*.csv"}')}),
	qr/overlaps the source of flow/,
	'a prefix above other flows\' prefixes is refused, even with a path_glob');
psql(
	qq{SELECT medallion.create_bronze('multi', 'mixed_raw', 's3://landing/mixed/',
	       secret_name => 's3rver', endpoint => '$endpoint',
	       options => '{"path_glob": "*.json"}');
	   SELECT medallion.create_bronze('multi', 'mixed_raw', 's3://landing/mixed/',
	       secret_name => 's3rver', endpoint => '$endpoint', format => 'csv',
	       flow_name => 'mixed_csv', options => '{"path_glob": "*.csv"}')});
like(
	psql_error(
		qq{SELECT medallion.create_bronze('multi', 'mixed_raw', 's3://landing/mixed/',
		       secret_name => 's3rver', endpoint => '$endpoint', flow_name => 'mixed_json2',
		       options => '{"path_glob": "part-*.json"}')}),
	qr/overlaps the source of flow "public\.mixed_raw"/,
	'globs that may match one key are refused; provably disjoint ones were accepted');
like(
	psql_error(
		qq{SELECT medallion.create_bronze('multi', 'orders_raw', 's3://other/us/',
		       secret_name => 's3rver', endpoint => '$endpoint', flow_name => 'orders_eu')}),
	qr/flow "public\.orders_eu" already exists/,
	'flow names are unique');
psql(q{SELECT medallion.drop_flow('mixed_csv'); SELECT medallion.drop_flow('mixed_raw', true)});

psql(
	q{SELECT medallion.create_silver('multi', 'orders_clean',
	      $$SELECT (data->>'n')::int AS n, data->>'region' AS region, _file_path
	          FROM orders_raw$$)});

# Start an update in the background; wait until it ingests the object.
sub start_update_and_wait_for
{
	my ($key) = @_;
	my ($out, $err) = ('', '');
	my $handle = IPC::Run::start(
		[
			'psql', '-X', '-d', $node->connstr('postgres'),
			'-c', "SELECT * FROM medallion.run_pipeline('multi')"
		],
		'>', \$out, '2>', \$err);
	my $pid = '';
	for (1 .. 1500)
	{
		$pid = psql(
			qq{SELECT pid FROM pg_stat_activity
			   WHERE backend_type = 'medallion update'
			     AND query LIKE 'medallion: ingesting %$key'});
		last if $pid ne '';
		usleep(20_000);
	}
	return ($handle, $pid);
}

# The rows of each object in a table: "path=count,...", by path.
sub file_counts
{
	my ($table) = @_;
	return psql(
		qq{SELECT string_agg(_file_path || '=' || c, ',' ORDER BY _file_path COLLATE "C")
		     FROM (SELECT _file_path, count(*) AS c FROM $table GROUP BY 1) x});
}

# Every flow's ledger agrees with the rows of its objects in the table.
sub check_ledgers
{
	my ($label) = @_;
	is( psql(
			q{SELECT count(*) FROM (
			    SELECT l.flow_name, l.path, l.row_count, count(b._row_id) AS rows
			      FROM medallion.ingested_files l
			      LEFT JOIN orders_raw b ON b._file_path = l.path
			     WHERE l.pipeline_name = 'multi' AND l.status = 'ingested'
			     GROUP BY 1, 2, 3) x WHERE row_count <> rows}),
		'0',
		"$label: each flow's ledger agrees with the table");
	is( psql(
			q{SELECT count(*) FROM orders_raw b
			   WHERE NOT EXISTS (SELECT FROM medallion.ingested_files l
			                      WHERE l.pipeline_name = 'multi' AND l.path = b._file_path)}),
		'0',
		"$label: no row without a ledger entry");
}

for my $region (qw(us eu))
{
	my ($handle, $pid) = start_update_and_wait_for("$region/b-big.json");
	isnt($pid, '', "the update worker is ingesting $region/b-big.json");
	kill 'KILL', $pid if $pid ne '';
	$handle->finish;
	$node->poll_query_until('postgres', 'SELECT true')
	  or die 'server did not come back';
	is( psql(
			"SELECT count(*) FROM medallion.ingested_files WHERE path = 's3://landing/$region/b-big.json'"
		),
		'0',
		"$region/b-big.json was not committed when its worker was killed");
	check_ledgers("after the kill in $region/b-big.json");
}

psql(q{SELECT * FROM medallion.run_pipeline('multi')});
my $expected_counts = join(',',
	map { "$_=$object_rows{$_}" } sort keys %object_rows);
is(file_counts('orders_raw'),
	$expected_counts,
	'every object of both prefixes is in the table exactly once');
is( psql(
		q{SELECT string_agg(flow_name || '=' || n, ',' ORDER BY flow_name)
		    FROM (SELECT flow_name, count(*) AS n FROM medallion.ingested_files
		           WHERE pipeline_name = 'multi' AND status = 'ingested'
		             AND path LIKE (CASE WHEN flow_name = 'public.orders_eu'
		                                 THEN 's3://landing/eu/%' ELSE 's3://landing/us/%' END)
		           GROUP BY 1) x}),
	'public.orders_eu=6,public.orders_raw=6',
	'each flow\'s ledger holds the objects of its own prefix');
is( psql(
		q{SELECT count(*) FROM medallion.ingested_files WHERE pipeline_name = 'multi'}),
	'12', 'no object is in two ledgers');
check_ledgers('after the last run');
is(psql('SELECT count(DISTINCT _row_id) = count(*) FROM orders_raw'),
	't', 'one _row_id sequence serves both flows');
is(file_counts('orders_clean'),
	$expected_counts,
	'the silver flow reading the table saw every row of both sources once');
ok( psql(
		q{SELECT count(*) FROM medallion.event_log
		   WHERE pipeline_name = 'multi' AND event_type = 'flow_progress'
		     AND flow_name = 'public.orders_eu'}) > 0,
	'the event log names the second bronze flow');

# replace the second source: its new prefix applies to new objects, its
# ledger and rows stay, nothing downstream is recomputed
s3_upload_string($s3,
	join('', map { qq({"n": $_, "region": "eu", "object": "late"}\n) } 1 .. 40),
	'eu-late/d-1.json');
like(
	psql_error(
		qq{SELECT medallion.create_bronze('multi', 'orders_raw', 's3://landing/us/x/',
		       secret_name => 's3rver', endpoint => '$endpoint', flow_name => 'orders_eu',
		       replace => true)}),
	qr/source s3:\/\/landing\/us\/x\/ overlaps the source of flow "public\.orders_raw"/,
	'a replaced source is still checked against the other flows of the table');
psql(
	qq{SELECT medallion.create_bronze('multi', 'orders_raw', 's3://landing/eu-late/',
	       secret_name => 's3rver', endpoint => '$endpoint', flow_name => 'orders_eu',
	       replace => true)});
is( psql(
		q{SELECT source || ':' || refresh_pending FROM medallion.flows
		   WHERE flow_name = 'public.orders_eu'}),
	's3://landing/eu-late/:false',
	'the named bronze flow got its new source; nothing is marked for recompute');
psql(q{SELECT * FROM medallion.run_pipeline('multi')});
$object_rows{'s3://landing/eu-late/d-1.json'} = 40;
$total_rows += 40;
$expected_counts = join(',', map { "$_=$object_rows{$_}" } sort keys %object_rows);
is(file_counts('orders_raw'),
	$expected_counts,
	'after the replace: the new prefix\'s object once, the old rows kept, none twice');
is( psql(
		q{SELECT string_agg(flow_name || '=' || n, ',' ORDER BY flow_name)
		    FROM (SELECT flow_name, count(*) AS n FROM medallion.ingested_files
		           WHERE pipeline_name = 'multi' GROUP BY 1) x}),
	'public.orders_eu=7,public.orders_raw=6',
	'the replaced flow kept its ledger and added the new object to it');
check_ledgers('after replacing the second source');
is(file_counts('orders_clean'),
	$expected_counts,
	'the silver flow reading the table read the new rows only, each once');

# drop one of two flows into a table: the table and the other flow stay
like(psql_error(q{SELECT medallion.drop_flow('orders_eu', true)}),
	qr/cannot drop the target table of flow "public\.orders_eu" because other flows feed it/,
	'the table of a shared target cannot go with one of its flows');
psql(q{SELECT medallion.drop_flow('orders_eu')});
is( psql(
		q{SELECT (SELECT count(*) FROM orders_raw) || ':' ||
		         (SELECT string_agg(flow_name, ',' ORDER BY flow_name) FROM medallion.flows WHERE pipeline_name = 'multi')}),
	"$total_rows:public.orders_clean,public.orders_raw",
	'drop_flow of one flow keeps the table, its rows and the other flows');

# ---------- 2. once backfill and an append flow into a silver table ----------

sub events
{
	my ($first, $last, %amounts) = @_;
	return join('',
		map { sprintf(qq({"id": %d, "kind": "k%d", "amount": %s}\n), $_, $_ % 3, $amounts{$_} // $_) }
		  $first .. $last);
}
s3_upload_string($s3, events(1, 10, 4 => -1), 'events/e-1.json');
s3_upload_string($s3, events(10, 12), 'events/e-2.json');	# id 10 twice
s3_upload_string($s3, events(100, 104, 103 => -5) . events(1, 1), 'history/h-1.json');
s3_upload_string($s3, join('', map { qq({"id": $_, "kind": "mobile"}\n) } 200 .. 202),
	'mobile/m-1.json');

psql(
	qq{SELECT medallion.create_pipeline('shop');
	   SELECT medallion.create_bronze('shop', 'events_raw', 's3://landing/events/',
	       secret_name => 's3rver', endpoint => '$endpoint');
	   SELECT medallion.create_bronze('shop', 'history_raw', 's3://landing/history/',
	       secret_name => 's3rver', endpoint => '$endpoint');
	   SELECT medallion.create_bronze('shop', 'mobile_raw', 's3://landing/mobile/',
	       secret_name => 's3rver', endpoint => '$endpoint');
	   SELECT medallion.create_silver('shop', 'events',
	       \$\$SELECT (data->>'id')::int AS id, data->>'kind' AS kind,
	                 (data->>'amount')::numeric AS amount FROM events_raw\$\$,
	       dedup_keys => ARRAY['id'], quarantine => true);
	   SELECT medallion.add_expectation('events', 'positive_amount', 'amount > 0', 'drop');
	   -- created before the append flows into events: they still run first
	   SELECT medallion.create_silver('shop', 'event_kinds',
	       'SELECT id, kind FROM events');
	   SELECT medallion.add_append_flow('shop', 'history_backfill', 'events',
	       \$\$SELECT (data->>'amount')::numeric AS amount, (data->>'id')::int AS id,
	                 data->>'kind' AS kind FROM history_raw\$\$, once => true);
	   SELECT medallion.add_append_flow('shop', 'events_mobile', 'events',
	       \$\$SELECT (data->>'id')::int AS id, data->>'kind' AS kind FROM mobile_raw\$\$);});

like(
	psql_error(
		q{SELECT medallion.add_append_flow('shop', 'bad', 'events',
		      $$SELECT (data->>'id')::int AS id, 1 AS extra FROM mobile_raw$$)}),
	qr/column "extra" of the query is not a column of table public\.events/,
	'a query column the target lacks is an error at creation');
like(
	psql_error(
		q{SELECT medallion.add_append_flow('shop', NULL, 'events',
		      $$SELECT (data->>'id')::int AS id FROM mobile_raw$$)}),
	qr/flow_name must not be null/,
	'an append flow needs a name');
like(
	psql_error(
		q{SELECT medallion.add_append_flow('shop', 'loop', 'events_raw',
		      $$SELECT to_jsonb(e) AS data, 'x' AS _file_path, 'x' AS _file_name,
		               0 AS _file_size FROM event_kinds e$$)}),
	qr/append flow into public\.events_raw cannot read public\.event_kinds/,
	'an append flow that would feed its own input is refused');
like(
	psql_error(
		q{SELECT medallion.add_append_flow('shop', 'raw_copy', 'events_raw',
		      $$SELECT data FROM mobile_raw$$)}),
	qr/must return column "_file_path" of table public\.events_raw/,
	'a NOT NULL column without default must come from the query');
like(
	psql_error(
		q{SELECT medallion.add_append_flow('shop', 'events', 'events',
		      $$SELECT (data->>'id')::int AS id FROM mobile_raw$$, replace => true)}),
	qr/flow "public\.events" is of type silver, not append/,
	'replace => true naming a flow of another type is refused');

# what events must hold: ids of the sources whose rows pass, first of equal ids
sub check_events
{
	my ($label, @ids) = @_;
	my %seen;
	my @expected = sort { $a <=> $b } grep { !$seen{$_}++ } @ids;
	is(psql('SELECT string_agg(id::text, \',\' ORDER BY id) FROM events'),
		join(',', @expected), "$label: events holds the expected ids once");
	is( psql(
			q{SELECT (SELECT string_agg(id || kind, ',' ORDER BY id) FROM events) =
			         (SELECT string_agg(id || kind, ',' ORDER BY id) FROM event_kinds)}),
		't',
		"$label: the flow reading events saw every appended row once");
}

# The flows the last full refresh of shop reset, by name.
sub last_refreshed_flows
{
	return psql(
		q{SELECT string_agg(x, ',' ORDER BY x) FROM medallion.event_log e,
		         jsonb_array_elements_text(e.details->'flows') x
		   WHERE e.id = (SELECT max(id) FROM medallion.event_log
		                  WHERE pipeline_name = 'shop' AND event_type = 'full_refresh')});
}

my @events_ids = grep { $_ != 4 } 1 .. 12;
my @h1_ids = grep { $_ != 103 } 100 .. 104;
psql(q{SELECT * FROM medallion.run_pipeline('shop')});
check_events('first update', @events_ids, @h1_ids, 200 .. 202);
is(psql('SELECT amount IS NULL FROM events WHERE id = 200'),
	't', 'a target column the append query lacks is NULL');
is( psql(q{SELECT string_agg(id::text, ',' ORDER BY id) FROM events_quarantine}),
	'4,103',
	'drop expectations of the silver table quarantined rows of both flows');
is( psql(
		q{SELECT string_agg(flow_name || '=' || failed_records, ',' ORDER BY flow_name)
		    FROM medallion.expectation_metrics WHERE pipeline_name = 'shop'}),
	'public.events=1,public.events_mobile=0,public.history_backfill=1',
	'expectation metrics are per flow into the silver table');
is( psql(
		q{SELECT details->>'dedup_dropped' FROM medallion.event_log
		   WHERE flow_name = 'public.history_backfill' AND event_type = 'flow_progress'
		   ORDER BY id DESC LIMIT 1}),
	'1',
	'the dedup keys of the silver table dropped the backfill row already there');

# the backfill does not run again: h-2 reaches bronze, not events
s3_upload_string($s3, events(105, 106), 'history/h-2.json');
psql(q{SELECT * FROM medallion.run_pipeline('shop')});
is(psql('SELECT count(*) FROM history_raw'), '8', 'the history bronze table got h-2');
check_events('second update', @events_ids, @h1_ids, 200 .. 202);

# a full refresh runs it again
psql(q{SELECT * FROM medallion.run_pipeline('shop', full_refresh => true)});
check_events('after a full refresh', @events_ids, @h1_ids, 105, 106, 200 .. 202);

# on demand: refresh_tables naming the flow runs it again, events kept
s3_upload_string($s3, events(107, 107), 'history/h-3.json');
psql(q{SELECT * FROM medallion.run_pipeline('shop')});
check_events('an update after h-3', @events_ids, @h1_ids, 105, 106, 200 .. 202);
my $ledger = psql(q{SELECT count(*) FROM medallion.ingested_files WHERE pipeline_name = 'shop'});
psql(q{SELECT * FROM medallion.run_pipeline('shop', refresh_tables => ARRAY['history_backfill'])});
check_events('after refresh_tables naming the backfill',
	@events_ids, @h1_ids, 105 .. 107, 200 .. 202);
is( psql(
		q{SELECT details->>'rows_read' || '/' || (details->>'dedup_dropped') FROM medallion.event_log
		   WHERE flow_name = 'public.history_backfill' AND event_type = 'flow_progress'
		   ORDER BY id DESC LIMIT 1}),
	'9/7',
	'the backfill read its whole source again; rows already in events were dropped by the dedup keys');
is( psql(q{SELECT count(*) FROM medallion.ingested_files WHERE pipeline_name = 'shop'}),
	$ledger, 'nothing was ingested again');
is( psql(
		q{SELECT details->>'rows_read' FROM medallion.event_log
		   WHERE flow_name = 'public.event_kinds' AND event_type = 'flow_progress'
		   ORDER BY id DESC LIMIT 1}),
	'1',
	'the flow reading events was not reset: it read only the one new row');

# refresh_tables naming the table refreshes it with every flow into it
psql(q{SELECT * FROM medallion.run_pipeline('shop', refresh_tables => ARRAY['events'])});
is(last_refreshed_flows(),
	'public.event_kinds,public.events,public.events_mobile,public.history_backfill',
	'refresh_tables naming the table resets every flow into it and what reads it, not bronze');
check_events('after refresh_tables naming the table',
	@events_ids, @h1_ids, 105 .. 107, 200 .. 202);
is( psql(q{SELECT count(*) FROM medallion.ingested_files WHERE pipeline_name = 'shop'}),
	$ledger, 'nothing was ingested again');

# replacing the append flow recomputes events with every flow into it
# (the once backfill runs once more) and what reads it; nothing upstream
psql(
	q{SELECT medallion.add_append_flow('shop', 'events_mobile', 'events',
	      $$SELECT (data->>'id')::int AS id, data->>'kind' AS kind FROM mobile_raw
	         WHERE (data->>'id')::int <> 201$$, replace => true)});
psql(q{SELECT * FROM medallion.run_pipeline('shop')});
my @current_ids = (@events_ids, @h1_ids, 105 .. 107, 200, 202);
check_events('after replacing the append flow', @current_ids);
is(last_refreshed_flows(),
	'public.event_kinds,public.events,public.events_mobile,public.history_backfill',
	'replacing the append flow refreshed its target\'s flows and what reads it');

# replacing the silver flow of events re-runs the append flows into it,
# the once backfill included
psql(
	q{SELECT medallion.create_silver('shop', 'events',
	      $$SELECT (data->>'id')::int AS id, data->>'kind' AS kind,
	               (data->>'amount')::numeric AS amount FROM events_raw
	         WHERE (data->>'id')::int <> 12$$,
	      dedup_keys => ARRAY['id'], quarantine => true, replace => true)});
psql(q{SELECT * FROM medallion.run_pipeline('shop')});
@current_ids = grep { $_ != 12 } @current_ids;
check_events('after replacing the silver flow of events', @current_ids);
is( psql(
		q{SELECT details->>'rows_read' FROM medallion.event_log
		   WHERE flow_name = 'public.history_backfill' AND event_type = 'flow_progress'
		   ORDER BY id DESC LIMIT 1}),
	'9', 'the once backfill read its whole source again');
is( psql(q{SELECT count(*) FROM medallion.ingested_files WHERE pipeline_name = 'shop'}),
	$ledger, 'nothing was ingested again');

# ---------- 3. observability and drop_flow ----------

like(psql(q{SELECT medallion.pipeline_graph('shop')}),
	qr/n\d+ -->\|"append public\.history_backfill"\| n\d+/,
	'the graph draws the append flow as an edge of its own, named');
like(psql(q{SELECT medallion.pipeline_report('shop')}),
	qr/append\s+public\.events_mobile -> public\.events /,
	'the report says which table an append flow feeds');
is( psql(
		q{SELECT count(*) FROM medallion.table_freshness WHERE table_name = 'public.events'}),
	'1', 'a shared table shows once in table_freshness');
like(psql_error(q{SELECT medallion.drop_flow('events')}),
	qr/cannot drop silver flow "public\.events" while append flows feed its target/,
	'the silver flow of a table with append flows cannot go first');
psql(q{SELECT medallion.drop_flow('history_backfill')});
psql(q{SELECT * FROM medallion.run_pipeline('shop')});
is( psql(
		q{SELECT string_agg(flow_name, ',' ORDER BY flow_name) FROM medallion.flows
		   WHERE pipeline_name = 'shop' AND target_table = 'events'::regclass}),
	'public.events,public.events_mobile',
	'drop_flow of the backfill keeps the table and its other flows');
check_events('after dropping the backfill', @current_ids);

done_testing();
