# The privilege boundary, tried by a hostile role: mallory, a LOGIN role that
# owns one schema, plants operators and functions that try to make her a
# superuser, and then gets medallion to call them every way she can:
#
# 1. Operator shadowing.  mallory's schema holds her own "=", "<>", "<",
#    "<=", ">", ">=", "*", "+", "-", "||", "->>" for the types medallion's
#    catalog statements compare; she puts it first on her search_path and
#    calls every API function (drop_expectation was the reported escalation),
#    creates pipelines under that search_path (stored with them) and has them
#    run by a superuser's run_pipeline, by auto_cdc_apply, by a full refresh
#    and by the continuous worker.
# 2. A database she owns, with ALTER DATABASE ... SET search_path pointing at
#    her operators: medallion's scheduler and workers connect there as the
#    bootstrap superuser.
# 3. Objects on her targets that run code when medallion writes them: an
#    index expression, a BEFORE ROW trigger, an aggregate's group expression
#    re-evaluated by the capture trigger when a superuser edits the table.
# 4. A search_path with a schema others can create objects in is warned
#    about (NOTICE and event); pipeline and secret names taken by another
#    role are refused without saying whose they are.
# 5. Temporary tables and views named like catalogs, a cast of her own type,
#    a SECURITY DEFINER helper, a column default and rules on her targets.
#
# Every planted function records who ran it (current_user and whether that
# role is a superuser) and tries ALTER ROLE mallory SUPERUSER.  The test
# asserts that they ran (the attack was really tried) and never with more
# rights than mallory's, and that mallory never became a superuser.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use MedallionTest;

my $s3 = start_s3(buckets => ['landing']);
my $endpoint = $s3->{endpoint};
my $node = start_node(
	'boundary',
	'medallion.enable_workers' => 'on',
	'medallion.launcher_naptime' => '200ms',
	'medallion.allowed_endpoints' => $endpoint);

