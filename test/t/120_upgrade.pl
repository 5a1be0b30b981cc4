# In-place upgrades: ALTER EXTENSION medallion UPDATE from 0.1.0.
#
# A database on 0.1.0 holds pipelines that the 0.1.0 library created and
# ran: test/fixtures/upgrade-0.1.0.sql is a pg_dump of such a database, made
# by this file with MEDALLION_MAKE_UPGRADE_FIXTURE=<output file> and the
# released 0.1.0 library (see the fixture's header).  The test installs
# 0.1.0, loads the fixture, and then checks:
#   - the current library refuses to work on the 0.1.0 catalog, with an
#     error and hint, and its scheduler logs that once and starts no worker;
#   - after ALTER EXTENSION medallion UPDATE every object of the extension
#     equals that of a fresh CREATE EXTENSION medallion (pg_dump in
#     binary-upgrade mode, and the catalogs: relations, columns, constraints,
#     indexes, triggers, policies, sequences, functions, views, types,
#     comments, privileges, membership, pg_extension_config_dump);
#   - ALTER EXTENSION medallion UPDATE on an up-to-date database changes
#     nothing;
#   - the upgraded pipelines continue: only new objects are ingested, silver,
#     gold and the aggregate continue from their watermarks and equal their
#     definitions, and the continuous pipeline's worker starts by itself.
#
# The comparison lists no expected object: whatever a later change adds to
# sql/parts must be added, in the same form, to the update script.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use MedallionTest;
use MedallionOrders;

my $make_fixture = $ENV{MEDALLION_MAKE_UPGRADE_FIXTURE};
my $fixture = "$MedallionTest::root/test/fixtures/upgrade-0.1.0.sql";
my $owner = 'medallion_upgrade';

# Roles and schemas the fixture's objects belong to (created before it is
# loaded, like pg_dumpall's globals).
sub create_owner
{
	my ($node, $database) = @_;
	$node->safe_psql('postgres', "CREATE ROLE $owner");
	$node->safe_psql($database,
		join('', map { "CREATE SCHEMA $_ AUTHORIZATION $owner;" } qw(bronze silver gold)))
	  if $make_fixture;
	return;
}

my $s3 = start_s3(buckets => ['landing']);
my $endpoint = $s3->{endpoint};
my $node = start_node(
	'upgrade',
	create_extension => 0,
	'medallion.enable_workers' => ($make_fixture ? 'off' : 'on'),
	'medallion.launcher_naptime' => '200ms',
	'medallion.allowed_endpoints' => $endpoint,
	'log_statement' => 'none');
upload_orders($s3, $_) for 1 .. 2;
upload_stream($s3, 1);

# ------------------------------------------------- making the fixture (0.1.0)
if ($make_fixture)
{
	$node->safe_psql('postgres', 'CREATE DATABASE pipelines');
	# the default version: that of the (released) library that makes the fixture
	$node->safe_psql('pipelines', 'CREATE EXTENSION medallion');
	create_owner($node, 'pipelines');
	$node->safe_psql('pipelines', pipeline_sql($endpoint, $owner));
	$node->safe_psql('pipelines',
		"SET ROLE $owner; SELECT * FROM medallion.run_pipeline('orders'); SELECT * FROM medallion.run_pipeline('stream');"
	);
	my ($dump, $stderr) = run_command(
		[ 'pg_dump', '--no-sync', '-d', $node->connstr('pipelines') ]);
	die "pg_dump failed: $stderr" if $stderr ne '';
	my $library = $node->safe_psql('pipelines',
		q{SELECT extversion FROM pg_extension WHERE extname = 'medallion'});
	# the extension and its schema are created by the test; the endpoint's
	# port changes
	$dump =~ s/^(CREATE|COMMENT ON) EXTENSION .*\n//mg;
	$dump =~ s/^(CREATE SCHEMA medallion;|ALTER SCHEMA medallion OWNER TO .*)\n//mg;
	$dump =~ s/\Q$endpoint\E/\@ENDPOINT\@/g;
	open my $fh, '>', $make_fixture or die "$make_fixture: $!";
	print $fh "-- A database on medallion $library with the pipelines of test/t/120_upgrade.pl,\n"
	  . "-- created and run by the released $library library; made by that test with\n"
	  . "-- MEDALLION_MAKE_UPGRADE_FIXTURE=<this file>.  Loaded after\n"
	  . "-- CREATE EXTENSION medallion VERSION '$library' and CREATE ROLE $owner;\n"
	  . "-- \@ENDPOINT\@ is the S3 endpoint.\n"
	  . $dump;
	close $fh or die;
	pass("fixture written to $make_fixture");
	done_testing();
	exit 0;
}

