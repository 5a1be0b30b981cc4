# The example pipeline (examples/orders_pipeline.sql), in triggered mode, on
# generated order and customer events uploaded with the AWS CLI: after the
# updates, its silver and gold tables equal a reference the test computes
# itself from the generated lines (loaded with COPY into a plain table, then
# deduplicated, filtered by the expectations and reduced per order in SQL
# that does not use medallion). The join view gold.revenue_by_region equals
# its query after the first load, after more order and customer files, and
# after a customer moves region, and is maintained by deltas throughout.
use strict;
use warnings;

use File::Temp qw(tempdir);
use PostgreSQL::Test::Utils;
use Test::More;
use MedallionTest;

my $s3 = start_s3(buckets => ['landing']);
my $node = start_node('example');
my $work = tempdir(CLEANUP => 1);
my $root = $MedallionTest::root;

# Five batches of order events with late, duplicate and invalid records, and
# the discount field from the third batch on, each with the customer events
# of the customers it names (creations, moves, renames). Batches 1 to 3 are
# there before the pipeline is created, 4 and 5 come later.
my $order = 1;
my $sequence = 0;

sub upload_batch
{
	my ($batch) = @_;
	my $dir = "$work/batch$batch";
	my $prefix = sprintf('batch-%02d-', $batch);
	system('python3', "$root/bench/generate_orders.py", '--events', '400',
		'--files', '2', '--out', $dir, '--prefix', $prefix,
		'--seed', $batch, '--first-order', $order, '--first-sequence', $sequence,
		'--start', sprintf('2026-09-%02dT00:00:00+00:00', $batch * 3),
		'--late-rate', '0.05', '--duplicate-rate', '0.05', '--invalid-rate', '0.05',
		'--discount-rate', ($batch >= 3 ? '0.4' : '0'),
		'--customers-out', "$work/customers$batch", '--customer-prefix', $prefix,
		'--customer-change-rate', '0.3') == 0
	  or die 'generate_orders.py failed';
	$order += 200;
	$sequence += 400;
	aws_cli($s3, 's3', 'cp', $dir, 's3://landing/orders/', '--recursive',
		'--only-show-errors');
	aws_cli($s3, 's3', 'cp', "$work/customers$batch", 's3://landing/customers/',
		'--recursive', '--only-show-errors');
	return;
}
upload_batch($_) for 1 .. 3;
# a line that is not JSON at all
s3_upload_string($s3, "this is not json\n", 'orders/batch-99-garbage.json');

my $endpoint = $s3->{endpoint};
my ($ret, $out, $err) = $node->psql('postgres', undef,
	extra_params => [ '-v', "endpoint=$endpoint", '-v', 'mode=triggered',
		'-v', 'access_key_id=S3RVER', '-v', 'secret_access_key=S3RVER',
		'-v', 'ON_ERROR_STOP=1', '-f', "$root/examples/orders_pipeline.sql" ]);
is($ret, 0, 'examples/orders_pipeline.sql runs') or diag $err;

# Updates until one writes nothing.
sub run_until_idle
{
	my $updates = 0;
	while ($updates++ < 20)
	{
		last if $node->safe_psql('postgres',
			"SELECT coalesce(sum(rows_written), 0) FROM medallion.run_pipeline('orders')") eq '0';
	}
	return;
}

# The join view equals its query (as a bag, both ways), and was maintained by
# deltas (when $by_deltas: what the last update that ran it did; its first
# computation is whole).
sub view_equals_query
{
	my ($when, $by_deltas) = @_;
	my $query = $node->safe_psql('postgres',
		q{SELECT definition->>'query' FROM medallion.flows
		   WHERE flow_name = 'gold.revenue_by_region'});
	is( $node->safe_psql('postgres',
			"SELECT (SELECT count(*) FROM (($query) EXCEPT ALL
			                               SELECT * FROM gold.revenue_by_region) a)
			      + (SELECT count(*) FROM (SELECT * FROM gold.revenue_by_region
			                               EXCEPT ALL ($query)) b)"),
		'0', "gold.revenue_by_region equals its query $when");
	return unless $by_deltas;
	is( $node->safe_psql('postgres',
			q{SELECT details->>'maintenance' FROM medallion.event_log
			   WHERE flow_name = 'gold.revenue_by_region' AND event_type = 'flow_progress'
			     AND details ? 'maintenance' ORDER BY id DESC LIMIT 1}),
		'deltas', "its last update applied deltas $when");
	return;
}

