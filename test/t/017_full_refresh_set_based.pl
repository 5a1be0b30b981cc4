# A full refresh, or a triggered update with a backlog of several batches,
# derives each flow's output once over its whole input instead of batch
# after batch (issue 14): bronze still commits one batch of
# max_files_per_batch at a time, but the aggregate flows run once, after the
# last batch, and build their target with one GROUP BY (full_recompute);
# in a full refresh, silver and AUTO CDC wait for the last batch too.  The
# gold a full refresh gives equals the gold of the incremental updates.
#
# Covers: six incremental updates of one object each, then a full refresh
# of 12 objects in batches of 4 (three bronze batches, one step of silver,
# SCD2 and each aggregate); a backlog of 8 objects (two batches) with the
# aggregate run once; gold (SCD2 history, an aggregate with
# count(DISTINCT), an aggregate with min and max) equal before and after.
use strict;
use warnings;

use File::Temp qw(tempdir);
use PostgreSQL::Test::Utils;
use Test::More;
use MedallionTest;

my $s3 = start_s3(buckets => ['landing']);
my $node = start_node('full_refresh_set_based',
	'medallion.allowed_endpoints' => $s3->{endpoint});
my $endpoint = $s3->{endpoint};
my $work = tempdir(CLEANUP => 1);

sub psql { return $node->safe_psql('postgres', $_[0]); }

# Upload objects o-NNNN.json, numbers $first .. $last, with one AWS CLI
# call: per object, five events of orders among 60 with a status, an amount and
# a sequence, so that later objects update earlier orders' versions.
sub upload_objects
{
	my ($first, $last) = @_;
	my $dir = "$work/o-$first";
	mkdir $dir or die "mkdir $dir: $!";
	for my $n ($first .. $last)
	{
		open my $fh, '>', sprintf('%s/o-%04d.json', $dir, $n) or die;
		for my $i (0 .. 4)
		{
			my $order = ($n * 7 + $i) % 60;
			printf $fh
			  qq({"order_id": %d, "status": "s%d", "amount": %d, "day": %d, "seq": %d}\n),
			  $order, ($n + $i) % 3, $n * 10 + $i, $i % 2, $n * 10 + $i;
		}
		close $fh;
	}
	aws_cli($s3, 's3', 'cp', $dir, 's3://landing/o/', '--recursive',
		'--only-show-errors');
}

psql(
	qq{SELECT medallion.create_secret('s3rver', 'S3RVER', 'S3RVER');
	   SELECT medallion.create_pipeline('fr');
	   SELECT medallion.create_bronze('fr', 'bronze_o', 's3://landing/o/',
	       secret_name => 's3rver', endpoint => '$endpoint',
	       options => '{"max_files_per_batch": 4}');
	   SELECT medallion.create_silver('fr', 'silver_o',
	       \$q\$SELECT (data->>'order_id')::int AS order_id, data->>'status' AS status,
	                  (data->>'amount')::int AS amount, (data->>'day')::int AS day,
	                  (data->>'seq')::bigint AS seq
	             FROM bronze_o\$q\$);
	   SELECT medallion.create_auto_cdc_flow('fr', 'gold_o', 'silver_o',
	       keys => ARRAY['order_id'], sequence_by => 'seq', stored_as_scd_type => 2);
	   SELECT medallion.create_aggregate('fr', 'gold_by_day', 'gold_o',
	       ARRAY['day'], ARRAY['count(*) AS orders', 'sum(amount) AS amount',
	                           'count(DISTINCT status) AS statuses'],
	       filter => '__end_at IS NULL');
	   SELECT medallion.create_aggregate('fr', 'gold_by_status', 'gold_o',
	       ARRAY['status'], ARRAY['min(amount) AS low', 'max(amount) AS high',
	                              'count(*) AS orders'],
	       filter => '__end_at IS NULL');});

