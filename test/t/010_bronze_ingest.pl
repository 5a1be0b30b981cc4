# Bronze ingestion from a real S3-compatible server (s3rver, which verifies
# SigV4), with objects uploaded by the real AWS CLI.
#
# Covers: listing pages (more than 1,000 keys), special-character keys, gzip,
# JSON arrays, CSV, malformed lines rescued; nothing new on a second run;
# exactly the new objects on a third; overwrites ignored or re-ingested with
# allow_overwrites; the path_glob, max_files_per_batch, max_batches_per_update and
# include_existing_files options; clear errors for a wrong secret, an
# unknown bucket and an unreachable endpoint, with nothing ingested and
# everything ingested after the fix; secrets unusable and unreadable by
# other roles and absent from the server log and the event log.
use strict;
use warnings;

use File::Path qw(make_path);
use File::Temp qw(tempdir);
use PostgreSQL::Test::Utils;
use Test::More;
use MedallionTest;

my $s3 = start_s3(buckets => ['landing']);
my $node = start_node(
	'bronze',
	'medallion.s3_max_attempts' => '2',
	'medallion.s3_retry_base_delay' => '20ms',
	'medallion.s3_connect_timeout' => '2s',
	'medallion.allowed_endpoints' => $s3->{endpoint},
	'log_min_messages' => 'debug1',
	# the test framework logs every statement by default; statement logging
	# shows the text the client sent, so it is off here, as it should be
	# wherever secrets are created (see the README)
	'log_statement' => 'none');
my $endpoint = $s3->{endpoint};
my $work = tempdir(CLEANUP => 1);

# A distinctive secret value that must never show up anywhere.
my $decoy_secret = 'TOPSECRET-d3c0y-7f1e';

sub psql
{
	my ($sql) = @_;
	return $node->safe_psql('postgres', $sql);
}

sub write_file
{
	my ($path, $content) = @_;
	open my $fh, '>:raw', $path or die "cannot write $path: $!";
	print $fh $content;
	close $fh;
}

# Records: the test counts what it writes, row by row.
my %expected = (paged => [ 0, 0 ], mixed => [ 0, 0 ], csv => [ 0, 0 ]);

sub order_record
{
	my ($id) = @_;
	return sprintf(
		'{"order_id": %d, "customer_id": %d, "product": "seed-%d", "quantity": %d, "unit_price": %.2f}',
		$id, $id % 97, $id % 13, 1 + $id % 7, 10 + ($id % 50) / 4);
}

# 1,050 objects under paged/ (fixed-width names: s3rver pages correctly
# only within one directory level), 2 records each.
my $paged_dir = "$work/paged";
make_path($paged_dir);
for my $n (1 .. 1050)
{
	write_file(sprintf("%s/part-%05d.json", $paged_dir, $n),
		order_record($n * 2) . "\n" . order_record($n * 2 + 1) . "\n");
	$expected{paged}[0] += 2;
}
aws_cli($s3, 's3', 'cp', $paged_dir, 's3://landing/paged/', '--recursive',
	'--only-show-errors');

# mixed/: 20 plain files with malformed lines, blank lines, CRLF, a BOM;
# special-character keys; gzip; a JSON array.
my $id = 100000;
for my $n (1 .. 20)
{
	my $content = '';
	$content .= "\xEF\xBB\xBF" if $n == 1;
	for my $line (1 .. 5)
	{
		$content .= order_record($id++) . ($n % 3 == 0 ? "\r\n" : "\n");
		$expected{mixed}[0]++;
	}
	if ($n % 4 == 0)
	{
		$content .= "{\"order_id\": 1, broken\n";
		$content .= "not json at all\n";
		$expected{mixed}[0] += 2;
		$expected{mixed}[1] += 2;
	}
	$content .= "\n   \n" if $n % 5 == 0;    # blank lines are no records
	s3_upload_string($s3, $content, sprintf('mixed/file-%02d.json', $n));
}

