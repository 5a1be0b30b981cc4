# Change capture of plain tables (src/capture.c): a SIGKILL between the
# capture of a change and the update of the flow reading it loses nothing
# and repeats nothing; two consumers reading while writers write each see
# every change exactly once; DROP EXTENSION CASCADE and a dump and restore
# leave the captured table consistent.
#
# The consumers here keep (count, sum(price)) of the lookup table from its
# change log, through the internal medallion._capture_* functions, in one
# transaction per update, as a materialized view's update does.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(usleep);
use MedallionTest;

my $node = start_node('capture');

sub psql { return $node->safe_psql('postgres', $_[0]); }

psql(
	q{CREATE ROLE cap_owner LOGIN;
	  CREATE ROLE cap_writer LOGIN;
	  CREATE SCHEMA app AUTHORIZATION cap_owner;
	  CREATE TABLE public.lookup (id int PRIMARY KEY, price numeric NOT NULL);
	  INSERT INTO public.lookup SELECT g, g FROM generate_series(1, 100) g;
	  GRANT SELECT, TRIGGER ON public.lookup TO cap_owner;
	  GRANT SELECT, INSERT, UPDATE, DELETE ON public.lookup TO cap_writer;
	  CREATE TABLE app.raw (_row_id bigint GENERATED ALWAYS AS IDENTITY, data jsonb);
	  ALTER TABLE app.raw OWNER TO cap_owner;
	  SET ROLE cap_owner;
	  SELECT medallion.create_pipeline('cap_p');
	  SELECT medallion.create_silver('cap_p', 'app.first', 'SELECT data FROM app.raw');
	  SELECT medallion.create_silver('cap_p', 'app.second', 'SELECT data FROM app.raw');
	  RESET ROLE;
	  CREATE TABLE app.totals (flow_name text PRIMARY KEY, n bigint, total numeric);
	  -- one update of a consumer: read its range, apply it, record its position
	  CREATE FUNCTION app.apply_changes(p_flow text) RETURNS bigint
	  LANGUAGE plpgsql AS $$
	  DECLARE
		  v_flow_id int := (SELECT f.flow_id FROM medallion.flow f WHERE f.flow_name = p_flow);
		  r record;
	  BEGIN
		  SELECT * INTO r FROM medallion._capture_begin('public.lookup', v_flow_id);
		  EXECUTE format('UPDATE app.totals t SET n = t.n + d.n, total = t.total + d.total
						    FROM (SELECT coalesce(sum(__sign), 0) AS n,
										 coalesce(sum(__sign * price), 0) AS total
									FROM %s WHERE __change_id > $1 AND __change_id <= $2) d
						   WHERE t.flow_name = $3', r.log_table)
			  USING r.from_id, r.to_id, p_flow;
		  PERFORM medallion._capture_end('public.lookup', v_flow_id, r.to_id);
		  RETURN r.to_id;
	  END $$;
	  CREATE FUNCTION app.start_consumer(p_flow text) RETURNS void
	  LANGUAGE sql AS $$
		  SELECT medallion._capture_ensure('public.lookup',
			  (SELECT f.flow_id FROM medallion.flow f WHERE f.flow_name = p_flow));
		  INSERT INTO app.totals SELECT p_flow, count(*), sum(price) FROM public.lookup;
	  $$;
	  SELECT app.start_consumer('app.first');});

# every consumer's totals equal the table's
sub consistent
{
	my ($flow) = @_;
	return psql(
		qq{SELECT n = (SELECT count(*) FROM public.lookup)
				  AND total = (SELECT coalesce(sum(price), 0) FROM public.lookup)
			 FROM app.totals WHERE flow_name = '$flow'});
}

my $writes = q{
	INSERT INTO public.lookup SELECT g, g * 2 FROM generate_series(101, 150) g;
	UPDATE public.lookup SET price = price + 1 WHERE id % 7 = 0;
	DELETE FROM public.lookup WHERE id % 11 = 0;
};
$node->safe_psql('postgres', $writes, extra_params => [ '-U', 'cap_writer' ]);
psql(q{SELECT app.apply_changes('app.first')});
is(consistent('app.first'), 't', 'a consumer reads every change of a writer');

# a SIGKILL while a consumer's update and a writer's transaction are open
$node->safe_psql('postgres',
	q{UPDATE public.lookup SET price = price * 3 WHERE id < 50;
	  DELETE FROM public.lookup WHERE id BETWEEN 60 AND 65;},
	extra_params => [ '-U', 'cap_writer' ]);
my $before = psql(q{SELECT n || '/' || total FROM app.totals WHERE flow_name = 'app.first'});
my ($out, $err) = ('', '');
my $consumer = IPC::Run::start(
	[
		'psql', '-X', '-d', $node->connstr('postgres'), '-c',
		q{BEGIN; SELECT app.apply_changes('app.first'); SELECT pg_sleep(300); COMMIT;}
	],
	'>', \$out, '2>', \$err);
# the writer starts once the consumer has read its range: a writer already
# in flight would (rightly) make the consumer wait for its commit
$node->poll_query_until('postgres',
	q{SELECT count(*) = 1 FROM pg_stat_activity WHERE query LIKE 'BEGIN;%apply_changes%pg_sleep%'
	  AND wait_event = 'PgSleep'})
  or die 'the consumer did not reach its sleep';
my $writer = IPC::Run::start(
	[
		'psql', '-X', '-U', 'cap_writer', '-d', $node->connstr('postgres'), '-c',
		q{BEGIN; INSERT INTO public.lookup VALUES (1000, 1000); SELECT pg_sleep(300); COMMIT;}
	],
	'>', \$out, '2>', \$err);
ok( $node->poll_query_until(
		'postgres',
		q{SELECT count(*) = 2 FROM pg_stat_activity WHERE query LIKE 'BEGIN;%pg_sleep%'
		  AND wait_event = 'PgSleep'}),
	'a consumer has applied the changes and a writer has written, both uncommitted');
# SIGKILL the postmaster and every child at once
my $postmaster = $node->{_pid};
my @children = grep { /^\d+$/ } split /\s+/, `pgrep -P $postmaster`;
kill 'KILL', $postmaster, @children;
for (1 .. 500)
{
	last unless grep { kill(0, $_) } ($postmaster, @children);
	usleep(20_000);
}
$consumer->finish;
$writer->finish;
$node->{_pid} = undef;
unlink($node->data_dir . '/postmaster.pid');
$node->start;
is(psql(q{SELECT n || '/' || total FROM app.totals WHERE flow_name = 'app.first'}),
	$before, 'after the crash the consumer has applied nothing');
psql(q{SELECT app.apply_changes('app.first')});
is(consistent('app.first'), 't',
	"the next update applies the committed changes once, and the lost writer's none");
is(psql(q{SELECT count(*) FROM public.lookup WHERE id = 1000}), '0', 'the writer was lost whole');

# two consumers, writers writing all the while
psql(q{SELECT app.start_consumer('app.second')});
my $dir = PostgreSQL::Test::Utils::tempdir;
open my $script, '>', "$dir/writer.sql" or die;
print $script q{\set id random(1, 400)
\set p random(1, 1000)
BEGIN;
INSERT INTO public.lookup VALUES (:id, :p) ON CONFLICT (id) DO UPDATE SET price = excluded.price;
DELETE FROM public.lookup WHERE id = :id + 1;
COMMIT;
};
close $script;
open $script, '>', "$dir/consumer.sql" or die;
print $script q{SELECT app.apply_changes(CASE WHEN :client_id = 0 THEN 'app.first' ELSE 'app.second' END);
};
close $script;
my ($wout, $werr, $cout, $cerr) = ('', '', '', '');
my $writers = IPC::Run::start(
	[ 'pgbench', '-n', '-c', '3', '-t', '300', '-f', "$dir/writer.sql",
	  '-U', 'cap_writer', $node->connstr('postgres') ],
	'>', \$wout, '2>', \$werr);
my $consumers = IPC::Run::start(
	[ 'pgbench', '-n', '-c', '2', '-t', '60', '-f', "$dir/consumer.sql",
	  $node->connstr('postgres') ],
	'>', \$cout, '2>', \$cerr);
ok($consumers->finish && $cout =~ m{actually processed: 120/120},
	'the consumers ran while the writers wrote') or diag $cerr;
ok($writers->finish && $wout =~ m{actually processed: 900/900},
	'the writers were never blocked into failure') or diag $werr;
psql(q{SELECT app.apply_changes('app.first'), app.apply_changes('app.second')});
is(consistent('app.first'), 't', 'the first consumer read every change exactly once');
is(consistent('app.second'), 't', 'so did the second');
# pruning skips an update that finds the log locked (by autovacuum): retry
my $left;
for (1 .. 50)
{
	psql(q{SELECT app.apply_changes('app.first'), app.apply_changes('app.second')});
	$left = psql(q{SELECT count(*) FROM medallion_state.public__lookup__changes});
	last if $left eq '0';
	usleep(100_000);
}
is($left, '0', 'the log holds nothing both have read');

# dump and restore: the log, the positions and the triggers come back
$node->safe_psql('postgres', q{UPDATE public.lookup SET price = price + 5 WHERE id < 20},
	extra_params => [ '-U', 'cap_writer' ]);
my $dump = "$dir/capture.dump";
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('postgres') ],
	'pg_dump of a database with a captured table');