run_until_idle();
is($node->safe_psql('postgres', 'SELECT count(*) > 0 FROM gold.revenue_by_region'),
	't', 'the join view has rows after the first load');
is( $node->safe_psql('postgres',
		q{SELECT definition->>'maintenance' || coalesce(definition->>'maintenance_reason', '')
		    FROM medallion.flows WHERE flow_name = 'gold.revenue_by_region'}),
	'incremental', 'gold.revenue_by_region is maintained by deltas');
view_equals_query('after the first load');

# More order and customer files: the view follows by deltas.
upload_batch($_) for 4 .. 5;
run_until_idle();
view_equals_query('after more order and customer files', 1);

is($node->safe_psql('postgres',
		"SELECT count(*) FROM medallion.ingested_files WHERE status = 'ingested'"),
	'21', 'every uploaded object is ingested (11 of orders, 10 of customers)');

# The reference, from the raw lines.
my @lines;
for my $file (sort glob("$work/batch*/*.json"))
{
	open my $fh, '<', $file or die;
	while (my $line = <$fh>)
	{
		chomp $line;
		push @lines, $line if $line ne '';
	}
	close $fh;
}
push @lines, 'this is not json';
$node->safe_psql('postgres',
	'CREATE TABLE ref_raw (n serial, line text); CREATE TABLE ref_lines (n int, doc jsonb)');
open my $copy, '>', "$work/lines.txt" or die;
print $copy join("\n", map { s/\\/\\\\/gr } @lines), "\n";
close $copy;
chmod 0644, "$work/lines.txt";
$node->safe_psql('postgres',
	"COPY ref_raw (line) FROM '$work/lines.txt' WITH (FORMAT text)");
$node->safe_psql(
	'postgres', q{
	CREATE FUNCTION ref_json(t text) RETURNS jsonb LANGUAGE plpgsql AS
	  $$BEGIN RETURN t::jsonb; EXCEPTION WHEN others THEN RETURN NULL; END$$;
	CREATE FUNCTION ref_num(t text, kind text) RETURNS numeric LANGUAGE plpgsql AS
	  $$BEGIN IF kind = 'int' THEN RETURN t::int; ELSE RETURN t::numeric; END IF;
	    EXCEPTION WHEN others THEN RETURN NULL; END$$;
	CREATE FUNCTION ref_ts(t text) RETURNS timestamptz LANGUAGE plpgsql AS
	  $$BEGIN RETURN t::timestamptz; EXCEPTION WHEN others THEN RETURN NULL; END$$;
	CREATE VIEW ref_valid AS
	  SELECT n, doc->>'event_id' AS event_id,
	         ref_num(doc->>'order_id', 'int')::bigint AS order_id,
	         ref_num(doc->>'customer_id', 'int')::int AS customer_id,
	         doc->>'category' AS category,
	         ref_num(doc->>'quantity', 'int')::int AS quantity,
	         ref_num(doc->>'unit_price', 'num') AS unit_price,
	         coalesce(ref_num(doc->>'discount', 'num'), 0) AS discount,
	         doc->>'status' AS status, doc->>'operation' AS operation,
	         ref_ts(doc->>'event_ts') AS event_ts,
	         ref_num(doc->>'sequence', 'int')::bigint AS sequence
	    FROM (SELECT n, ref_json(line) AS doc FROM ref_raw) r
	   WHERE doc IS NOT NULL;
	CREATE VIEW ref_silver AS
	  SELECT DISTINCT ON (event_id) * FROM ref_valid
	   WHERE quantity IS NOT NULL AND quantity > 0
	     AND order_id IS NOT NULL AND event_ts IS NOT NULL
	   ORDER BY event_id, n;
	CREATE VIEW ref_current AS
	  SELECT * FROM (SELECT DISTINCT ON (order_id) * FROM ref_silver
	                  ORDER BY order_id, sequence DESC) last
	   WHERE operation <> 'DELETE';
	CREATE VIEW ref_daily AS
	  SELECT (event_ts AT TIME ZONE 'UTC')::date AS order_date,
	         sum(quantity * unit_price * (1 - discount)) AS revenue,
	         sum(quantity) AS quantity, count(DISTINCT order_id) AS orders
	    FROM ref_current GROUP BY 1;
	CREATE VIEW ref_daily_category AS
	  SELECT (event_ts AT TIME ZONE 'UTC')::date AS order_date, category,
	         sum(quantity * unit_price * (1 - discount)) AS revenue,
	         sum(quantity) AS quantity, count(DISTINCT order_id) AS orders
	    FROM ref_current GROUP BY 1, 2;
});