# s3rver escapes "&" twice in its listing XML ("&amp;amp;"), so a key with
# "&" cannot round-trip through it; the client's own handling of "&" is
# tested against correct XML elsewhere.
my @special_keys = (
	'mixed/with space.json', 'mixed/plus+sign.json',
	'mixed/equals=sign.json', "mixed/caf\xc3\xa9-\xc3\xbcml.json",
	'mixed/til~de.json');
for my $key (@special_keys)
{
	s3_upload_string($s3, order_record($id++) . "\n" . order_record($id++) . "\n",
		$key);
	$expected{mixed}[0] += 2;
}

{
	my $plain = '';
	for (1 .. 300)
	{
		$plain .= order_record($id++) . "\n";
		$expected{mixed}[0]++;
	}
	$plain .= "{truncated\n";
	$expected{mixed}[0]++;
	$expected{mixed}[1]++;
	write_file("$work/gz.json", $plain);
	system('gzip', '-9', '-f', "$work/gz.json") == 0 or die 'gzip failed';
	s3_upload($s3, "$work/gz.json.gz", 'mixed/zz-compressed.json.gz');
}

{
	my @elements = map { order_record($id++) } 1 .. 7;
	my $array = "[\n  " . join(",\n  ", @elements[0 .. 6]) . ",\n  {bad json}\n]\n";
	$expected{mixed}[0] += 8;
	$expected{mixed}[1] += 1;
	s3_upload_string($s3, $array, 'mixed/zz-array.json');
}

# csv/: a header row, quoting, a ragged row
{
	my $csv = "order_id,product,note\n";
	$csv .= "1,seed,\"hello, world\"\n";
	$csv .= "2,\"quoted \"\"name\"\"\",\n";
	$csv .= "3,ragged,row,extra\n";
	$csv .= "4,\"multi\nline\",x\r\n";
	$expected{csv} = [ 4, 1 ];
	s3_upload_string($s3, $csv, 'csv/orders.csv');
}

psql(
	qq{
	SELECT medallion.create_secret('s3rver', 'S3RVER', 'S3RVER');
	SELECT medallion.create_pipeline('ingest');
	SELECT medallion.create_bronze('ingest', 'bronze_paged', 's3://landing/paged/',
		secret_name => 's3rver', endpoint => '$endpoint',
		options => '{"max_files_per_batch": 5000}');
	SELECT medallion.create_bronze('ingest', 'bronze_mixed', 's3://landing/mixed/',
		secret_name => 's3rver', endpoint => '$endpoint');
	SELECT medallion.create_bronze('ingest', 'bronze_csv', 's3://landing/csv/',
		secret_name => 's3rver', endpoint => '$endpoint', format => 'csv');
});

my $result = psql(
	"SELECT flow_name || ':' || rows_written FROM medallion.run_pipeline('ingest') ORDER BY 1"
);
is( $result,
	join("\n",
		"public.bronze_csv:$expected{csv}[0]",
		"public.bronze_mixed:$expected{mixed}[0]",
		"public.bronze_paged:$expected{paged}[0]"),
	'first run reports the rows of every object');

for my $table (qw(paged mixed csv))
{
	is( psql("SELECT count(*) || ',' || count(_rescued_data) FROM bronze_$table"),
		"$expected{$table}[0],$expected{$table}[1]",
		"bronze_$table has every record, malformed ones rescued");
}
is(psql("SELECT count(*) FROM bronze_paged WHERE data IS NULL"),
	'0', 'no paged record was lost to rescue');
is( psql(
		"SELECT count(*) FROM medallion.ingested_files WHERE flow_name = 'public.bronze_paged'"),
	'1050',
	'the ledger has every one of the 1,050 paged objects (listing pages)');
is( psql(
		"SELECT count(DISTINCT _file_path) FROM bronze_mixed WHERE _file_name IN ('with space.json', 'plus+sign.json', 'equals=sign.json', 'til~de.json', 'café-üml.json')"
	),
	'5',
	'special-character keys are ingested under their own names');
is( psql(
		"SELECT _file_path FROM bronze_mixed WHERE _file_name = 'plus+sign.json' LIMIT 1"),
	's3://landing/mixed/plus+sign.json',
	'_file_path is s3://bucket/key');
