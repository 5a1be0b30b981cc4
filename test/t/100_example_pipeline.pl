# The example pipeline (examples/orders_pipeline.sql), in triggered mode, on
# generated order events uploaded with the AWS CLI: after the updates, its
# silver and gold tables equal a reference the test computes itself from the
# generated lines (loaded with COPY into a plain table, then deduplicated,
# filtered by the expectations and reduced per order in SQL that does not
# use medallion).
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

# Five batches of events with late, duplicate and invalid records, and the
# discount field from the third batch on.
my $order = 1;
my $sequence = 0;
for my $batch (1 .. 5)
{
	my $dir = "$work/batch$batch";
	system('python3', "$root/bench/generate_orders.py", '--events', '400',
		'--files', '2', '--out', $dir, '--prefix', sprintf('batch-%02d-', $batch),
		'--seed', $batch, '--first-order', $order, '--first-sequence', $sequence,
		'--start', sprintf('2026-09-%02dT00:00:00+00:00', $batch * 3),
		'--late-rate', '0.05', '--duplicate-rate', '0.05', '--invalid-rate', '0.05',
		'--discount-rate', ($batch >= 3 ? '0.4' : '0')) == 0
	  or die 'generate_orders.py failed';
	$order += 200;
	$sequence += 400;
	aws_cli($s3, 's3', 'cp', $dir, 's3://landing/orders/', '--recursive',
		'--only-show-errors');
}
# a line that is not JSON at all
s3_upload_string($s3, "this is not json\n", 'orders/batch-99-garbage.json');

my $endpoint = $s3->{endpoint};
my ($ret, $out, $err) = $node->psql('postgres', undef,
	extra_params => [ '-v', "endpoint=$endpoint", '-v', 'mode=triggered',
		'-v', 'access_key_id=S3RVER', '-v', 'secret_access_key=S3RVER',
		'-v', 'ON_ERROR_STOP=1', '-f', "$root/examples/orders_pipeline.sql" ]);
is($ret, 0, 'examples/orders_pipeline.sql runs') or diag $err;

my $updates = 0;
while ($updates++ < 20)
{
	last if $node->safe_psql('postgres',
		"SELECT coalesce(sum(rows_written), 0) FROM medallion.run_pipeline('orders')") eq '0';
}
is($node->safe_psql('postgres',
		"SELECT count(*) FROM medallion.ingested_files WHERE status = 'ingested'"),
	'11', 'every uploaded object is ingested');

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

done_testing();
