# A gold schema BI tools can browse: medallion keeps flows' internal state
# tables (an aggregate's __groups, __values_<n> and __changes, an auto CDC
# target's __change_feed) in the schema medallion_state, owned by the
# pipeline's owner, so that GRANT SELECT ON ALL TABLES IN SCHEMA gold
# grants a BI role the targets, the quarantine table and the view of current
# versions, and nothing else.  Also: the owner cannot create in
# medallion_state; alter_pipeline(owner => ...) moves the state tables found
# through the flows' definitions and leaves alone an unrelated table that
# merely looks like one (the old name patterns); drop_pipeline without
# drop_tables removes the state tables and capture triggers but keeps the
# targets; silver columns carry the expression they come from.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use MedallionTest;

my $node = start_node('state_tables', 'log_statement' => 'none');

sub psql { return $node->safe_psql('postgres', $_[0]); }
sub as_owner { return psql("SET ROLE shop_owner; $_[0]"); }

psql(
	q{CREATE ROLE shop_owner LOGIN;
	  CREATE ROLE shop_heir LOGIN;
	  GRANT shop_heir TO shop_owner;
	  CREATE ROLE analyst LOGIN;
	  CREATE SCHEMA raw AUTHORIZATION shop_owner;
	  CREATE SCHEMA gold AUTHORIZATION shop_owner;
	  GRANT CREATE, USAGE ON SCHEMA raw, gold TO shop_heir;});
as_owner(
	q{CREATE TABLE raw.events (_row_id bigint GENERATED ALWAYS AS IDENTITY,
	                           data jsonb);
	  INSERT INTO raw.events (data)
	  SELECT jsonb_build_object('id', i % 7, 'qty', CASE WHEN i = 3 THEN 'many' ELSE (i % 5)::text END,
	                            'kind', CASE WHEN i % 2 = 0 THEN 'a' ELSE 'b' END, 'seq', i)
	    FROM generate_series(1, 40) i;
	  GRANT SELECT ON raw.events TO shop_heir;
	  GRANT SELECT, USAGE ON SEQUENCE raw.events__row_id_seq TO shop_heir;
	  SELECT medallion.create_pipeline('shop');
	  SELECT medallion.create_silver('shop', 'gold.clean', $q$
	      SELECT medallion.try_cast(data->>'id', NULL::int) AS id,
	             medallion.try_cast(data->>'qty', NULL::int) AS qty,
	             (data->>'kind') kind, medallion.try_cast(data->>'seq', NULL::int) AS seq
	        FROM raw.events$q$, quarantine => true);
	  SELECT medallion.add_expectation('gold.clean', 'qty_known', 'qty IS NOT NULL', 'drop');
	  SELECT medallion.create_auto_cdc_flow('shop', 'gold.latest', 'gold.clean',
	      keys => ARRAY['id'], sequence_by => 'seq');
	  SELECT medallion.create_aggregate('shop', 'gold.totals', 'gold.latest',
	      group_by => ARRAY['kind'],
	      aggregates => ARRAY['count(DISTINCT qty) AS qtys', 'sum(qty) AS qty'],
	      filter => '__end_at IS NULL');
	  SELECT medallion.create_aggregate('shop', 'gold.kinds', 'gold.totals',
	      group_by => ARRAY['qtys'], aggregates => ARRAY['count(*) AS kinds']);
	  SELECT count(*) FROM medallion.run_pipeline('shop');});

my $state_tables = q{
	SELECT string_agg(c.relname || ' ' || pg_get_userbyid(c.relowner), ', ' ORDER BY c.relname)
	  FROM pg_class c WHERE c.relnamespace = 'medallion_state'::regnamespace AND c.relkind = 'r'};
is(psql($state_tables),
	'gold__kinds__changes shop_owner, gold__latest__change_feed shop_owner, '
	  . 'gold__totals__groups shop_owner, gold__totals__values_1 shop_owner',
	'the state tables are in medallion_state, named <schema>__<table>__..., owned by the pipeline owner');
is( psql(
		q{SELECT string_agg(relname, ', ' ORDER BY relname) FROM pg_class
		   WHERE relnamespace = 'gold'::regnamespace AND relkind IN ('r', 'v')}),
	'clean, clean_quarantine, kinds, latest, latest_current, totals',
	'gold holds only targets, the quarantine table and the view of current versions');
is( as_owner(
		q{SELECT (SELECT count(*) FROM gold.totals) = (SELECT count(*) FROM medallion_state.gold__totals__groups)
		     AND (SELECT count(*) FROM gold.totals) > 0}),
	't', 'the flows keep their state there (one state row per group)');