is( psql(
		"SELECT count(*) FROM bronze_mixed WHERE data->>'order_id' IS NOT NULL AND _file_name = 'zz-compressed.json.gz'"
	),
	'300',
	'gzip object decompressed');
is( psql(
		"SELECT data::text FROM bronze_csv WHERE data->>'order_id' = '2'"),
	'{"note": null, "product": "quoted \"name\"", "order_id": "2"}',
	'CSV quoting and empty fields');
is( psql(
		"SELECT _rescued_data FROM bronze_csv WHERE _rescued_data IS NOT NULL"),
	'3,ragged,row,extra',
	'a ragged CSV row is rescued');
is( psql(
		"SELECT bool_and(_file_size > 0 AND _file_modification_time IS NOT NULL AND _ingested_at IS NOT NULL) FROM bronze_mixed"
	),
	't',
	'file metadata columns are filled');
is( psql(
		"SELECT count(*) FROM (SELECT _row_id FROM bronze_paged GROUP BY 1 HAVING count(*) > 1) d"),
	'0',
	'_row_id is unique');

# Run again: nothing new.
is( psql(
		"SELECT sum(rows_written) FROM medallion.run_pipeline('ingest')"),
	'0',
	'second run ingests nothing');

# Three more objects: exactly those.
for my $n (21 .. 23)
{
	s3_upload_string($s3, order_record($id++) . "\n", sprintf('mixed/file-%02d.json', $n));
	$expected{mixed}[0]++;
}
is( psql(
		"SELECT string_agg(flow_name || ':' || rows_written, ',' ORDER BY flow_name) FROM medallion.run_pipeline('ingest')"
	),
	'public.bronze_csv:0,public.bronze_mixed:3,public.bronze_paged:0',
	'third run ingests exactly the three new objects');
is(psql("SELECT count(*) FROM bronze_mixed"),
	$expected{mixed}[0], 'bronze_mixed has the three new rows');

# Overwrite an object: ignored by default ...
s3_upload_string($s3, order_record(1) . "\n" . order_record(2) . "\n",
	'mixed/file-21.json');
is(psql("SELECT sum(rows_written) FROM medallion.run_pipeline('ingest')"),
	'0', 'an overwritten object is not ingested again by default');

# ... and ingested again with allow_overwrites.
psql(
	qq{
	SELECT medallion.create_pipeline('overwrites');
	SELECT medallion.create_bronze('overwrites', 'bronze_overwrites', 's3://landing/mixed/',
		secret_name => 's3rver', endpoint => '$endpoint',
		options => '{"allow_overwrites": true, "path_glob": "file-2[23].json"}');
});
is(psql("SELECT sum(rows_written) FROM medallion.run_pipeline('overwrites')"),
	'2', 'path_glob selects file-22 and file-23 (one row each)');
s3_upload_string($s3, order_record(7) . "\n" . order_record(8) . "\n" . order_record(9) . "\n",
	'mixed/file-22.json');
is(psql("SELECT sum(rows_written) FROM medallion.run_pipeline('overwrites')"),
	'3', 'with allow_overwrites the new version is ingested');
is( psql(
		"SELECT count(*) FROM medallion.ingested_files WHERE flow_name = 'public.bronze_overwrites' AND path LIKE '%file-22.json'"
	),
	'2',
	'the ledger keeps both versions (path and ETag)');

# max_files_per_batch with the opt-in cap max_batches_per_update, and
# include_existing_files
psql(
	qq{
	SELECT medallion.create_pipeline('batches');
	SELECT medallion.create_bronze('batches', 'bronze_batches', 's3://landing/mixed/',
		secret_name => 's3rver', endpoint => '$endpoint',
		options => '{"max_files_per_batch": 10, "max_batches_per_update": 1}');
	SELECT medallion.create_pipeline('newonly');
	SELECT medallion.create_bronze('newonly', 'bronze_newonly', 's3://landing/mixed/',
		secret_name => 's3rver', endpoint => '$endpoint',
		options => '{"include_existing_files": false}');
});
psql("SELECT * FROM medallion.run_pipeline('batches')");
is(psql("SELECT count(DISTINCT _file_path) FROM bronze_batches"),
	'10', 'max_batches_per_update = 1 caps one update at one batch of 10 objects');
