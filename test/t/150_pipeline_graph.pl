# Watching pipelines: medallion.pipeline_graph() and medallion.table_freshness.
#
# 1. The "orders" pipeline of test/perl/MedallionOrders.pm (bronze, silver
#    with a drop expectation that fails some rows and a quarantine table,
#    SCD2 AUTO CDC, an aggregate) is drawn: the DOT text renders with
#    Graphviz (`dot -Tsvg` exits 0 and the SVG names every table and the S3
#    source); the Mermaid text starts with `flowchart` and has exactly the
#    pipeline's edges; every row count equals count(*); the failing
#    expectation is shown in red with its count; a table the caller may not
#    read shows no count; only the owner (or a member, or a superuser) may
#    draw it, and a wrong format is refused with a hint.
# 2. A pipeline whose names hold every character that means something in DOT
#    or Mermaid (quotes, backslashes, <, &, #, |, brackets, %%, a newline)
#    renders all the same, with the names shown as they are.
# 3. A BI role with SELECT on one gold table sees exactly that table in
#    medallion.table_freshness, with a lag that grows and a last_changed
#    that moves with an update that changes the table (and only then); it
#    sees no other table, even through a leaky function of its own.
use strict;
use warnings;

use File::Temp qw(tempdir);
use PostgreSQL::Test::Utils;
use Test::More;
use MedallionTest;
use MedallionOrders;

my $owner = 'graph_owner';
my $s3 = start_s3(buckets => ['landing']);
my $endpoint = $s3->{endpoint};
my $node = start_node('graph', 'medallion.allowed_endpoints' => $endpoint);
my $work = tempdir(CLEANUP => 1);

$node->safe_psql('postgres', qq{
	CREATE ROLE $owner;
	CREATE ROLE graph_member IN ROLE $owner;
	CREATE ROLE stranger;
	CREATE ROLE bi;
	CREATE SCHEMA bronze AUTHORIZATION $owner;
	CREATE SCHEMA silver AUTHORIZATION $owner;
	CREATE SCHEMA gold AUTHORIZATION $owner;
});
upload_orders($s3, 1);
$node->safe_psql('postgres', pipeline_sql($endpoint, $owner));

sub as_role
{
	my ($role, $sql) = @_;
	return $node->safe_psql('postgres', "SET ROLE $role; $sql");
}

sub run_update
{
	my ($pipeline) = @_;
	as_role($owner, "SELECT count(*) FROM medallion.run_pipeline(\$p\$$pipeline\$p\$)");
	return;
}

run_update('orders');

# a SQL literal that holds any text
sub literal { return '$lit$' . $_[0] . '$lit$' }

sub graph
{
	my ($pipeline, $format, $role) = @_;
	return as_role($role // $owner,
		'SELECT medallion.pipeline_graph(' . literal($pipeline) . ", '$format')");
}

# Text as a reader sees it in the SVG that Graphviz wrote.
sub svg_text
{
	my ($svg) = @_;
	$svg =~ s/<[^>]*>/\n/g;
	$svg =~ s/&#(\d+);/chr($1)/ge;
	$svg =~ s/&#x([0-9a-fA-F]+);/chr(hex($1))/ge;
	my %named = (amp => '&', lt => '<', gt => '>', quot => '"', apos => "'");
	$svg =~ s/&(amp|lt|gt|quot|apos);/$named{$1}/g;
	return $svg;
}

# Render DOT with Graphviz; returns dot's exit code and the SVG's text.
sub render_dot
{
	my ($dot, $name) = @_;
	my $file = "$work/$name.dot";
	open my $fh, '>:raw', $file or die "$file: $!";
	print $fh $dot;
	close $fh or die;
	my ($stdout, $stderr);
	my $ok = IPC::Run::run([ 'dot', '-Tsvg', $file ], '>', \$stdout, '2>', \$stderr);
	diag("dot: $stderr") if $stderr ne '';
	return ($ok ? 0 : $? >> 8, svg_text($stdout));
}

sub html_decode
{
	my ($text) = @_;
	my %named = (amp => '&', lt => '<', gt => '>', quot => '"');
	$text =~ s/&(amp|lt|gt|quot);/$named{$1}/g;
	return $text;
}