# Steps of a flow in the last update: "<steps>:<full recomputes>".
sub steps_of
{
	my ($flow) = @_;
	return psql(
		qq{SELECT count(*) || ':' || count(*) FILTER (WHERE details->>'full_recompute' = 'true')
		     FROM medallion.event_log
		    WHERE flow_name = '$flow' AND event_type = 'flow_progress'
		      AND update_id = (SELECT max(update_id) FROM medallion.event_log
		                        WHERE pipeline_name = 'fr')});
}

# --------------------------------------------- incremental, object by object
for my $n (1 .. 6)
{
	upload_objects($n, $n);
	psql(q{SELECT count(*) FROM medallion.run_pipeline('fr')});
}
my $gold_query = q{
	SELECT 'h', order_id::text, status, amount::text, seq::text, __start_at::text,
	       coalesce(__end_at::text, '') FROM gold_o
	UNION ALL SELECT 'd', day::text, orders::text, amount::text, statuses::text, '', ''
	  FROM gold_by_day
	UNION ALL SELECT 's', status, low::text, high::text, orders::text, '', ''
	  FROM gold_by_status};
psql("CREATE TABLE gold_incremental AS $gold_query");
cmp_ok(psql('SELECT count(*) FROM gold_incremental'), '>', 10,
	'the incremental updates built gold');

# --------------------------------------- backlog: the aggregates run once
upload_objects(7, 14);
psql(q{SELECT count(*) FROM medallion.run_pipeline('fr')});
is(steps_of('public.bronze_o'), '2:0', 'a backlog of 8 objects takes two bronze batches');
is(steps_of('public.silver_o'), '2:0', 'silver processes each batch of an incremental update');
like(steps_of('public.gold_by_day'), qr/^1:/,
	'the aggregate runs once, after the last batch, over all the changes');
psql("CREATE TABLE gold_backlog AS $gold_query");

sub same
{
	my ($left, $right, $name) = @_;
	is( psql(
			"SELECT (SELECT count(*) FROM (($left) EXCEPT ALL ($right)) a)
			      + (SELECT count(*) FROM (($right) EXCEPT ALL ($left)) b)"),
		'0', $name);
}

same($gold_query, 'SELECT * FROM gold_backlog', 'gold read twice is the same');

# ------------------------------------------- full refresh: once per flow
is( psql(q{SELECT string_agg(flow_name || '=' || rows_written, ',' ORDER BY flow_name)
	          FROM medallion.run_pipeline('fr', full_refresh => true)}),
	psql(q{SELECT 'public.bronze_o=' || (SELECT count(*) FROM bronze_o)
	           || ',public.gold_by_day=' || (SELECT count(*) FROM gold_by_day)
	           || ',public.gold_by_status=' || (SELECT count(*) FROM gold_by_status)
	           || ',public.gold_o=' || (SELECT count(*) FROM gold_o)
	           || ',public.silver_o=' || (SELECT count(*) FROM silver_o)}),
	'the full refresh writes every row again, one result row per flow');
is(steps_of('public.bronze_o'), '4:0',
	'bronze commits batch by batch (4 + 4 + 4 + 2 objects)');
is(steps_of('public.silver_o'), '1:0', 'silver runs once, over all of bronze');
is(steps_of('public.gold_o'), '1:0', 'the SCD2 flow runs once');
is(steps_of('public.gold_by_day'), '1:1', 'the aggregate is built once, with one GROUP BY');
is(steps_of('public.gold_by_status'), '1:1',
	'the aggregate with min and max too');
same($gold_query, 'SELECT * FROM gold_backlog',
	'the full refresh gives the gold of the incremental updates');

# ---------- deltas on top of the set-based build equal a full refresh
upload_objects(15, 15);
psql(q{SELECT count(*) FROM medallion.run_pipeline('fr')});
is(steps_of('public.gold_by_day'), '1:0', 'the next update applies its changes as deltas');
psql("CREATE TABLE gold_after_deltas AS $gold_query");
psql(q{SELECT count(*) FROM medallion.run_pipeline('fr', full_refresh => true)});
same($gold_query, 'SELECT * FROM gold_after_deltas',
	'after deltas on top of a set-based build, gold equals a full refresh');

done_testing();
