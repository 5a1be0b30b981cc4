# A materialized view reading plain tables by their captured changes, under
# concurrent writers and crashes:
#  - the view's update locks each plain table it reads in SHARE mode before
#    taking the table's range of changes, so it waits for a writer in flight
#    (seen in pg_stat_activity), without holding up a writer arriving
#    meanwhile (it commits while the update waits), and the delta statement
#    sees the table exactly as of the range's end: both writers' changes;
#  - a SIGKILL of the whole server between a dimension change's capture and
#    the view's update, and one while the view's update is waiting in the
#    middle of its transaction, lose nothing: after a restart, the next
#    update makes the view equal to its query.
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

use MedallionTest;

my $node = start_node('mvcrash');

sub psql { return $node->safe_psql('postgres', $_[0]); }

psql(q{
CREATE TABLE facts (fact_id int, label_id int, amount int);
CREATE TABLE labels (label_id int, label text);
INSERT INTO facts SELECT i, i % 7, i FROM generate_series(1, 200) i;
INSERT INTO labels SELECT i, 'l' || i FROM generate_series(0, 5) i;
SELECT medallion.create_pipeline('p');
SELECT medallion.create_materialized_view('p', 'fact_labels',
	'SELECT f.fact_id, f.amount, l.label FROM facts f JOIN labels l USING (label_id)');
SELECT medallion.create_materialized_view('p', 'label_totals',
	'SELECT l.label, count(*) AS n, sum(f.amount) AS total
	   FROM facts f LEFT JOIN labels l USING (label_id) GROUP BY l.label');
SELECT count(*) FROM medallion.run_pipeline('p');
});
is(psql(q{SELECT string_agg(definition->>'maintenance', ',' ORDER BY flow_name)
			FROM medallion.flows WHERE pipeline_name = 'p'}),
	'incremental,incremental', 'both views are kept by deltas');

psql(q{
CREATE FUNCTION view_differences() RETURNS bigint LANGUAGE plpgsql AS $f$
DECLARE n bigint := 0; m bigint; f record;
BEGIN
	FOR f IN SELECT target_table, definition->>'query' AS q FROM medallion.flows
			  WHERE pipeline_name = 'p' LOOP
		EXECUTE format('SELECT count(*) FROM (((%s) EXCEPT ALL SELECT * FROM %s)
						UNION ALL (SELECT * FROM %s EXCEPT ALL (%s))) d',
					   f.q, f.target_table, f.target_table, f.q) INTO m;
		n := n + m;
	END LOOP;
	RETURN n;
END $f$;
});
is(psql('SELECT view_differences()'), '0', 'the views equal their queries');

# kill the postmaster and all its children at once, then start again
sub crash_and_restart
{
	my $postmaster = $node->{_pid};
	my @children = grep { /^\d+$/ } split /\s+/, `pgrep -P $postmaster`;
	kill 'KILL', $postmaster, @children;
	for (1 .. 500)
	{
		last unless grep { kill(0, $_) } ($postmaster, @children);
		usleep(20_000);
	}
	$node->{_pid} = undef;
	unlink($node->data_dir . '/postmaster.pid');
	$node->start;
}

sub background
{
	my ($sql) = @_;
	my ($out, $err) = ('', '');
	return IPC::Run::start([ 'psql', '-X', '-d', $node->connstr('postgres'), '-c', $sql ],
		'>', \$out, '2>', \$err);
}

# 1. The update waits for a writer in flight; a later writer is not held up.
my $writer = background(q{BEGIN; UPDATE labels SET label_id = 6 WHERE label_id = 1;
	INSERT INTO labels VALUES (2, 'two again'); SELECT pg_sleep(6); COMMIT;});
$node->poll_query_until('postgres',
	q{SELECT count(*) = 1 FROM pg_stat_activity WHERE wait_event = 'PgSleep'})
  or die 'the writer did not reach its sleep';
my $update = background(q{SELECT count(*) FROM medallion.run_pipeline('p')});
ok( $node->poll_query_until(
		'postgres',
		q{SELECT count(*) > 0 FROM pg_stat_activity
		   WHERE backend_type = 'medallion update' AND wait_event_type = 'Lock'}),
	'the view update waits for the writer in flight');
my $late = background(q{INSERT INTO labels VALUES (3, 'three late')});
$late->finish;
is( psql(q{SELECT (SELECT count(*) FROM labels WHERE label = 'three late')
		   || ' ' || (SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep')}),
	'1 1', 'a writer arriving meanwhile commits at once, the first still in flight');
$writer->finish;
$update->finish;
is(psql('SELECT view_differences()'), '0',
	"the update that waited read both writers' changes: the views equal their queries");
psql(q{SELECT count(*) FROM medallion.run_pipeline('p')});
is(psql('SELECT view_differences()'), '0',
	'after one more update, the views equal their queries');

# 2. SIGKILL between a dimension change's capture and the view's update.
psql(q{UPDATE labels SET label = label || '+' WHERE label_id < 3;
	   DELETE FROM labels WHERE label_id = 4;
	   INSERT INTO facts VALUES (1000, 4, 1000);});
crash_and_restart();
psql(q{SELECT count(*) FROM medallion.run_pipeline('p')});
is(psql('SELECT view_differences()'), '0',
	'a crash after the capture and before the update loses nothing');

# 3. SIGKILL while the view's update is in the middle of its transaction
#    (waiting for a writer's lock after having started).
psql(q{TRUNCATE labels; INSERT INTO labels SELECT i, 'new ' || i FROM generate_series(0, 7) i;});
$writer = background(q{BEGIN; DELETE FROM labels WHERE label_id = 5; SELECT pg_sleep(300); COMMIT;});
$node->poll_query_until('postgres',
	q{SELECT count(*) = 1 FROM pg_stat_activity WHERE wait_event = 'PgSleep'})
  or die 'the writer did not reach its sleep';
$update = background(q{SELECT count(*) FROM medallion.run_pipeline('p')});
$node->poll_query_until('postgres',
	q{SELECT count(*) > 0 FROM pg_stat_activity
	   WHERE backend_type = 'medallion update' AND wait_event_type = 'Lock'})
  or die 'the update did not wait for the writer';
crash_and_restart();
$writer->finish;
$update->finish;
is(psql(q{SELECT count(*) FROM labels WHERE label_id = 5}), '1', "the killed writer's delete was lost");
psql(q{SELECT count(*) FROM medallion.run_pipeline('p')});
is(psql('SELECT view_differences()'), '0',
	'a crash in the middle of the view update loses nothing: the next update makes the views equal');
is(psql(q{SELECT string_agg(DISTINCT details->>'maintenance', ',')
			FROM medallion.event_log
		   WHERE pipeline_name = 'p' AND event_type = 'flow_progress'
			 AND id > (SELECT max(id) - 2 FROM medallion.event_log
						WHERE pipeline_name = 'p' AND event_type = 'flow_progress')}),
	'deltas', 'and it did so by deltas');

done_testing();
