=pod

=head1 NAME

MedallionTest - helpers for medallion's TAP tests (test/t/*.pl)

=head1 SYNOPSIS

  use PostgreSQL::Test::Utils;
  use Test::More;
  use MedallionTest;

  my $s3   = start_s3();                        # bucket "landing"
  s3_upload_string($s3, qq({"id":1}\n), 'data/part-00001.json');
  my $node = start_node('main', 'medallion.enable_workers' => 'on');
  $node->safe_psql('postgres', "SELECT ...");   # extension already created
  ...
  done_testing();

Run through test/run-all.sh (which sets the environment listed in its header),
or by hand from the top of the tree as a non-root user:

  PATH=/usr/lib/postgresql/15/bin:$PATH TESTDIR=$PWD/test \
  PG_REGRESS=/usr/lib/postgresql/15/lib/pgxs/src/test/regress/pg_regress \
  prove -I /usr/lib/postgresql/15/lib/pgxs/src/test/perl -I test/perl test/t/000_harness.pl

=head1 FUNCTIONS

=over

=item start_node($name, %extra_conf)

Creates, configures and starts a PostgreSQL::Test::Cluster and returns it.
The node gets C<timezone = 'UTC'>, C<shared_preload_libraries = 'medallion'>,
C<medallion.enable_workers = off> (unless C<'medallion.enable_workers'> is
given in %extra_conf) and C<max_worker_processes = 16>; every other key of
%extra_conf is a GUC name written to postgresql.conf as C<name = 'value'>.
Then C<CREATE EXTENSION medallion> is run in database C<postgres>.

