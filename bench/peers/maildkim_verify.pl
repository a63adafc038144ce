#!/usr/bin/perl
# Mail::DKIM peer: Mail::DKIM::Verifier on every message, keys served from
# the corpus's keys.tsv by an in-process resolver object handed to
# Mail::DKIM::DNS::resolver(): Mail::DKIM runs its own query() code (answer
# filtering, rcode handling) and only the network round trip is replaced.
# CPU time is CLOCK_PROCESS_CPUTIME_ID around each message; files are read
# beforehand.
#
# Usage: maildkim_verify.pl CORPUS_DIR [FILE...]
use strict;
use warnings;
use File::Basename qw(basename);
use JSON::PP;
use Net::DNS;
use Time::HiRes qw(clock_gettime CLOCK_PROCESS_CPUTIME_ID);
use Mail::DKIM;
use Mail::DKIM::Verifier;
use Mail::DKIM::DNS;

# Message-size buckets [lo, hi): the same as bench/peers/corpus.py.
my @BUCKETS = ([0, 8192], [8192, 32768], [32768, 131072], [131072, 1048576], [1048576, 1 << 62]);

package BenchResolver;
# The subset of Net::DNS::Resolver that Mail::DKIM::DNS::query() uses:
# send() returning a Net::DNS::Packet, and errorstring().
sub new {
    my ($class, $keys) = @_;
    my %answers;
    for my $name (keys %$keys) {
        my $v = $keys->{$name};
        # TXT character-strings hold at most 255 bytes, as on the wire.
        my @chunks = $v eq '' ? ('') : unpack('(A255)*', $v);
        my $p = Net::DNS::Packet->new($name, 'TXT', 'IN');
        $p->header->qr(1);
        $p->header->aa(1);
        $p->header->rcode('NOERROR');
        $p->push(answer => Net::DNS::RR->new(name => $name, type => 'TXT', ttl => 3600,
                                             txtdata => \@chunks));
        $answers{lc $name} = $p;
    }
    return bless { answers => \%answers }, $class;
}
sub send {
    my ($self, $name, $type) = @_;
    my $p = $self->{answers}{lc $name};
    return $p if $p && uc($type) eq 'TXT';
    my $nx = Net::DNS::Packet->new($name, $type, 'IN');
    $nx->header->qr(1);
    $nx->header->rcode('NXDOMAIN');
    return $nx;
}
sub errorstring { return 'NOERROR' }

package main;

my $corpus = shift @ARGV or die "usage: $0 CORPUS_DIR [FILE...]\n";
my %keys;
open(my $kf, '<', "$corpus/keys.tsv") or die "$corpus/keys.tsv: $!\n";
while (my $l = <$kf>) {
    chomp $l;
    my ($n, $v) = split /\t/, $l, 2;
    $keys{$n} = defined $v ? $v : '';
}
close $kf;
Mail::DKIM::DNS::resolver(BenchResolver->new(\%keys));

my %expected;
my @names;
if (open(my $mf, '<', "$corpus/manifest.tsv")) {
    <$mf>;
    while (my $l = <$mf>) {
        my @c = split /\t/, $l;
        $expected{$c[0]} = $c[6];
        push @names, $c[0];
    }
    close $mf;
}
@names = map { basename($_) } @ARGV if @ARGV;
die "no messages\n" unless @names;

my @msgs;
for my $n (@names) {
    open(my $fh, '<:raw', "$corpus/msgs/$n") or die "$corpus/msgs/$n: $!\n";
    local $/;
    push @msgs, [$n, scalar <$fh>];
    close $fh;
}

# Warm-up, untimed: lazy module loading and first-use initialisation.
for my $m (@msgs[0 .. ($#msgs < 9 ? $#msgs : 9)]) {
    my $v = Mail::DKIM::Verifier->new();
    $v->PRINT($m->[1]);
    $v->CLOSE;
}

my %count = (pass => 0, fail => 0, other => 0);
my ($mismatch, @examples) = (0);
my @b = map { { lo => $_->[0], hi => $_->[1], messages => 0, bytes => 0, cpu_s => 0 } } @BUCKETS;
for my $m (@msgs) {
    my ($name, $data) = @$m;
    my $t0 = clock_gettime(CLOCK_PROCESS_CPUTIME_ID);
    my $v = Mail::DKIM::Verifier->new();
    $v->PRINT($data);
    $v->CLOSE;
    my $res = $v->result;
    my $detail = $v->result_detail // '';
    my $cpu = clock_gettime(CLOCK_PROCESS_CPUTIME_ID) - $t0;
    # "invalid" covers both a revoked key (a definite failure) and what
    # Mail::DKIM cannot check (e.g. ed25519-sha256 before 1.2024): other.
    my $r = $res eq 'pass' ? 'pass'
          : ($res eq 'fail' || ($res eq 'invalid' && $detail =~ /revoked/)) ? 'fail' : 'other';
    $count{$r}++;
    my $size = length $data;
    for my $bk (@b) {
        next unless $size >= $bk->{lo} && $size < $bk->{hi};
        $bk->{messages}++;
        $bk->{bytes} += $size;
        $bk->{cpu_s} += $cpu;
    }
    my $e = $expected{$name};
    if (defined $e && (($r eq 'pass') != ($e eq 'pass'))) {
        $mismatch++;
        push @examples, "$name: $res ($detail)" if @examples < 5;
    }
}
my ($n, $bytes, $cpu) = (0, 0, 0);
for my $bk (@b) { $n += $bk->{messages}; $bytes += $bk->{bytes}; $cpu += $bk->{cpu_s}; }
(my $cname = $corpus) =~ s{/+$}{};
my $out = {
    peer => 'mail-dkim', corpus => basename($cname), messages => $n, bytes => $bytes,
    cpu_s => $cpu + 0, msgs_per_cpu_s => $cpu > 0 ? $n / $cpu : undef,
    mb_per_cpu_s => $cpu > 0 ? $bytes / 1e6 / $cpu : undef,
    pass => $count{pass}, fail => $count{fail}, other => $count{other},
    mismatch => $mismatch, mismatch_examples => \@examples, buckets => \@b,
    version => "Mail::DKIM $Mail::DKIM::VERSION",
};
print JSON::PP->new->canonical->encode($out), "\n";