sub same
{
	my ($left, $right, $name) = @_;
	my $diff = $node->safe_psql('postgres',
		"SELECT (SELECT count(*) FROM (($left) EXCEPT ALL ($right)) a)
		      + (SELECT count(*) FROM (($right) EXCEPT ALL ($left)) b)");
	is($diff, '0', $name);
}

is( $node->safe_psql('postgres',
		'SELECT count(*) || \',\' || count(_rescued_data) FROM bronze.order_events'),
	scalar(@lines) . ',1',
	'bronze has every line, the garbage one rescued');
same('SELECT event_id, order_id, quantity, discount, sequence FROM silver.order_events',
	'SELECT event_id, order_id, quantity, discount, sequence FROM ref_silver',
	'silver equals the reference (dedup on event_id, drop expectations)');
is( $node->safe_psql('postgres', 'SELECT count(*) FROM silver.order_events_quarantine')
	  + 0 > 0 ? 'yes' : 'no',
	'yes', 'invalid events are quarantined');
same(
	'SELECT order_id, status, quantity, unit_price, discount, category FROM gold.order_history_current',
	'SELECT order_id, status, quantity, unit_price, discount, category FROM ref_current',
	'gold current orders equal the latest event of each order, cancelled orders removed');
same('SELECT order_date, revenue, quantity, orders FROM gold.daily_sales',
	'SELECT order_date, revenue, quantity, orders FROM ref_daily',
	'gold.daily_sales equals the reference');
same(
	'SELECT order_date, category, revenue, quantity, orders FROM gold.daily_sales_by_category',
	'SELECT order_date, category, revenue, quantity, orders FROM ref_daily_category',
	'gold.daily_sales_by_category equals the reference');
is( $node->safe_psql('postgres',
		q{SELECT count(*) FROM medallion.expectation_metrics WHERE failed_records > 0
		  AND expectation_name IN ('valid_quantity', 'has_order_id', 'has_event_ts')}),
	'3',
	'the drop expectations counted their failures');

# Customers: the latest event of each customer (SCD type 1), and the join
# view against the same join over the references.
my @customer_lines;
for my $file (sort glob("$work/customers*/*.json"))
{
	open my $fh, '<', $file or die;
	push @customer_lines, grep { $_ ne '' } map { chomp; $_ } <$fh>;
	close $fh;
}
open $copy, '>', "$work/customers.txt" or die;
print $copy join("\n", map { s/\\/\\\\/gr } @customer_lines), "\n";
close $copy;
chmod 0644, "$work/customers.txt";
$node->safe_psql(
	'postgres', qq{
	CREATE TABLE ref_customer_raw (doc jsonb);
	COPY ref_customer_raw FROM '$work/customers.txt' WITH (FORMAT text);
	CREATE VIEW ref_customers AS
	  SELECT DISTINCT ON (customer_id) (doc->>'customer_id')::int AS customer_id,
	         doc->>'name' AS name, doc->>'region' AS region, doc->>'segment' AS segment
	    FROM ref_customer_raw ORDER BY customer_id, (doc->>'sequence')::bigint DESC;
	CREATE VIEW ref_revenue_by_region AS
	  SELECT c.region, sum(o.quantity * o.unit_price * (1 - o.discount)) AS revenue,
	         count(*) AS orders, count(DISTINCT o.customer_id) AS customers
	    FROM ref_current o JOIN ref_customers c ON c.customer_id = o.customer_id
	   GROUP BY c.region;
});
is($node->safe_psql('postgres', 'SELECT count(*) FROM bronze.customer_events'),
	scalar(@customer_lines), 'bronze has every customer line');
is( $node->safe_psql('postgres',
		q{SELECT count(*) FROM ref_customer_raw
		   WHERE (doc->>'sequence')::bigint > 100000}) > 0 ? 'yes' : 'no',
	'yes', 'customers moved or were renamed');
same('SELECT customer_id, name, region, segment FROM gold.customers',
	'SELECT customer_id, name, region, segment FROM ref_customers',
	'gold.customers holds the latest event of each customer');
same('SELECT region, revenue, orders, customers FROM gold.revenue_by_region',
	'SELECT region, revenue, orders, customers FROM ref_revenue_by_region',
	'gold.revenue_by_region equals the join of the references');

# A customer moves region: its revenue moves with it.
my ($customer, $from, $revenue) = split /\|/, $node->safe_psql(
	'postgres', q{
	SELECT c.customer_id, c.region, sum(o.quantity * o.unit_price * (1 - o.discount))
	  FROM gold.order_history o JOIN gold.customers c USING (customer_id)
	 WHERE o.__end_at IS NULL
	 GROUP BY 1, 2 ORDER BY 3 DESC, 1 LIMIT 1});
my $to = $from eq 'south' ? 'west' : 'south';
my $before = $node->safe_psql('postgres',
	"SELECT string_agg(region || '=' || revenue, ',' ORDER BY region)
	   FROM gold.revenue_by_region WHERE region IN ('$from', '$to')");
s3_upload_string($s3,
	qq({"event_id": "cu-move-1", "customer_id": $customer, "name": "Moved Farms", )
	  . qq("region": "$to", "segment": "cooperative", "operation": "UPSERT", )
	  . qq("event_ts": "2026-10-01T00:00:00Z", "sequence": 99000000}\n),
	'customers/move-1.json');
run_until_idle();
view_equals_query('after a customer moved region', 1);
is( $node->safe_psql('postgres',
		"SELECT string_agg(region || '=' || revenue, ',' ORDER BY region)
		   FROM (VALUES ('$from', -1), ('$to', 1)) m(region, sign)
		   LEFT JOIN (SELECT region, revenue FROM gold.revenue_by_region) r USING (region)"),
	$node->safe_psql('postgres',
		"SELECT string_agg(region || '=' || (coalesce(b.revenue, 0) + m.sign * $revenue),
		                   ',' ORDER BY region)
		   FROM (VALUES ('$from', -1), ('$to', 1)) m(region, sign)
		   LEFT JOIN (SELECT split_part(x, '=', 1) AS region,
		                     split_part(x, '=', 2)::numeric AS revenue
		                FROM unnest(string_to_array('$before', ',')) x) b USING (region)"),
	"customer $customer moving from $from to $to moved its revenue $revenue");

# The window-function view is recomputed in full, and says why.
like( $node->safe_psql('postgres',
		q{SELECT definition->>'maintenance' || ': ' || (definition->>'maintenance_reason')
		    FROM medallion.flows WHERE flow_name = 'gold.customer_rank'}),
	qr/^full: window function rank\(\) at position \d+$/,
	'gold.customer_rank is recomputed in full, with the reason');
my $report = $node->safe_psql('postgres', q{SELECT medallion.pipeline_report('orders')});
note $report;
like($report, qr/gold\.revenue_by_region.*maintained by deltas/, 'the report shows the deltas');
like($report, qr/gold\.customer_rank.*recomputed in full: window function rank\(\)/,
	'the report shows the recompute and its reason');
same('SELECT * FROM gold.customer_rank',
	q{SELECT c.region, c.customer_id, c.name,
	         sum(o.quantity * o.unit_price * (1 - o.discount)),
	         rank() OVER (PARTITION BY c.region
	                      ORDER BY sum(o.quantity * o.unit_price * (1 - o.discount)) DESC)
	    FROM gold.order_history o JOIN gold.customers c USING (customer_id)
	   WHERE o.__end_at IS NULL GROUP BY 1, 2, 3},
	'gold.customer_rank equals its query');

done_testing();
