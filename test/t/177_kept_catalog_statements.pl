# A medallion background worker keeps the plans of medallion's own fixed
# statements (spi_util.c, SpiExecuteKept), at most 64 per worker; past
# that, it frees them all and starts over.  Checked here with a continuous
# pipeline whose worker runs more than 64 of them at every update: 36
# plain tables, each read by a view through change capture (each capture
# log has statements of its own: its range, its pruning), updated round
# after round.  Every view stays equal to its query, no update fails, and
# the worker's memory for kept statements stays within its bounds.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use MedallionTest;

my $node = start_node(
	'kept_catalog_statements',
	'medallion.enable_workers' => 'on',
	'medallion.launcher_naptime' => '200ms');

sub psql { return $node->safe_psql('postgres', $_[0]); }
sub as_clerk { return $node->safe_psql('postgres', $_[0], extra_params => [ '-U', 'clerk' ]); }

my $tables = 36;
psql(q{CREATE ROLE clerk LOGIN; CREATE SCHEMA app AUTHORIZATION clerk;});
as_clerk(q{SELECT medallion.create_pipeline('many', 'continuous', '100 ms')});
for my $n (1 .. $tables)
{
	as_clerk(qq{
CREATE TABLE app.t$n (id int PRIMARY KEY, v int);
INSERT INTO app.t$n SELECT i, i * $n FROM generate_series(1, 20) i;
SELECT medallion.create_materialized_view('many', 'app.v$n',
	'SELECT id, v + 1 AS w FROM app.t$n', 'incremental_strict');
});
}

# Wait until every view equals its query, compared both ways.
sub views_equal
{
	my ($what) = @_;
	my $condition = join(' AND ', map {
		"NOT EXISTS (SELECT * FROM app.v$_ EXCEPT ALL SELECT id, v + 1 FROM app.t$_) AND "
		  . "NOT EXISTS (SELECT id, v + 1 FROM app.t$_ EXCEPT ALL SELECT * FROM app.v$_)"
	} 1 .. $tables);
	ok($node->poll_query_until('postgres', "SELECT $condition"),
		"the $tables views equal their queries $what");
}

views_equal('after their first update');
for my $round (1 .. 4)
{
	as_clerk(join("\n", map { qq{
INSERT INTO app.t$_ VALUES (100 + $round, $round);
UPDATE app.t$_ SET v = v + 1 WHERE id = $round;
DELETE FROM app.t$_ WHERE id = 10 + $round;} } 1 .. $tables));
	views_equal("after round $round");
}

is( psql(q{SELECT count(*) FROM medallion.event_log
            WHERE level = 'ERROR' AND pipeline_name = 'many'}),
	'0', 'no update failed');
cmp_ok(
	psql(q{
SELECT count(*) FROM medallion.event_log
 WHERE event_type = 'flow_progress' AND pipeline_name = 'many'
   AND details->>'maintenance' = 'deltas'}),
	'>=', 4 * $tables,
	'every view was updated by deltas at each round');

# The worker's memory for kept statements: one context, within what 64
# small plans take (pg_log_backend_memory_contexts writes it to the log).
my $worker = psql(q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'medallion worker'});
my $log_offset = -s $node->logfile;
psql("SELECT pg_log_backend_memory_contexts($worker)");
ok($node->wait_for_log(qr/Grand total/, $log_offset), 'the worker logged its memory contexts');
my $contexts = slurp_file($node->logfile, $log_offset);
my @kept = $contexts =~ /medallion kept statements: (\d+) total/g;
is(scalar(@kept), 1, 'one context holds the kept statements');
cmp_ok($kept[0] // 0, '<', 256 * 1024, 'their texts take less than 256 kB');

done_testing();
