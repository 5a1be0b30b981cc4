# Bad input and S3 faults, each with a clear outcome.
#
# Part 1, a corpus of bad objects (through test/fault/fault_s3.py, a strict
# S3 stub): malformed JSON, invalid UTF-8, \u0000, JSON scalars and arrays
# instead of objects, numbers beyond bigint (kept exactly), nesting 100,000
# levels deep, an empty and a blank file, a 50 MB single-line record (kept
# whole; rescued truncated under a smaller max_record_bytes), a truncated
# gzip and a binary file (recorded as failed in the ledger with an error
# event), ragged and non-UTF-8 CSV rows, a key of 1,024 bytes and keys with
# XML's special characters (& < > ' "), with and without encoding-type=url.
# Poison objects come first in listing order and never block the objects
# after them; skip_object and retry_object clear them.
#
# Part 2, every kind of S3 fault: 503 SlowDown (with and without
# Retry-After, which is honoured), 500 InternalError, 503
# ServiceUnavailable, 400 RequestTimeout, a connection reset mid-body, a
# short body, a stall past medallion.s3_low_speed_time, an empty reply,
# truncated and invalid listing XML are retried and the update succeeds with
# exactly the expected rows; retries exhausted give a clear transient error
# that names the attempts; 403 RequestTimeTooSkewed, 400 ExpiredToken and
# 301 PermanentRedirect are not retried and give clear errors (the region
# named); an object replaced between listing and GET (412 on If-Match) is
# ingested, in its new version, by the next update.  The fault server's
# counters prove that every fault fired.
use strict;
use warnings;

use IO::Compress::Gzip qw(gzip $GzipError);
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use MedallionTest;
use FaultS3;

my $s3 = start_fault_s3();
my $endpoint = $s3->{endpoint};
my $node = start_node(
	'bad_input',
	'medallion.s3_max_attempts' => '4',
	'medallion.s3_retry_base_delay' => '10ms',
	'medallion.s3_retry_max_delay' => '3s',
	'medallion.s3_low_speed_time' => '1',
	'medallion.s3_connect_timeout' => '2s');

sub psql { return $node->safe_psql('postgres', $_[0]); }

# Run an update; returns (ok, rows written or error text).
sub run_pipeline
{
	my ($pipeline) = @_;
	my ($ret, $stdout, $stderr) = $node->psql('postgres',
		"SELECT coalesce(sum(rows_written), 0) FROM medallion.run_pipeline('$pipeline')");
	return $ret == 0 ? (1, $stdout) : (0, $stderr);
}

sub run_ok
{
	my ($pipeline, $name) = @_;
	my ($ok, $out) = run_pipeline($pipeline);
	ok($ok, $name) or diag($out);
	return $ok ? $out : undef;
}

psql(
	qq{SELECT medallion.create_secret('fs3', 'S3RVER', 'S3RVER');
	   SELECT medallion.create_pipeline('bad');
	   SELECT medallion.create_bronze('bad', 'bronze_bad', 's3://landing/bad/',
	       secret_name => 'fs3', endpoint => '$endpoint');
	   SELECT medallion.create_bronze('bad', 'bronze_small', 's3://landing/bad/',
	       secret_name => 'fs3', endpoint => '$endpoint',
	       options => '{"path_glob": "a10-*", "max_record_bytes": 1048576}');
	   SELECT medallion.create_bronze('bad', 'bronze_csv', 's3://landing/csv/',
	       secret_name => 'fs3', endpoint => '$endpoint', format => 'csv');});

# ---------------------------------------------------------------------------
# Part 1: the corpus.  Names sort the poison objects first.
# ---------------------------------------------------------------------------
my %expect;    # file name => [rows, rescued]

{
	my $lines = join('', map { qq({"n": $_}\n) } 1 .. 1000);
	my $gz;
	gzip(\$lines => \$gz) or die $GzipError;
	$s3->put_object('bad/a01-truncated.json.gz', substr($gz, 0, length($gz) / 2));
	$s3->put_object('bad/a02-binary.json', join('', map { chr(($_ * 37) % 256) } 0 .. 4095));
}

