# Limits on what a role can make medallion keep: the event log of a
# pipeline (medallion.event_log_max_rows), the change feed of an AUTO CDC
# target whose aggregate keeps failing (medallion.change_feed_max_rows) and
# the change log of a captured plain table whose views are not updated
# (medallion.change_log_max_rows).
#
# Covers: a pipeline updated many times keeps at most event_log_max_rows
# events (the newest); a change feed that a failing aggregate does not
# consume is emptied once it holds more than change_feed_max_rows unread
# rows, with a WARNING event naming the setting, and the aggregate, once it
# works again, recomputes from the target and equals its query; a change
# log that no view reads (its pipeline not run) is emptied by the writer
# whose statement takes it past change_log_max_rows unread changes, but
# never while another session holds the log (the writer does not wait), with
# a WARNING event, and the view then recomputes from the table and equals
# its query.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use MedallionTest;

my $node = start_node('limits');

sub psql { return $node->safe_psql('postgres', $_[0]); }

sub set_conf
{
	my ($name, $value) = @_;
	psql(qq{ALTER SYSTEM SET $name = '$value'});
	psql(q{SELECT pg_reload_conf()});
}

psql(
	q{CREATE ROLE owner_role LOGIN;
	  CREATE SCHEMA app AUTHORIZATION owner_role;});

sub as_owner
{
	my ($sql) = @_;
	return $node->safe_psql('postgres', $sql, extra_params => [ '-U', 'owner_role' ]);
}

# --------------------------------------------------------------- event log
set_conf('medallion.event_log_max_rows', 20);
as_owner(
	q{CREATE TABLE app.src (_row_id bigint GENERATED ALWAYS AS IDENTITY, id int, v int, seq int);
	  SELECT medallion.create_pipeline('limits');
	  SELECT medallion.create_auto_cdc_flow('limits', 'app.gold', 'app.src',
	      keys => ARRAY['id'], sequence_by => 'seq', stored_as_scd_type => 1);});
for my $n (1 .. 12)
{
	as_owner(qq{INSERT INTO app.src (id, v, seq) VALUES ($n, 1, $n)});
	as_owner(q{SELECT count(*) FROM medallion.run_pipeline('limits')});
}
my $events = as_owner(q{SELECT count(*) FROM medallion.event_log WHERE pipeline_name = 'limits'});
cmp_ok($events, '<=', 20 + 3,
	"twelve updates of a few events each leave at most event_log_max_rows (20) events, plus the last update's ($events)");
cmp_ok($events, '>=', 20, 'the newest events are kept');
is( as_owner(
		q{SELECT bool_and(update_id IS NULL OR update_id >= (SELECT max(update_id) - 8 FROM medallion.event_log
		                                                   WHERE pipeline_name = 'limits'))
		    FROM medallion.event_log WHERE pipeline_name = 'limits'}),
	't', 'the events kept are those of the latest updates');

# ------------------------------------------------------------- change feed
set_conf('medallion.change_feed_max_rows', 1000);
# an aggregate that fails while some v is 0, so that it consumes nothing
as_owner(
	q{SELECT medallion.create_aggregate('limits', 'app.per_v', 'app.gold',
	      group_by => ARRAY['v'], aggregates => ARRAY['count(*) AS n', 'max(10 / v) AS inverse']);
	  SELECT count(*) FROM medallion.run_pipeline('limits');
	  INSERT INTO app.src (id, v, seq) VALUES (0, 0, 1);});
my ($ret, $out, $err) = $node->psql('postgres', q{SELECT * FROM medallion.run_pipeline('limits')},
	extra_params => [ '-U', 'owner_role' ]);
like($err, qr/division by zero/, 'the aggregate fails on the zero');
# twenty thousand changes: the feed passes the trimming size (1 MB) and holds
# far more than 1000 unread rows
for my $round (1 .. 4)
{
	as_owner(
		qq{INSERT INTO app.src (id, v, seq)
		   SELECT g, 2, 100 * $round FROM generate_series(100, 5099) g});
	$node->psql('postgres', q{SELECT * FROM medallion.run_pipeline('limits')},
		extra_params => [ '-U', 'owner_role' ]);
}
like(
	as_owner(
		q{SELECT string_agg(level || ': ' || message, E'\n') FROM medallion.event_log
		  WHERE pipeline_name = 'limits' AND event_type = 'change_feed_reset'}),
	qr/WARNING: change feed \S+ held \d+ rows not yet read by every aggregate, more than medallion.change_feed_max_rows \(1000\)/,
	'the feed was emptied, with a warning naming the limit');
my $feed = psql(q{SELECT definition->>'change_feed' FROM medallion.flows WHERE flow_name = 'app.gold'});
cmp_ok(psql(qq{SELECT count(*) FROM $feed}), '<', 15000,
	"the feed ($feed) holds at most the rows since it was emptied");