is( psql(
		"SELECT (details->>'backlog')::bool FROM medallion.event_log WHERE flow_name = 'public.bronze_batches' AND event_type = 'flow_progress' ORDER BY id DESC LIMIT 1"
	),
	't',
	'the backlog is reported');
psql("SELECT * FROM medallion.run_pipeline('batches')") for 1 .. 3;
is(psql("SELECT count(DISTINCT _file_path) FROM bronze_batches"),
	psql("SELECT count(DISTINCT _file_path) FROM bronze_mixed"),
	'later updates drain the backlog');
is(psql("SELECT sum(rows_written) FROM medallion.run_pipeline('newonly')"),
	'0', 'include_existing_files = false skips what exists at the first update');
s3_upload_string($s3, order_record($id++) . "\n", 'mixed/file-99.json');
is(psql("SELECT sum(rows_written) FROM medallion.run_pipeline('newonly')"),
	'1', '... and ingests what arrives later');

# max_parallel_objects: several processes, still exactly once
psql(
	qq{
	SELECT medallion.create_pipeline('parallel');
	SELECT medallion.create_bronze('parallel', 'bronze_parallel', 's3://landing/paged/',
		secret_name => 's3rver', endpoint => '$endpoint',
		options => '{"max_parallel_objects": 3, "max_files_per_batch": 5000}');
});
is(psql("SELECT sum(rows_written) FROM medallion.run_pipeline('parallel')"),
	$expected{paged}[0], 'max_parallel_objects = 3 ingests every record');
is( psql(
		"SELECT count(*) || ',' || count(DISTINCT (_file_path, data)) FROM bronze_parallel"),
	"$expected{paged}[0],$expected{paged}[0]",
	'... exactly once');
is( psql(
		"SELECT count(*) FROM medallion.ingested_files WHERE flow_name = 'public.bronze_parallel'"),
	'1050',
	'... with one ledger row per object');
is(psql("SELECT sum(rows_written) FROM medallion.run_pipeline('parallel')"),
	'0', '... and nothing again on the next update');

# ---- errors: wrong secret, unknown bucket, unreachable endpoint ----
psql(
	qq{
	SELECT medallion.create_secret('decoy', 'S3RVER', '$decoy_secret');
	SELECT medallion.create_pipeline('wrong_secret');
	SELECT medallion.create_bronze('wrong_secret', 'bronze_wrong_secret', 's3://landing/csv/',
		secret_name => 'decoy', endpoint => '$endpoint', format => 'csv');
});
my ($ret, $stdout, $stderr) =
  $node->psql('postgres', "SELECT * FROM medallion.run_pipeline('wrong_secret')");
isnt($ret, 0, 'a wrong secret fails the update');
like($stderr, qr/SignatureDoesNotMatch/, 'the error names the S3 error code');
like($stderr, qr/HINT:.*secret/i, 'with a hint about the key pair');
is( psql(
		"SELECT state || ',' || (last_error IS NOT NULL) FROM medallion.pipelines WHERE pipeline_name = 'wrong_secret'"
	),
	'failed,true',
	'state failed and last_error recorded durably');
is( psql(
		"SELECT count(*) FROM medallion.event_log WHERE pipeline_name = 'wrong_secret' AND event_type = 'error'"
	),
	'1',
	'an error event is recorded');
is(psql("SELECT count(*) FROM bronze_wrong_secret"), '0', 'nothing ingested');
# a duplicate create_secret fails without writing the secret to the log
$node->psql('postgres',
	"SELECT medallion.create_secret('decoy', 'S3RVER', '$decoy_secret')");
psql(
	q{SELECT medallion.drop_secret('decoy');
	  SELECT medallion.create_secret('decoy', 'S3RVER', 'S3RVER');});
is(psql("SELECT sum(rows_written) FROM medallion.run_pipeline('wrong_secret')"),
	$expected{csv}[0], 'after fixing the secret everything is ingested');
is( psql(
		"SELECT state || ',' || coalesce(last_error, 'none') FROM medallion.pipelines WHERE pipeline_name = 'wrong_secret'"
	),
	'idle,none',
	'a successful update clears the failure');

