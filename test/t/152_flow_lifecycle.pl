# Changing a pipeline's flows without re-ingesting bronze: a silver flow
# whose query fails at run time is dropped and created again with a good
# query, and the next update builds silver and gold from the bronze rows
# already there (the ledger and the bronze rows unchanged); a selective
# refresh of silver recomputes silver and gold but not bronze; a selective
# refresh of bronze forgets its ledger and ingests again.
use strict;
use warnings;

use IPC::Run ();
use Time::HiRes qw(time);
use PostgreSQL::Test::Utils;
use Test::More;
use MedallionTest;

my $s3 = start_s3(buckets => ['landing']);
my $node = start_node(
	'lifecycle',
	'medallion.allowed_endpoints' => $s3->{endpoint},
	'log_statement' => 'none');
my $endpoint = $s3->{endpoint};

sub psql { return $node->safe_psql('postgres', $_[0]); }

sub records
{
	my ($first, $last, $qty) = @_;
	return join('',
		map { sprintf(qq({"id": %d, "qty": %s}\n), $_, $qty // $_) }
		  $first .. $last);
}

s3_upload_string($s3, records(1, 5), 'orders/part-1.json');
s3_upload_string($s3, records(6, 6, '"lots"'), 'orders/part-2.json');

psql(
	qq{SELECT medallion.create_secret('s3rver', 'S3RVER', 'S3RVER');
	   SELECT medallion.create_pipeline('shop');
	   SELECT medallion.create_bronze('shop', 'raw_orders', 's3://landing/orders/',
	       secret_name => 's3rver', endpoint => '$endpoint');
	   SELECT medallion.create_silver('shop', 'orders',
	       \$\$SELECT (data->>'id')::int AS id, (data->>'qty')::int AS qty FROM raw_orders\$\$);});

# The silver query fails on the second object's record; the error names the
# flow.
my ($rc, $out, $err) =
  $node->psql('postgres', "SELECT * FROM medallion.run_pipeline('shop')");
isnt($rc, 0, 'the update with the bad silver query fails');
like($err, qr/invalid input syntax for type integer: "lots"/,
	'the caller gets the real error');
like($err, qr/public\.orders/, 'and the name of the flow that failed');
is(psql("SELECT count(*) FROM raw_orders"), '6', 'bronze ingested both objects');

my $ledger_sql = q{SELECT string_agg(path || ' ' || etag || ' ' || ingested_at, ',' ORDER BY path)
	FROM medallion.ingested_files WHERE pipeline_name = 'shop'};
my $bronze_sql = q{SELECT string_agg(_row_id::text || ' ' || _ingested_at, ',' ORDER BY _row_id)
	FROM raw_orders};
my $ledger = psql($ledger_sql);
my $bronze = psql($bronze_sql);

# Drop the bad flow with its table, create it again with a good query, and
# a gold aggregate on top of it.
psql(
	q{SELECT medallion.drop_flow('orders', drop_table => true);
	  SELECT medallion.create_silver('shop', 'orders',
	      $$SELECT (data->>'id')::int AS id,
	               medallion.try_cast(data->>'qty', NULL::int) AS qty
	          FROM raw_orders$$);
	  SELECT medallion.create_aggregate('shop', 'totals', 'orders',
	      group_by => ARRAY['qty IS NULL AS unknown'],
	      aggregates => ARRAY['count(*) AS orders', 'sum(qty) AS qty']);});
is( psql(
		q{SELECT string_agg(flow_name || '=' || rows_read || '/' || rows_written, ' ' ORDER BY flow_name)
		    FROM medallion.run_pipeline('shop')}),
	'public.orders=6/6 public.raw_orders=0/0 public.totals=6/2',
	'the next update builds silver and gold from the bronze rows already there');
is(psql($ledger_sql), $ledger, 'the ledger is unchanged: nothing ingested again');
is(psql($bronze_sql), $bronze, 'the bronze rows are unchanged');
is(psql(q{SELECT string_agg(unknown || ':' || orders || ':' || coalesce(qty, 0), ',' ORDER BY unknown) FROM totals}),
	'false:5:15,true:1:0', 'gold is right');
is( psql(
		q{SELECT string_agg(flow_name || ' ' || message, ',' ORDER BY id)
		    FROM medallion.event_log WHERE event_type = 'flow_dropped'}),
	'public.orders flow and its target table dropped',
	'the drop is in the event log');

# A selective refresh of silver: silver and gold recomputed, bronze not.
my $silver_min = psql('SELECT min(_row_id) FROM orders');
is( psql(
		q{SELECT string_agg(flow_name || '=' || rows_read || '/' || rows_written, ' ' ORDER BY flow_name)
		    FROM medallion.run_pipeline('shop', refresh_tables => ARRAY['orders'])}),
	'public.orders=6/6 public.raw_orders=0/0 public.totals=6/2',
	'refresh_tables => orders recomputes silver and gold');
cmp_ok(psql('SELECT min(_row_id) FROM orders'), '>', $silver_min,
	'silver was emptied and written again');
is(psql($ledger_sql), $ledger, 'the ledger is still unchanged');
is(psql($bronze_sql), $bronze, 'the bronze rows are still unchanged');
is(psql(q{SELECT string_agg(unknown || ':' || orders || ':' || coalesce(qty, 0), ',' ORDER BY unknown) FROM totals}),
	'false:5:15,true:1:0', 'gold is still right');

# A selective refresh of bronze forgets its ledger and ingests again, and
# everything downstream follows.
s3_upload_string($s3, records(7, 8), 'orders/part-3.json');
my $bronze_max = psql('SELECT max(_row_id) FROM raw_orders');
is( psql(
		q{SELECT string_agg(flow_name || '=' || rows_written, ' ' ORDER BY flow_name)
		    FROM medallion.run_pipeline('shop', refresh_tables => ARRAY['public.raw_orders'])}),
	'public.orders=8 public.raw_orders=8 public.totals=2',
	'refresh_tables => raw_orders ingests every object again');
is(psql("SELECT min(_row_id) > $bronze_max FROM raw_orders"), 't',
	'bronze was emptied and ingested again');
is(psql('SELECT count(*) FROM medallion.ingested_files'), '3', 'one ledger row per object');
isnt(psql($ledger_sql), $ledger, 'the ledger was written again');
is(psql(q{SELECT string_agg(unknown || ':' || orders || ':' || coalesce(qty, 0), ',' ORDER BY unknown) FROM totals}),
	'false:7:30,true:1:0', 'gold counts every record once');

# drop_flow never races an update: it stops the running one (here in a
# slow flow step, one second per row), waits for it, and then drops.
psql(
	q{SELECT medallion.create_silver('shop', 'slow',
	      $$SELECT id, pg_sleep(1) IS NULL AS slept FROM orders$$);});
my ($out_bg, $err_bg) = ('', '');
my $run = IPC::Run::start(
	[
		'psql', '-X', '-At', '-d', $node->connstr('postgres'),
		'-c', q{SELECT * FROM medallion.run_pipeline('shop', refresh_tables => ARRAY['slow'])}
	],
	'>', \$out_bg, '2>', \$err_bg);
ok( $node->poll_query_until(
		'postgres',
		q{SELECT count(*) = 1 FROM pg_stat_activity
		  WHERE backend_type = 'medallion update' AND query = 'medallion: flow public.slow'}),
	'an update runs the slow flow');
my $started = time();
psql(q{SELECT medallion.drop_flow('slow', drop_table => true)});
my $elapsed = time() - $started;
$run->finish;
cmp_ok($elapsed, '<', 8, 'drop_flow stopped the update rather than wait for its 8 rows');
note(sprintf('drop_flow returned %.2f s after it was called', $elapsed));
like($err_bg, qr/update stopped by the pipeline's owner \(drop_flow\)/,
	"the update's caller learns that drop_flow stopped it");
is(psql(q{SELECT count(*) FROM medallion.flows WHERE flow_name = 'public.slow'}),
	'0', 'the flow is gone');
is(psql(q{SELECT string_agg(flow_name || '=' || rows_written, ' ' ORDER BY flow_name)
	FROM medallion.run_pipeline('shop')}),
	'public.orders=0 public.raw_orders=0 public.totals=0',
	'the next update runs the other flows');

# Dropping the bronze flow forgets its ledger; without drop_table its
# table stays.
my ($rc_drop, $out_drop, $err_drop) =
  $node->psql('postgres', q{SELECT medallion.drop_flow('raw_orders')});
like($err_drop, qr/cannot drop flow "public\.raw_orders" because other flows read its target.*HINT:  Drop the flows that read it first: public\.orders\./s,
	'a flow read by another is not dropped, and the hint names the reader');
psql(
	q{SELECT medallion.drop_flow('totals');
	  SELECT medallion.drop_flow('orders');
	  SELECT medallion.drop_flow('raw_orders');});
is(psql('SELECT count(*) FROM medallion.ingested_files'), '0', 'the ledger went with the bronze flow');
is(psql('SELECT count(*) FROM raw_orders'), '8', 'its table stays');
is(psql(q{SELECT count(*) FROM medallion.flows WHERE pipeline_name = 'shop'}), '0', 'no flow is left');

$node->stop;
$s3->stop;
done_testing();
