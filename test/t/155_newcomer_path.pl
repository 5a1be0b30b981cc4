# The newcomer's path is a test: the code blocks of README.md's "Quick start"
# and "Tutorial" sections that are marked <!-- newcomer:superuser -->,
# <!-- newcomer:owner --> or <!-- newcomer:shell --> are run in the order
# they appear, exactly as written, after replacing only the values the
# README tells the reader to change (the endpoint, the bucket, the two keys):
# superuser blocks with psql as the superuser, owner blocks with psql as the
# README's non-superuser login role shop_owner (one statement at a time, so
# that a result the README shows as a comment table after a statement is
# compared with what the statement returns), shell blocks with bash from the
# top of the tree (the AWS CLI uploads to the real S3 server). Then the gold
# tables are checked against what the uploaded files should give, and the
# tutorial's pipeline against examples/orders_pipeline.sql run with the same
# values as psql variables.
use strict;
use warnings;

use File::Temp qw(tempdir);
use IPC::Run ();
use JSON::PP ();
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use MedallionTest;

my $root = $MedallionTest::root;
my $work = tempdir(CLEANUP => 1);
my $bucket = 'farm-landing';    # not the README's, so the bucket is replaced
my $s3 = start_s3(buckets => [$bucket]);
my $node = start_node('newcomer',
	'medallion.enable_workers' => 'on',
	'medallion.launcher_naptime' => '200ms');

# What the README tells the reader to change, and the test's values.
my %replace = (
	'http://127.0.0.1:9000' => $s3->{endpoint},
	's3://landing/' => "s3://$bucket/",
	'AKIAIOSFODNN7EXAMPLE' => 'S3RVER',
	'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' => 'S3RVER',
);

# The marked blocks of a section: [kind, language, text].
sub newcomer_blocks
{
	my ($readme, $section) = @_;
	$readme =~ /^## \Q$section\E\n(.*?)(?=^## )/ms
	  or BAIL_OUT("README.md has no section \"$section\"");
	my $body = $1;
	my @blocks;
	while ($body =~ /^<!-- newcomer:(\w+) -->\n```(\w+)\n(.*?)^```$/msg)
	{
		push @blocks, [ $1, $2, $3 ];
	}
	return @blocks;
}

# A block's statements, each with the rows of the comment table that the
# README shows after it (if any). A statement ends with a line ending in ';'
# outside a dollar quote; a psql meta-command is a statement of its own.
sub statements
{
	my ($text) = @_;
	my @statements;
	my $current = '';
	my $in_dollar = 0;
	my $last;
	for my $line (split /\n/, $text)
	{
		my $comment = $line =~ /^--(.*)$/ ? $1 : undef;
		if ($current eq '' && $last && defined $comment
			&& ($comment =~ /\|/ || $comment =~ /^\s*-+(?:\+-+)+\s*$/))
		{
			push @{ $last->{shown} }, $comment;
			next;
		}
		undef $last;
		$current .= "$line\n";
		my $dollars = () = $line =~ /\$\$/g;
		$in_dollar = !$in_dollar if $dollars % 2;
		next if $in_dollar;
		my $code = $line =~ s/--.*$//r;
		if ($code =~ /;\s*$/ || ($line =~ /^\s*\\/ && $current eq "$line\n"))
		{
			$last = { sql => $current, shown => [] };
			push @statements, $last;
			$current = '';
		}
	}
	push @statements, { sql => $current, shown => [] } if $current =~ /\S/;
	return @statements;
}

