=pod

=head1 NAME

MedallionOrders - the order pipelines that the upgrade and restore tests
(test/t/120_upgrade.pl, test/t/125_dump_restore.pl) carry across versions and
databases

=head1 FUNCTIONS

=over

=item order_batch($batch), upload_orders($s3, $batch)

The order events of batch $batch (fourteen lines, always the same bytes, so
the same ETag), and their upload as C<orders/batch-NN.json>.

=item upload_stream($s3, $n)

Five records as C<stream/part-NN.json>.

=item pipeline_sql($endpoint, $owner)

SQL that creates, as role $owner, the secret C<landing> and the pipelines
C<orders> and C<stream> (continuous).

=item orders_continue_ok($node, $database, $owner)

Three tests: silver, the current versions of gold and the aggregate of the
C<orders> pipeline equal what their definitions give over all of bronze.

=back

=cut

package MedallionOrders;

use strict;
use warnings;

use Exporter qw(import);
use Test::More ();

use MedallionTest;

our @EXPORT = qw(order_batch upload_orders upload_stream pipeline_sql
  orders_continue_ok);

# Order events of one batch: updates of nine orders, some deleted, some with
# a non-positive amount (dropped by an expectation), one duplicate event
# (deduplicated) and one line that is not JSON (rescued).
sub order_batch
{
	my ($batch) = @_;
	my @status = qw(placed paid shipped delivered);
	my $text = '';
	for my $i (1 .. 12)
	{
		$text .= sprintf(
			qq({"event_id": "e%d-%d", "order_id": %d, "status": "%s", "amount": %d, "seq": %d, "op": "%s"}\n),
			$batch, $i, 1 + ($batch * 5 + $i) % 9, $status[ ($batch + $i) % 4 ],
			($i % 6 == 0 ? -$i : 10 * $batch + $i), $batch * 100 + $i,
			($i % 11 == 0 ? 'DELETE' : 'UPSERT'));
	}
	$text .= sprintf(
		qq({"event_id": "e%d-1", "order_id": 1, "status": "placed", "amount": 1, "seq": 1, "op": "UPSERT"}\n),
		$batch);
	$text .= "not json\n";
	return $text;
}

sub upload_orders
{
	my ($s3, $batch) = @_;
	s3_upload_string($s3, order_batch($batch), sprintf('orders/batch-%02d.json', $batch));
	return;
}

sub upload_stream
{
	my ($s3, $n) = @_;
	s3_upload_string($s3, join('', map { qq({"id": $_}\n) } 10 * $n + 1 .. 10 * $n + 5),
		sprintf('stream/part-%02d.json', $n));
	return;
}

# The pipelines, created by role $owner: "orders" (bronze, silver with a drop
# expectation and quarantine, SCD2 AUTO CDC, an aggregate over the current
# versions) and "stream" (continuous, one bronze flow).
sub pipeline_sql
{
	my ($endpoint, $owner) = @_;
	return qq{
	SET ROLE $owner;
	SELECT medallion.create_secret('landing', 'S3RVER', 'S3RVER');
	SELECT medallion.create_pipeline('orders');
	SELECT medallion.create_bronze('orders', 'bronze.orders', 's3://landing/orders/',
		secret_name => 'landing', endpoint => '$endpoint');
	SELECT medallion.create_silver('orders', 'silver.orders', \$q\$
		SELECT data->>'event_id' AS event_id,
			   medallion.try_cast(data->>'order_id', NULL::integer) AS order_id,
			   data->>'status' AS status,
			   medallion.try_cast(data->>'amount', NULL::numeric) AS amount,
			   medallion.try_cast(data->>'seq', NULL::bigint) AS seq,
			   data->>'op' AS op
		  FROM bronze.orders
		 WHERE data IS NOT NULL\$q\$, dedup_keys => ARRAY['event_id'], quarantine => true);
	SELECT medallion.add_expectation('silver.orders', 'positive_amount', 'amount > 0', 'drop');
	SELECT medallion.create_auto_cdc_flow('orders', 'gold.order_history', 'silver.orders',
		keys => ARRAY['order_id'], sequence_by => 'seq', stored_as_scd_type => 2,
		apply_as_deletes => \$d\$op = 'DELETE'\$d\$,
		except_column_list => ARRAY['event_id', 'op']);
	SELECT medallion.create_aggregate('orders', 'gold.status_totals', 'gold.order_history',
		group_by => ARRAY['status'],
		aggregates => ARRAY['count(*) AS orders', 'sum(amount) AS amount'],
		filter => '__end_at IS NULL');
	SELECT medallion.create_pipeline('stream', 'continuous', '200 ms');
	SELECT medallion.create_bronze('stream', 'bronze.stream', 's3://landing/stream/',
		secret_name => 'landing', endpoint => '$endpoint');
	};
}

sub orders_continue_ok
{
	my ($node, $database, $owner) = @_;
	my $same_rows = sub {
		my ($left, $right, $name) = @_;
		Test::More::is(
			$node->safe_psql($database,
				"SET ROLE $owner; SELECT (SELECT count(*) FROM (($left) EXCEPT ALL ($right)) a) + (SELECT count(*) FROM (($right) EXCEPT ALL ($left)) b)"
			),
			'0', $name);
	};
	my $valid = q{
		SELECT DISTINCT ON (data->>'event_id') data->>'event_id' AS event_id,
			   (data->>'order_id')::int AS order_id, data->>'status' AS status,
			   (data->>'amount')::numeric AS amount, (data->>'seq')::bigint AS seq,
			   data->>'op' AS op
		  FROM bronze.orders WHERE data IS NOT NULL ORDER BY data->>'event_id', _row_id};
	$same_rows->('SELECT event_id, order_id, status, amount, seq, op FROM silver.orders',
		"SELECT * FROM ($valid) v WHERE amount > 0",
		'silver continues: deduplicated, expectation applied, over all objects');
	$same_rows->('SELECT order_id, status, amount FROM gold.order_history WHERE __end_at IS NULL',
		"SELECT order_id, status, amount FROM (SELECT DISTINCT ON (order_id) * FROM ($valid) v WHERE amount > 0 ORDER BY order_id, seq DESC) l WHERE op <> 'DELETE'",
		'gold continues: the current versions are the latest events');
	$same_rows->('SELECT status, orders, amount FROM gold.status_totals',
		'SELECT status, count(*), sum(amount) FROM gold.order_history WHERE __end_at IS NULL GROUP BY status',
		'the aggregate continues and equals its query');
	return;
}

1;
