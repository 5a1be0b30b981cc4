# Decompression bombs (issue 12, item 5), against the real S3 server
# (s3rver) with objects uploaded by the real AWS CLI.
#
# The bomb of the issue: about 91 KB of gzip holding 31 million lines "{}"
# (94 MB, a ratio of 1,030).  Without limits it became a 3.9 GB bronze
# table in 70 s.
#
# Flow bronze_a has a small max_decompressed_bytes (3 MB) and a ratio limit
# raised out of the way, and ingests two objects at once (an object worker):
# a bomb of long identical lines (100 MB of text) is refused by the size
# limit.  Flow bronze_b has the default limits: the
# issue's bomb and one just past the default ratio of 100 (147:1) are
# refused by the ratio, while an ordinary gzip of order events and a small
# (under 1 MB) file of identical lines pass.  In both, the bomb is recorded
# as failed in the ledger with an error event naming the object and the
# limit, nothing of it is in bronze, and the objects after it, in the same
# update and in the next, are ingested exactly once.  Then a lowered
# medallion.decompressed_bytes_cap applies to an existing flow
# (retry_object), and the options are validated.
use strict;
use warnings;

use IO::Compress::Gzip qw(gzip $GzipError);
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use MedallionTest;

my $s3 = start_s3();
my $endpoint = $s3->{endpoint};
my $node = start_node('bomb');

sub psql { return $node->safe_psql('postgres', $_[0]); }

sub run_ok
{
	my ($pipeline, $name) = @_;
	my ($ret, $stdout, $stderr) = $node->psql('postgres',
		"SELECT coalesce(sum(rows_written), 0) FROM medallion.run_pipeline('$pipeline')");
	ok($ret == 0, $name) or diag($stderr);
	return $stdout;
}

sub gzipped
{
	my ($text) = @_;
	my $gz;
	gzip(\$text => \$gz, -Level => 9) or die $GzipError;
	return $gz;
}

# $count order events, numbered from $first: ordinary data, about 8:1
sub orders
{
	my ($first, $count) = @_;
	my @types = qw(created paid shipped delivered cancelled);
	return join(
		'',
		map {
			sprintf(
				qq({"order_id": %d, "customer_id": %d, "event_type": "%s", "product": "seed-%d", "quantity": %d, "unit_price": %.2f, "ts": "2026-11-%02dT%02d:%02d:%02dZ"}\n),
				$_, ($_ * 7919) % 5000, $types[ $_ % 5 ], ($_ * 31) % 300,
				1 + $_ % 20, (($_ * 37) % 50000) / 100, 1 + $_ % 28,
				$_ % 24, ($_ * 7) % 60, ($_ * 13) % 60)
		} $first .. $first + $count - 1);
}

# $lines copies of one line, gzipped as a stream (never all in memory)
sub repeated_gzip
{
	my ($line, $lines) = @_;
	my $z = IO::Compress::Gzip->new(\my $gz, -Level => 9) or die $GzipError;
	my $block = $line x 65536;
	my $left = $lines;
	while ($left > 0)
	{
		my $n = $left < 65536 ? $left : 65536;
		$z->print($n == 65536 ? $block : $line x $n);
		$left -= $n;
	}
	$z->close;
	return $gz;
}

my $issue_bomb = repeated_gzip("{}\n", 31_000_000);
note sprintf('the issue bomb: %d bytes of gzip, %d bytes of text',
	length($issue_bomb), 31_000_000 * 3);
my $wide_line = '{"order_id": 1, "note": "' . ('x' x 72) . '"}' . "\n";    # 100 bytes
my $wide_bomb = repeated_gzip($wide_line, 1_000_000);
# just past the default ratio: runs of 8 identical lines (147:1, 9 MB)
my $near_bomb = gzipped(
	join('',
		map { sprintf(qq({"order_id": %d, "status": "shipped", "note": "%s"}\n), int($_ / 8), 'x' x 100) }
		  1 .. 60000));
my $orders_a = orders(1, 10000);
my $orders_b = orders(100001, 30000);
note sprintf('ordinary order gzip: %d bytes inflate to %d (%.1f:1)',
	length(gzipped($orders_b)), length($orders_b),
	length($orders_b) / length(gzipped($orders_b)));
