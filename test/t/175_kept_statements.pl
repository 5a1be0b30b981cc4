# The continuous worker keeps a materialized view's delta statement parsed
# from one update to the next (statement_cache.c): the sources' ranges are
# parameters, so the text is the same at every update of the same shape.
# Checked here: a join view and a grouped join view of a continuous pipeline
# report "statement": "kept" in their flow_progress events once the shape
# repeats, with "plan": "reused" when the plan made for deltas of that size
# served again; a backlog of 2,000 changes gets a plan of its own ("plan":
# "made"), and the next small update reuses the small plan; later updates
# reuse the statement's text ("statement_text": "kept"), built again once a
# column is dropped from a source (the text names every column); the views
# stay equal to their queries (EXCEPT ALL both ways) through updates that
# follow changes PostgreSQL's plan cache must see (an index made and dropped
# on a source, the view replaced, the view dropped and made again: the same
# statement text over a new state table); run_pipeline's worker keeps them
# as well, since it may stay for the next run, and a worker of one update
# (medallion.update_worker_linger = 0) runs its statement once and reports
# nothing kept; a pipeline of more views than the worker keeps statements
# for keeps those of the first 32 and runs the others' once at each update.
# The worker keeps each view's analysed query as well ("analysis": "kept");
# a column the views read dropped from a source drops those analyses, and
# every view's next update fails with the error naming the column.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use MedallionTest;

# (autovacuum off: its ANALYZE of a source would make the kept plans be
# made again, which the plan checks below must not see by chance)
my $node = start_node(
	'kept_statements',
	'medallion.enable_workers' => 'on',
	'medallion.launcher_naptime' => '200ms',
	'autovacuum' => 'off');

sub psql { return $node->safe_psql('postgres', $_[0]); }
sub as_clerk { return $node->safe_psql('postgres', $_[0], extra_params => [ '-U', 'clerk' ]); }

psql(q{CREATE ROLE clerk LOGIN; CREATE SCHEMA app AUTHORIZATION clerk;});
as_clerk(q{
CREATE TABLE app.customers (id int PRIMARY KEY, region text, note text);
CREATE TABLE app.orders (id int PRIMARY KEY, customer_id int, amount numeric(10,2));
INSERT INTO app.customers SELECT i, 'region ' || i % 4, 'x' FROM generate_series(1, 40) i;
INSERT INTO app.orders SELECT i, 1 + i % 40, i % 17 FROM generate_series(1, 400) i;
SELECT medallion.create_pipeline('shop', 'continuous', '100 ms');
SELECT medallion.create_materialized_view('shop', 'app.order_regions',
	'SELECT o.id, o.amount, c.region FROM app.orders o JOIN app.customers c ON c.id = o.customer_id',
	'incremental_strict');
SELECT medallion.create_materialized_view('shop', 'app.region_revenue',
	'SELECT c.region, sum(o.amount) AS revenue, count(*) AS n
	   FROM app.orders o JOIN app.customers c ON c.id = o.customer_id GROUP BY c.region',
	'incremental_strict');
});

my %query = (
	'app.order_regions' =>
	  'SELECT o.id, o.amount, c.region FROM app.orders o JOIN app.customers c ON c.id = o.customer_id',
	'app.region_revenue' =>
	  'SELECT c.region, sum(o.amount) AS revenue, count(*) AS n FROM app.orders o JOIN app.customers c ON c.id = o.customer_id GROUP BY c.region'
);

# Wait until every view equals its query, each compared both ways.
sub views_equal
{
	my ($what) = @_;
	my $condition = join(' AND ', map {
		"NOT EXISTS (SELECT * FROM $_ EXCEPT ALL ($query{$_})) AND NOT EXISTS (($query{$_}) EXCEPT ALL SELECT * FROM $_)"
	} sort keys %query);
	ok($node->poll_query_until('postgres', "SELECT $condition"), "the views equal their queries $what");
}

# One round of changes on both sides, in one transaction (so that every
# update sees both sides change, the statements' shape): new orders, an
# order changed and one deleted, a customer moving region.
my $round = 0;
sub changes
{
	$round++;
	my $base = 1000 + 10 * $round;
	as_clerk(qq{
BEGIN;
INSERT INTO app.orders SELECT $base + k, 1 + (k * 7 + $round) % 40, k FROM generate_series(1, 5) k;
UPDATE app.orders SET amount = amount + 1 WHERE id = $round;
DELETE FROM app.orders WHERE id = 200 + $round;
UPDATE app.customers SET region = 'region ' || ($round % 4 + 10) WHERE id = $round;
COMMIT;
});
}

# Updates counted per view: flow_progress events with deltas, and those
# whose statement was kept.
sub kept_count
{
	my ($flow) = @_;
	return psql(qq{
SELECT count(*) FILTER (WHERE details->>'statement' = 'kept')
  FROM medallion.event_log
 WHERE event_type = 'flow_progress' AND flow_name = '$flow'
   AND details->>'maintenance' = 'deltas'});
}

