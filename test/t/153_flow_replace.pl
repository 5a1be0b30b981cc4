# replace => true over real S3: replacing a silver query recomputes silver
# and gold from the bronze rows already there (the ledger and the bronze
# rows unchanged: nothing ingested again), also when the server restarts
# between the replace and the update; replacing a bronze flow's options
# (path_glob) keeps its ledger and rows, and the new options apply to new
# objects only; a continuous pipeline recomputes a replaced flow too.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use MedallionTest;

my $s3 = start_s3(buckets => ['landing']);
my $node = start_node(
	'replace',
	'medallion.enable_workers' => 'on',
	'medallion.allowed_endpoints' => $s3->{endpoint},
	'log_statement' => 'none');
my $endpoint = $s3->{endpoint};

sub psql { return $node->safe_psql('postgres', $_[0]); }

sub records
{
	my ($first, $last) = @_;
	return join('',
		map { sprintf(qq({"id": %d, "qty": %d, "price": "%d.50"}\n), $_, $_, $_) }
		  $first .. $last);
}

sub run_counts
{
	return psql(
		q{SELECT string_agg(flow_name || '=' || rows_read || '/' || rows_written, ' ' ORDER BY flow_name)
		    FROM medallion.run_pipeline('shop')});
}

s3_upload_string($s3, records(1, 4), 'orders/part-1.json');
s3_upload_string($s3, records(5, 6), 'orders/part-2.txt');

psql(
	qq{SELECT medallion.create_secret('s3rver', 'S3RVER', 'S3RVER');
	   SELECT medallion.create_pipeline('shop');
	   SELECT medallion.create_bronze('shop', 'raw_orders', 's3://landing/orders/',
	       secret_name => 's3rver', endpoint => '$endpoint');
	   SELECT medallion.create_silver('shop', 'orders',
	       \$\$SELECT (data->>'id')::int AS id, (data->>'qty')::int AS qty,
	                data->>'price' AS price FROM raw_orders\$\$);
	   SELECT medallion.create_aggregate('shop', 'totals', 'orders',
	       group_by => ARRAY['id % 2 AS odd'], aggregates => ARRAY['sum(qty) AS qty']);});
is(run_counts(), 'public.orders=6/6 public.raw_orders=6/6 public.totals=6/2',
	'the first update ingests both objects');

my $ledger_sql = q{SELECT string_agg(path || ' ' || etag || ' ' || ingested_at, ',' ORDER BY path)
	FROM medallion.ingested_files WHERE pipeline_name = 'shop'};
my $bronze_sql = q{SELECT string_agg(_row_id::text || ' ' || _ingested_at, ',' ORDER BY _row_id)
	FROM raw_orders};
my $ledger = psql($ledger_sql);
my $bronze = psql($bronze_sql);
my $orders_oid = psql(q{SELECT 'orders'::regclass::oid});

# Replace the silver query: price becomes numeric, a column is added.
psql(
	q{GRANT SELECT ON orders TO PUBLIC;
	  SELECT medallion.create_silver('shop', 'orders',
	      $$SELECT (data->>'id')::int AS id, (data->>'qty')::int AS qty,
	               (data->>'price')::numeric AS price, (data->>'qty')::int * 10 AS qty10
	          FROM raw_orders$$, replace => true);});
is( psql(
		q{SELECT string_agg(flow_name, ',' ORDER BY flow_name) FROM medallion.flows
		   WHERE pipeline_name = 'shop' AND refresh_pending}),
	'public.orders,public.totals', 'silver and gold wait for their recompute, bronze does not');

# The marks survive a restart: the next update after it recomputes.
$node->restart;
is(run_counts(), 'public.orders=6/6 public.raw_orders=0/0 public.totals=6/2',
	'after a restart, the next update recomputes silver and gold from bronze');
is(psql($ledger_sql), $ledger, 'the ledger is unchanged: nothing ingested again');
is(psql($bronze_sql), $bronze, 'the bronze rows are unchanged');
is(psql(q{SELECT string_agg(id || ':' || price || ':' || qty10, ',' ORDER BY id) FROM orders}),
	'1:1.50:10,2:2.50:20,3:3.50:30,4:4.50:40,5:5.50:50,6:6.50:60',
	'silver has the new columns and types');