Two keys are options, not GUCs: C<preload =E<gt> 0> leaves medallion out
entirely (no preload, no medallion GUCs, no CREATE EXTENSION); and
C<create_extension =E<gt> 0> preloads the library but skips CREATE EXTENSION.
C<allows_streaming =E<gt> 1> initialises the node for streaming replication
(PostgreSQL::Test::Cluster's C<init(allows_streaming =E<gt> 1)>), so that
C<backup> and C<init_from_backup(..., has_streaming =E<gt> 1)> can make a
standby of it; %extra_conf may override the small C<shared_buffers> and
C<max_connections> that this sets.

=item start_s3(%opts)

Starts test/s3/server.js (s3rver, verifies SigV4) on 127.0.0.1 and a free
port, with a fresh data directory. Options: C<buckets =E<gt> [names]>
(default C<['landing']>), C<verbose =E<gt> 1> (log requests to the server
log). Returns a MedallionTest::S3 object, a hash with C<endpoint>
(C<http://127.0.0.1:PORT>), C<port>, C<bucket> (the first bucket),
C<buckets>, C<directory> and C<log>, a C<stop> method, and a C<start> method
that starts a stopped server again on the same port with the same data. Every server still
running is stopped at END.

=item s3_upload($s3, $local_file, $key)

=item s3_upload_string($s3, $content, $key)

=item s3_delete($s3, $key)

Upload / delete one object with the real AWS CLI v2 (/usr/bin/aws s3 cp / rm).
$key is a key in C<< $s3->{bucket} >>, or a full C<s3://bucket/key> URI.
They die with the CLI's output on failure.

=item aws_cli($s3, @args)

Runs C</usr/bin/aws --endpoint-url ENDPOINT @args> with aws_env() and returns
its stdout; dies on a non-zero exit. E.g.
C<aws_cli($s3, qw(s3api list-objects-v2 --bucket landing --output json))>.

=item aws_env()

The environment (a list of name =E<gt> value pairs) for the AWS CLI talking to
s3rver: credentials S3RVER/S3RVER, us-east-1, no metadata service, no pager,
no config files, checksums only when required.

=item node_binary()

The Node.js (>= 20) used to run server.js: C<$ENV{MEDALLION_NODE}>, else
C<node> on PATH when it is >= 20, else the copy scripts/install-deps.sh puts
under /opt/medallion/node20.

=item customer_events($count, $customers)

A list of $count change events (hashes with C<event_id> 1..$count,
C<customer_id> 1..$customers, C<seq>, C<amount>) for AUTO CDC tests: the
customers come in random order, and each customer's sequence numbers (10,
20, ...) are shuffled, so that any split into files brings them out of
order; every event has its own amount (text, two decimals), so that
consecutive SCD2 versions always differ.

=item scd2_versions(@events)

The SCD type 2 versions that AUTO CDC keyed on C<customer_id> and sequenced
by C<seq> makes of @events: one array C<[customer_id, event_id, amount,
__start_at, __end_at]> per event, C<__end_at> being the next C<seq> of the
customer or C<'NULL'>.

=item $MedallionTest::root

Absolute path of the top of the tree the tests run in (fixtures are under
C<"$MedallionTest::root/test/...">).

=back

=cut

package MedallionTest;

use strict;
use warnings;

use Carp;
use Cwd qw(abs_path);
use Exporter qw(import);
use File::Basename qw(basename dirname);
use File::Path qw(rmtree);
use File::Temp ();
use IPC::Run ();
use List::Util qw(shuffle);
use Test::More ();
use POSIX qw(WNOHANG);
use Time::HiRes qw(usleep);

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;

our @EXPORT = qw(start_node start_s3 s3_upload s3_upload_string s3_delete
  customer_events scd2_versions
  aws_cli aws_env node_binary);

our $root = abs_path(dirname(__FILE__) . '/../..');

our $AWS = '/usr/bin/aws';    # Debian's v2; a v1 may come first on PATH
our $NODE20_FALLBACK = '/opt/medallion/node20/node_modules/node/bin/node';

my $s3_count = 0;

sub _quote_conf
{
	my ($v) = @_;
	$v =~ s/'/''/g;
	return "'$v'";
}

sub start_node
{
	my ($name, %conf) = @_;
	my $preload = exists $conf{preload} ? delete $conf{preload} : 1;
	my $create =
	  exists $conf{create_extension} ? delete $conf{create_extension} : $preload;
	my $streaming = delete $conf{allows_streaming} // 0;

	my %gucs = (timezone => 'UTC', max_worker_processes => 16);
	if ($preload)
	{
		$gucs{shared_preload_libraries} = 'medallion';
		$gucs{'medallion.enable_workers'} = 'off';
	}
	%gucs = (%gucs, %conf);

	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(allows_streaming => $streaming);
	$node->append_conf('postgresql.conf',
		join('', map { "$_ = " . _quote_conf($gucs{$_}) . "\n" } sort keys %gucs));
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION medallion') if $create;
	return $node;
}

sub customer_events
{
	my ($count, $customers) = @_;
	my @slots = shuffle(map { 1 + $_ % $customers } 0 .. $count - 1);
	my %per_customer;
	$per_customer{$_}++ for @slots;
	my %pool = map { $_ => [ shuffle(map { $_ * 10 } 1 .. $per_customer{$_}) ] }
	  sort { $a <=> $b } keys %per_customer;
	my @events;
	for my $customer (@slots)
	{
		my $event_id = @events + 1;
		push @events,
		  {
			event_id => $event_id,
			customer_id => $customer,
			seq => shift @{ $pool{$customer} },
			amount => sprintf('%d.%02d', 10 + $event_id % 990, $event_id % 100),
		  };
	}
	return @events;
}

sub scd2_versions
{
	my (@events) = @_;
	my %by_customer;
	my @versions;
	push @{ $by_customer{ $_->{customer_id} } }, $_ for @events;
	for my $customer (sort { $a <=> $b } keys %by_customer)
	{
		my @mine = sort { $a->{seq} <=> $b->{seq} } @{ $by_customer{$customer} };
		for my $i (0 .. $#mine)
		{
			push @versions,
			  [ $customer, $mine[$i]{event_id}, $mine[$i]{amount}, $mine[$i]{seq},
				$i < $#mine ? $mine[ $i + 1 ]{seq} : 'NULL' ];
		}
	}
	return @versions;
}

sub node_binary
{
	return $ENV{MEDALLION_NODE} if $ENV{MEDALLION_NODE};
	my $v = `node -p 'process.versions.node' 2>/dev/null` // '';
	return 'node' if $v =~ /^(\d+)\./ && $1 >= 20;
	return $NODE20_FALLBACK if -x $NODE20_FALLBACK;
	croak "no Node.js >= 20 found (run scripts/install-deps.sh)";
}

# Start test/s3/server.js on $port (0: a free one) serving $dir; returns
# (pid, endpoint) or croaks with the server's log.
sub _spawn_s3
{
	my ($port, $dir, $buckets, $verbose, $log) = @_;
	my @cmd = (node_binary(), "$root/test/s3/server.js",
		'--address', '127.0.0.1', '--port', $port, '--directory', $dir,
		(map { ('--bucket', $_) } @$buckets),
		($verbose ? ('--verbose') : ()));
	my $offset = -e $log ? -s $log : 0;

	# Plain fork/exec: stdout and stderr go to the log file, so a chatty
	# server never blocks, and waitpid tells whether it is still alive.
	my $pid = fork();
	croak "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		# never return into the test script from the child
		eval {
			open(STDIN,  '<',  '/dev/null') or die;
			open(STDOUT, '>>', $log)        or die;
			open(STDERR, '>&', \*STDOUT)    or die;
			$ENV{NODE_OPTIONS} = '--openssl-legacy-provider';
			exec(@cmd);
		};
		POSIX::_exit(127);
	}

	my $endpoint;
	my $deadline = time() + 60;
	while (time() < $deadline)
	{
		my $text = -e $log ? substr(slurp_file($log), $offset) : '';
		if ($text =~ m{^S3 listening on (http://127\.0\.0\.1:(\d+))$}m)
		{
			$endpoint = $1;
			last;
		}
		last if waitpid($pid, WNOHANG) == $pid;    # it exited
		usleep(50_000);
	}
	if (!$endpoint)
	{
		_stop_pid($pid);
		my $text = -e $log ? slurp_file($log) : '';
		croak "s3 server did not start: @cmd\n$text";
	}
	return ($pid, $endpoint);
}

sub start_s3
{
	my (%opts) = @_;
	my @buckets = @{ $opts{buckets} // ['landing'] };
	my $n = ++$s3_count;
	my $dir = PostgreSQL::Test::Utils::tempdir('s3data');
	# Named like the nodes' logs (<test>_<what>.log) so run-all.sh shows it.
	my $test = basename($0);
	$test =~ s/\.[^.]*$//;
	my $log = "$PostgreSQL::Test::Utils::log_path/${test}_s3_${n}.log";
	unlink $log;

	my ($pid, $endpoint) = _spawn_s3(0, $dir, \@buckets, $opts{verbose}, $log);
	$endpoint =~ m{:(\d+)$};
	my $s3 = bless {
		endpoint  => $endpoint,
		port      => $1,
		bucket    => $buckets[0],
		buckets   => \@buckets,
		directory => $dir,
		log       => $log,
		pid       => $pid,
		verbose   => $opts{verbose},
	}, 'MedallionTest::S3';
	$s3->track;
	Test::More::note "s3 server at $endpoint (log $log)";
	return $s3;
}

sub aws_env
{
	return (
		AWS_ACCESS_KEY_ID                => 'S3RVER',
		AWS_SECRET_ACCESS_KEY            => 'S3RVER',
		AWS_DEFAULT_REGION               => 'us-east-1',
		AWS_EC2_METADATA_DISABLED        => 'true',
		AWS_PAGER                        => '',
		AWS_REQUEST_CHECKSUM_CALCULATION => 'when_required',
		AWS_CONFIG_FILE                  => '/dev/null',
		AWS_SHARED_CREDENTIALS_FILE      => '/dev/null',
	);
}

# Run the AWS CLI against $s3; returns (exit_ok, stdout, stderr).
sub _aws
{
	my ($s3, @args) = @_;
	my ($out, $err) = ('', '');
	my %env = aws_env();
	local @ENV{ keys %env } = values %env;
	my $ok = IPC::Run::run([ $AWS, '--endpoint-url', $s3->{endpoint}, @args ],
		'<', \undef, '>', \$out, '2>', \$err);
	return ($ok, $out, $err);
}

sub aws_cli
{
	my ($s3, @args) = @_;
	my ($ok, $out, $err) = _aws($s3, @args);
	croak "aws @args failed:\n$err$out" unless $ok;
	return $out;
}

sub _uri
{
	my ($s3, $key) = @_;
	return $key =~ m{^s3://} ? $key : "s3://$s3->{bucket}/$key";
}

sub s3_upload
{
	my ($s3, $file, $key) = @_;
	croak "no such file: $file" unless -f $file;
	aws_cli($s3, 's3', 'cp', $file, _uri($s3, $key), '--only-show-errors');
	return 1;
}

sub s3_upload_string
{
	my ($s3, $content, $key) = @_;
	my $tmp = File::Temp->new(DIR => $PostgreSQL::Test::Utils::tmp_check);
	binmode $tmp;
	print $tmp $content;
	close $tmp or croak "close: $!";
	return s3_upload($s3, $tmp->filename, $key);
}

sub s3_delete
{
	my ($s3, $key) = @_;
	aws_cli($s3, 's3', 'rm', _uri($s3, $key), '--only-show-errors');
	return 1;
}

# SIGTERM, then SIGKILL after 5 s; reaps the process.
sub _stop_pid
{
	my ($pid) = @_;
	return unless $pid && kill(0, $pid);
	kill 'TERM', $pid;
	for (1 .. 100)
	{
		return if waitpid($pid, WNOHANG) != 0;
		usleep(50_000);
	}
	kill 'KILL', $pid;
	waitpid($pid, 0);
	return;
}

# A server process the tests start (s3rver, the fault S3 stub): the
# subclass's _spawn($port) starts it (port 0: any) and sets {pid}; every
# server tracked is stopped when the test ends.
package MedallionTest::Server;

my @servers;

sub track
{
	my ($self) = @_;
	push @servers, $self;
	return $self;
}

sub endpoint { return $_[0]->{endpoint} }

# Stop the server (SIGTERM, then SIGKILL after 5 s) and wait for it.
sub stop
{
	my ($self) = @_;
	my $pid = delete $self->{pid} or return;
	MedallionTest::_stop_pid($pid);
	return;
}

# Start a stopped server again, on the same port and with the same data.
sub start
{
	my ($self) = @_;
	return if $self->{pid};
	$self->_spawn($self->{port});
	return;
}

END
{
	my $rc = $?;
	$_->stop for @servers;
	$? = $rc;
}

package MedallionTest::S3;

use parent -norequire, 'MedallionTest::Server';

sub _spawn
{
	my ($self, $port) = @_;
	my ($pid) = MedallionTest::_spawn_s3($port, $self->{directory},
		$self->{buckets}, $self->{verbose}, $self->{log});
	$self->{pid} = $pid;
	return;
}

1;