# Updates of a view whose kept statement's plan was "made" or "reused".
sub plan_count
{
	my ($flow, $plan) = @_;
	return psql(qq{
SELECT count(*) FROM medallion.event_log
 WHERE event_type = 'flow_progress' AND flow_name = '$flow'
   AND details->>'plan' = '$plan'});
}

views_equal('after their first update');
for (1 .. 4)
{
	changes();
	views_equal("after round $round");
}
for my $flow ('app.order_regions', 'app.region_revenue')
{
	cmp_ok(kept_count($flow), '>=', 2,
		"$flow: the continuous worker ran its delta statement kept at later updates");
	cmp_ok(plan_count($flow, 'reused'), '>=', 1,
		"$flow: a later update reused the plan made for deltas of its size");
	cmp_ok(psql(qq{
SELECT count(*) FROM medallion.event_log
 WHERE event_type = 'flow_progress' AND flow_name = '$flow'
   AND details->>'statement_text' = 'kept'}), '>=', 1,
		"$flow: a later update reused the statement's text instead of building it");
	cmp_ok(psql(qq{
SELECT count(*) FROM medallion.event_log
 WHERE event_type = 'flow_progress' AND flow_name = '$flow'
   AND details->>'analysis' = 'kept'}), '>=', 2,
		"$flow: later updates reused the analysis of the query instead of making it again");
}

# A backlog: 2,000 new orders and a customer moving, in one transaction
# (the statement's text is that of the rounds above; only the orders'
# delta is larger).  Its update makes a plan of its own; the next round,
# small again, reuses the small deltas' plan.
my $before_backlog = psql(q{SELECT max(id) FROM medallion.event_log});
as_clerk(q{
BEGIN;
INSERT INTO app.orders SELECT 5000 + k, 1 + k % 40, k % 13 FROM generate_series(1, 2000) k;
UPDATE app.customers SET region = 'region 7' WHERE id = 39;
COMMIT;
});
views_equal('after a backlog of 2,000 orders');
changes();
views_equal("after round $round, small again");
for my $flow ('app.order_regions', 'app.region_revenue')
{
	is( psql(qq{
SELECT string_agg(details->>'plan', ' ' ORDER BY id)
  FROM medallion.event_log
 WHERE event_type = 'flow_progress' AND flow_name = '$flow'
   AND details->>'maintenance' = 'deltas' AND id > $before_backlog}),
		'made reused',
		"$flow: the backlog got a plan of its own, the next small update the small deltas' plan");
}

# A column none of the views reads dropped from a source: the statements'
# texts list every column of a source, a dropped one as a NULL, so the
# texts kept must be built again (the old ones name the column).
as_clerk(q{ALTER TABLE app.customers DROP COLUMN note});
changes();
views_equal('after a column they do not read was dropped from a source');
changes();
views_equal('one round later');