psql(q{CREATE DATABASE restored});
$node->command_ok([ 'pg_restore', '-d', $node->connstr('restored'), $dump ],
	'pg_restore of it');
sub restored { return $node->safe_psql('restored', $_[0]); }
is(restored(q{SELECT count(*) FROM pg_trigger WHERE tgrelid = 'public.lookup'::regclass}), '4',
	'the capture triggers are restored');
$node->safe_psql('restored', q{DELETE FROM public.lookup WHERE id < 10},
	extra_params => [ '-U', 'cap_writer' ]);
restored(q{SELECT app.apply_changes('app.first'), app.apply_changes('app.second')});
is(restored(
		q{SELECT bool_and(n = (SELECT count(*) FROM public.lookup)
				  AND total = (SELECT sum(price) FROM public.lookup)) FROM app.totals}),
	't', 'the restored consumers read the changes from before and after the dump');

# DROP EXTENSION CASCADE: the triggers and logs go, the table stays writable
psql(q{DROP EXTENSION medallion CASCADE});
is(psql(q{SELECT count(*) FROM pg_trigger WHERE tgrelid = 'public.lookup'::regclass}), '0',
	'DROP EXTENSION CASCADE drops the capture triggers');
$node->safe_psql('postgres', q{INSERT INTO public.lookup VALUES (5000, 1)},
	extra_params => [ '-U', 'cap_writer' ]);
is(psql(q{SELECT to_regclass('medallion_state.public__lookup__changes') IS NULL}), 't',
	'and the log; the table stays writable');

$node->stop;
done_testing();