# the aggregate works again: it recomputes from the target and is right
as_owner(q{INSERT INTO app.src (id, v, seq) VALUES (0, 5, 2)});
as_owner(q{SELECT count(*) FROM medallion.run_pipeline('limits')});
is( as_owner(
		q{SELECT count(*) FROM (
		    (SELECT v, count(*) AS n, max(10 / v) AS inverse FROM app.gold GROUP BY v
		     EXCEPT ALL SELECT v, n, inverse FROM app.per_v)
		    UNION ALL
		    (SELECT v, n, inverse FROM app.per_v
		     EXCEPT ALL SELECT v, count(*), max(10 / v) FROM app.gold GROUP BY v)) d}),
	'0', 'once it works again the aggregate equals its query');
is(as_owner(q{SELECT state FROM medallion.pipelines WHERE pipeline_name = 'limits'}),
	'idle', 'and the pipeline is healthy');

# ------------------------------------------------- change log of a plain table
set_conf('medallion.change_log_max_rows', 1000);
psql(q{CREATE ROLE writer_role LOGIN});
as_owner(
	q{CREATE TABLE app.prices (id int PRIMARY KEY, price int);
	  GRANT USAGE ON SCHEMA app TO writer_role;
	  GRANT INSERT, UPDATE, DELETE, SELECT ON app.prices TO writer_role;
	  SELECT medallion.create_pipeline('prices');
	  SELECT medallion.create_materialized_view('prices', 'app.price_totals',
	      'SELECT id % 3 AS k, count(*) AS n, sum(price) AS total FROM app.prices GROUP BY 1');
	  SELECT count(*) FROM medallion.run_pipeline('prices');});
my $log = as_owner(q{SELECT log_table FROM medallion.captured_tables WHERE table_name = 'app.prices'::regclass});

sub as_writer
{
	my ($sql) = @_;
	return $node->safe_psql('postgres', $sql, extra_params => [ '-U', 'writer_role' ]);
}

sub price_differences
{
	return as_owner(
		q{SELECT count(*) FROM (
		    (SELECT id % 3 AS k, count(*) AS n, sum(price) AS total FROM app.prices GROUP BY 1
		     EXCEPT ALL TABLE app.price_totals)
		    UNION ALL
		    (TABLE app.price_totals
		     EXCEPT ALL SELECT id % 3, count(*), sum(price) FROM app.prices GROUP BY 1)) d});
}

as_writer(q{INSERT INTO app.prices SELECT g, g FROM generate_series(1, 600) g});
is(psql(qq{SELECT count(*) FROM $log}), '600', 'below the limit the log keeps every change');

# another session holds the log: the writer going past the limit does not wait for it
my $reader = $node->background_psql('postgres');
$reader->query_safe('BEGIN');
$reader->query_safe(qq{SELECT count(*) FROM $log});
as_writer(q{INSERT INTO app.prices SELECT g, g FROM generate_series(601, 1200) g});
is(psql(qq{SELECT count(*) FROM $log}), '1200',
	'past the limit, a writer that cannot empty the log at once leaves it (no wait)');
$reader->query_safe('COMMIT');
$reader->quit;

as_writer(q{UPDATE app.prices SET price = price + 1 WHERE id <= 10});
is(psql(qq{SELECT count(*) FROM $log}), '0', 'the next writer past the limit empties the log');
like(
	as_owner(
		q{SELECT string_agg(level || ': ' || message, E'\n') FROM medallion.event_log
		  WHERE pipeline_name = 'prices' AND event_type = 'change_log_reset'}),
	qr/WARNING: the change log of table app\.prices held \d+ changes not yet read by every view, more than medallion.change_log_max_rows \(1000\)/,
	'with a warning naming the table and the limit');
is(as_writer(q{SELECT count(*) FROM app.prices}), '1200', "and the writer's changes are in the table");

as_writer(q{DELETE FROM app.prices WHERE id > 1190});
as_owner(q{SELECT count(*) FROM medallion.run_pipeline('prices')});
like(
	as_owner(
		q{SELECT details->>'maintenance' || ': ' || COALESCE(details->>'maintenance_reason', '') FROM medallion.event_log
		  WHERE flow_name = 'app.price_totals' AND event_type = 'flow_progress' ORDER BY id DESC LIMIT 1}),
	qr/^recomputed: medallion_state\.app__prices__changes was emptied past its position \(more unread changes than medallion.change_log_max_rows\)$/,
	'the view recomputes from the table at its next update');
is(price_differences(), '0', 'and equals its query');

as_writer(q{UPDATE app.prices SET price = 0 WHERE id % 7 = 0; DELETE FROM app.prices WHERE id < 5});
as_owner(q{SELECT count(*) FROM medallion.run_pipeline('prices')});
is( as_owner(
		q{SELECT details->>'maintenance' FROM medallion.event_log
		  WHERE flow_name = 'app.price_totals' AND event_type = 'flow_progress' ORDER BY id DESC LIMIT 1}),
	'deltas', 'then it is kept by deltas again');
is(price_differences(), '0', 'equal to its query');

done_testing();
