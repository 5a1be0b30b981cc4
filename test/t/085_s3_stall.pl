# Stalled S3 requests: a request that gets no answer at all is cut by
# medallion.s3_first_byte_timeout (here 2 s) and retried on a new
# connection, instead of waiting out the low-speed limit (30 s by default);
# each attempt cut this way doubles the limit of the next; a slow answer
# that keeps progressing, or one that starts late but within the limit, is
# never cut; 0 turns the limit off; retries exhausted give a clear error.
# The fault server (test/fault/fault_s3.py) logs every request with its TCP
# connection, which shows the fresh connection and the timing.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use MedallionTest;
use FaultS3;

my $LIMIT_MS = 2000;
my $s3 = start_fault_s3();
my $endpoint = $s3->{endpoint};
my $node = start_node(
	's3_stall',
	'medallion.s3_first_byte_timeout' => "${LIMIT_MS}ms",
	'medallion.s3_max_attempts' => '4',
	'medallion.s3_retry_base_delay' => '10ms',
	'medallion.s3_retry_max_delay' => '200ms');

sub psql { return $node->safe_psql('postgres', $_[0]); }

is(psql(q{SELECT boot_val FROM pg_settings WHERE name = 'medallion.s3_first_byte_timeout'}),
	'5000', 'the first-byte limit is 5 s by default');
is(psql(q{SELECT setting FROM pg_settings WHERE name = 'medallion.s3_low_speed_time'}),
	'30', 'the low-speed limit is left at its default, 30 s');

psql(
	qq{SELECT medallion.create_secret('fs3', 'S3RVER', 'S3RVER');
	   SELECT medallion.create_pipeline('stall');
	   SELECT medallion.create_bronze('stall', 'bronze_stall', 's3://landing/s/',
	       secret_name => 'fs3', endpoint => '$endpoint');});

my $serial = 0;
my $rows = 0;