# Changes the plan cache must see, between updates: an index made and
# dropped on a source, the view replaced by the same query (recomputed, its
# group state made again), the view dropped and made again (its state
# table a new relation of the same name, so the same statement text).
my $kept_before = kept_count('app.region_revenue');
as_clerk(q{CREATE INDEX orders_amount ON app.orders (amount)});
changes();
views_equal('after an index was made on a source');
as_clerk(q{DROP INDEX app.orders_amount});
changes();
views_equal('after that index was dropped');
my $region_view = q{SELECT medallion.create_materialized_view('shop', 'app.region_revenue',
	'SELECT c.region, sum(o.amount) AS revenue, count(*) AS n
	   FROM app.orders o JOIN app.customers c ON c.id = o.customer_id GROUP BY c.region',
	'incremental_strict'};
as_clerk("$region_view, replace => true)");
changes();
views_equal('after the grouped view was replaced by the same query');
changes();
views_equal('one round later');
as_clerk(q{SELECT medallion.drop_flow('app.region_revenue', drop_table => true)});
as_clerk("$region_view)");
changes();
views_equal('after the grouped view was dropped and made again');
changes();
views_equal('one round later');
changes();
views_equal('and another');
cmp_ok(kept_count('app.region_revenue'), '>', $kept_before,
	'statements are kept again after those changes');
is( psql(q{SELECT count(*) FROM medallion.event_log
            WHERE level = 'ERROR' AND pipeline_name = 'shop'}),
	'0', 'no update failed');

# run_pipeline's worker keeps its statements too, since it may stay for
# the next run (medallion.update_worker_linger); a worker of one update
# (linger 0) runs its statement once.
as_clerk(q{SELECT medallion.stop_pipeline('shop')});
ok( $node->poll_query_until('postgres', q{
SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'medallion worker'}),
	'the continuous worker left');

# The flow_progress events by deltas since $_[0], and how many kept a statement.
sub kept_since
{
	my ($since) = @_;
	return psql(qq{
SELECT count(*) || ' ' || count(*) FILTER (WHERE details ? 'statement' OR details ? 'analysis')
  FROM medallion.event_log
 WHERE id > $since AND event_type = 'flow_progress'
   AND details->>'maintenance' = 'deltas'});
}
my $last_id = psql(q{SELECT max(id) FROM medallion.event_log});
changes();
as_clerk(q{SELECT count(*) FROM medallion.run_pipeline('shop')});
is(kept_since($last_id), '2 2',
	'run_pipeline updated both views by deltas, its worker keeping their statements');
views_equal('after run_pipeline with a worker that may stay');
psql(q{ALTER SYSTEM SET medallion.update_worker_linger = 0; SELECT pg_reload_conf()});
ok( $node->poll_query_until('postgres', q{
SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'medallion update'}),
	'with a linger of 0 the waiting update worker left');
$last_id = psql(q{SELECT max(id) FROM medallion.event_log});
changes();
as_clerk(q{SELECT count(*) FROM medallion.run_pipeline('shop')});
is(kept_since($last_id), '2 0', 'a worker of one update keeps nothing');
psql(q{ALTER SYSTEM RESET medallion.update_worker_linger; SELECT pg_reload_conf()});
views_equal('after run_pipeline');

# A pipeline of more views than a worker keeps statements for
# (STATEMENT_CACHE_SIZE, 32): the first 32 keep theirs, the others run
# theirs once at each update, and every view stays equal to its query.
as_clerk(join("\n", map { qq{SELECT medallion.create_materialized_view('shop', 'app.view_$_',
	'SELECT o.id, c.region, $_ AS view_number FROM app.orders o JOIN app.customers c ON c.id = o.customer_id',
	'incremental_strict');} } 3 .. 34));
$query{"app.view_$_"} =
  "SELECT o.id, c.region, $_ AS view_number FROM app.orders o JOIN app.customers c ON c.id = o.customer_id"
  for 3 .. 34;
as_clerk(q{SELECT medallion.start_pipeline('shop')});
views_equal('of 34 views, after their first update');
for (1 .. 3)
{
	changes();
	views_equal("of 34 views, after round $round");
}
# (each view's last update by deltas: a round's changes may land while an
# update is under way, which then updates some views and the next the rest)
is( psql(q{
SELECT count(*) FILTER (WHERE kept) || ' of ' || count(*)
  FROM (SELECT DISTINCT ON (flow_name) flow_name, details->>'statement' = 'kept' AS kept
		  FROM medallion.event_log
		 WHERE event_type = 'flow_progress' AND details->>'maintenance' = 'deltas'
		 ORDER BY flow_name, id DESC) last}),
	'32 of 34', 'at their last update, 32 views ran their statement kept, two once');
is( psql(q{SELECT count(*) FROM medallion.event_log
            WHERE level = 'ERROR' AND pipeline_name = 'shop'}),
	'0', 'no update failed');

# A column the views read dropped from a source, while the worker keeps
# their analyses: the kept analyses are dropped with it, and the next
# update of each view checks its columns again and fails with the error
# that says what changed (a kept analysis would build a statement naming
# the dropped column, and fail obscurely).  The update that meets the
# change fails the pipeline (a data error) once all its views ran; should
# the change commit while an update is under way, the views that update
# had already passed (nothing new to read then) fail at the next start
# instead, in a new worker.
as_clerk(q{
BEGIN;
ALTER TABLE app.customers DROP COLUMN region;
INSERT INTO app.orders SELECT 9000 + k, k, k FROM generate_series(1, 5) k;
COMMIT;
});
ok( $node->poll_query_until('postgres', q{
SELECT state = 'failed' FROM medallion.pipelines WHERE pipeline_name = 'shop'}),
	'the update that met the dropped column failed the pipeline');
my $failed_with_kept = psql(q{
SELECT count(DISTINCT flow_name) FROM medallion.event_log
 WHERE level = 'ERROR' AND pipeline_name = 'shop'});
cmp_ok($failed_with_kept, '>', 0, 'views of the running worker failed');
note("$failed_with_kept views failed in the worker that kept their analyses");
as_clerk(q{SELECT medallion.start_pipeline('shop')}) if $failed_with_kept < 34;
ok( $node->poll_query_until('postgres', q{
SELECT count(DISTINCT flow_name) = 34 FROM medallion.event_log
 WHERE level = 'ERROR' AND pipeline_name = 'shop'}),
	'every view failed its update after the column was dropped');
is( psql(q{
SELECT string_agg(DISTINCT flow_name || ': ' || message, '; ')
  FROM medallion.event_log
 WHERE level = 'ERROR' AND pipeline_name = 'shop'
   AND message NOT LIKE '%cannot be updated: column "region" of app.customers was dropped'}),
	'', 'each with the error saying which column of which source was dropped');

done_testing();
