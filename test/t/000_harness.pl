# Self-test of the test harness (test/perl/MedallionTest.pm, test/s3/server.js,
# the AWS CLI and PostgreSQL::Test::Cluster). It does not load medallion, so it
# passes before the extension builds: a failure here is the harness's fault.
use strict;
use warnings;

use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Utils;
use Test::More;

use MedallionTest;

# --- S3 -------------------------------------------------------------------
my $s3 = start_s3();
like($s3->{endpoint}, qr{^http://127\.0\.0\.1:\d+$}, 's3 endpoint is loopback');
is($s3->{bucket}, 'landing', 'default bucket is landing');

my %content = (
	'harness/part-00001.json'      => qq({"id":1,"v":"a"}\n),
	'harness/part-00002.json'      => qq({"id":2,"v":"b"}\n),
	'harness/with space+plus.json' => qq({"id":3,"v":"\xc3\xa9"}\n),
);

my $file = "$PostgreSQL::Test::Utils::tmp_check/harness-part-00001.json";
append_to_file($file, $content{'harness/part-00001.json'});
ok(s3_upload($s3, $file, 'harness/part-00001.json'), 'upload a file');
ok(s3_upload_string($s3, $content{'harness/part-00002.json'}, 'harness/part-00002.json'),
	'upload a string');
ok( s3_upload_string(
		$s3, $content{'harness/with space+plus.json'},
		's3://landing/harness/with space+plus.json'),
	'upload a key with a space and a plus (s3:// form)');

sub list_keys
{
	my (@extra) = @_;
	my $out = aws_cli($s3, 's3api', 'list-objects-v2', '--bucket', 'landing',
		'--prefix', 'harness/', '--output', 'json', @extra);
	my $doc = $out eq '' ? {} : decode_json($out);
	return [ sort map { $_->{Key} } @{ $doc->{Contents} // [] } ];
}

is_deeply(list_keys(), [ sort keys %content ], 'list-objects-v2 returns the three keys');
# A page size of 1 forces continuation tokens (DES: needs the legacy provider).
is_deeply(list_keys('--page-size', '1'), [ sort keys %content ],
	'paged list-objects-v2 returns the three keys');

my $body = aws_cli($s3, 's3', 'cp', 's3://landing/harness/with space+plus.json', '-');
is($body, $content{'harness/with space+plus.json'}, 'object body round-trips');

my $head = decode_json(aws_cli($s3, 's3api', 'head-object', '--bucket', 'landing',
	'--key', 'harness/part-00002.json', '--output', 'json'));
is($head->{ContentLength}, length($content{'harness/part-00002.json'}), 'head-object size');

ok(s3_delete($s3, 'harness/part-00002.json'), 'delete an object');
is_deeply(list_keys(), [ 'harness/part-00001.json', 'harness/with space+plus.json' ],
	'deleted key is gone');

# An object is listed only once its upload is complete, as on real S3 (s3rver
# alone lists a 4 MB object at 3 MB while its body streams in, and an ingestion
# then reads a cut-off last line). curl stands in for a slow client: the AWS
# CLI cannot throttle an upload.
my $slow_file = "$PostgreSQL::Test::Utils::tmp_check/harness-slow.json";
append_to_file($slow_file, qq({"padding":"@{[ 'x' x 1000 ]}"}\n) x 4000);
my ($curl_out, $curl_err) = ('', '');
my $slow_upload = IPC::Run::start(
	[
		'curl', '--silent', '--show-error', '--fail',
		'--aws-sigv4', 'aws:amz:us-east-1:s3', '--user', 'S3RVER:S3RVER',
		'--header', 'x-amz-content-sha256: UNSIGNED-PAYLOAD',
		'--limit-rate', '1M', '--upload-file', $slow_file,
		"$s3->{endpoint}/landing/harness/slow.json"
	],
	'>', \$curl_out, '2>', \$curl_err);
sleep 2;    # about half of the body sent
ok(!(grep { $_ eq 'harness/slow.json' } @{ list_keys() }),
	'an object being uploaded is not listed yet');
ok($slow_upload->finish, 'the slow upload completes') or diag $curl_err;
my $slow_head = decode_json(aws_cli($s3, 's3api', 'head-object', '--bucket', 'landing',
	'--key', 'harness/slow.json', '--output', 'json'));
is($slow_head->{ContentLength}, -s $slow_file, 'then it is listed whole');
s3_delete($s3, 'harness/slow.json');

# s3rver 4.0.4 verifies SigV4: a wrong secret must be refused.
{
	my ($out, $err) = ('', '');
	my %env = (aws_env(), AWS_SECRET_ACCESS_KEY => 'not-the-secret');
	local @ENV{ keys %env } = values %env;
	my $ok = IPC::Run::run(
		[ '/usr/bin/aws', '--endpoint-url', $s3->{endpoint}, 's3api', 'list-objects-v2',
		  '--bucket', 'landing' ],
		'<', \undef, '>', \$out, '2>', \$err);
	ok(!$ok, 'wrong secret is refused');
	like($err, qr/SignatureDoesNotMatch/, 'refusal is SignatureDoesNotMatch');
}

my $s3b = start_s3(buckets => [ 'alpha', 'beta' ]);
isnt($s3b->{port}, $s3->{port}, 'second server gets its own port');
ok(s3_upload_string($s3b, "x\n", 's3://beta/k.txt'), 'upload to a second bucket');
like(aws_cli($s3b, 's3', 'ls', 's3://beta/'), qr/\bk\.txt$/m, 'listing the second bucket');

$s3b->stop;
{
	local $ENV{AWS_MAX_ATTEMPTS} = 1;
	my $ok_after = eval { aws_cli($s3b, 's3', 'ls', 's3://beta/'); 1 };
	ok(!$ok_after, 'stopped server no longer answers');
}

# --- PostgreSQL -------------------------------------------------------------
my $node = start_node('harness', preload => 0, work_mem => '8MB');
is($node->safe_psql('postgres', 'SELECT 1'), '1', 'node answers');
is($node->safe_psql('postgres', 'SHOW timezone'), 'UTC', 'node runs in UTC');
is($node->safe_psql('postgres', 'SHOW work_mem'), '8MB', 'extra conf is applied');
is($node->safe_psql('postgres', 'SHOW shared_preload_libraries'), '',
	'preload => 0 leaves medallion out');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_extension WHERE extname = 'medallion'}),
	'0', 'no CREATE EXTENSION with preload => 0');
$node->stop;

done_testing();