$s3->put_object('bad/a03-malformed.json',
	    qq({"ok": 1}\n)
	  . qq({"a": 1,,}\n)
	  . qq({"b": tru}\n)
	  . qq({unquoted: 1}\n)
	  . qq({"c": "no end\n)
	  . qq({"d": 1}}\n)
	  . qq({"ok": 2}\n));
$expect{'a03-malformed.json'} = [ 7, 5 ];

$s3->put_object('bad/a04-utf8.json',
	    qq({"s": "caf\xe9"}\n)              # Latin-1, not UTF-8
	  . qq({"s": "\xc3\xa9t\xc3\xa9"}\n)    # valid UTF-8
	  . qq({"s": "\xed\xa0\x80"}\n)         # a UTF-16 surrogate in UTF-8
	  . qq({"s": "nul \\u0000 inside"}\n)
	  . qq({"s": "\xff\xfe"}\n));
$expect{'a04-utf8.json'} = [ 5, 4 ];

$s3->put_object('bad/a05-scalars.json',
	qq(42\n"a string"\ntrue\nnull\n[1, 2, 3]\n{"ok": true}\n));
$expect{'a05-scalars.json'} = [ 6, 5 ];

my $digits1001 = '9' x 1001;
$s3->put_object('bad/a06-numbers.json',
	    qq({"big": 123456789012345678901234567890, "neg": -98765432109876543210987654321, )
	  . qq("frac": 0.1000000000000000000000000000000000001, "exp": 1.5e300, "tiny": 2.5e-300}\n)
	  . qq({"huge_exponent": 1e20000}\n)
	  . qq({"long": $digits1001}\n));
$expect{'a06-numbers.json'} = [ 3, 2 ];

{
	my $depth = 100_000;
	my $deep = ('{"a": ' x $depth) . '1' . ('}' x $depth);
	my $ok_depth = 1000;
	my $fine = ('{"a": ' x ($ok_depth - 1)) . '{"leaf": 1' . ('}' x $ok_depth);
	my $too_deep = ('[' x 1001) . (']' x 1001);
	$s3->put_object('bad/a07-deep.json',
		"$deep\n$fine\n" . qq({"x": $too_deep}\n));
	$expect{'a07-deep.json'} = [ 3, 2 ];
}

$s3->put_object('bad/a08-empty.json', '');
$expect{'a08-empty.json'} = [ 0, 0 ];
$s3->put_object('bad/a09-blank.json', "\n   \n\r\n\t\n");
$expect{'a09-blank.json'} = [ 0, 0 ];

my $huge_size = 50 * 1024 * 1024;
{
	my $huge = qq({"id": "huge", "blob": ") . ('x' x $huge_size) . qq("}\n);
	$s3->put_object('bad/a10-huge.json', $huge);
	$expect{'a10-huge.json'} = [ 1, 0 ];
}

# a key of exactly 1,024 bytes (the S3 maximum), with two-byte characters
my $long_name = ("\xc3\xa9" x 504) . 'abcd.json';    # 1,017 bytes of UTF-8
my $long_key = "bad/z1-$long_name";                    # 1,024 bytes
die 'the long key is not 1,024 bytes' unless length($long_key) == 1024;
$s3->put_object($long_key, qq({"long": "key"}\n));
$expect{"z1-$long_name"} = [ 1, 0 ];

my $amp_name = q{z2-amp&ersand <lt> >gt 'apos' "quot" +plus %25 sp ace.json};
$s3->put_object("bad/$amp_name", qq({"amp": 1}\n{"amp": 2}\n));
$expect{$amp_name} = [ 2, 0 ];

$s3->put_object('bad/z3-good.json', join('', map { qq({"good": $_}\n) } 1 .. 3));
$expect{'z3-good.json'} = [ 3, 0 ];

$s3->put_object('csv/c1-ragged.csv',
	    "a,b,c\n"
	  . "1,2,3\n"
	  . "4,5\n"
	  . "6,7,8,9\n"
	  . "\"quoted, comma\",x,y\n"
	  . "caf\xe9,latin1,row\n"
	  . "\n"
	  . "10,11,12\r\n");
$s3->put_object('csv/c2-header-only.csv', "a,b\n");
$s3->put_object('csv/c3-empty.csv', '');

my $written = run_ok('bad', 'an update over the whole corpus succeeds');
my $expected_rows = 0;
$expected_rows += $_->[0] for values %expect;
$expected_rows += 1 + 6;    # bronze_small's rescued huge record; the CSV rows
is($written, $expected_rows, "it writes $expected_rows rows");
is( psql(q{SELECT state || ',' || coalesce(last_error, 'none') FROM medallion.pipelines WHERE pipeline_name = 'bad'}),
	'idle,none',
	'bad objects do not fail the pipeline');

for my $name (sort keys %expect)
{
	my $q = $name;
	$q =~ s/'/''/g;
	is( psql(
			"SELECT count(*) || ',' || count(_rescued_data) FROM bronze_bad WHERE _file_name = '$q'"),
		join(',', @{ $expect{$name} }),
		sprintf('%s: %d rows, %d rescued',
			$name =~ /^z1-/ ? 'the 1,024-byte key' : $name =~ /^z2-/ ? 'the key with & < > \' " + %' : $name,
			@{ $expect{$name} }));
}

# malformed JSON
is( psql(
		q{SELECT string_agg(_rescued_data, '|' ORDER BY _row_id) FROM bronze_bad WHERE _file_name = 'a03-malformed.json' AND data IS NULL}),
	q({"a": 1,,}|{"b": tru}|{unquoted: 1}|{"c": "no end|{"d": 1}}),
	'malformed JSON records keep their exact text in _rescued_data');
# invalid UTF-8
is( psql(
		q{SELECT string_agg(_rescued_data, '|' ORDER BY _row_id) FROM bronze_bad WHERE _file_name = 'a04-utf8.json' AND data IS NULL}),
	qq({"s": "caf\x{fffd}"}|{"s": "\x{fffd}\x{fffd}\x{fffd}"}|{"s": "nul \\u0000 inside"}|{"s": "\x{fffd}\x{fffd}"})
	  =~ s/([^\x00-\x7f])/do { my $c = $1; utf8::encode($c); $c }/ger,
	'invalid UTF-8 is rescued with U+FFFD in place of each bad byte; \u0000 is rescued');
is(psql(q{SELECT data->>'s' FROM bronze_bad WHERE _file_name = 'a04-utf8.json' AND data IS NOT NULL}),
	"\xc3\xa9t\xc3\xa9", 'valid UTF-8 next to it is kept');
# scalars
is( psql(
		q{SELECT string_agg(_rescued_data, '|' ORDER BY _row_id) FROM bronze_bad WHERE _file_name = 'a05-scalars.json' AND data IS NULL}),
	q(42|"a string"|true|null|[1, 2, 3]),
	'JSON scalars and arrays in place of an object are rescued');
# numbers
is( psql(
		q{SELECT data->'big' = '123456789012345678901234567890'::jsonb
		     AND (data->>'big')::numeric = 123456789012345678901234567890
		     AND (data->>'neg')::numeric = -98765432109876543210987654321
		     AND (data->>'frac')::numeric = 0.1000000000000000000000000000000000001
		     AND (data->>'exp')::numeric = 1.5e300
		     AND (data->>'tiny')::numeric = 2.5e-300
		  FROM bronze_bad WHERE _file_name = 'a06-numbers.json' AND data IS NOT NULL}),
	't',
	'numbers beyond bigint (and tiny and huge ones) are kept exactly in jsonb');
is( psql(
		q~SELECT count(*) FROM bronze_bad WHERE _file_name = 'a06-numbers.json' AND (_rescued_data LIKE '{"huge_exponent": 1e20000}' OR _rescued_data LIKE '{"long": 999%')~),
	'2',
	'numbers that numeric cannot hold (exponent 20000, 1,001 digits) are rescued, not lost');
# nesting
is( psql(
		q~SELECT length(_rescued_data) FROM bronze_bad WHERE _file_name = 'a07-deep.json' AND _rescued_data LIKE '{"a": {"a": %' ~),
	100_000 * 7 + 1,
	'a record nested 100,000 levels deep is rescued whole');
is( psql(
		q{SELECT data #>> (SELECT array_agg('a'::text) FROM generate_series(1, 999)) || '|' || (data #> (SELECT array_agg('a'::text) FROM generate_series(1, 999)))::text
		  FROM bronze_bad WHERE _file_name = 'a07-deep.json' AND data IS NOT NULL}),
	'{"leaf": 1}|{"leaf": 1}',
	'a record nested 1,000 levels deep (the limit) is kept');
# 50 MB record
is( psql(
		q{SELECT length(data->>'blob') || ',' || (data->>'id') FROM bronze_bad WHERE _file_name = 'a10-huge.json'}),
	"$huge_size,huge",
	'a 50 MB single-line record is ingested whole');
like(
	psql(
		q{SELECT length(_rescued_data) || ' ' || right(_rescued_data, 100) FROM bronze_small WHERE _file_name = 'a10-huge.json'}),
	qr/^10\d{5}\d* .*\[record of 52428826 bytes truncated: larger than the 1048576-byte limit\]$/,
	'with max_record_bytes = 1 MB it is rescued: its first megabyte and a note of its size');
# keys
{
	my $path = psql(q{SELECT path FROM medallion.ingested_files WHERE path LIKE '%z1-%'});
	is($path, "s3://landing/$long_key", 'a key of 1,024 bytes is listed, downloaded and recorded exactly');
}
{
	my $q = $amp_name =~ s/'/''/gr;
	is( psql(
			"SELECT _file_path FROM bronze_bad WHERE _file_name = '$q' LIMIT 1"),
		"s3://landing/bad/$amp_name",
		'a key with & < > \' " + % and spaces round-trips through the url-encoded listing');
}
# CSV
is( psql(
		q{SELECT count(*) || ',' || count(_rescued_data) FROM bronze_csv WHERE _file_name = 'c1-ragged.csv'}),
	'6,3', 'CSV: ragged rows and a non-UTF-8 row are rescued, the rest kept');
is( psql(
		q{SELECT string_agg(coalesce(data::text, 'R:' || _rescued_data), '|' ORDER BY _row_id) FROM bronze_csv WHERE _file_name = 'c1-ragged.csv'}),
	qq({"a": "1", "b": "2", "c": "3"}|R:4,5|R:6,7,8,9|{"a": "quoted, comma", "b": "x", "c": "y"}|R:caf\xef\xbf\xbd,latin1,row|{"a": "10", "b": "11", "c": "12"}),
	'CSV: exact data and rescued text of every row');
is( psql(
		q{SELECT string_agg(path || '=' || status || ':' || row_count, ' ' ORDER BY path) FROM medallion.ingested_files WHERE flow_name = 'public.bronze_csv' AND path NOT LIKE '%c1-%'}),
	's3://landing/csv/c2-header-only.csv=ingested:0 s3://landing/csv/c3-empty.csv=ingested:0',
	'CSV: a header-only and an empty file are ingested with no rows');

# the failed objects
is( psql(
		q{SELECT string_agg(path || '=' || status, ' ' ORDER BY path) FROM medallion.ingested_files WHERE status <> 'ingested'}),
	's3://landing/bad/a01-truncated.json.gz=failed s3://landing/bad/a02-binary.json=failed',
	'the truncated gzip and the binary object are recorded as failed in the ledger');
like(psql(q{SELECT error FROM medallion.ingested_files WHERE path LIKE '%a01-%'}),
	qr/could not read object .*a01-truncated.json.gz.*gzip data is (truncated|corrupt)/,
	'the ledger says why: the gzip data is truncated');
like(psql(q{SELECT error FROM medallion.ingested_files WHERE path LIKE '%a02-%'}),
	qr/not text: it contains NUL bytes/, 'the ledger says why: binary content');
is( psql(
		q{SELECT count(*) FROM medallion.event_log WHERE pipeline_name = 'bad' AND event_type = 'error'
		    AND (message LIKE 'object s3://landing/bad/a01-truncated.json.gz recorded as failed%'
		      OR message LIKE 'object s3://landing/bad/a02-binary.json recorded as failed%')}),
	'2',
	'each failed object has an error event');
is( psql(
		q{SELECT count(*) FROM bronze_bad WHERE _file_name IN ('a01-truncated.json.gz', 'a02-binary.json')}),
	'0',
	'nothing of a failed object is in bronze (no partial object)');
is( psql(
		q{SELECT bool_and(i.ingested_at >= f.ingested_at) FROM medallion.ingested_files i, medallion.ingested_files f
		   WHERE f.path LIKE '%a02-binary.json' AND i.path LIKE '%z3-good.json'}),
	't',
	'the objects after the poison ones were ingested by the same update');
is(run_ok('bad', 'a second update succeeds'), '0',
	'and ingests nothing: failed objects are not retried by themselves');

# DBA: fix a01 in S3 and retry it; skip a02, then a fixed a02 stays skipped
# until retry_object
{
	my $lines = join('', map { qq({"n": $_}\n) } 1 .. 1000);
	my $gz;
	gzip(\$lines => \$gz) or die $GzipError;
	$s3->put_object('bad/a01-truncated.json.gz', $gz);
}
is(psql(q{SELECT medallion.retry_object('bad', 's3://landing/bad/a01-truncated.json.gz')}),
	'1', 'retry_object forgets the failed object');
is(psql(q{SELECT medallion.skip_object('bad', 's3://landing/bad/a02-binary.json')}),
	'2', 'skip_object marks the other one skipped (and leaves a skip marker for the other flow of the prefix)');
$s3->put_object('bad/a02-binary.json', qq({"fixed": true}\n));
is(run_ok('bad', 'the update after retry_object succeeds'), '1000',
	'and ingests the fixed object, and not the skipped one');
is( psql(
		q{SELECT string_agg(status || ':' || row_count, ' ' ORDER BY path) FROM medallion.ingested_files WHERE path LIKE '%/a0_-%' AND flow_name = 'public.bronze_bad' AND path ~ 'a0[12]-'}),
	'ingested:1000 skipped:0',
	'the ledger shows the retried object ingested and the skipped one skipped');
is(psql(q{SELECT medallion.retry_object('bad', 's3://landing/bad/a02-binary.json')}),
	'2', 'retry_object on the skipped object');
is(run_ok('bad', 'next update'), '1', 'ingests the fixed version');
is(psql(q{SELECT medallion.skip_object('bad', 's3://landing/bad/later.json')}),
	'2', 'skip_object on a path not seen yet leaves a skip marker (in both flows of the prefix)');
$s3->put_object('bad/later.json', qq({"later": 1}\n));
is(run_ok('bad', 'update'), '0', 'an object skipped in advance is never ingested');
is( psql(
		q{SELECT count(*) FROM medallion.event_log WHERE pipeline_name = 'bad' AND event_type = 'user_action'}),
	'4',
	'each DBA action is in the event log');

# keys come back raw in the XML (no encoding-type, as s3rver does): & and
# friends must be unescaped by the XML parser
$s3->config(url_encoding => 0);
psql(
	qq{SELECT medallion.create_pipeline('raw_keys');
	   SELECT medallion.create_bronze('raw_keys', 'bronze_raw_keys', 's3://landing/bad/z',
	       secret_name => 'fs3', endpoint => '$endpoint');});
is(run_ok('raw_keys', 'an update with raw (not url-encoded) keys in the listing XML'),
	'6', 'reads every z* object');
{
	my $q = $amp_name =~ s/'/''/gr;
	is( psql(
			"SELECT count(*) || ' ' || min(_file_path) FROM bronze_raw_keys WHERE _file_name = '$q'"),
		"2 s3://landing/bad/$amp_name",
		'the & < > \' " key is read from &amp;-escaped XML exactly');
}
$s3->config(url_encoding => 1);

# Listing pages: 1,055 objects are two pages; the stub's continuation tokens
# hold '+', '/' and '=' and its signature check is strict, and it lists in
# byte order, where s3rver skips keys such as these (see the reference).
{
	my @tricky = ('pages/ord/a/b', 'pages/ord/a-c', 'pages/ord/a', 'pages/ord/a.txt', 'pages/ord/b');
	$s3->put_object($_, qq({"key": "$_"}\n)) for @tricky;
	$s3->put_object(sprintf('pages/%04d.json', $_), qq({"n": $_}\n)) for 1 .. 1050;
	psql(
		qq{SELECT medallion.create_pipeline('pages');
		   SELECT medallion.create_bronze('pages', 'bronze_pages', 's3://landing/pages/',
		       secret_name => 'fs3', endpoint => '$endpoint',
		       options => '{"max_files_per_batch": 5000}');});
	my $before = $s3->counters->{requests}{list} // 0;
	is(run_ok('pages', 'an update over two listing pages'), '1055', 'reads all 1,055 objects');
	is($s3->counters->{requests}{list} - $before, 2, 'in two listing requests (one continuation token)');
	is( psql(
			q{SELECT array_agg(_file_path ORDER BY _row_id) = array_agg(_file_path ORDER BY _file_path COLLATE "C")
			  FROM bronze_pages}),
		't',
		'objects are ingested in the byte order of their keys, as S3 lists them');
	is( psql(
			q{SELECT count(*) FROM bronze_pages WHERE _file_path LIKE 's3://landing/pages/ord/%'}),
		'5',
		'keys that break s3rver\'s paging (ord/a/b, ord/a-c, ord/a, ord/a.txt, ord/b) are all there');
}

# ---------------------------------------------------------------------------
# Part 2: S3 faults, one at a time.  Each step uploads one new object and
# runs an update; $rows counts what bronze_f must hold.
# ---------------------------------------------------------------------------
psql(
	qq{SELECT medallion.create_pipeline('faults');
	   SELECT medallion.create_bronze('faults', 'bronze_f', 's3://landing/f/',
	       secret_name => 'fs3', endpoint => '$endpoint');});
my $rows = 0;
my $serial = 0;

# a new object of $n records, big enough that a body fault cuts it mid-way
sub new_object
{
	my ($n) = @_;
	my $key = sprintf('f/%03d.json', ++$serial);
	my $pad = 'p' x 200;
	$s3->put_object($key,
		join('', map { qq({"obj": $serial, "n": $_, "pad": "$pad"}\n) } 1 .. $n));
	return $key;
}

sub retry_events
{
	return psql(
		q{SELECT count(*) FROM medallion.event_log WHERE pipeline_name = 'faults' AND event_type = 'retry'});
}

sub check_exact
{
	my ($label) = @_;
	is( psql(
			q{SELECT count(*) || ',' || count(DISTINCT (data->>'obj', data->>'n')) FROM bronze_f}),
		"$rows,$rows",
		"$label: bronze holds exactly the expected rows, none twice");
}

# A transient fault that fires $times times is retried; the update succeeds.
sub transient_case
{
	my (%case) = @_;
	my $kind = $case{kind};
	my $key = new_object($case{records} // 200);
	my $before = $s3->injected($kind);
	my $retries_before = retry_events();
	$s3->fault(%{ $case{rule} }, kind => $kind,
		($case{rule}{op} // 'get') eq 'get' ? (key => $key) : ());
	my $t0 = time();
	my $out = run_ok('faults', "$case{label}: the update succeeds");
	my $elapsed = time() - $t0;
	$s3->clear_faults;
	$rows += $case{records} // 200;
	is($out, $case{records} // 200, "$case{label}: the object is ingested");
	is($s3->injected($kind) - $before, $case{times},
		"$case{label}: the fault fired $case{times} time(s)");
	# (curl itself retries a request that got no answer at all on a reused
	# connection, so an empty reply need not reach medallion's retries)
	cmp_ok(retry_events() - $retries_before, '>=', $case{curl_may_retry} ? 0 : $case{times},
		"$case{label}: each retry is a retry event");
	check_exact($case{label});
	return $elapsed;
}

{
	my $elapsed = transient_case(
		label => '503 SlowDown with Retry-After: 1',
		kind => 'slowdown',
		rule => { op => 'get', retry_after => 1, count => 2 },
		times => 2);
	cmp_ok($elapsed, '>=', 2, 'Retry-After is honoured (two waits of one second)');
	is( psql(
			q{SELECT count(*) FROM medallion.event_log WHERE pipeline_name = 'faults' AND event_type = 'retry'
			    AND message LIKE '%HTTP status 503, code SlowDown%retrying in 1000 ms%'}),
		'2',
		'the retry events name the code and the delay from Retry-After');
}
transient_case(label => '503 SlowDown on the listing', kind => 'slowdown',
	rule => { op => 'list', count => 3 }, times => 3);
transient_case(label => '500 InternalError', kind => 'internal_error',
	rule => { op => 'get', count => 3 }, times => 3);
transient_case(label => '503 ServiceUnavailable', kind => 'service_unavailable',
	rule => { op => 'get', count => 1 }, times => 1);
transient_case(label => '400 RequestTimeout', kind => 'request_timeout',
	rule => { op => 'get', count => 2 }, times => 2);
transient_case(label => 'connection reset mid-body', kind => 'reset',
	rule => { op => 'get', count => 2, bytes => 20000 }, times => 2, records => 400);
transient_case(label => 'short body (Content-Length larger than sent)', kind => 'short_body',
	rule => { op => 'get', count => 2, bytes => 30000 }, times => 2, records => 400);
transient_case(label => 'empty reply', kind => 'close',
	rule => { op => 'get', count => 1 }, times => 1, curl_may_retry => 1);
transient_case(label => 'truncated listing XML', kind => 'truncated_xml',
	rule => { op => 'list', count => 2 }, times => 2);
transient_case(label => 'invalid listing XML', kind => 'invalid_xml',
	rule => { op => 'list', count => 1 }, times => 1);
transient_case(label => 'reset mid-listing', kind => 'reset',
	rule => { op => 'list', count => 1 }, times => 1);
{
	my $elapsed = transient_case(
		label => 'a stall past medallion.s3_low_speed_time (1 s)',
		kind => 'stall',
		rule => { op => 'get', count => 1, bytes => 10000, seconds => 60 },
		times => 1, records => 300);
	cmp_ok($elapsed, '<', 20, 'the stalled transfer was aborted after about a second, not waited out');
}

# Retries exhausted: a clear transient error; nothing ingested; then fixed.
{
	my $key = new_object(10);
	my $before = $s3->injected('internal_error');
	$s3->fault(kind => 'internal_error', op => 'get', key => $key, count => 100);
	my ($ok, $err) = run_pipeline('faults');
	ok(!$ok, 'retries exhausted: the update fails');
	like($err, qr/could not download object "\Q$key\E" from bucket "landing"/,
		'the error names the object and the bucket');
	like($err, qr/S3 returned HTTP status 500, code "InternalError".*Gave up after 4 attempts/s,
		'and says what S3 answered and how often it was tried');
	is($s3->injected('internal_error') - $before, 4, 'exactly medallion.s3_max_attempts attempts');
	is( psql(
			q{SELECT state || ' ' || (details->>'transient') FROM medallion.pipelines p, medallion.event_log e
			   WHERE p.pipeline_name = 'faults' AND e.pipeline_name = 'faults' AND e.event_type = 'error'
			   ORDER BY e.id DESC LIMIT 1}),
		'failed true',
		'the failure is recorded durably and marked transient');
	check_exact('retries exhausted');
	$s3->clear_faults;
	$rows += 10;
	is(run_ok('faults', 'after the fault clears'), '10', 'the next update ingests the object');
	check_exact('after retries exhausted');
}

# Permanent errors: not retried, clear messages.
sub permanent_case
{
	my (%case) = @_;
	my $key = new_object(5);
	my $before = $s3->injected($case{kind});
	my $retries_before = retry_events();
	$s3->fault(kind => $case{kind}, op => $case{op}, count => 100,
		($case{op} eq 'get' ? (key => $key) : ()), %{ $case{rule} // {} });
	my ($ok, $err) = run_pipeline('faults');
	ok(!$ok, "$case{label}: the update fails");
	like($err, $case{error}, "$case{label}: the error is clear") or diag($err);
	like($err, $case{hint}, "$case{label}: with a hint") if $case{hint};
	is($s3->injected($case{kind}) - $before, 1, "$case{label}: not retried");
	is(retry_events() - $retries_before, 0, "$case{label}: no retry event");
	is( psql(
			q{SELECT state || ' ' || (last_error IS NOT NULL) FROM medallion.pipelines WHERE pipeline_name = 'faults'}),
		'failed true',
		"$case{label}: state failed, last_error set");
	check_exact($case{label});
	$s3->clear_faults;
	$rows += 5;
	is(run_ok('faults', "$case{label}: after the fault clears"), '5',
		"$case{label}: the next update ingests the object");
}

permanent_case(
	label => '403 RequestTimeTooSkewed',
	kind => 'skewed', op => 'list',
	error => qr/could not list bucket "landing".*HTTP status 403, code "RequestTimeTooSkewed"/s,
	hint => qr/HINT:.*clock of the database server/);
permanent_case(
	label => '400 ExpiredToken',
	kind => 'expired_token', op => 'get',
	error => qr/could not download object .*HTTP status 400, code "ExpiredToken"/s,
	hint => qr/HINT:.*Refresh the session token/);
permanent_case(
	label => '301 PermanentRedirect (wrong region)',
	kind => 'redirect', op => 'list', rule => { region => 'eu-west-3' },
	error => qr/could not list bucket "landing".*HTTP status 301, code "PermanentRedirect"/s,
	hint => qr/HINT:.*The bucket is in region "eu-west-3"/);

# An object replaced between the listing and the GET: If-Match gives 412;
# the next update lists the new version and ingests it.
{
	my $key = new_object(4);
	my $before = $s3->injected('change_object');
	$s3->fault(kind => 'change_object', op => 'get', key => $key,
		append => qq({"obj": $serial, "n": 5, "pad": "added"}\n));
	my ($ok, $out) = run_pipeline('faults');
	ok($ok, 'object changed after listing: the update succeeds');
	is($out, '0', 'and ingests nothing of the changed object');
	is($s3->injected('change_object') - $before, 1, 'the object was replaced once');
	like( psql(
			q{SELECT message FROM medallion.event_log WHERE pipeline_name = 'faults' AND event_type = 'retry' ORDER BY id DESC LIMIT 1}),
		qr/\Q$key\E changed after it was listed; it will be ingested by the next update/,
		'a retry event says so');
	$s3->clear_faults;
	$rows += 5;
	is(run_ok('faults', 'the next update'), '5', 'ingests the new version (5 records)');
	is( psql(
			qq{SELECT etag FROM medallion.ingested_files WHERE path = 's3://landing/$key'}),
		(grep { $_->{key} eq $key } @{ $s3->objects })[0]{etag} =~ s/"//gr,
		'the ledger has the new ETag');
	check_exact('object changed between listing and GET');
}

my $c = $s3->counters;
note(sprintf('fault server: %d requests, %d faults injected (%s)',
	$c->{requests_total}, $c->{injected_total},
	join(', ', map { "$_ $c->{injected}{$_}" } sort keys %{ $c->{injected} })));

done_testing();