is(psql(q{SELECT 'orders'::regclass::oid}), $orders_oid, 'silver is the same table');
is(psql(q{SELECT has_table_privilege('public', 'orders', 'SELECT')}), 't', 'its grant stays');
is(psql(q{SELECT string_agg(odd || ':' || qty, ',' ORDER BY odd) FROM totals}),
	'0:12,1:9', 'gold is right');
is(psql(q{SELECT count(*) FROM medallion.flows WHERE refresh_pending}), '0',
	'no flow waits any more');

# Replace the bronze flow's options: new objects only, the ledger stays.
psql(
	qq{SELECT medallion.create_bronze('shop', 'raw_orders', 's3://landing/orders/',
	       secret_name => 's3rver', endpoint => '$endpoint',
	       options => '{"path_glob": "*.json"}', replace => true);});
is(psql(q{SELECT count(*) FROM medallion.flows WHERE refresh_pending}), '0',
	'replacing bronze recomputes nothing');
is(psql($ledger_sql), $ledger, 'the ledger stays');
is(psql($bronze_sql), $bronze, 'the bronze rows stay');
is( psql(
		q{SELECT definition->'options'->>'path_glob' FROM medallion.flows
		   WHERE flow_name = 'public.raw_orders'}),
	'*.json', 'the new options are recorded');
is( psql(
		q{SELECT message || ' ' || (details->'recompute')::text FROM medallion.event_log
		   WHERE event_type = 'flow_replaced' AND flow_name = 'public.raw_orders'}),
	'flow replaced; its new definition applies to new objects []',
	'the event log says what the replace did');

s3_upload_string($s3, records(7, 8), 'orders/part-3.json');
s3_upload_string($s3, records(9, 9), 'orders/part-4.txt');
is(run_counts(), 'public.orders=2/2 public.raw_orders=2/2 public.totals=2/2',
	'the next update ingests the new object the glob takes, incrementally downstream');
is( psql(q{SELECT string_agg(path, ',' ORDER BY path) FROM medallion.ingested_files}),
	's3://landing/orders/part-1.json,s3://landing/orders/part-2.txt,s3://landing/orders/part-3.json',
	'the old objects stay in the ledger; the new .txt object is left alone');
is(psql(q{SELECT string_agg(odd || ':' || qty, ',' ORDER BY odd) FROM totals}),
	'0:20,1:16', 'gold is right');

# A continuous pipeline's worker recomputes a replaced flow at its next
# update too.
my $ledger_now = psql($ledger_sql);
psql(
	q{SELECT medallion.alter_pipeline('shop', mode => 'continuous',
	      trigger_interval => '200 milliseconds');
	  SELECT medallion.create_silver('shop', 'orders',
	      $$SELECT (data->>'id')::int AS id, (data->>'qty')::int AS qty,
	               (data->>'price')::numeric AS price, (data->>'qty')::int * 100 AS qty10
	          FROM raw_orders$$, replace => true);});
ok( $node->poll_query_until(
		'postgres',
		q{SELECT count(*) = 8 AND min(qty10) = 100 FROM orders}),
	'the continuous worker recomputes the replaced silver flow');
ok( $node->poll_query_until(
		'postgres',
		q{SELECT string_agg(odd || ':' || qty, ',' ORDER BY odd) = '0:20,1:16' FROM totals}),
	'and the aggregate downstream');
is( psql(
		q{SELECT details->>'flows' FROM medallion.event_log
		   WHERE event_type = 'full_refresh' ORDER BY id DESC LIMIT 1}),
	'["public.orders", "public.totals"]',
	'the worker refreshed exactly the replaced flow and the one downstream');
is(psql(q{SELECT count(*) FROM medallion.flows WHERE refresh_pending}), '0',
	'no flow waits any more');
is(psql($ledger_sql), $ledger_now, 'bronze ingested nothing again');
psql(q{SELECT medallion.stop_pipeline('shop')});

$node->stop;
$s3->stop;
done_testing();