note sprintf('near bomb: %d bytes of gzip', length($near_bomb));

psql(
	qq{SELECT medallion.create_secret('s3', 'S3RVER', 'S3RVER');
	   SELECT medallion.create_pipeline('bombs');
	   SELECT medallion.create_bronze('bombs', 'bronze_a', 's3://landing/a/',
	       secret_name => 's3', endpoint => '$endpoint',
	       options => '{"max_decompressed_bytes": 3000000, "max_expansion_ratio": 1000000,
	                      "max_parallel_objects": 2}');
	   SELECT medallion.create_bronze('bombs', 'bronze_b', 's3://landing/b/',
	       secret_name => 's3', endpoint => '$endpoint');});

# listing order follows the file names; each bomb has objects after it
s3_upload_string($s3, gzipped($orders_a), 'a/a01-orders.json.gz');
s3_upload_string($s3, $wide_bomb, 'a/a02-bomb.json.gz');
s3_upload_string($s3, orders(20001, 100), 'a/a03-plain.json');
s3_upload_string($s3, gzipped(orders(30001, 5000)), 'a/a04-orders.json.gz');

s3_upload_string($s3, gzipped($orders_b), 'b/b01-orders.json.gz');
s3_upload_string($s3, repeated_gzip($wide_line, 9000), 'b/b02-small-repetitive.json.gz');
s3_upload_string($s3, $issue_bomb, 'b/b03-bomb.json.gz');
s3_upload_string($s3, $near_bomb, 'b/b04-near-bomb.json.gz');
s3_upload_string($s3, orders(200001, 100), 'b/b05-plain.json');

my $started = time;
is(run_ok('bombs', 'the update with the bombs succeeds'),
	10000 + 100 + 5000 + 30000 + 9000 + 100,
	'every row of the other objects is written');
note sprintf('update of both flows: %.1f s', time - $started);

# ---------------------------------------------------------------------------
# The ledger and the event log
# ---------------------------------------------------------------------------
is( psql(
		q{SELECT string_agg(regexp_replace(path, '.*/', '') || '=' || status || ':' || row_count, ' ' ORDER BY path)
		    FROM medallion.ingested_files}),
	'a01-orders.json.gz=ingested:10000 a02-bomb.json.gz=failed:0 '
	  . 'a03-plain.json=ingested:100 a04-orders.json.gz=ingested:5000 '
	  . 'b01-orders.json.gz=ingested:30000 b02-small-repetitive.json.gz=ingested:9000 '
	  . 'b03-bomb.json.gz=failed:0 b04-near-bomb.json.gz=failed:0 b05-plain.json=ingested:100',
	'the bombs are recorded as failed, every other object as ingested with all its rows');

like(psql(q{SELECT error FROM medallion.ingested_files WHERE path LIKE '%a02-bomb.json.gz'}),
	qr{^object "s3://landing/a/a02-bomb\.json\.gz" exceeds the decompressed size limit of 3000000 bytes: Reading stopped when \d+ bytes of gzip data had inflated to \d+ bytes\.$},
	'the size limit error names the object and the limit');
like(psql(q{SELECT error FROM medallion.ingested_files WHERE path LIKE '%b03-bomb.json.gz'}),
	qr{^object "s3://landing/b/b03-bomb\.json\.gz" exceeds the expansion ratio limit of 100: Reading stopped when \d+ bytes of gzip data had inflated to \d+ bytes, a ratio of \d+\.$},
	'the ratio limit error names the object and the limit');
like(psql(q{SELECT error FROM medallion.ingested_files WHERE path LIKE '%b04-near-bomb.json.gz'}),
	qr{exceeds the expansion ratio limit of 100: .* a ratio of 1[0-9][0-9]\.$},
	'a bomb just past the default ratio is refused too');

# what was inflated before the refusal
my ($wide_inflated) = psql(q{SELECT error FROM medallion.ingested_files WHERE path LIKE '%a02-bomb.json.gz'})
  =~ /inflated to (\d+) bytes/;