is( psql(
		q{SELECT string_agg(flow_name || ' ' || (definition->'state_tables')::text, '; ' ORDER BY flow_name)
		    FROM medallion.flows WHERE definition ? 'state_tables'}),
	'gold.kinds ["medallion_state.gold__kinds__changes"]; '
	  . 'gold.latest ["medallion_state.gold__latest__change_feed"]; '
	  . 'gold.totals ["medallion_state.gold__totals__groups", "medallion_state.gold__totals__values_1"]',
	'each flow records its state tables in its definition');

# The owner cannot create there, nor can anyone else but medallion.
my ($ret, $out, $err) = $node->psql('postgres',
	'SET ROLE shop_owner; CREATE TABLE medallion_state.mine (x int)');
like($err, qr/permission denied for schema medallion_state/,
	'a pipeline owner cannot create tables in medallion_state');

# The BI role: SELECT on everything in gold, then what can it read?
as_owner(q{GRANT USAGE ON SCHEMA gold TO analyst;
           GRANT SELECT ON ALL TABLES IN SCHEMA gold TO analyst;});
my $readable = q{
	SELECT string_agg(c.oid::regclass::text, ', ' ORDER BY c.oid::regclass::text)
	  FROM pg_class c
	 WHERE c.relkind IN ('r', 'v', 'm', 'p')
	   AND c.relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace,
	                              'medallion'::regnamespace)
	   AND has_table_privilege('analyst', c.oid, 'SELECT')};
is(psql($readable),
	'gold.clean, gold.clean_quarantine, gold.kinds, gold.latest, gold.latest_current, gold.totals',
	'GRANT SELECT ON ALL TABLES IN SCHEMA gold gives a BI role the targets, _quarantine and _current, never a state table'
);
($ret, $out, $err) = $node->psql('postgres',
	'SET ROLE analyst; SELECT count(*) FROM medallion_state.gold__totals__groups');
like($err, qr/permission denied for table gold__totals__groups/,
	'... and it cannot read the state tables');
is( psql(q{SET ROLE analyst; SELECT count(*) > 0 FROM gold.totals}),
	't', '... while it reads gold');

# Silver columns say where they come from.
is( psql(
		q{SELECT string_agg(attname || ': ' || col_description(attrelid, attnum), E'\n' ORDER BY attnum)
		    FROM pg_attribute WHERE attrelid = 'gold.clean'::regclass AND attnum > 0}),
	join("\n",
		"_row_id: Row id given by medallion when the row was written: increasing arrival order, by which downstream flows read the table",
		"id: From the query: medallion.try_cast(data->>'id', NULL::int)",
		"qty: From the query: medallion.try_cast(data->>'qty', NULL::int)",
		"kind: From the query: (data->>'kind')",
		"seq: From the query: medallion.try_cast(data->>'seq', NULL::int)"),
	'each silver column is commented with the expression it comes from');

# Handing the pipeline over moves the state tables found through the
# flows' definitions, and nothing that merely has a name like theirs.
as_owner(q{CREATE TABLE gold.totals__groups (x int);
           CREATE TABLE gold.totals__values_1 (x int);
           CREATE TABLE gold.latest__change_feed (x int);});
as_owner(q{SELECT medallion.alter_pipeline('shop', owner => 'shop_heir')});
is( psql($state_tables),
	'gold__kinds__changes shop_heir, gold__latest__change_feed shop_heir, '
	  . 'gold__totals__groups shop_heir, gold__totals__values_1 shop_heir',
	'alter_pipeline(owner => ...) hands the state tables over');
is( psql(
		q{SELECT string_agg(relname || ' ' || pg_get_userbyid(relowner), ', ' ORDER BY relname)
		    FROM pg_class WHERE relnamespace = 'gold'::regnamespace AND relkind = 'r'
		     AND relname LIKE '%\_\_%'}),
	'latest__change_feed shop_owner, totals__groups shop_owner, totals__values_1 shop_owner',
	'... and leaves unrelated tables with look-alike names to their owner');
is( psql(q{SET ROLE shop_heir; SELECT count(*) > 0 FROM medallion.run_pipeline('shop')}),
	't', 'the new owner runs the pipeline over the state tables it now owns');

# drop_pipeline keeps the targets and removes the state tables, so that
# the extension can be dropped without CASCADE.
psql(q{SET ROLE shop_heir; SELECT medallion.drop_pipeline('shop')});
is(psql(q{SELECT count(*) FROM pg_class WHERE relnamespace = 'medallion_state'::regnamespace}),
	'0', 'drop_pipeline removes the state tables (with their indexes and sequences)');
is(psql(q{SELECT count(*) FROM gold.totals}) > 0 ? 'kept' : 'gone',
	'kept', '... and keeps the targets');
is(psql(q{SELECT count(*) FROM pg_trigger WHERE tgrelid = 'gold.totals'::regclass}),
	'0', '... without the capture triggers the pipeline put on them');
($ret, $out, $err) = $node->psql('postgres', 'DROP EXTENSION medallion');
is($ret, 0, 'DROP EXTENSION medallion then needs no CASCADE') or diag($err);

done_testing();
