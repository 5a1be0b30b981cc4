# Limits on what a role can make medallion keep: the event log of a
# pipeline (medallion.event_log_max_rows) and the change feed of an AUTO CDC
# target whose aggregate keeps failing (medallion.change_feed_max_rows).
#
# Covers: a pipeline updated many times keeps at most event_log_max_rows
# events (the newest); a change feed that a failing aggregate does not
# consume is emptied once it holds more than change_feed_max_rows unread
# rows, with a WARNING event naming the setting, and the aggregate, once it
# works again, recomputes from the target and equals its query.
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

done_testing();