# Rows of a psql comment table: header and separator dropped, cells trimmed.
sub shown_rows
{
	my (@lines) = @_;
	return [] unless @lines;
	shift @lines;    # header
	shift @lines if @lines && $lines[0] =~ /^\s*-+(?:\+-+)+\s*$/;
	return [ map { [ map { s/^\s+|\s+$//gr } split /\|/, $_, -1 ] } @lines ];
}

sub run_psql
{
	my ($name, $db, $user, $sql) = @_;
	my $file = "$work/statement.sql";
	open my $fh, '>', $file or die;
	print $fh $sql;
	close $fh;
	my ($ret, $out, $err) = $node->psql($db, undef,
		extra_params => [ '-U', $user, '-v', 'ON_ERROR_STOP=1', '-A', '-t',
			'-F', '|', '-f', $file ]);
	is($ret, 0, $name) or diag "$sql\n$err";
	return $out;
}

sub run_shell
{
	my ($name, $text) = @_;
	my %env = aws_env();
	local @ENV{ keys %env } = values %env;
	local $ENV{PATH} = "/usr/bin:$ENV{PATH}";    # the AWS CLI v2
	local $ENV{TMPDIR} = $work;
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run([ 'bash', '-euo', 'pipefail', '-c', "cd '$root'\n$text" ],
		'<', \undef, '>', \$out, '2>', \$err);
	ok($ok, $name) or diag "$text\n$out$err";
	return;
}

sub run_section
{
	my ($readme, $section) = @_;
	my @blocks = newcomer_blocks($readme, $section);
	ok(@blocks > 0, "$section: marked blocks found");
	my $n = 0;
	my $compared = 0;
	for my $block (@blocks)
	{
		my ($kind, $language, $text) = @$block;
		$n++;
		for my $from (keys %replace)
		{
			$text =~ s/\Q$from\E/$replace{$from}/g;
		}
		my $name = "$section, block $n ($kind)";
		if ($kind eq 'shell')
		{
			run_shell($name, $text);
		}
		elsif ($kind eq 'superuser')
		{
			is($language, 'sql', "$name is SQL");
			run_psql($name, 'postgres', 'postgres', $text);
		}
		elsif ($kind eq 'owner')
		{
			is($language, 'sql', "$name is SQL");
			my $i = 0;
			for my $statement (statements($text))
			{
				$i++;
				my $out = run_psql("$name, statement $i", 'shop', 'shop_owner',
					$statement->{sql});
				next unless @{ $statement->{shown} };
				my @got = map { [ split /\|/, $_, -1 ] } grep { $_ ne '' } split /\n/, $out;
				is_deeply(\@got, shown_rows(@{ $statement->{shown} }),
					"$name, statement $i returns what the README shows")
				  or diag explain \@got;
				$compared++;
			}
		}
		else
		{
			fail("$name: unknown kind");
		}
	}
	return $compared;
}

open my $fh, '<', "$root/README.md" or die;
my $readme = do { local $/; <$fh> };
close $fh;
for my $from (keys %replace)
{
	ok(index($readme, $from) >= 0, "README.md names the placeholder $from");
}
unlike(
	join('', map { $_->[2] } newcomer_blocks($readme, 'Quick start'),
		newcomer_blocks($readme, 'Tutorial: the agribusiness order pipeline')),
	qr/\.\.\./, 'no block holds "..."');

# ---------------------------------------------------------------- Quick start
my $compared = run_section($readme, 'Quick start');
ok($compared >= 2, 'the Quick start shows the results of its update and its gold query');

# The gold table again, against what the sample files give: per order, the
# event with the highest sequence among the valid ones (JSON, a positive
# integer quantity), none if that one is a delete.
my %last;
for my $file (sort glob("$root/examples/quickstart/*.json"))
{
	open my $in, '<', $file or die;
	while (my $line = <$in>)
	{
		my $event = eval { JSON::PP::decode_json($line) } or next;
		next unless ($event->{quantity} // '') =~ /^\d+$/ && $event->{quantity} > 0;
		my $old = $last{ $event->{order_id} };
		$last{ $event->{order_id} } = $event
		  if !$old || $event->{sequence} > $old->{sequence};
	}
	close $in;
}
my $expected = join("\n",
	map { join('|', @{$_}{qw(order_id product quantity status)}) }
	  grep { $_->{operation} ne 'DELETE' }
	  map { $last{$_} } sort { $a <=> $b } keys %last);
is( $node->safe_psql('shop',
		'SELECT order_id, product, quantity, status FROM gold.quickstart_orders ORDER BY order_id'),
	$expected,
	'Quick start: gold holds the last valid event of each order not cancelled');
is( $node->safe_psql('shop',
		'SELECT count(*), count(_rescued_data) FROM bronze.quickstart_events'),
	'11|1', 'Quick start: bronze holds every line, the cut one rescued');

# ------------------------------------------------------------------- Tutorial
run_section($readme, 'Tutorial: the agribusiness order pipeline');

# The continuous pipeline takes the files through every layer by itself:
# wait for an update that ended after the last object was committed.
my $lines = 0;
for my $file (glob("$work/medallion-orders/*.json"))
{
	open my $in, '<', $file or die;
	$lines++ while <$in>;
	close $in;
}
ok($lines > 0, 'the tutorial generated its files');
# gold.daily_sales minus its GROUP BY over the current orders, and back
my $daily_diff = q{
	SELECT count(*) FROM (
	  (SELECT order_date, revenue, quantity, orders FROM gold.daily_sales
	   EXCEPT ALL
	   SELECT (event_ts AT TIME ZONE 'UTC')::date, sum(quantity * unit_price * (1 - discount)),
	          sum(quantity), count(DISTINCT order_id)
	     FROM gold.order_history_current GROUP BY 1)
	  UNION ALL
	  (SELECT (event_ts AT TIME ZONE 'UTC')::date, sum(quantity * unit_price * (1 - discount)),
	          sum(quantity), count(DISTINCT order_id)
	     FROM gold.order_history_current GROUP BY 1
	   EXCEPT ALL
	   SELECT order_date, revenue, quantity, orders FROM gold.daily_sales)) d};
# the join view minus its query, and back
my $region_query = $node->safe_psql('shop',
	q{SELECT definition->>'query' FROM medallion.flows
	   WHERE flow_name = 'gold.revenue_by_region'});
my $region_diff = qq{
	SELECT count(*) FROM (
	  (SELECT * FROM gold.revenue_by_region EXCEPT ALL ($region_query))
	  UNION ALL
	  (($region_query) EXCEPT ALL SELECT * FROM gold.revenue_by_region)) d};
# caught up: the 4 order and 4 customer files ingested, silver and the AUTO
# CDC flows past the last row of their sources, the aggregate and the join
# view equal to their queries (polled, since they commit after the AUTO CDC
# flows in each update)
my $caught_up = 0;
for (1 .. 600)
{
	$caught_up = $node->safe_psql(
		'shop', qq{
		SELECT (SELECT count(*) FROM medallion.ingested_files
		         WHERE pipeline_name = 'orders' AND status = 'ingested') = 8
		   AND (SELECT watermark FROM medallion.flows WHERE flow_name = 'silver.order_events')
		       >= (SELECT max(_row_id) FROM bronze.order_events)
		   AND (SELECT watermark FROM medallion.flows WHERE flow_name = 'gold.order_history')
		       >= (SELECT max(_row_id) FROM silver.order_events)
		   AND (SELECT watermark FROM medallion.flows WHERE flow_name = 'silver.customers')
		       >= (SELECT max(_row_id) FROM bronze.customer_events)
		   AND (SELECT watermark FROM medallion.flows WHERE flow_name = 'gold.customers')
		       >= (SELECT max(_row_id) FROM silver.customers)
		   AND ($daily_diff) = 0
		   AND ($region_diff) = 0}) eq 't';
	last if $caught_up;
	usleep(100_000);
}
ok($caught_up,
	'Tutorial: the continuous pipeline took the 8 files through every layer, '
	  . 'gold.daily_sales and gold.revenue_by_region equal to their queries');
is($node->safe_psql('shop', 'SELECT count(*) > 0 FROM gold.revenue_by_region'),
	't', 'Tutorial: the join view has rows');
is($node->safe_psql('shop', 'SELECT count(*) FROM bronze.order_events'),
	$lines, 'Tutorial: bronze holds every line uploaded');
is( $node->safe_psql(
		'shop', q{
		SELECT string_agg(expectation_name, ',' ORDER BY expectation_name)
		  FROM medallion.expectation_metrics
		 WHERE pipeline_name = 'orders' AND failed_records > 0}),
	'has_event_ts,has_order_id,known_category,plausible_discount,valid_quantity',
	'Tutorial: every drop and warn expectation saw failures, has_sequence none');
is($node->safe_psql('shop', q{SELECT pipeline_name || ':' || state FROM medallion.pipelines
		ORDER BY 1}),
	"orders:running\nquickstart:idle", 'both pipelines live side by side');

# examples/orders_pipeline.sql with the same values as variables defines the
# same pipeline as the tutorial's blocks.
$node->safe_psql('postgres', 'CREATE DATABASE example');
my ($ret, $out, $err) = $node->psql('example', undef,
	extra_params => [ '-v', 'ON_ERROR_STOP=1', '-v', "bucket=$bucket",
		'-v', 'prefix=orders/', '-v', 'secret=landing',
		'-v', "endpoint=$s3->{endpoint}", '-v', 'access_key_id=S3RVER',
		'-v', 'secret_access_key=S3RVER', '-f', "$root/examples/orders_pipeline.sql" ]);
is($ret, 0, 'examples/orders_pipeline.sql runs with bucket, prefix, secret, endpoint variables')
  or diag $err;
# (less what updates record in a view's definition: its state tables, made
# by its first update, which only the tutorial's database has run)
my $definition = q{
	SELECT p.mode, p.trigger_interval,
	       (SELECT string_agg(f.flow_name || ' ' || f.flow_type || ' '
	                          || (f.definition - CASE WHEN f.flow_type = 'materialized_view'
	                                THEN ARRAY['group_state', 'group_state_columns',
	                                           'group_distinct_states', 'state_tables']
	                                ELSE ARRAY[]::text[] END)::text,
	                          E'\n' ORDER BY f.flow_name)
	          FROM medallion.flows f WHERE f.pipeline_name = p.pipeline_name),
	       (SELECT string_agg(m.expectation_name || ' ' || m.on_violation, ','
	                          ORDER BY m.expectation_name)
	          FROM medallion.expectation_metrics m WHERE m.pipeline_name = p.pipeline_name)
	  FROM medallion.pipelines p WHERE p.pipeline_name = 'orders'};
is($node->safe_psql('example', $definition), $node->safe_psql('shop', $definition),
	'the tutorial and examples/orders_pipeline.sql define the same pipeline');
$node->safe_psql('example', q{SELECT medallion.drop_pipeline('orders')});
$node->safe_psql('shop', q{SELECT medallion.stop_pipeline('orders')});

done_testing();
