#!/usr/bin/perl
# Mail::DKIM as a peer, DNS from the test's nsd on 127.0.0.1:PORT.
#   maildkim.pl sign PORT KEY DOMAIN SELECTOR ALGORITHM CANON < msg > signed
#   maildkim.pl verify PORT < msg          prints the first signature's result
use strict;
use warnings;
use Mail::DKIM::Signer;
use Mail::DKIM::Verifier;
use Mail::DKIM::PrivateKey;
use Mail::DKIM::DNS;
use Net::DNS::Resolver;

my ($mode, $port, @rest) = @ARGV;
Mail::DKIM::DNS::resolver(Net::DNS::Resolver->new(
    nameservers => ['127.0.0.1'], port => $port, recurse => 0, udp_timeout => 5, tcp_timeout => 5));
binmode STDIN;
binmode STDOUT;
my $msg = do { local $/; <STDIN> };

if ($mode eq 'sign') {
    my ($key, $domain, $selector, $algo, $canon) = @rest;
    my $signer = Mail::DKIM::Signer->new(
        Algorithm => $algo, Method => $canon, Domain => $domain, Selector => $selector,
        KeyFile => $key, Headers => 'from:to:subject');
    (my $crlf = $msg) =~ s/(?<!\r)\n/\r\n/g;
    $signer->PRINT($crlf);
    $signer->CLOSE;
    print $signer->signature->as_string, "\r\n", $crlf;
} else {
    my $v = Mail::DKIM::Verifier->new();
    (my $crlf = $msg) =~ s/(?<!\r)\n/\r\n/g;
    $v->PRINT($crlf);
    $v->CLOSE;
    print $v->result, "\n";
    print STDERR $v->result_detail, "\n";
}
