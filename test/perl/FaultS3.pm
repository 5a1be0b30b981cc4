=pod

=head1 NAME

FaultS3 - the fault-injecting S3 endpoint (test/fault/fault_s3.py) for TAP tests

=head1 SYNOPSIS

  use FaultS3;

  my $s3 = start_fault_s3();                      # bucket "landing", S3RVER/S3RVER
  $s3->put_object('data/a.json', qq({"id": 1}\n));
  $s3->fault(kind => 'slowdown', op => 'get', key => 'data/a.json', retry_after => 1);
  $s3->fault(kinds => [qw(internal_error reset)], probability => 0.2, seed => 7);
  my $counters = $s3->counters;                   # {injected_total => N, injected => {...}, ...}
  $s3->clear_faults;
  $s3->stop; $s3->start;                          # same port, same objects

=head1 DESCRIPTION

test/fault/fault_s3.py is a complete S3 stub (strict SigV4, ListObjectsV2 in
byte order with real C<encoding-type=url>, GET with If-Match, PUT and
multipart uploads for the AWS CLI) with faults configurable at runtime.  Its
header comment lists the fault kinds and the fields of a rule.

=head1 FUNCTIONS

=over

=item start_fault_s3(%opts)

Starts the server on 127.0.0.1 and a free port.  Options: C<buckets>
(default C<['landing']>), C<region> (default us-east-1), C<access_key> /
C<secret_key> (default S3RVER / S3RVER, the credentials of aws_env()),
C<verbose> (log every request to the server's log).  Returns a FaultS3
object, a hash with C<endpoint>, C<port>, C<bucket> (the first bucket),
C<buckets> and C<log>, which also works with MedallionTest's aws_cli(),
s3_upload() and s3_upload_string().  Every server still running is stopped
at END.

=back

=head1 METHODS

=over

=item put_object($key, $content, %opts) / get_object($key) / delete_object($key)

Store, read or delete an object directly (no AWS CLI, no signature: fast).
$key is in C<< $s3->{bucket} >> unless C<bucket =E<gt> NAME> is given (for
get and delete: an optional second argument).  put_object returns the new
ETag (with its quotes); C<mtime =E<gt> EPOCH> sets LastModified.

=item objects([$bucket])

The objects of a bucket: a list of C<{key, etag, size}>, in byte order.

=item fault(%rule) / faults(@rules) / clear_faults()

Add one rule, several rules, or remove all rules.

=item counters()

The server's counters: C<requests> (by operation), C<requests_total>,
C<injected> (by kind), C<injected_total> and C<rules> (each with its
C<matched> and C<fired> counts).

=item requests()

The last 10,000 S3 requests the server received, oldest first: a list of
C<{serial, t, op, key, connection, on_connection, fault}>, where C<t> is the
arrival time (epoch seconds), C<connection> numbers the TCP connections and
C<on_connection> is 1 for the first request on its connection (so a retry
on a fresh connection shows as a new C<connection> with C<on_connection>
1).  C<fault> is the injected kind or undef.

=item reset_counters()

Also empties the request log.

=item config(%settings)

C<allow_anonymous>, C<url_encoding> (false: ignore encoding-type, as s3rver
does, so keys come back raw in the XML), C<region>, C<credentials>.

=item stop() / start()

Stop the server (its objects are kept in a state file) and start it again
on the same port.

=back

=cut

package FaultS3;

use strict;
use warnings;

use Carp;
use Exporter qw(import);
use File::Basename qw(basename dirname);
use HTTP::Tiny;
use JSON::PP ();
use POSIX qw(WNOHANG);
use Test::More ();
use Time::HiRes qw(usleep);

use PostgreSQL::Test::Utils;
use MedallionTest ();

our @EXPORT = qw(start_fault_s3);

our @ISA = ('MedallionTest::Server');

my $count = 0;
my $json = JSON::PP->new->utf8->canonical;

sub _script { return "$MedallionTest::root/test/fault/fault_s3.py"; }

sub _python
{
	# Debian's own Python 3: always there, stdlib only.
	return -x '/usr/bin/python3' ? '/usr/bin/python3' : 'python3';
}

sub _spawn
{
	my ($self, $port) = @_;
	my @cmd = (_python(), _script(), '--port', $port,
		'--state-file', $self->{state_file},
		'--region', $self->{region},
		'--access-key', $self->{access_key}, '--secret-key', $self->{secret_key},
		(map { ('--bucket', $_) } @{ $self->{buckets} }),
		($self->{verbose} ? ('--verbose') : ()));
	my $log = $self->{log};
	my $offset = -e $log ? -s $log : 0;
	my $pid = fork();
	croak "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		eval {
			open(STDIN,  '<',  '/dev/null') or die;
			open(STDOUT, '>>', $log)        or die;
			open(STDERR, '>&', \*STDOUT)    or die;
			exec(@cmd);
		};
		POSIX::_exit(127);
	}
	my $deadline = time() + 30;
	while (time() < $deadline)
	{
		my $text = -e $log ? substr(slurp_file($log), $offset) : '';
		if ($text =~ m{^S3 listening on (http://127\.0\.0\.1:(\d+))$}m)
		{
			$self->{pid}      = $pid;
			$self->{endpoint} = $1;
			$self->{port}     = $2;
			return;
		}
		last if waitpid($pid, WNOHANG) == $pid;
		usleep(20_000);
	}
	MedallionTest::_stop_pid($pid);
	croak "fault S3 server did not start: @cmd\n" . (-e $log ? slurp_file($log) : '');
}

sub start_fault_s3
{
	my (%opts) = @_;
	my $n = ++$count;
	my $test = basename($0);
	$test =~ s/\.[^.]*$//;
	my $self = bless {
		buckets    => $opts{buckets} // ['landing'],
		region     => $opts{region} // 'us-east-1',
		access_key => $opts{access_key} // 'S3RVER',
		secret_key => $opts{secret_key} // 'S3RVER',
		verbose    => $opts{verbose},
		log        => "$PostgreSQL::Test::Utils::log_path/${test}_fault_s3_${n}.log",
		state_file => PostgreSQL::Test::Utils::tempdir('fault_s3') . '/state.pickle',
		http       => HTTP::Tiny->new(timeout => 120, keep_alive => 0),
	}, __PACKAGE__;
	$self->{bucket} = $self->{buckets}[0];
	unlink $self->{log};
	$self->_spawn(0);
	$self->track;
	Test::More::note("fault S3 server at $self->{endpoint} (log $self->{log})");
	return $self;
}


sub _encode_key
{
	my ($key) = @_;
	my $bytes = $key;
	utf8::encode($bytes) if utf8::is_utf8($bytes);
	$bytes =~ s/([^A-Za-z0-9\-._~\/])/sprintf('%%%02X', ord($1))/ge;
	return $bytes;
}

sub _request
{
	my ($self, $method, $path, $content) = @_;
	my %args;
	$args{content} = $content if defined $content;
	my $response = $self->{http}->request($method, "$self->{endpoint}$path", \%args);
	croak "fault S3 admin $method $path: $response->{status} $response->{reason}\n"
	  . ($response->{content} // '')
	  unless $response->{success};
	return $response;
}

sub _admin_json
{
	my ($self, $method, $path, $value) = @_;
	my $response = $self->_request($method, $path,
		defined $value ? $json->encode($value) : undef);
	return $json->decode($response->{content});
}

sub put_object
{
	my ($self, $key, $content, %opts) = @_;
	my $bucket = $opts{bucket} // $self->{bucket};
	my $path = "/__object/$bucket/" . _encode_key($key);
	$path .= "?mtime=$opts{mtime}" if defined $opts{mtime};
	my $bytes = $content;
	utf8::encode($bytes) if utf8::is_utf8($bytes);
	my $response = $self->_request('PUT', $path, $bytes);
	return $json->decode($response->{content})->{etag};
}

sub get_object
{
	my ($self, $key, $bucket) = @_;
	$bucket //= $self->{bucket};
	return $self->_request('GET', "/__object/$bucket/" . _encode_key($key))->{content};
}

sub delete_object
{
	my ($self, $key, $bucket) = @_;
	$bucket //= $self->{bucket};
	$self->_request('DELETE', "/__object/$bucket/" . _encode_key($key));
	return 1;
}

sub objects
{
	my ($self, $bucket) = @_;
	$bucket //= $self->{bucket};
	return $self->_admin_json('GET', "/__objects/$bucket");
}

sub fault
{
	my ($self, %rule) = @_;
	return $self->_admin_json('POST', '/__fault', \%rule);
}

sub faults
{
	my ($self, @rules) = @_;
	return $self->_admin_json('POST', '/__fault', { rules => \@rules });
}

sub clear_faults { return $_[0]->_admin_json('DELETE', '/__fault'); }
sub counters     { return $_[0]->_admin_json('GET',    '/__fault'); }
sub requests     { return $_[0]->_admin_json('GET',    '/__requests'); }
sub reset_counters { return $_[0]->_admin_json('POST', '/__reset', {}); }

sub config
{
	my ($self, %settings) = @_;
	for my $flag (qw(allow_anonymous url_encoding))
	{
		$settings{$flag} = $settings{$flag} ? JSON::PP::true : JSON::PP::false
		  if exists $settings{$flag};
	}
	return $self->_admin_json('POST', '/__config', \%settings);
}

# Injected faults of one kind so far (0 when none).
sub injected
{
	my ($self, $kind) = @_;
	my $c = $self->counters;
	return defined $kind ? ($c->{injected}{$kind} // 0) : $c->{injected_total};
}

1;
