# Backup and restore: pg_dump -Fc of a database with pipelines, pg_restore
# into a new database of the same cluster, and of another cluster.
#
# Covers: while the restore is half done (pre-data and data, no indexes yet)
# the restored continuous pipeline is stopped and no worker runs there;
# watermarks and the ledger come back; secrets do not travel, and a pipeline
# fails clearly (naming the secret, with a hint) until its owner creates the
# secret again; then the restored pipelines ingest only objects they have
# not seen, and silver, gold and the aggregate continue and equal their
# definitions; start_pipeline resumes the continuous pipeline.  Also which
# dumps a non-superuser can take: the pipeline owner's whole-database dump
# is refused on medallion's catalog, succeeds without the catalog's data,
# and a member of pg_read_all_data dumps everything.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use MedallionTest;
use MedallionOrders;

my $owner = 'pipeline_owner';
my $s3 = start_s3(buckets => ['landing']);
my $endpoint = $s3->{endpoint};
my $node = start_node(
	'restore',
	create_extension => 0,
	'medallion.enable_workers' => 'on',
	'medallion.launcher_naptime' => '200ms',
	'medallion.allowed_endpoints' => $endpoint,
	'log_statement' => 'none');
upload_orders($s3, $_) for 1 .. 2;
upload_stream($s3, 1);

$node->safe_psql('postgres', "CREATE ROLE $owner LOGIN; CREATE DATABASE src");
$node->safe_psql('src',
	'CREATE EXTENSION medallion;'
	  . join('', map { "CREATE SCHEMA $_ AUTHORIZATION $owner;" } qw(bronze silver gold)));
$node->safe_psql('src', pipeline_sql($endpoint, $owner));
$node->safe_psql('src', "SET ROLE $owner; SELECT * FROM medallion.run_pipeline('orders')");
ok($node->poll_query_until('src', 'SELECT count(*) = 5 FROM bronze.stream'),
	'the continuous pipeline runs in the source database');

my $archive = "$PostgreSQL::Test::Utils::tmp_check/src.dump";
command_ok([ 'pg_dump', '-Fc', '--no-sync', '-f', $archive, '-d', $node->connstr('src') ],
	'pg_dump -Fc of the source database');
my $watermarks = q{SELECT string_agg(flow_name || '=' || watermark, ',' ORDER BY flow_name) FROM medallion.flows};
my $ledger = q{SELECT string_agg(path || ' ' || etag, ',' ORDER BY path) FROM medallion.ingested_files};
my %source = (
	watermarks => $node->safe_psql('src', $watermarks),
	ledger => $node->safe_psql('src', $ledger));

# Half a restore: the tables and their data, without indexes and triggers.
$node->safe_psql('postgres', 'CREATE DATABASE dst');
command_ok(
	[ 'pg_restore', '--section=pre-data', '--section=data', '-d', $node->connstr('dst'),
		$archive ],
	'pg_restore of pre-data and data');
is( $node->safe_psql('dst',
		q{SELECT string_agg(pipeline_name || ':' || state, ',' ORDER BY pipeline_name) FROM medallion.pipelines}),
	'orders:idle,stream:stopped',
	'the restored continuous pipeline comes back stopped');
# A scheduler visits a database without running pipelines only briefly (it
# leaves when it finds nothing to run), so watch for it from one session,
# every 5 ms, with a fresh statistics snapshot each time.
my ($visited) = $node->psql(
	'postgres', q{DO $$
	BEGIN
		FOR i IN 1 .. 12000 LOOP
			PERFORM pg_stat_clear_snapshot();
			IF EXISTS (SELECT FROM pg_stat_activity
			            WHERE backend_type = 'medallion scheduler' AND datname = 'dst') THEN
				RETURN;
			END IF;
			PERFORM pg_sleep(0.005);
		END LOOP;
		RAISE EXCEPTION 'no scheduler visited dst';
	END $$});
is($visited, 0, 'a scheduler looks at the restored database');
usleep(2_000_000);    # ten naptimes of the scheduler
is( $node->safe_psql('dst',
		q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'medallion worker' AND datname = 'dst'}),
	'0',
	'no worker runs in the half-restored database');
command_ok([ 'pg_restore', '--section=post-data', '-d', $node->connstr('dst'), $archive ],
	'pg_restore of post-data');
is($node->safe_psql('dst', $watermarks), $source{watermarks}, 'the watermarks come back');
is($node->safe_psql('dst', $ledger), $source{ledger}, 'the ledger comes back');
is($node->safe_psql('dst', 'SELECT count(*) FROM medallion.secret'),
	'0', 'secrets do not travel');