# a new object of $n records of $width bytes each
sub new_object
{
	my ($n, $width) = @_;
	my $key = sprintf('s/%03d.json', ++$serial);
	my $pad = 'p' x ($width // 100);
	$s3->put_object($key, join('', map { qq({"obj": $serial, "n": $_, "pad": "$pad"}\n) } 1 .. $n));
	return $key;
}

# One update with the given fault rules in place; returns (ok, output or
# error, seconds, the requests the server saw, the retry event messages).
sub update_with
{
	my (@rules) = @_;
	my $last_event = psql(q{SELECT coalesce(max(id), 0) FROM medallion.event_log});
	$s3->reset_counters;
	$s3->faults(@rules) if @rules;
	my $t0 = time();
	my ($ret, $stdout, $stderr) = $node->psql('postgres',
		q{SELECT coalesce(sum(rows_written), 0) FROM medallion.run_pipeline('stall')});
	my $elapsed = time() - $t0;
	my $requests = $s3->requests;
	$s3->clear_faults;
	my @events = split /\n/, psql(
		qq{SELECT message FROM medallion.event_log
		    WHERE pipeline_name = 'stall' AND event_type = 'retry' AND id > $last_event ORDER BY id});
	return ($ret == 0, $ret == 0 ? $stdout : $stderr, $elapsed, $requests, \@events);
}

sub run_ok_rows
{
	my ($ok, $out) = update_with();
	return $ok ? $out : "failed: $out";
}

sub check_exact
{
	my ($label) = @_;
	is(psql(q{SELECT count(*) || ',' || count(DISTINCT (data->>'obj', data->>'n')) FROM bronze_stall}),
		"$rows,$rows", "$label: bronze holds exactly the expected rows, none twice");
}

# the requests of one operation (and key) in the server's log
sub requests_for
{
	my ($requests, $op, $key) = @_;
	return grep { $_->{op} eq $op && (!defined $key || ($_->{key} // '') eq $key) } @$requests;
}

# A GET that never answers: cut after about the limit, retried on a fresh
# connection, and the object is ingested once.
{
	my $key = new_object(200);
	my ($ok, $out, $elapsed, $requests, $events) =
	  update_with({ kind => 'no_response', op => 'get', key => $key, seconds => 120 });
	ok($ok, 'a GET without an answer: the update succeeds') or diag($out);
	$rows += 200;
	is($out, '200', 'the object is ingested');
	my @gets = requests_for($requests, 'get', $key);
	is(scalar @gets, 2, 'two GETs: the one without an answer, and its retry');
	is($gets[0]{fault}, 'no_response', 'the first got no answer');
	my $waited = $gets[1]{t} - $gets[0]{t};
	cmp_ok($waited, '>=', $LIMIT_MS / 1000, 'the retry came after the first-byte limit');
	cmp_ok($waited, '<', $LIMIT_MS / 1000 + 3,
		sprintf('and within about the limit (%.1f s; the low-speed limit would wait 30 s)', $waited));
	cmp_ok($elapsed, '<', 15, sprintf('the whole update took %.1f s', $elapsed));
	cmp_ok($gets[0]{on_connection}, '>', 1, 'the stalled GET had reused the connection of the listing');
	isnt($gets[1]{connection}, $gets[0]{connection}, 'the retry went out on another connection');
	is($gets[1]{on_connection}, 1, 'a fresh one');
	is(scalar @$events, 1, 'one retry event');
	like($events->[0] // '', qr/^get s3:\/\/landing\/\Q$key\E: attempt 1 failed \(no response within $LIMIT_MS ms\); retrying in \d+ ms$/,
		'the retry event says the request got no response within the limit');
	check_exact('a GET without an answer');
}

# A listing that never answers: the same.
{
	my $key = new_object(50);
	my ($ok, $out, $elapsed, $requests, $events) =
	  update_with({ kind => 'no_response', op => 'list', seconds => 120, count => 1 });
	ok($ok, 'a listing without an answer: the update succeeds') or diag($out);
	$rows += 50;
	is($out, '50', 'the object is ingested');
	my @lists = requests_for($requests, 'list');
	is(scalar @lists, 2, 'two listings');
	cmp_ok($lists[1]{t} - $lists[0]{t}, '<', $LIMIT_MS / 1000 + 3, 'retried within about the limit');
	is($lists[1]{on_connection}, 1, 'on a fresh connection');
	like($events->[0] // '', qr/^list s3:\/\/landing\/s\/: attempt 1 failed \(no response within $LIMIT_MS ms\)/,
		'the retry event says so');
	check_exact('a listing without an answer');
}

# Two attempts in a row without an answer: the second waits twice as long.
{
	my $key = new_object(50);
	my ($ok, $out, $elapsed, $requests, $events) =
	  update_with({ kind => 'no_response', op => 'get', key => $key, seconds => 120, count => 2 });
	ok($ok, 'two GETs without an answer: the update succeeds') or diag($out);
	$rows += 50;
	my @gets = requests_for($requests, 'get', $key);
	is(scalar @gets, 3, 'three GETs');
	my $second_wait = $gets[2]{t} - $gets[1]{t};
	cmp_ok($second_wait, '>=', 2 * $LIMIT_MS / 1000, sprintf('the second attempt waited twice the limit (%.1f s)', $second_wait));
	my $doubled = 2 * $LIMIT_MS;
	like(join("\n", @$events),
		qr/attempt 1 failed \(no response within $LIMIT_MS ms\).*\n.*attempt 2 failed \(no response within $doubled ms\)/,
		'the retry events show the doubled limit');
	is(scalar(grep { $_->{on_connection} == 1 } @gets[ 1, 2 ]), 2, 'each retry on a fresh connection');
	check_exact('two GETs without an answer');
}

# A slow download that keeps progressing, three times as long as the limit:
# never cut (one GET, no retry), the object whole.
{
	my $key = new_object(1200, 500);    # about 630 kB
	my ($ok, $out, $elapsed, $requests, $events) = update_with(
		{ kind => 'trickle', op => 'get', key => $key, bytes => 60_000, interval => 0.6 });
	ok($ok, 'a slow, progressing download: the update succeeds') or diag($out);
	$rows += 1200;
	is($out, '1200', 'the object is ingested whole');
	cmp_ok($elapsed, '>=', 3 * $LIMIT_MS / 1000,
		sprintf('the download took %.1f s, more than three times the first-byte limit', $elapsed));
	is(scalar(requests_for($requests, 'get', $key)), 1, 'it was never cut: one GET');
	is(scalar @$events, 0, 'no retry');
	check_exact('a slow, progressing download');
}

# An answer that starts late, but within the limit: not cut.
{
	my $key = new_object(50);
	my ($ok, $out, $elapsed, $requests, $events) =
	  update_with({ kind => 'delay', op => 'get', key => $key, seconds => $LIMIT_MS / 2000 });
	ok($ok, 'an answer that starts late, within the limit: the update succeeds') or diag($out);
	$rows += 50;
	is(scalar(requests_for($requests, 'get', $key)), 1, 'one GET');
	is(scalar @$events, 0, 'no retry');
	check_exact('a late answer');
}

# Retries exhausted: a clear transient error naming the limit and the attempts.
sub set_and_wait
{
	my ($settings, $check) = @_;
	psql(join('', map { "ALTER SYSTEM SET $_ = '$settings->{$_}';" } sort keys %$settings)
		  . 'SELECT pg_reload_conf();');
	# a new session is forked from the postmaster, as the update worker is
	$node->poll_query_until('postgres', $check) or die 'the settings were not reloaded';
}

set_and_wait({ 'medallion.s3_max_attempts' => 2 },
	q{SELECT setting = '2' FROM pg_settings WHERE name = 'medallion.s3_max_attempts'});
{
	my $key = new_object(50);
	my ($ok, $err, $elapsed, $requests, $events) =
	  update_with({ kind => 'no_response', op => 'get', key => $key, seconds => 120, count => 100 });
	ok(!$ok, 'a GET that never gets an answer: the update fails');
	my $doubled = 2 * $LIMIT_MS;
	like($err, qr/could not download object "\Q$key\E" from bucket "landing"/, 'the error names the object');
	like($err, qr/S3 sent no response within $doubled ms\. Gave up after 2 attempts\./,
		'and says that S3 did not answer, within what limit, and how often it was tried');
	like($err, qr/HINT:  .*raise medallion\.s3_first_byte_timeout/, 'with a hint');
	is(scalar(requests_for($requests, 'get', $key)), 2, 'two attempts');
	check_exact('retries exhausted');
	is(run_ok_rows(), '50', 'the next update, without the fault, ingests the object');
	$rows += 50;
	check_exact('after the fault clears');
}

# 0 turns the limit off: the request then waits for the low-speed limit
# (3 s here) and the retry says so.
set_and_wait(
	{
		'medallion.s3_first_byte_timeout' => 0,
		'medallion.s3_low_speed_time' => 3,
		'medallion.s3_max_attempts' => 4
	},
	q{SELECT string_agg(setting, ',' ORDER BY name) = '0,3,4' FROM pg_settings
	   WHERE name IN ('medallion.s3_first_byte_timeout', 'medallion.s3_low_speed_time', 'medallion.s3_max_attempts')});
{
	my $key = new_object(50);
	my ($ok, $out, $elapsed, $requests, $events) =
	  update_with({ kind => 'no_response', op => 'get', key => $key, seconds => 120 });
	ok($ok, 'with the limit off, a GET without an answer still succeeds in the end') or diag($out);
	$rows += 50;
	my @gets = requests_for($requests, 'get', $key);
	cmp_ok($gets[1]{t} - $gets[0]{t}, '>=', 3, 'but only after the low-speed limit');
	like($events->[0] // '', qr/attempt 1 failed \(curl error 28: /, 'which the retry event names');
	check_exact('the limit off');
}

done_testing();
