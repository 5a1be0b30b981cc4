# Dropping medallion: DROP EXTENSION medallion without CASCADE is refused
# while pipelines exist (it would forget every role's pipelines, ledgers and
# secrets); with no pipeline it just works; with CASCADE the pipelines are
# forgotten, the workers of that database leave, the flows' state tables go
# with the schema medallion_state, and the pipelines' tables stay, with
# their rows, owned by their roles.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use MedallionTest;

my $node = start_node(
	'dropping',
	'medallion.enable_workers' => 'on',
	'medallion.launcher_naptime' => '200ms');

sub psql { return $node->safe_psql($_[1] // 'postgres', $_[0]); }

psql(q{CREATE DATABASE shop});
psql(
	q{CREATE EXTENSION medallion;
	  CREATE ROLE clerk LOGIN;
	  CREATE SCHEMA app AUTHORIZATION clerk;}, 'shop');
$node->safe_psql(
	'shop',
	q{CREATE TABLE app.src (_row_id bigint GENERATED ALWAYS AS IDENTITY, id int, v text);
	  INSERT INTO app.src (id, v) VALUES (1, 'a'), (2, 'b');
	  SELECT medallion.create_secret('clerk_key', 'AKID', 'SECRET');
	  SELECT medallion.create_pipeline('shop_p', 'continuous', '200 ms');
	  SELECT medallion.create_silver('shop_p', 'app.clean', 'SELECT id, v FROM app.src');
	  SELECT medallion.create_aggregate('shop_p', 'app.totals', 'app.clean',
	      group_by => ARRAY['v'], aggregates => ARRAY['count(*) AS n']);},
	extra_params => [ '-U', 'clerk' ]);
ok($node->poll_query_until('shop', q{SELECT count(*) = 2 FROM app.totals}),
	'the continuous pipeline runs');
is( psql(q{SELECT count(*) FROM pg_class WHERE relnamespace = 'medallion_state'::regnamespace AND relkind = 'r'}, 'shop'),
	'1', 'the aggregate keeps its state in medallion_state');

my ($ret, $out, $err) = $node->psql('shop', 'DROP EXTENSION medallion');
isnt($ret, 0, 'DROP EXTENSION without CASCADE is refused while a pipeline exists');
like($err, qr/ERROR:  cannot drop extension medallion because 1 pipelines exist/, 'with a clear error');
like($err, qr/HINT:  Drop the pipelines with medallion.drop_pipeline\(\) first, or use DROP EXTENSION medallion CASCADE\./,
	'and a hint');
is(psql(q{SELECT count(*) FROM medallion.pipelines}, 'shop'), '1', 'the pipeline is still there');
($ret, $out, $err) = $node->psql('shop', 'DROP EXTENSION IF EXISTS medallion, plpgsql');
like($err, qr/cannot drop extension medallion/, 'also when it is one of several names');

# CASCADE: forgotten, workers gone, tables kept
psql(q{DROP EXTENSION medallion CASCADE}, 'shop');
is(psql(q{SELECT count(*) FROM pg_extension WHERE extname = 'medallion'}, 'shop'), '0',
	'DROP EXTENSION medallion CASCADE drops it');
ok( $node->poll_query_until(
		'postgres',
		q{SELECT count(*) = 0 FROM pg_stat_activity
		  WHERE datname = 'shop' AND backend_type LIKE 'medallion%'}),
	'no medallion process is left in that database');
is(psql(q{SELECT count(*) || ' ' || pg_catalog.pg_get_userbyid(c.relowner)
            FROM app.clean, pg_class c WHERE c.oid = 'app.clean'::regclass
           GROUP BY c.relowner}, 'shop'),
	'2 clerk', "the pipeline's tables stay, with their rows, owned by their role");
is(psql(q{SELECT count(*) FROM app.totals}, 'shop'), '2', '... the aggregate target too');
is(psql(q{SELECT count(*) FROM pg_namespace WHERE nspname = 'medallion_state'}, 'shop'),
	'0', 'the state tables went with the schema medallion_state');

# no pipeline: nothing to refuse
psql(q{CREATE DATABASE empty});
psql(q{CREATE EXTENSION medallion}, 'empty');
psql(q{SELECT medallion.create_pipeline('p1'); SELECT medallion.drop_pipeline('p1')}, 'empty');
($ret, $out, $err) = $node->psql('empty', 'DROP EXTENSION medallion');
is($ret, 0, 'DROP EXTENSION without CASCADE works when no pipeline exists') or diag($err);

# One session drops and creates medallion again and goes on: nothing the
# backend keeps (cached catalog lookups, the capture triggers' kept plans)
# outlives the tables it was made for.
my $round_trip = q{
	SELECT medallion.create_pipeline('again');
	SELECT medallion.create_auto_cdc_flow('again', 'kept_target', 'kept_events',
		keys => ARRAY['id'], sequence_by => 'seq', stored_as_scd_type => 1);
	SELECT medallion.create_materialized_view('again', 'kept_counts',
		'SELECT label, count(*) AS n FROM kept_labels GROUP BY label');
	INSERT INTO kept_events (id, v, seq) VALUES (1, 'a', 1), (1, 'b', 2), (2, 'c', 1);
	INSERT INTO kept_labels VALUES ('x'), ('x'), ('y');
	SELECT medallion.auto_cdc_apply('kept_target');
	SELECT count(*) FROM medallion.run_pipeline('again');
	SELECT string_agg(id || '=' || v, ',' ORDER BY id) FROM kept_target;
	SELECT string_agg(label || '=' || n, ',' ORDER BY label) FROM kept_counts;
};
($ret, $out, $err) = $node->psql('empty', qq{
	SET client_min_messages = warning;
	CREATE EXTENSION medallion;
	CREATE TABLE kept_events (_row_id bigint GENERATED ALWAYS AS IDENTITY, id int, v text, seq int);
	CREATE TABLE kept_labels (label text);
	$round_trip
	DROP EXTENSION medallion CASCADE;
	DROP TABLE kept_target, kept_counts CASCADE;
	TRUNCATE kept_events, kept_labels;
	CREATE EXTENSION medallion;
	$round_trip});
is($ret, 0, 'one session drops medallion, creates it again and goes on') or diag($err);
like($out, qr/\n1=b,2=c\nx=2,y=1\n.*\n1=b,2=c\nx=2,y=1$/s,
	'... with the same results both times (the second writes captured again)');

# other extensions are not concerned
($ret, $out, $err) = $node->psql('shop', 'CREATE EXTENSION pg_prewarm; DROP EXTENSION pg_prewarm');
is($ret, 0, 'dropping another extension is not affected') or diag($err);

done_testing();