# ------------------------------------------------- a database on 0.1.0
my $library = $node->safe_psql('postgres',
	q{SELECT default_version FROM pg_available_extensions WHERE name = 'medallion'});
isnt($library, '0.1.0', "the current version is $library");

$node->safe_psql('postgres', 'CREATE DATABASE old_db');
$node->safe_psql('old_db', q{CREATE EXTENSION medallion VERSION '0.1.0'});
create_owner($node, 'old_db');
{
	my $sql = slurp_file($fixture);
	$sql =~ s/\@ENDPOINT\@/$endpoint/g;
	my $file = "$PostgreSQL::Test::Utils::tmp_check/upgrade-fixture.sql";
	open my $fh, '>', $file or die "$file: $!";
	print $fh $sql;
	close $fh or die;
	my ($ret, $out, $err) = $node->psql('old_db', undef,
		extra_params => [ '-v', 'ON_ERROR_STOP=1', '-f', $file ]);
	is($ret, 0, 'the 0.1.0 fixture loads') or diag $err;
}
is( $node->safe_psql('old_db',
		q{SELECT extversion || ' ' || (SELECT count(*) FROM medallion.ingested_file) FROM pg_extension WHERE extname = 'medallion'}),
	'0.1.0 3',
	'old_db is on 0.1.0 with three objects in its ledger');

# The library refuses the old catalog, clearly.
my $refusal = qr/medallion's catalog in database "old_db" is at version 0\.1\.0, the library at \Q$library\E/;
for my $call (
	"SELECT * FROM medallion.run_pipeline('orders')",
	"SELECT medallion.create_pipeline('another')",
	"SELECT medallion.auto_cdc_apply('gold.order_history')")
{
	my ($ret, $out, $err) = $node->psql('old_db', "SET ROLE $owner; $call");
	like($err, $refusal, "refused on 0.1.0: $call");
	like($err, qr/HINT:  Run ALTER EXTENSION medallion UPDATE\./, '... with the hint');
}

# Every SQL-callable function of the library checks first (try_cast reads
# no catalog; the DROP EXTENSION guard must let a DBA drop an extension
# whose catalog and library disagree), so that the rule holds for functions
# added later too.
{
	my @unchecked;
	for my $file (glob("$MedallionTest::root/src/*.c"))
	{
		my $code = slurp_file($file);
		for my $function ($code =~ /^PG_FUNCTION_INFO_V1\((\w+)\);/mg)
		{
			next if $function eq 'medallion_try_cast' || $function eq 'medallion_guard_drop_extension';
			push @unchecked, $function
			  unless $code =~ /^\Q$function\E\(PG_FUNCTION_ARGS\)\n\{\n\tVERSION_CHECK_CATALOG\(\);\n/m;
		}
	}
	is(join(', ', @unchecked), '',
		'every SQL-callable C function starts with VERSION_CHECK_CATALOG()');
}

# The scheduler of old_db says so once, and starts no worker for "stream"
# (state running in the fixture).
ok($node->wait_for_log(qr/LOG:  $refusal/), 'the scheduler logs the refusal');
$node->poll_query_until('old_db',
	q{SELECT count(*) > 0 FROM pg_stat_activity WHERE backend_type = 'medallion scheduler' AND datname = 'old_db'})
  or die 'no scheduler in old_db';
# ten naptimes of the scheduler: nothing may happen in them
usleep(2_000_000);
my @logged = (slurp_file($node->logfile) =~ /LOG:  $refusal/g);
is(scalar(@logged), 1, 'the scheduler logged it once in ten naptimes, not in a loop');
is( $node->safe_psql('old_db',
		q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'medallion worker'}),
	'0',
	'no pipeline worker runs in the 0.1.0 database');
is($node->safe_psql('old_db', 'SELECT count(*) FROM bronze.stream'),
	'5', 'the continuous pipeline ingested nothing');