psql(
	qq{
	SELECT medallion.create_pipeline('no_bucket');
	SELECT medallion.create_bronze('no_bucket', 'bronze_no_bucket', 's3://missing-bucket/data/',
		secret_name => 's3rver', endpoint => '$endpoint');
});
($ret, $stdout, $stderr) =
  $node->psql('postgres', "SELECT * FROM medallion.run_pipeline('no_bucket')");
isnt($ret, 0, 'an unknown bucket fails the update');
like($stderr, qr/NoSuchBucket/, 'the error names NoSuchBucket');
is(psql("SELECT state FROM medallion.pipelines WHERE pipeline_name = 'no_bucket'"),
	'failed', 'state failed');
aws_cli($s3, 's3', 'mb', 's3://missing-bucket');
s3_upload_string($s3, order_record(1) . "\n", 's3://missing-bucket/data/a.json');
is(psql("SELECT sum(rows_written) FROM medallion.run_pipeline('no_bucket')"),
	'1', 'once the bucket exists its objects are ingested');

my $s3b = start_s3(buckets => ['landing']);
s3_upload_string($s3b, order_record(1) . "\n" . order_record(2) . "\n", 'later/a.json');
my $endpoint_b = $s3b->{endpoint};
psql(
	qq{
	SELECT medallion.create_pipeline('unreachable');
	SELECT medallion.create_bronze('unreachable', 'bronze_unreachable', 's3://landing/later/',
		secret_name => 's3rver', endpoint => '$endpoint_b');
});
$s3b->stop;
($ret, $stdout, $stderr) =
  $node->psql('postgres', "SELECT * FROM medallion.run_pipeline('unreachable')");
isnt($ret, 0, 'an unreachable endpoint fails the update');
like($stderr, qr/could not (connect|list)/i, 'with a clear connection error');
is( psql(
		"SELECT count(*) FROM medallion.event_log WHERE pipeline_name = 'unreachable' AND event_type = 'retry'"
	),
	'1',
	'the retry is logged as a retry event');
is(psql("SELECT count(*) FROM bronze_unreachable"), '0', 'nothing ingested');
$s3b->start;
is(psql("SELECT sum(rows_written) FROM medallion.run_pipeline('unreachable')"),
	'2', 'once the endpoint is back everything is ingested');

# ---- privileges on secrets ----
psql(
	q{CREATE ROLE alice LOGIN;
	  GRANT CREATE ON SCHEMA public TO alice;});
($ret, $stdout, $stderr) = $node->psql('postgres',
	'SET ROLE alice; SELECT secret_access_key FROM medallion.secret');
like($stderr, qr/permission denied for table secret/,
	'another role cannot read the secret table');
is( $node->safe_psql('postgres',
		'SET ROLE alice; SELECT count(*) FROM medallion.secrets'),
	'0',
	'another role does not see the secrets of others');
($ret, $stdout, $stderr) = $node->psql(
	'postgres', qq{SET ROLE alice;
	SELECT medallion.create_pipeline('alice_p');
	SELECT medallion.create_bronze('alice_p', 'alice_bronze', 's3://landing/csv/',
		secret_name => 's3rver', endpoint => '$endpoint', format => 'csv');});
like($stderr, qr/permission denied for secret "s3rver"/,
	'another role cannot use the secret');
($ret, $stdout, $stderr) = $node->psql('postgres',
	q{SET ROLE alice; SELECT medallion.drop_secret('s3rver')});
like($stderr, qr/must be owner of secret/, 'nor drop it');

my $log = slurp_file($node->logfile);
unlike($log, qr/\Q$decoy_secret\E/, 'the secret value is in no server log line (debug1)');
is( psql(
		"SELECT count(*) FROM medallion.event e WHERE e::text LIKE '%$decoy_secret%' OR e::text LIKE '%S3RVER%'"
	),
	'0',
	'no key material in the event log');
is( psql(
		"SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%$decoy_secret%' AND pid <> pg_backend_pid()"
	),
	'0',
	'no key material in pg_stat_activity');

done_testing();