ok($wide_inflated > 3000000 && $wide_inflated <= 3000000 + 1048576,
	'the size limit stops inflating within one chunk past the limit')
  or diag($wide_inflated);
my ($issue_inflated) = psql(q{SELECT error FROM medallion.ingested_files WHERE path LIKE '%b03-bomb.json.gz'})
  =~ /inflated to (\d+) bytes/;
ok($issue_inflated <= 2 * 1048576,
	'the ratio limit stops the issue bomb after at most 2 MB of its 93 MB')
  or diag($issue_inflated);
note "bytes inflated before refusal: $wide_inflated (size limit), $issue_inflated (ratio, issue bomb)";
note 'the ledger error of the issue bomb: '
  . psql(q{SELECT error FROM medallion.ingested_files WHERE path LIKE '%b03-bomb.json.gz'});

is( psql(
		q{SELECT string_agg(regexp_replace(details->>'path', '.*/', '') || ':' || (details->>'sqlstate'), ' ' ORDER BY details->>'path')
		    FROM medallion.event_log WHERE pipeline_name = 'bombs' AND event_type = 'error'
		     AND message LIKE 'object s3://landing/_/%-bomb.json.gz recorded as failed: object "s3://landing/_/%-bomb.json.gz" exceeds the % limit of %'}),
	'a02-bomb.json.gz:54000 b03-bomb.json.gz:54000 b04-near-bomb.json.gz:54000',
	'each bomb has an error event naming it and its limit (SQLSTATE 54000)');
is(psql(q{SELECT count(*) FROM medallion.pipelines WHERE pipeline_name = 'bombs' AND state = 'idle'}),
	'1', 'the pipeline is not failed');

# ---------------------------------------------------------------------------
# Bronze
# ---------------------------------------------------------------------------
is( psql(
		q{SELECT count(*) FROM (SELECT _file_name FROM bronze_a UNION ALL SELECT _file_name FROM bronze_b) t
		   WHERE _file_name LIKE '%bomb%'}),
	'0', 'no row of any bomb is in bronze');
is( psql(
		q{SELECT count(*) || ' ' || count(DISTINCT data->'order_id') || ' ' || count(_rescued_data) FROM bronze_a}),
	'15100 15100 0', 'bronze_a holds each order of the other objects exactly once');
is( psql(
		q{SELECT count(*) || ' ' || sum((data->>'order_id')::bigint) FROM bronze_b WHERE _file_name = 'b01-orders.json.gz'}),
	'30000 ' . (30000 * 100001 + 30000 * 29999 / 2),
	'the ordinary gzip of order events is ingested whole under the default limits');
is( psql(q{SELECT string_agg(DISTINCT data::text, '') FROM bronze_b WHERE _file_name = 'b02-small-repetitive.json.gz'}),
	'{"note": "' . ('x' x 72) . '", "order_id": 1}',
	'a small object of identical lines (ratio above 100, under 1 MB) is not refused');

# the size limit bounds what a bomb can add to bronze, even rolled back:
# well under the 100 MB the bomb holds
my $legit_a = length($orders_a) + 100 * 150 + 5000 * 150;
my $size_a = psql(q{SELECT pg_total_relation_size('bronze_a')});
ok($size_a < 4 * ($legit_a + 3000000),
	'bronze_a did not grow beyond a small multiple of the legitimate data plus the limit')
  or diag("size $size_a, legitimate text $legit_a");
note sprintf('bronze_a: %.1f MB, bronze_b: %.1f MB',
	$size_a / 1048576, psql(q{SELECT pg_total_relation_size('bronze_b')}) / 1048576);

# ---------------------------------------------------------------------------
# Later batches, and a bomb alone with the default limits, timed
# ---------------------------------------------------------------------------
s3_upload_string($s3, gzipped(orders(40001, 2000)), 'a/a05-later.json.gz');
s3_upload_string($s3, gzipped(orders(300001, 2000)), 'b/b06-later.json.gz');
is(run_ok('bombs', 'the next update succeeds'), '4000',
	'the next update ingests the new objects and does not retry the bombs');