# Until the owner creates the secret again, the pipeline fails clearly.
my ($ret, $out, $err) = $node->psql('dst',
	"SET ROLE $owner; SELECT * FROM medallion.run_pipeline('orders')");
like($err, qr/secret "landing" does not exist/, 'without its secret the update fails, naming it');
like($err, qr/HINT:  Create it with medallion\.create_secret\(\)\./, '... with a hint');
is( $node->safe_psql('dst',
		q{SELECT state || ' ' || (last_error LIKE '%secret "landing" does not exist%') FROM medallion.pipelines WHERE pipeline_name = 'orders'}),
	'failed true',
	'... recorded in the pipeline state');

$node->safe_psql('dst',
	"SET ROLE $owner; SELECT medallion.create_secret('landing', 'S3RVER', 'S3RVER')");
upload_orders($s3, 3);
is( $node->safe_psql('dst',
		"SET ROLE $owner; SELECT string_agg(flow_name || ':' || rows_written, ',' ORDER BY flow_name) FROM medallion.run_pipeline('orders') WHERE flow_type = 'bronze'"
	),
	'bronze.orders:14',
	'the restored pipeline ingests only the object it has not seen (14 lines)');
is( $node->safe_psql('dst',
		q{SELECT count(*) || ' ' || count(DISTINCT _file_path) || ' ' || count(DISTINCT _row_id) FROM bronze.orders}),
	'42 3 42',
	'bronze has the three objects once each');
orders_continue_ok($node, 'dst', $owner);

upload_stream($s3, 2);
$node->safe_psql('dst', "SET ROLE $owner; SELECT medallion.start_pipeline('stream')");
ok($node->poll_query_until('dst', 'SELECT count(*) = 10 FROM bronze.stream'),
	'start_pipeline resumes the restored continuous pipeline');
is($node->safe_psql('dst', 'SELECT count(DISTINCT _file_path) FROM bronze.stream'),
	'2', '... which ingests only the new object');

# Another cluster: the owner role must exist there first (pg_restore does
# not create roles); then the same dump restores in one go and the pipeline
# continues from its ledger there too.
my $other = start_node(
	'restore_other',
	create_extension => 0,
	'medallion.enable_workers' => 'on',
	'medallion.launcher_naptime' => '200ms',
	'medallion.allowed_endpoints' => $endpoint,
	'log_statement' => 'none');
$other->safe_psql('postgres', "CREATE ROLE $owner LOGIN; CREATE DATABASE moved");
command_ok([ 'pg_restore', '-d', $other->connstr('moved'), $archive ],
	'pg_restore into a database of another cluster');
is( $other->safe_psql('moved',
		q{SELECT string_agg(pipeline_name || ':' || state, ',' ORDER BY pipeline_name) FROM medallion.pipelines}),
	'orders:idle,stream:stopped',
	'there too the restored pipelines come back idle and stopped');
$other->safe_psql('moved',
	"SET ROLE $owner; SELECT medallion.create_secret('landing', 'S3RVER', 'S3RVER')");
is( $other->safe_psql('moved',
		"SET ROLE $owner; SELECT string_agg(flow_name || ':' || rows_written, ',' ORDER BY flow_name) FROM medallion.run_pipeline('orders') WHERE flow_type = 'bronze'"
	),
	'bronze.orders:14',
	'in the other cluster the pipeline ingests only the object its ledger has not seen');
orders_continue_ok($other, 'moved', $owner);
$other->stop;

# Dumps by non-superusers.
($out, $err) = run_command([ 'pg_dump', '--no-sync', '-d', $node->connstr('src') . " user=$owner" ]);
like($err, qr/permission denied for sequence flow_flow_id_seq/,
	"the owner's whole-database dump is refused on medallion's catalog");
($out, $err) = run_command(
	[ 'pg_dump', '--no-sync', "--exclude-table-data=medallion.*", '-d',
		$node->connstr('src') . " user=$owner" ]);
is($err, '', "... and succeeds with --exclude-table-data='medallion.*'");
like($out, qr/COPY bronze\.orders /, '... with the pipeline tables');
unlike($out, qr/COPY medallion\./, '... without the pipeline definitions');
$node->safe_psql('postgres', 'CREATE ROLE backup LOGIN IN ROLE pg_read_all_data');
($out, $err) = run_command([ 'pg_dump', '--no-sync', '-d', $node->connstr('src') . ' user=backup' ]);
is($err, '', 'a member of pg_read_all_data dumps the whole database');
like($out, qr/^\d+\torders\t$owner\ttriggered\t/m, '... pipeline definitions included');
unlike($out, qr/S3RVER/, '... and no secret');

done_testing();