# The test's own superuser sessions: in mallorydb they would get her
# search_path (ALTER DATABASE ... SET), so they set theirs first.
sub psql
{
	return $node->safe_psql($_[1] // 'postgres', 'SET search_path = pg_catalog, public; ' . $_[0]);
}

sub as_role
{
	my ($role, $sql, $db) = @_;
	my ($ret, $out, $err) =
	  $node->psql($db // 'postgres', $sql, extra_params => [ '-U', $role ]);
	return ($ret == 0, $out, $err);
}

sub as_ok
{
	my ($role, $sql, $name, $db) = @_;
	my ($ok, $out, $err) = as_role($role, $sql, $db);
	ok($ok, $name) or diag($err);
	return wantarray ? ($out, $err) : $out;
}

sub records
{
	my ($first, $count) = @_;
	return join('',
		map { qq({"id": $_, "k": @{[ $_ % 3 ]}, "v": "v$_", "seq": $_, "op": "u"}\n) }
		  $first .. $first + $count - 1);
}

# The planted objects, in a database: mallory's schema with her call log,
# probe functions and shadowing operators.
my $plant = q{
CREATE TABLE mallory.calls (tag text, who name, super boolean, backend text, query text,
                            at timestamptz DEFAULT pg_catalog.clock_timestamp());
GRANT INSERT ON mallory.calls TO PUBLIC;
CREATE FUNCTION mallory.record(tag text) RETURNS void LANGUAGE plpgsql AS $f$
BEGIN
    INSERT INTO mallory.calls (tag, who, super, backend, query)
    SELECT tag, current_user, r.rolsuper,
           (SELECT a.backend_type FROM pg_catalog.pg_stat_activity a
             WHERE a.pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid()),
           pg_catalog.left(pg_catalog.current_query(), 200)
      FROM pg_catalog.pg_roles r
     WHERE r.rolname OPERATOR(pg_catalog.=) current_user;
    BEGIN
        EXECUTE 'ALTER ROLE mallory SUPERUSER';
    EXCEPTION WHEN OTHERS THEN
        NULL;
    END;
END $f$;
CREATE FUNCTION mallory.probe(tag text) RETURNS boolean IMMUTABLE
    LANGUAGE plpgsql AS $f$ BEGIN PERFORM mallory.record(tag); RETURN true; END $f$;
CREATE FUNCTION mallory.tag(x int) RETURNS int IMMUTABLE
    LANGUAGE plpgsql AS $f$ BEGIN PERFORM mallory.record('group expression'); RETURN x; END $f$;
DO $do$
DECLARE
    o record;
BEGIN
    FOR o IN SELECT * FROM (VALUES
        ('=', 'int4', 'int4', 'boolean'), ('=', 'int8', 'int8', 'boolean'),
        ('=', 'int8', 'int4', 'boolean'), ('=', 'int4', 'int8', 'boolean'),
        ('=', 'text', 'text', 'boolean'), ('=', 'name', 'name', 'boolean'),
        ('=', 'oid', 'oid', 'boolean'), ('=', 'name', 'text', 'boolean'),
        ('<>', 'int4', 'int4', 'boolean'), ('<>', 'int8', 'int8', 'boolean'),
        ('<>', 'text', 'text', 'boolean'), ('<>', 'oid', 'oid', 'boolean'),
        ('<', 'int8', 'int8', 'boolean'), ('<', 'int4', 'int4', 'boolean'),
        ('<', 'timestamptz', 'timestamptz', 'boolean'),
        ('<=', 'int8', 'int8', 'boolean'), ('>', 'int8', 'int8', 'boolean'),
        ('>', 'int4', 'int4', 'boolean'), ('>=', 'int8', 'int8', 'boolean'),
        ('*', 'float8', 'int4', 'float8'), ('+', 'int8', 'int8', 'int8'),
        ('-', 'int8', 'int8', 'int8'),
        ('+', 'timestamptz', 'interval', 'timestamptz'),
        ('-', 'timestamptz', 'interval', 'timestamptz'),
        ('||', 'jsonb', 'jsonb', 'jsonb'), ('->>', 'jsonb', 'text', 'text'))
        AS t(op, l, r, result)
    LOOP
        EXECUTE pg_catalog.format(
            'CREATE FUNCTION mallory.%s(a %s, b %s) RETURNS %s IMMUTABLE LANGUAGE plpgsql AS '
            '$b$ BEGIN PERFORM mallory.record(%L); RETURN a OPERATOR(pg_catalog.%s) b; END $b$',
            'op_' || pg_catalog.md5(o.op || o.l || o.r), o.l, o.r, o.result,
            'operator ' || o.op, o.op);
        EXECUTE pg_catalog.format(
            'CREATE OPERATOR mallory.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = mallory.%s)',
            o.op, o.l, o.r, 'op_' || pg_catalog.md5(o.op || o.l || o.r));
    END LOOP;
END $do$;
};

my $hostile_path = 'SET search_path = mallory, pg_catalog;';

# What the planted functions saw, in a database: calls in all, calls as a
# role other than mallory, calls as a superuser.
sub calls
{
	my ($db) = @_;
	return psql(
		q{SELECT count(*) || ' ' || count(*) FILTER (WHERE who <> 'mallory') || ' '
		      || count(*) FILTER (WHERE super) FROM mallory.calls}, $db);
}

sub no_escalation
{
	my ($db, $what) = @_;
	my ($all, $other, $super) = split / /, calls($db);
	cmp_ok($all, '>', 0, "$what: the planted code was reached ($all calls)");
	is($other, 0, "$what: it never ran as another role")
	  or diag(psql(q{SELECT tag, who, super, backend, query, count(*) FROM mallory.calls
	                 WHERE who <> 'mallory' GROUP BY 1, 2, 3, 4, 5}, $db));
	is($super, 0, "$what: it never ran as a superuser");
	is(psql(q{SELECT rolsuper FROM pg_roles WHERE rolname = 'mallory'}), 'f',
		"$what: mallory is not a superuser");
	psql(q{TRUNCATE mallory.calls}, $db);
}

# ------------------------------------------------------------------ setup
psql(
	q{CREATE ROLE mallory LOGIN;
	  CREATE ROLE bob LOGIN;
	  CREATE SCHEMA mallory AUTHORIZATION mallory;
	  CREATE SCHEMA bob AUTHORIZATION bob;});
as_ok('mallory', $plant, 'mallory plants her operators and probes');
s3_upload_string($s3, records(1, 6), 'm/a-0001.json');

# ------------------------------------------ 1. direct calls, hostile path
as_ok(
	'mallory', $hostile_path . qq{
	SELECT medallion.create_secret('m_key', 'S3RVER', 'S3RVER');
	SELECT medallion.create_pipeline('m1');
	SELECT medallion.create_bronze('m1', 'mallory.raw', 's3://landing/m/',
	    secret_name => 'm_key', endpoint => '$endpoint');
	SELECT medallion.create_silver('m1', 'mallory.clean',
	    \$q\$SELECT (data->>'id')::int AS id, (data->>'k')::int AS k, data->>'v' AS v,
	              (data->>'seq')::int AS seq, data->>'op' AS op FROM mallory.raw\$q\$,
	    dedup_keys => ARRAY['id']);
	SELECT medallion.add_expectation('mallory.clean', 'positive', 'id > 0', 'drop');
	SELECT medallion.add_expectation('mallory.clean', 'doomed', 'id <> 0', 'warn');
	SELECT medallion.drop_expectation('mallory.clean', 'doomed');
	SELECT medallion.create_auto_cdc_flow('m1', 'mallory.gold', 'mallory.clean',
	    keys => ARRAY['id'], sequence_by => 'seq',
	    apply_as_deletes => \$\$op = 'd'\$\$);
	SELECT medallion.create_aggregate('m1', 'mallory.per_k', 'mallory.gold',
	    group_by => ARRAY['k'], aggregates => ARRAY['count(*) AS n'],
	    filter => '__end_at IS NULL');
	SELECT medallion.create_aggregate('m1', 'mallory.per_k2', 'mallory.per_k',
	    group_by => ARRAY['mallory.tag(k) AS k2'], aggregates => ARRAY['sum(n) AS n']);
	SELECT count(*) FROM medallion.run_pipeline('m1');
	SELECT medallion.auto_cdc_apply('mallory.gold');
	SELECT count(*) FROM medallion.pipeline_report('m1');
	SELECT count(*) FROM medallion.flows;
	SELECT count(*) FROM medallion.event_log;
	SELECT count(*) FROM medallion.ingested_files;
	SELECT count(*) FROM medallion.expectation_metrics;},
	'mallory builds and runs a whole pipeline with her operators first on her search_path');
is(psql(q{SELECT count(*) FROM mallory.gold}), '6', 'the pipeline works all the same');
no_escalation('postgres', 'direct API calls (drop_expectation among them)');

# ------------------------------- 1b. others run it, with the stored path
s3_upload_string($s3, records(7, 3), 'm/a-0002.json');
psql(q{SELECT count(*) FROM medallion.run_pipeline('m1')});
is(psql(q{SELECT count(*) FROM mallory.gold}), '9', "a superuser's run_pipeline ran it");
no_escalation('postgres', "a superuser's run_pipeline under the stored search_path");

psql(q{SELECT count(*) FROM medallion.run_pipeline('m1', full_refresh => true)});
is(psql(q{SELECT count(*) FROM mallory.gold}), '9', "a superuser's full refresh ran it");
no_escalation('postgres', "a superuser's full refresh");

s3_upload_string($s3, records(10, 3), 'm/a-0003.json');
as_ok('mallory', q{SELECT count(*) FROM medallion.run_pipeline('m1')},
	'mallory runs it with a harmless search_path');
psql(q{SELECT medallion.auto_cdc_apply('mallory.gold')});
no_escalation('postgres', "mallory's run_pipeline and a superuser's auto_cdc_apply");

# the continuous worker
as_ok(
	'mallory', $hostile_path . qq{
	SELECT medallion.create_pipeline('m2', 'continuous', '200 ms');
	SELECT medallion.create_bronze('m2', 'mallory.raw2', 's3://landing/m/',
	    secret_name => 'm_key', endpoint => '$endpoint');
	SELECT medallion.create_silver('m2', 'mallory.clean2',
	    \$q\$SELECT (data->>'id')::int AS id FROM mallory.raw2\$q\$);},
	'mallory creates a continuous pipeline under her search_path');
ok($node->poll_query_until('postgres', q{SELECT count(*) = 12 FROM mallory.clean2}),
	'the continuous worker ran it');
as_ok('mallory', q{SELECT medallion.stop_pipeline('m2')}, 'mallory stops it');
no_escalation('postgres', 'the continuous worker under the stored search_path');

# ------------------------------ 2. a database she owns, its search_path set
psql(q{CREATE DATABASE mallorydb OWNER mallory});
psql(q{CREATE EXTENSION medallion}, 'mallorydb');
psql(q{CREATE SCHEMA mallory AUTHORIZATION mallory}, 'mallorydb');
as_ok('mallory', $plant, 'mallory plants her operators in her own database', 'mallorydb');
as_ok(
	'mallory', qq{ALTER DATABASE mallorydb SET search_path = mallory, pg_catalog;},
	'as its owner she sets the search_path of every session there', 'mallorydb');
as_ok(
	'mallory', qq{
	SELECT medallion.create_secret('m_key_db', 'S3RVER', 'S3RVER');
	SELECT medallion.create_pipeline('m3', 'continuous', '200 ms');
	SELECT medallion.create_bronze('m3', 'mallory.raw3', 's3://landing/m/',
	    secret_name => 'm_key_db', endpoint => '$endpoint');
	SELECT medallion.create_silver('m3', 'mallory.clean3',
	    \$q\$SELECT (data->>'id')::int AS id FROM mallory.raw3
	          WHERE (data->>'id')::int = (data->>'id')::int\$q\$);},
	'and a continuous pipeline there', 'mallorydb');
# (the test's own superuser sessions there get her search_path too: they
# name pg_catalog's operator explicitly)
ok( $node->poll_query_until(
		'mallorydb',
		q{SELECT pg_catalog.count(*) OPERATOR(pg_catalog.=) 12 FROM mallory.clean3}),
	'the scheduler and worker of that database ran it');
psql(q{SELECT count(*) FROM medallion.run_pipeline('m3')}, 'mallorydb');
as_ok('mallory', q{SELECT medallion.stop_pipeline('m3')}, 'she stops it', 'mallorydb');
no_escalation('mallorydb', "workers in a database whose owner set search_path");

# ---------------------- 3. code on her targets, run by others' updates
as_ok(
	'mallory', q{
	CREATE FUNCTION mallory.index_probe(x text) RETURNS boolean IMMUTABLE LANGUAGE plpgsql
	    AS $f$ BEGIN PERFORM mallory.record('bronze index expression'); RETURN x IS NULL; END $f$;
	CREATE INDEX ON mallory.raw ((mallory.index_probe(_file_name)));
	CREATE FUNCTION mallory.before_insert() RETURNS trigger LANGUAGE plpgsql AS $f$
	BEGIN PERFORM mallory.record('silver trigger'); RETURN NEW; END $f$;
	CREATE TRIGGER t BEFORE INSERT ON mallory.clean
	    FOR EACH ROW EXECUTE FUNCTION mallory.before_insert();},
	'mallory adds an index expression and a trigger to her targets');
s3_upload_string($s3, records(13, 3), 'm/a-0004.json');
psql(q{SELECT count(*) FROM medallion.run_pipeline('m1')});
is(psql(q{SELECT count(*) FROM mallory.gold}), '15', "a superuser's run_pipeline wrote her targets");
is( psql(
		q{SELECT string_agg(DISTINCT tag, ', ' ORDER BY tag) FROM mallory.calls
		  WHERE tag IN ('bronze index expression', 'silver trigger', 'group expression')}),
	'bronze index expression, group expression, silver trigger',
	'her index expression, trigger and group expression ran');
no_escalation('postgres', "index expression, trigger and capture trigger in a superuser's update");

# a superuser edits the source of her second aggregate by hand: the capture
# trigger evaluates her group expression as mallory, not as the superuser
psql(q{UPDATE mallory.per_k SET n = n});
is(psql(q{SELECT count(*) > 0 FROM mallory.calls WHERE tag = 'group expression'}), 't',
	"a superuser's UPDATE of the aggregate's source fired the capture trigger");
no_escalation('postgres', "the capture trigger fired by a superuser's write");

# ------------------------------------- 4. warnings and neutral refusals
psql(q{GRANT CREATE ON SCHEMA public TO PUBLIC});
my (undef, $notice) = as_ok('bob', q{SET search_path = public;
	SELECT medallion.create_pipeline('b_public');},
	'bob creates a pipeline whose search_path is a schema anyone can create in');
like($notice,
	qr/NOTICE:  search_path of pipeline "b_public" includes schemas in which other roles can create objects: public/,
	'a NOTICE warns him');
is( psql(
		q{SELECT level || ': ' || message FROM medallion.event_log
		  WHERE pipeline_name = 'b_public' AND event_type = 'search_path_warning'}),
	'WARNING: search_path includes schemas in which other roles can create objects: public',
	'and the event log keeps the warning');
(undef, $notice) = as_ok('bob', q{SET search_path = bob, pg_catalog;
	SELECT medallion.create_pipeline('b_private');},
	'a pipeline whose search_path only its owner can create in');
unlike($notice, qr/NOTICE/, 'is not warned about');
psql(q{REVOKE CREATE ON SCHEMA public FROM PUBLIC});

my ($ok, $out, $err) = as_role('bob', q{SELECT medallion.create_pipeline('m1')});
like($err, qr/ERROR:  pipeline name "m1" is not available/,
	"another role's pipeline name is refused without saying whose it is");
unlike($err, qr/already exists|mallory/, 'the refusal does not confirm the pipeline');
($ok, $out, $err) = as_role('mallory', q{SELECT medallion.create_pipeline('m1')});
like($err, qr/ERROR:  pipeline "m1" already exists/, 'its owner is told it exists');
($ok, $out, $err) = as_role('bob', q{SELECT medallion.create_secret('m_key', 'a', 'b')});
like($err, qr/ERROR:  secret name "m_key" is not available/,
	"another role's secret name is refused the same way");

# ------------- 5. more of what a careful attacker tries, in a new pipeline
# temporary objects named like medallion's and PostgreSQL's tables, a cast
# of her own type, a column default and rules on her targets, a SECURITY
# DEFINER helper of hers called by her flow.  The flows may fail (rules on a
# CDC target are not supported); what matters is who runs her code.
as_ok(
	'mallory', $hostile_path . q{
	CREATE TEMPORARY TABLE pipeline (pipeline_id int, owner oid);
	CREATE TEMPORARY TABLE flow (flow_id int);
	CREATE TEMPORARY TABLE pg_namespace (nspname name);
	CREATE TEMPORARY VIEW pg_roles AS SELECT 'mallory'::name AS rolname, true AS rolsuper;
	SELECT medallion.create_pipeline('m4');
	SELECT medallion.drop_pipeline('m4');},
	'her temporary tables and views named like catalogs change nothing in her calls');
as_ok(
	'mallory', $hostile_path . qq{
	CREATE TYPE mallory.kind AS ENUM ('u', 'd');
	CREATE FUNCTION mallory.kind_text(k mallory.kind) RETURNS text IMMUTABLE LANGUAGE plpgsql
	    AS \$f\$ BEGIN PERFORM mallory.record('cast'); RETURN pg_catalog.format('%s', k); END \$f\$;
	CREATE CAST (mallory.kind AS text) WITH FUNCTION mallory.kind_text(mallory.kind);
	CREATE FUNCTION mallory.definer(x int) RETURNS int IMMUTABLE SECURITY DEFINER LANGUAGE plpgsql
	    AS \$f\$ BEGIN PERFORM mallory.record('security definer'); RETURN x; END \$f\$;
	SELECT medallion.create_pipeline('m5');
	SELECT medallion.create_bronze('m5', 'mallory.raw5', 's3://landing/m/',
	    secret_name => 'm_key', endpoint => '$endpoint');
	SELECT medallion.create_silver('m5', 'mallory.clean5',
	    \$q\$SELECT mallory.definer((data->>'id')::int) AS id, (data->>'seq')::int AS seq,
	              (data->>'op')::mallory.kind AS op FROM mallory.raw5\$q\$);
	SELECT medallion.create_auto_cdc_flow('m5', 'mallory.gold5', 'mallory.clean5',
	    keys => ARRAY['id'], sequence_by => 'seq',
	    apply_as_deletes => \$\$op::text = 'd'\$\$);},
	'mallory adds a cast and a SECURITY DEFINER helper to her flows');
psql(q{SELECT count(*) FROM medallion.run_pipeline('m5')});
is( psql(
		q{SELECT string_agg(DISTINCT tag, ', ' ORDER BY tag) FROM mallory.calls
		  WHERE tag IN ('cast', 'security definer')}),
	'cast, security definer', 'her cast and SECURITY DEFINER helper ran in a superuser\'s update');
as_ok('mallory', q{ALTER TABLE mallory.clean5 ADD COLUMN extra boolean DEFAULT mallory.probe('default')},
	'she adds a column with a default to her silver target');
s3_upload_string($s3, records(16, 3), 'm/a-0005.json');
my ($ran, undef, $why) = $node->psql('postgres', q{SELECT count(*) FROM medallion.run_pipeline('m5')});
like($why, qr/table mallory.clean5 has more columns than the query of silver flow/,
	'a target with a column the flow does not write is refused, so its default never runs');
as_ok('mallory', q{ALTER TABLE mallory.clean5 DROP COLUMN extra;
	CREATE RULE r AS ON UPDATE TO mallory.gold5 DO ALSO SELECT mallory.probe('rule');
	CREATE RULE r2 AS ON DELETE TO mallory.gold5 DO ALSO SELECT mallory.probe('rule');},
	'she drops it and adds rules to her gold target');
$node->psql('postgres', q{SELECT count(*) FROM medallion.run_pipeline('m5')});
no_escalation('postgres', "casts, rules and SECURITY DEFINER helpers in a superuser's update");

done_testing();