psql(
	qq{SELECT medallion.create_pipeline('lone');
	   SELECT medallion.create_bronze('lone', 'bronze_lone', 's3://landing/c/',
	       secret_name => 's3', endpoint => '$endpoint');});
s3_upload_string($s3, $issue_bomb, 'c/c01-bomb.json.gz');
$started = time;
is(run_ok('lone', 'an update with only the issue bomb succeeds'), '0', 'and writes nothing');
note sprintf('time to refuse the issue bomb with the default limits: %.2f s (whole update)',
	time - $started);
is(psql(q{SELECT status FROM medallion.ingested_files WHERE pipeline_name = 'lone'}),
	'failed', 'the lone bomb is recorded as failed');
note sprintf('bronze_lone after the refusal: %.1f MB',
	psql(q{SELECT pg_total_relation_size('bronze_lone')}) / 1048576);

# ---------------------------------------------------------------------------
# medallion.decompressed_bytes_cap applies to existing flows
# ---------------------------------------------------------------------------
psql(q{ALTER SYSTEM SET medallion.decompressed_bytes_cap = '2MB'; SELECT pg_reload_conf();});
is(psql(q{SELECT medallion.retry_object('bombs', 's3://landing/a/a02-bomb.json.gz')}),
	'1', 'retry_object forgets the failed bomb');
run_ok('bombs', 'the update after retry_object succeeds');
like(psql(q{SELECT status || ' ' || error FROM medallion.ingested_files WHERE path LIKE '%a02-bomb.json.gz'}),
	qr{^failed object "s3://landing/a/a02-bomb\.json\.gz" exceeds the decompressed size limit of 2097152 bytes},
	'a lowered cap limits a flow whose option is higher');
psql(q{ALTER SYSTEM RESET medallion.decompressed_bytes_cap; SELECT pg_reload_conf();});

# ---------------------------------------------------------------------------
# Option validation
# ---------------------------------------------------------------------------
my %bad = (
	'{"max_decompressed_bytes": 0}'           => qr/invalid value for bronze option "max_decompressed_bytes".*positive integer/s,
	'{"max_decompressed_bytes": -5}'          => qr/invalid value for bronze option "max_decompressed_bytes"/,
	'{"max_decompressed_bytes": "1GB"}'       => qr/invalid value for bronze option "max_decompressed_bytes"/,
	'{"max_decompressed_bytes": 1.5}'         => qr/invalid value for bronze option "max_decompressed_bytes"/,
	'{"max_decompressed_bytes": 17179869185}' => qr/invalid value for bronze option "max_decompressed_bytes".*at most 17179869184 bytes \(medallion\.decompressed_bytes_cap\).*HINT:  A superuser can raise medallion\.decompressed_bytes_cap\./s,
	'{"max_expansion_ratio": 0}'              => qr/invalid value for bronze option "max_expansion_ratio"/,
	'{"max_expansion_ratio": 1000001}'        => qr/invalid value for bronze option "max_expansion_ratio".*between 1 and 1000000/s,
	'{"max_expansion_ratio": true}'           => qr/invalid value for bronze option "max_expansion_ratio"/,
	'{"max_expansion_ration": 10}'            => qr/unrecognized bronze option "max_expansion_ration".*max_decompressed_bytes,? (?:and )?max_expansion_ratio/s,
);
for my $options (sort keys %bad)
{
	my ($ret, $stdout, $stderr) = $node->psql('postgres',
		qq{SELECT medallion.create_bronze('bombs', 'bronze_bad', 's3://landing/x/',
		       secret_name => 's3', endpoint => '$endpoint', options => '$options')});
	ok($ret != 0, "options $options are refused");
	like($stderr, $bad{$options}, "options $options: clear error");
}
is(psql(q{SELECT to_regclass('bronze_bad') IS NULL}), 't', 'no table was created for refused options');
psql(
	qq{SELECT medallion.create_bronze('bombs', 'bronze_ok', 's3://landing/x/',
	       secret_name => 's3', endpoint => '$endpoint',
	       options => '{"max_decompressed_bytes": "17179869184", "max_expansion_ratio": 1000000}')});
pass('the largest values are accepted (as numbers or strings)');

done_testing();