# The table nodes of DOT text: label name => row count (undef: no count).
sub dot_tables
{
	my ($dot) = @_;
	my %tables;
	while ($dot =~ /^\tn\d+ \[(?!shape=cylinder)[^\n]*?label=<<B>(.*?)<\/B>(?:<BR\/>(\d+) rows?)?/mg)
	{
		$tables{ html_decode($1) } = $2;
	}
	return \%tables;
}

# Mermaid text, checked line by line against the only shapes that
# pipeline_graph writes (so that no name broke out of its string), as
# nodes (id => lines of the label) and edges ("from -label-> to").
sub parse_mermaid
{
	my ($text) = @_;
	my @lines = split /\n/, $text;
	my (%nodes, @edges, @bad);
	my $decode = sub { return join "\n", map { s/#(\d+);/chr($1)/ger } split /<br\/>/, $_[0] };
	push @bad, $lines[0] unless $lines[0] eq 'flowchart LR';
	for my $line (@lines[ 1 .. $#lines ])
	{
		if ($line =~ /^    n(\d+)(?:\["([^"]*)"\]|\[\("([^"]*)"\)\])$/)
		{
			$nodes{$1} = $decode->($2 // $3);
		}
		elsif ($line =~ /^    n(\d+) (-->|-\.->)\|"([^"]*)"\| n(\d+)$/)
		{
			push @edges, [ $1, $decode->($3), $4, $2 eq '-.->' ];
		}
		elsif ($line !~ /^    class n\d+ (failing|quarantine)$/
			&& $line !~ /^    classDef (failing|quarantine) [a-z0-9:,\- ]+$/)
		{
			push @bad, $line;
		}
	}
	my $name = sub { return (split /\n/, $nodes{ $_[0] } // "n$_[0]")[0] };
	my @named = sort map { $name->($_->[0]) . ' -' . $_->[1] . ($_->[3] ? ' (dashed)' : '') . '-> ' . $name->($_->[2]) } @edges;
	return (\@bad, \%nodes, \@named);
}

sub count_rows
{
	my ($table) = @_;
	return $node->safe_psql('postgres', "SELECT count(*) FROM $table");
}

# ------------------------------------------------- 1. the orders pipeline
my $dot = graph('orders', 'dot');
note($dot);
like($dot, qr/\Adigraph "orders" \{\n/, 'DOT: a digraph named after the pipeline');
my ($exit, $svg) = render_dot($dot, 'orders');
is($exit, 0, 'dot -Tsvg renders the DOT text');
my @orders_tables = qw(bronze.orders silver.orders silver.orders_quarantine
  gold.order_history gold.status_totals);
for my $name (@orders_tables, 's3://landing/orders/')
{
	ok(index($svg, $name) >= 0, "the SVG names $name");
}

my $tables = dot_tables($dot);
is(join(' ', sort keys %$tables), join(' ', sort @orders_tables),
	'DOT: a node for every table of the pipeline');
for my $table (@orders_tables)
{
	is($tables->{$table}, count_rows($table), "DOT: the row count of $table is count(*)");
}
my $failed = $node->safe_psql('postgres',
	q{SELECT failed_records FROM medallion.expectation_metrics WHERE expectation_name = 'positive_amount'});
ok($failed > 0, "the expectation positive_amount failed $failed rows");
like($dot, qr/^\tn\d+ \[color=red, label=<<B>silver\.orders<\/B>[^\n]*<FONT COLOR="red">failing: positive_amount \($failed rows?\)<\/FONT>>\];$/m,
	'DOT: silver.orders is red and names its failing expectation with the rows it failed');
unlike($dot, qr/color=red, label=<<B>(bronze|gold)/, 'DOT: no other table is red');
like($dot, qr/<B>gold\.status_totals<\/B><BR\/>\d+ rows?<BR\/>lag \d\d:\d\d:\d\d>/,
	'DOT: a target shows its lag');

my $mermaid = graph('orders', 'mermaid');
note($mermaid);
like($mermaid, qr/\Aflowchart LR\n/, 'Mermaid: starts with flowchart');
my ($bad, $nodes, $edges) = parse_mermaid($mermaid);
is(join("\n", @$bad), '', 'Mermaid: every line is a node, an edge or a class');
is( join("\n", @$edges),
	join("\n", sort(
		's3://landing/orders/ -bronze-> bronze.orders',
		'bronze.orders -silver-> silver.orders',
		'bronze.orders -silver: dropped rows (dashed)-> silver.orders_quarantine',
		'silver.orders -auto_cdc-> gold.order_history',
		'gold.order_history -aggregate-> gold.status_totals')),
	'Mermaid: an edge for every flow, labelled with its type, and the quarantine');
like($mermaid, qr/^    class n\d+ failing$/m, 'Mermaid: the failing table has the class failing');
is(as_role($owner, q{SELECT medallion.pipeline_graph('orders') = medallion.pipeline_graph('orders', 'mermaid')}),
	't', 'the default format is mermaid');

# a table the caller may not read: no count, no error
as_role($owner, 'REVOKE SELECT ON gold.status_totals FROM CURRENT_USER');
$tables = dot_tables(graph('orders', 'dot'));
ok(exists $tables->{'gold.status_totals'} && !defined $tables->{'gold.status_totals'},
	'a table the caller may not read is drawn without a count');
like(graph('orders', 'dot'), qr/<B>gold\.status_totals<\/B><BR\/>rows: no SELECT privilege/,
	'... saying why');
as_role($owner, 'GRANT SELECT ON gold.status_totals TO CURRENT_USER');

# a table whose row-level security would run the owner's code (as the
# caller, who may hold more rights): no count, and the code does not run
as_role($owner, q{
	CREATE FUNCTION gold.spy() RETURNS boolean LANGUAGE plpgsql
	  AS $f$BEGIN RAISE NOTICE 'spy ran as %', current_user; RETURN true; END$f$;
	CREATE POLICY spy ON gold.order_history USING (gold.spy());
	ALTER TABLE gold.order_history ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY});
my ($rls_ret, $rls_out, $rls_err) = $node->psql('postgres',
	"SET ROLE $owner; SELECT medallion.pipeline_graph('orders', 'dot')");
like($rls_out, qr/<B>gold\.order_history<\/B><BR\/>rows: not counted \(row-level security\)/,
	'a table under row-level security is drawn without a count');
unlike($rls_err, qr/spy ran/, '... and its policy does not run');
as_role($owner, q{ALTER TABLE gold.order_history NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY;
	DROP POLICY spy ON gold.order_history});

# who may draw it
is(dot_tables(graph('orders', 'dot', 'graph_member'))->{'silver.orders'},
	count_rows('silver.orders'), 'a member of the owner role may draw it');
ok(length($node->safe_psql('postgres', q{SELECT medallion.pipeline_graph('orders', 'dot')})) > 0,
	'a superuser may draw it');
my ($ret, $out, $err) = $node->psql('postgres',
	q{SET ROLE stranger; SELECT medallion.pipeline_graph('orders')});
like($err, qr/ERROR:  must be owner of pipeline "orders"/, 'another role is refused');
($ret, $out, $err) = $node->psql('postgres',
	q{SET ROLE stranger; SELECT medallion.pipeline_graph('nope')});
like($err, qr/ERROR:  pipeline "nope" does not exist/, 'an unknown pipeline is an error');
($ret, $out, $err) = $node->psql('postgres',
	qq{SET ROLE $owner; \\set VERBOSITY verbose
	   SELECT medallion.pipeline_graph('orders', 'svg')});
like($err, qr/ERROR:  22023: invalid value for format: "svg"/, 'another format is refused (22023)');
like($err, qr/HINT:  The formats are "mermaid" and "dot"\./, '... with a hint naming the formats');

# ------------------------------------------------- 2. names that mean something
my $pipe = q{odd "pipe" \\};
my $raw = q{raw "events" <b>&amp;#35; x\\};
my $clean = "clean | --> [x] {y} ;end %% `t` :::c\nz";
my $totals = q{tot & <i> 'q' -> n1};
my $expectation = q{pos "v" <0> #quot;};
s3_upload_string($s3, qq({"k": "a", "v": 1}\n{"k": "a", "v": -2}\n{"k": "b", "v": 3}\nnot json\n),
	'odd/part-01.json');

sub qualified
{
	my ($schema, $table) = @_;
	return $node->safe_psql('postgres', 'SELECT format(\'%I.%I\', ' . literal($schema) . ', ' . literal($table) . ')');
}
my %odd = (
	bronze     => qualified('bronze', $raw),
	silver     => qualified('silver', $clean),
	quarantine => qualified('silver', "${clean}_quarantine"),
	gold       => qualified('gold', $totals));
as_role($owner, 'SELECT medallion.create_pipeline(' . literal($pipe) . ");
	SELECT medallion.create_bronze(" . literal($pipe) . ', ' . literal($odd{bronze}) . ", 's3://landing/odd/',
		secret_name => 'landing', endpoint => '$endpoint');
	SELECT medallion.create_silver(" . literal($pipe) . ', ' . literal($odd{silver}) . ', '
	  . literal("SELECT data->>'k' AS k, (data->>'v')::int AS v FROM $odd{bronze} WHERE data IS NOT NULL")
	  . ', quarantine => true);
	SELECT medallion.add_expectation(' . literal($odd{silver}) . ', ' . literal($expectation) . ", 'v > 0', 'drop');
	SELECT medallion.create_aggregate(" . literal($pipe) . ', ' . literal($odd{gold}) . ', ' . literal($odd{silver}) . ",
		ARRAY['k'], ARRAY['count(*) AS n', 'sum(v) AS s']);");
run_update($pipe);

# names as a label shows them: a newline (no label can hold one) is a space
my %shown = map { ($odd{$_} =~ s/\n/ /gr) => $odd{$_} } keys %odd;
$dot = graph($pipe, 'dot');
($exit, $svg) = render_dot($dot, 'odd');
is($exit, 0, 'odd names: dot -Tsvg renders the DOT text');
like($dot, qr/\Adigraph "odd \\"pipe\\" \\\\" \{\n/, 'odd names: the graph name is escaped');
for my $name (sort keys %shown)
{
	ok(index($svg, $name) >= 0, "odd names: the SVG names $name");
}
ok(index($svg, qq{failing: $expectation (1 row)}) >= 0, 'odd names: the SVG names the failing expectation');
$tables = dot_tables($dot);
is(join(' | ', sort keys %$tables), join(' | ', sort keys %shown), 'odd names: a node for every table');
for my $name (sort keys %shown)
{
	is($tables->{$name}, count_rows($shown{$name}), "odd names: the row count of $name is count(*)");
}

$mermaid = graph($pipe, 'mermaid');
note($dot, $mermaid);
($bad, $nodes, $edges) = parse_mermaid($mermaid);
is(join("\n", @$bad), '', 'odd names: every Mermaid line is a node, an edge or a class');
my ($ob, $os, $oq, $og) = map { $odd{$_} =~ s/\n/ /gr } qw(bronze silver quarantine gold);
is( join("\n", @$edges),
	join("\n", sort(
		"s3://landing/odd/ -bronze-> $ob",
		"$ob -silver-> $os",
		"$ob -silver: dropped rows (dashed)-> $oq",
		"$os -aggregate-> $og")),
	'odd names: the Mermaid edges join the names as they are');
ok((grep { index($_, "failing: $expectation (1 row)") >= 0 } values %$nodes),
	'odd names: the Mermaid label names the failing expectation as it is');

# ------------------------------------------------- 3. freshness for a BI role
$node->safe_psql('postgres', 'GRANT USAGE ON SCHEMA gold TO bi; GRANT SELECT ON gold.status_totals TO bi');
my $freshness = q{SELECT table_name, pipeline_name, flow_name, flow_type, pipeline_state
                    FROM medallion.table_freshness ORDER BY 1};
is(as_role('bi', $freshness), 'gold.status_totals|orders|gold.status_totals|aggregate|idle',
	'the BI role sees exactly the gold table it may read');
is(as_role($owner, 'SELECT count(*) FROM medallion.table_freshness'), '8',
	'the owner sees the eight targets of its three pipelines');

my $last = q{SELECT last_changed, lag FROM medallion.table_freshness
               WHERE table_name = 'gold.status_totals'};
my $update_end = q{SELECT last_update_end FROM medallion.pipelines WHERE pipeline_name = 'orders'};
my ($changed1, $lag1) = split /\|/, as_role('bi', $last);
is($changed1, $node->safe_psql('postgres', $update_end),
	'last_changed is the end of the update that changed the table');
my ($changed2, $lag2) = split /\|/, as_role('bi', $last);
is($changed2, $changed1, 'last_changed stays while nothing changes');
is($node->safe_psql('postgres', "SELECT '$lag2'::interval > '$lag1'::interval"), 't', 'and the lag grows');

run_update('orders');
isnt($node->safe_psql('postgres', $update_end), $changed1, 'another update ran');
is((split /\|/, as_role('bi', $last))[0], $changed1,
	'an update that does not change the table leaves last_changed');

upload_orders($s3, 2);
run_update('orders');
my ($changed3) = split /\|/, as_role('bi', $last);
is($node->safe_psql('postgres', "SELECT '$changed3'::timestamptz > '$changed1'::timestamptz"), 't',
	'an update that changes the table moves last_changed');
is($changed3, $node->safe_psql('postgres', $update_end), '... to the end of that update');

# nothing else leaks, not even through a function the BI role plants
my ($leak_ret, $leak_out, $leak_err) = $node->psql('postgres', q{
	SET ROLE bi;
	CREATE FUNCTION pg_temp.leak(t text) RETURNS boolean LANGUAGE plpgsql COST 0.0000001
	  AS $f$BEGIN RAISE NOTICE 'saw %', t; RETURN true; END$f$;
	SELECT count(*) FROM medallion.table_freshness
	 WHERE pg_temp.leak(table_name) AND pg_temp.leak(flow_name) AND pg_temp.leak(pipeline_name);});
is($leak_out, '1', "the BI role's own conditions see one row");
unlike($leak_err, qr/saw (bronze|silver|odd|stream)|saw gold\.(order_history|"tot)/,
	"... and never a row of a table it may not read (security barrier)")
  or diag($leak_err);
is(as_role('bi', q{SELECT count(*) FROM medallion.table_freshness WHERE table_name LIKE 'silver.%'}), '0',
	'the BI role does not see the silver tables');
($ret, $out, $err) = $node->psql('postgres', 'SET ROLE bi; SELECT count(*) FROM medallion.flow');
like($err, qr/permission denied for table flow/, "the BI role still cannot read medallion's catalog");

done_testing();
