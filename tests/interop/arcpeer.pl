#!/usr/bin/perl
# Mail::DKIM's ARC as a peer, DNS from the test's nsd on 127.0.0.1:PORT.
#   arcpeer.pl seal PORT KEY DOMAIN SELECTOR SRVID < msg > sealed
#       (cv from the arc= result SRVID stamped in its Authentication-Results)
#   arcpeer.pl verify PORT < msg      prints the chain result (pass|fail|none)
use strict;
use warnings;
use Mail::DKIM::ARC::Signer;
use Mail::DKIM::ARC::Verifier;
use Mail::DKIM::DNS;
use Net::DNS::Resolver;

my ($mode, $port, @rest) = @ARGV;
Mail::DKIM::DNS::resolver(Net::DNS::Resolver->new(
    nameservers => ['127.0.0.1'], port => $port, recurse => 0, udp_timeout => 5, tcp_timeout => 5));
binmode STDIN;
binmode STDOUT;
my $msg = do { local $/; <STDIN> };
(my $crlf = $msg) =~ s/(?<!\r)\n/\r\n/g;

if ($mode eq 'seal') {
    my ($key, $domain, $selector, $srvid) = @rest;
    my $signer = Mail::DKIM::ARC::Signer->new(
        Algorithm => 'rsa-sha256', Chain => 'ar', Domain => $domain, SrvId => $srvid,
        Selector => $selector, KeyFile => $key);
    $signer->PRINT($crlf);
    $signer->CLOSE;
    die 'seal: ' . ($signer->result_detail // '') . "\n" unless $signer->result eq 'sealed';
    print $signer->as_string, $crlf;
} else {
    my $v = Mail::DKIM::ARC::Verifier->new();
    $v->PRINT($crlf);
    $v->CLOSE;
    print $v->result, "\n";
    print STDERR $v->result_detail, "\n";
}