# ------------------------------------------------- the update
# Secrets are not in dumps: the owner creates it again, in the transaction
# of the update (the library accepts the catalog as soon as it is current).
$node->safe_psql('old_db',
	"BEGIN; ALTER EXTENSION medallion UPDATE; SET ROLE $owner; SELECT medallion.create_secret('landing', 'S3RVER', 'S3RVER'); COMMIT;"
);
is( $node->safe_psql('old_db',
		q{SELECT extversion FROM pg_extension WHERE extname = 'medallion'}),
	$library,
	"ALTER EXTENSION medallion UPDATE brings old_db to $library");

$node->safe_psql('postgres', 'CREATE DATABASE new_db');
$node->safe_psql('new_db', 'CREATE EXTENSION medallion');

# ------------------------------------------------- the comparison

# Statements over the extension's objects: its members (pg_depend 'e'), the
# relations among them, and the parts of those (columns, indexes,
# constraints, triggers, ...).  Every name is printed, never an OID; each
# row is one line.
my $with = q{
WITH ext AS (SELECT oid FROM pg_extension WHERE extname = 'medallion'),
members AS (
	SELECT d.classid, d.objid FROM pg_depend d, ext
	 WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid
	   AND d.deptype = 'e'),
rels AS (
	SELECT objid AS oid FROM members WHERE classid = 'pg_class'::regclass
	UNION
	SELECT t.typrelid FROM pg_type t
	 WHERE t.typrelid <> 0
	   AND t.oid IN (SELECT objid FROM members WHERE classid = 'pg_type'::regclass)),
idx AS (SELECT indexrelid AS oid FROM pg_index WHERE indrelid IN (SELECT oid FROM rels)),
cons AS (
	SELECT c.oid FROM pg_constraint c
	 WHERE c.conrelid IN (SELECT oid FROM rels)
		OR c.contypid IN (SELECT objid FROM members WHERE classid = 'pg_type'::regclass)),
trig AS (SELECT oid FROM pg_trigger WHERE tgrelid IN (SELECT oid FROM rels) AND NOT tgisinternal),
owned AS (
	SELECT 'pg_class'::regclass::oid AS classid, oid AS objid FROM rels
	UNION SELECT 'pg_class'::regclass::oid, oid FROM idx
	UNION SELECT 'pg_constraint'::regclass::oid, oid FROM cons
	UNION SELECT 'pg_trigger'::regclass::oid, oid FROM trig
	UNION SELECT 'pg_extension'::regclass::oid, oid FROM ext
	UNION SELECT 'pg_namespace'::regclass::oid, oid FROM pg_namespace WHERE nspname = 'medallion'
	UNION SELECT classid, objid FROM members)
};
my %catalog = (
	extension => q{
		SELECT format('version %s, schema %s, relocatable %s, owner %s', extversion,
					  extnamespace::regnamespace, extrelocatable, extowner::regrole)
		  FROM pg_extension WHERE extname = 'medallion'},
	'pg_extension_config_dump' => q{
		SELECT format('%s %L', c.relid::regclass, c.cond)
		  FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS c(relid, cond)
		 WHERE e.extname = 'medallion'},
	membership => q{
		SELECT pg_describe_object(classid, objid, 0) FROM members},
	schema => q{
		SELECT format('%s owner %s acl %s', nspname, nspowner::regrole, nspacl)
		  FROM pg_namespace WHERE nspname = 'medallion'},
	relations => q{
		SELECT format('%s kind %s persistence %s owner %s acl %s options %s rls %s/%s replica identity %s',
					  c.oid::regclass, c.relkind, c.relpersistence, c.relowner::regrole,
					  c.relacl, c.reloptions, c.relrowsecurity, c.relforcerowsecurity,
					  c.relreplident)
		  FROM pg_class c WHERE c.oid IN (SELECT oid FROM rels UNION SELECT oid FROM idx)},
	columns => q{
		SELECT format('%s #%s %s %s not null %s default %s identity %s generated %s collation %s acl %s options %s',
					  a.attrelid::regclass,
					  row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum),
					  a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
					  pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated,
					  co.collname, a.attacl,
					  -- this server build keeps a pg_attver entry here that differs by database
					  (SELECT array_agg(o ORDER BY o) FROM unnest(a.attoptions) o
						WHERE o NOT LIKE 'pg\_attver=%'))
		  FROM pg_attribute a
		  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		  LEFT JOIN pg_collation co ON co.oid = a.attcollation
		 WHERE a.attrelid IN (SELECT oid FROM rels UNION SELECT oid FROM idx)
		   AND a.attnum > 0 AND NOT a.attisdropped},
	constraints => q{
		SELECT format('%s %s %s: %s', coalesce(c.conrelid::regclass::text, c.contypid::regtype::text),
					  c.contype, c.conname, pg_get_constraintdef(c.oid))
		  FROM pg_constraint c WHERE c.oid IN (SELECT oid FROM cons)},
	indexes => q{
		SELECT format('%s primary %s unique %s clustered %s replica identity %s',
					  pg_get_indexdef(i.indexrelid), i.indisprimary, i.indisunique,
					  i.indisclustered, i.indisreplident)
		  FROM pg_index i WHERE i.indexrelid IN (SELECT oid FROM idx)},
	triggers => q{
		SELECT format('%s enabled %s', pg_get_triggerdef(t.oid), t.tgenabled)
		  FROM pg_trigger t WHERE t.oid IN (SELECT oid FROM trig)},
	policies => q{
		SELECT format('%s %s cmd %s permissive %s roles %s using %s check %s',
					  p.polrelid::regclass, p.polname, p.polcmd, p.polpermissive,
					  p.polroles::regrole[], pg_get_expr(p.polqual, p.polrelid),
					  pg_get_expr(p.polwithcheck, p.polrelid))
		  FROM pg_policy p WHERE p.polrelid IN (SELECT oid FROM rels)},
	rules => q{
		SELECT pg_get_ruledef(r.oid) FROM pg_rewrite r
		 WHERE r.ev_class IN (SELECT oid FROM rels) AND r.rulename <> '_RETURN'},
	views => q{
		SELECT format('%s: %s', c.oid::regclass, pg_get_viewdef(c.oid))
		  FROM pg_class c WHERE c.oid IN (SELECT oid FROM rels) AND c.relkind IN ('v', 'm')},
	sequences => q{
		SELECT format('%s %s start %s increment %s min %s max %s cache %s cycle %s owned by %s',
					  s.seqrelid::regclass, s.seqtypid::regtype, s.seqstart, s.seqincrement,
					  s.seqmin, s.seqmax, s.seqcache, s.seqcycle,
					  (SELECT d.refobjid::regclass || '.' || a.attname
						 FROM pg_depend d
						 JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
						WHERE d.classid = 'pg_class'::regclass AND d.objid = s.seqrelid
						  AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')))
		  FROM pg_sequence s WHERE s.seqrelid IN (SELECT oid FROM rels)},
	functions => q{
		SELECT format('%s kind %s owner %s acl %s: %s', p.oid::regprocedure, p.prokind,
					  p.proowner::regrole, p.proacl,
					  CASE WHEN p.prokind = 'a'
						   THEN (SELECT format('aggregate %s %s %s %s %s', a.aggtransfn,
											   a.aggfinalfn, a.aggcombinefn,
											   a.aggtranstype::regtype, a.agginitval)
								   FROM pg_aggregate a WHERE a.aggfnoid = p.oid)
						   ELSE pg_get_functiondef(p.oid) END)
		  FROM pg_proc p WHERE p.oid IN (SELECT objid FROM members WHERE classid = 'pg_proc'::regclass)},
	types => q{
		SELECT format('%s type %s owner %s acl %s base %s not null %s default %s labels %s',
					  t.oid::regtype, t.typtype, t.typowner::regrole, t.typacl,
					  t.typbasetype::regtype, t.typnotnull, t.typdefault,
					  (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
						 FROM pg_enum e WHERE e.enumtypid = t.oid))
		  FROM pg_type t WHERE t.oid IN (SELECT objid FROM members WHERE classid = 'pg_type'::regclass)},
	comments => q{
		SELECT format('%s: %s', pg_describe_object(d.classoid, d.objoid, d.objsubid), d.description)
		  FROM pg_description d
		 WHERE (d.classoid, d.objoid) IN (SELECT classid, objid FROM owned)},
	'initial privileges' => q{
		SELECT format('%s %s %s', pg_describe_object(i.classoid, i.objoid, i.objsubid),
					  i.privtype, i.initprivs)
		  FROM pg_init_privs i
		 WHERE (i.classoid, i.objoid) IN (SELECT classid, objid FROM owned)},
	'default privileges' => q{
		SELECT format('%s %s %s', d.defaclrole::regrole, d.defaclobjtype, d.defaclacl)
		  FROM pg_default_acl d WHERE d.defaclnamespace = 'medallion'::regnamespace},
);

# One database's extension objects: category => sorted lines.
sub catalog_of
{
	my ($database) = @_;
	my %lines;
	for my $what (sort keys %catalog)
	{
		my $rows = $node->safe_psql($database,
			"$with SELECT replace(x, E'\\n', '\\n') FROM ($catalog{$what}) q(x)");
		$lines{$what} = [ sort grep { $_ ne '' } split /\n/, $rows ];
	}
	return \%lines;
}

# The extension's objects as pg_dump writes them for pg_upgrade (the only
# mode in which pg_dump writes extension members), without the schemas of
# the database's own objects, and without what differs by nature between two
# databases: OIDs, frozen xids, sequence values, dropped columns, the
# missing-value of columns added by ALTER TABLE, and column order (compared
# in the catalog).
sub dump_of
{
	my ($database) = @_;
	my @exclude = map { "--exclude-schema=$_" } split /\n/,
	  $node->safe_psql($database,
		q{SELECT nspname FROM pg_namespace WHERE nspname NOT IN ('medallion', 'information_schema') AND nspname !~ '^pg_'}
	  );
	my ($dump, $stderr) = run_command(
		[ 'pg_dump', '--schema-only', '--binary-upgrade', '--no-sync', @exclude,
			'-d', $node->connstr($database) ]);
	die "pg_dump $database failed: $stderr" if $stderr ne '';
	$dump =~ s/^UPDATE pg_catalog\.pg_attribute\nSET attlen = [^\n]*\nWHERE attname = '\.+pg\.dropped[^\n]*\n[^\n]*\n//mg;
	$dump =~ s/(binary_upgrade_create_empty_extension\('medallion', [^,]*, [^,]*, [^,]*, )'\{[0-9,]*\}'/$1OIDS/g;
	my @lines;
	for my $line (split /\n/, $dump)
	{
		next if $line =~ /^--/ || $line =~ /^\s*$/ || $line =~ /^\\(un)?restrict /;
		next if $line =~ /binary_upgrade_set_next_|binary_upgrade_set_missing_value|pg\.dropped|frozenxid|minmxid|pg_catalog\.setval\(/;
		next if $line =~ /^WHERE oid = '\d+'(::pg_catalog\.oid)?;$/;
		$line =~ s/,$//;
		push @lines, $line;
	}
	return [ sort @lines ];
}

# Lines only in one of two lists (as multisets), as a readable diff.
sub difference
{
	my ($left, $right, $left_name, $right_name) = @_;
	my %count;
	$count{$_}++ for @$left;
	$count{$_}-- for @$right;
	my @out;
	for my $line (sort keys %count)
	{
		push @out, ("  only in $left_name: $line") x $count{$line} if $count{$line} > 0;
		push @out, ("  only in $right_name: $line") x -$count{$line} if $count{$line} < 0;
	}
	return @out;
}

sub same_lines
{
	my ($left, $right, $what, $left_name, $right_name) = @_;
	my @diff = difference($left, $right, $left_name, $right_name);
	ok(!@diff && @$left > 0, $what) or diag join("\n", @diff);
	return;
}

sub compare_databases
{
	my ($left, $right, $label, $left_name, $right_name) = @_;
	my ($a, $b) = (catalog_of($left), catalog_of($right));
	for my $what (sort keys %catalog)
	{
		my @diff = difference($a->{$what}, $b->{$what}, $left_name, $right_name);
		ok(!@diff, "$label: $what") or diag join("\n", @diff);
	}
	same_lines(dump_of($left), dump_of($right), "$label: pg_dump --binary-upgrade",
		$left_name, $right_name);
	return;
}

compare_databases('old_db', 'new_db', 'updated equals fresh',
	'updated 0.1.0', "fresh $library");

# An update of an up-to-date database changes nothing.
{
	my $before = catalog_of('new_db');
	my $dump_before = dump_of('new_db');
	my ($ret, $out, $err) = $node->psql('new_db', 'ALTER EXTENSION medallion UPDATE');
	is($ret, 0, 'ALTER EXTENSION medallion UPDATE on an up-to-date database succeeds');
	like($err, qr/version "\Q$library\E" of extension "medallion" is already installed/,
		'... and says it is up to date');
	my $after = catalog_of('new_db');
	my @diff = map { difference($before->{$_}, $after->{$_}, 'before', 'after') } sort keys %catalog;
	push @diff, difference($dump_before, dump_of('new_db'), 'before', 'after');
	ok(!@diff, '... and changes nothing') or diag join("\n", @diff);
}

# ------------------------------------------------- the pipelines continue
sub psql_owner
{
	return $node->safe_psql('old_db', "SET ROLE $owner; $_[0]");
}

# The update moved the state tables out of gold into medallion_state, with
# their indexes and sequences, owned by the pipeline owner as before, and
# the definitions name them there.
is( $node->safe_psql('old_db',
		q{SELECT string_agg(c.relname || ' ' || c.relkind::text || ' ' || pg_get_userbyid(c.relowner), ', ' ORDER BY c.relname)
		    FROM pg_class c WHERE c.relnamespace = 'medallion_state'::regnamespace}),
	"gold__order_history__change_feed r $owner, gold__order_history__change_feed__row_id_seq S $owner, "
	  . "gold__status_totals__groups r $owner, gold__status_totals__groups_group_1_idx i $owner",
	'the update moves the state tables into medallion_state, with their indexes and sequences');
is( $node->safe_psql('old_db',
		q{SELECT count(*) FROM pg_class WHERE relnamespace = 'gold'::regnamespace AND relname LIKE '%\_\_%'}),
	'0', '... and leaves none beside the targets');
is( $node->safe_psql('old_db',
		q{SELECT string_agg(flow_name || ' ' || concat_ws(' ', definition->>'change_feed', definition->>'groups_table',
		                                                   definition->'state_tables'), '; ' ORDER BY flow_name)
		    FROM medallion.flows WHERE flow_type IN ('auto_cdc', 'aggregate')}),
	'gold.order_history medallion_state.gold__order_history__change_feed ["medallion_state.gold__order_history__change_feed"]; '
	  . 'gold.status_totals medallion_state.gold__order_history__change_feed medallion_state.gold__status_totals__groups '
	  . '["medallion_state.gold__status_totals__groups"]',
	'... and the definitions name them there');

upload_orders($s3, 3);
is( psql_owner(
		q{SELECT string_agg(flow_name || ':' || rows_written, ',' ORDER BY flow_name) FROM medallion.run_pipeline('orders') WHERE flow_type = 'bronze'}
	),
	'bronze.orders:14',
	'the upgraded pipeline ingests only the new object (its 14 lines)');
is( psql_owner(
		q{SELECT count(*) || ' ' || count(DISTINCT _file_path) || ' ' || count(DISTINCT (_file_path, data, _rescued_data)) FROM bronze.orders}),
	'42 3 42',
	'bronze has the three objects once each');
is(psql_owner(q{SELECT count(*) FROM medallion.ingested_files WHERE pipeline_name = 'orders'}),
	'3', 'the ledger has three objects');

orders_continue_ok($node, 'old_db', $owner);
cmp_ok(
	psql_owner(
		q{SELECT count(*) FROM gold.order_history WHERE __end_at IS NOT NULL AND seq < 300}),
	'>', 0, 'gold kept the history written by 0.1.0');
is( psql_owner(
		q{SELECT (SELECT count(*) FROM gold.status_totals) = (SELECT count(*) FROM medallion_state.gold__status_totals__groups)
		     AND (SELECT count(*) FROM medallion_state.gold__order_history__change_feed) > 0}),
	't', 'the moved state tables are the ones the flows now read and write');

# the continuous pipeline's worker starts after the update, and ingests only
# the new object
upload_stream($s3, 2);
ok($node->poll_query_until('old_db', 'SELECT count(*) = 10 FROM bronze.stream'),
	'the continuous pipeline runs after the update');
is( psql_owner(
		q{SELECT count(*) || ' ' || count(DISTINCT _file_path) FROM bronze.stream}),
	'10 2', '... and ingested only the new object');

done_testing();
