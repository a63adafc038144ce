#!/bin/bash
# Real outbound SMTP captures for the MTA-STS / STARTTLS work: Debian's
# Postfix delivering OUTBOUND (its smtp client, as a sending MTA does) to a
# receiving Postfix, through two network namespaces joined by a veth pair;
# tcpdump records the wire on the receiver's side.
#
#   tests/data/captures/outbound/make-outbound.sh     (root; postfix, tcpdump, openssl)
#
# Writes, next to this script:
#   outbound-tls12.pcap       STARTTLS offered and used, TLS 1.2 (the sender caps
#                             smtp_tls_protocols at TLSv1.2): the certificate is
#                             on the wire
#   outbound-tls13.pcap       STARTTLS, TLS 1.3: the certificate is encrypted
#   outbound-nostarttls.pcap  the receiver offers no STARTTLS: all cleartext
#   expected.json             what each capture shows (for the dataplane's
#                             TLS parser and the e2e check)
# The sender sends SNI = the MX host name (smtp_tls_servername = hostname, as
# Postfix does for an MTA-STS policy domain); the receiver's certificate is
# made now by a throw-away test CA (SAN mx.rcv.example), so two runs differ in
# keys and times, nothing else. One short message per capture keeps them small.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ "$(id -u)" = 0 ] || { echo "make-outbound.sh: needs root (netns, tcpdump, postfix)" >&2; exit 1; }
for t in postfix tcpdump openssl ip sendmail; do
  command -v $t >/dev/null || [ -x /usr/sbin/$t ] || { echo "make-outbound.sh: $t missing" >&2; exit 1; }
done

NS_S=wip2sts-snd NS_R=wip2sts-rcv
VA=wip2stsA VB=wip2stsB
SND=10.77.0.1 RCV=10.77.0.2
d=$(mktemp -d /tmp/wip2sts-out.XXXXXX)
chmod 755 "$d"

. "$here/../postfix-instance.sh"
netns_pair_up

# test CA and the receiver's certificate
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/ca.key" \
  -out "$d/ca.pem" -days 30 -subj "/CN=wireseal outbound test CA" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/mx.key" \
  -out "$d/mx.csr" -subj "/CN=mx.rcv.example" 2>/dev/null
printf 'subjectAltName=DNS:mx.rcv.example\n' > "$d/mx.ext"
openssl x509 -req -in "$d/mx.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
  -out "$d/mx.pem" -days 30 -extfile "$d/mx.ext" 2>/dev/null
chmod 644 "$d"/*.pem "$d"/*.key


# stop_instance NAME NETNS: postfix stop, then its smtpd/smtp children too
# (they hold the listening socket for a while after master is gone, and
# the next capture's client would meet the previous server)
stop_instance() {
  postfix -c "$d/$1/etc" stop >/dev/null 2>&1 || true
  for _ in $(seq 100); do
    local left
    left=$(ip netns pids "$2")
    [ -z "$left" ] && return 0
    postfix -c "$d/$1/etc" status >/dev/null 2>&1 || kill $left 2>/dev/null || true
    sleep 0.1
  done
  echo "make-outbound.sh: postfix $1 does not stop" >&2
  exit 1
}

capture() {
  local name=$1 rcv_tls=$2 snd_protocols=$3
  rm -rf "$d/snd" "$d/rcv"
  setup_instance rcv "inet_interfaces = $RCV
myhostname = mx.rcv.example
mydestination = rcv.example
local_recipient_maps =
local_transport = discard:
default_transport = discard:
mynetworks = 10.77.0.0/24
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_peername_lookup = no
smtpd_tls_security_level = $rcv_tls
smtpd_tls_cert_file = $d/mx.pem
smtpd_tls_key_file = $d/mx.key
smtpd_tls_loglevel = 1
# an MX that always shows its certificate (no anonymous suites at "may")
smtpd_tls_exclude_ciphers = aNULL" "smtp      inet  n       -       n       -       -       smtpd"
  setup_instance snd "inet_interfaces = loopback-only
myhostname = out.snd.example
mydestination =
transport_maps = inline:{ rcv.example=smtp:[mx.rcv.example] }
smtp_tls_security_level = may
smtp_tls_servername = hostname
smtp_tls_CAfile = $d/ca.pem
smtp_tls_protocols = $snd_protocols
smtp_tls_loglevel = 1" ""
  ip netns exec $NS_R script -qec "postfix -c $d/rcv/etc start" /dev/null >/dev/null
  ip netns exec $NS_S script -qec "postfix -c $d/snd/etc start" /dev/null >/dev/null
  local pcap="$d/$name.pcap"
  ip netns exec $NS_R tcpdump -i $VB -w "$pcap" -U --immediate-mode -s 0 -Z root tcp port 25 \
    2>"$d/$name.tcpdump.log" &
  tcpdump_pid=$!
  for _ in $(seq 100); do
    ip netns exec $NS_S bash -c "exec 3<>/dev/tcp/$RCV/25" 2>/dev/null && [ -s "$pcap" ] && break
    sleep 0.1
  done
  sleep 0.3
  # the probe connection above is in the capture too; start over clean
  kill -INT $tcpdump_pid; wait $tcpdump_pid || true
  ip netns exec $NS_R tcpdump -i $VB -w "$pcap" -U --immediate-mode -s 0 -Z root tcp port 25 \
    2>"$d/$name.tcpdump.log" &
  tcpdump_pid=$!
  for _ in $(seq 50); do [ -s "$pcap" ] && break; sleep 0.1; done
  sleep 0.5
  printf 'From: Sender <alice@snd.example>\nTo: <bob@rcv.example>\nSubject: %s\nDate: Sun, 29 Nov 2026 10:00:00 +0000\nMessage-ID: <%s@snd.example>\n\nOne short outbound message (%s).\n' \
    "$name" "$name" "$name" | ip netns exec $NS_S sendmail -C "$d/snd/etc" -f alice@snd.example bob@rcv.example
  for _ in $(seq 600); do
    grep -q "status=sent" "$d/snd/maillog" 2>/dev/null && break
    sleep 0.1
  done
  grep -q "status=sent" "$d/snd/maillog" || { echo "$name: not delivered:" >&2; cat "$d/snd/maillog" "$d/rcv/maillog" >&2; exit 1; }
  sleep 1.5 # QUIT and the FINs reach the file
  kill -INT $tcpdump_pid; wait $tcpdump_pid || true
  tcpdump_pid=
  stop_instance snd $NS_S
  stop_instance rcv $NS_R
  grep -h "TLS connection established\|status=sent" "$d/snd/maillog" | sed 's/^.*postfix/postfix/' >&2
  cp "$pcap" "$here/$name.pcap"
  # the version Postfix negotiated ("" without TLS), for the check below
  version=$(grep -h "TLS connection established" "$d/snd/maillog" |
    sed -n 's/.*established to .*\]:[0-9]*: \(TLSv[0-9.]*\).*/\1/p' | head -1) || true
}

capture outbound-tls12 may ">=TLSv1.2, <=TLSv1.2"
v12=$version
capture outbound-tls13 may ">=TLSv1.2"
v13=$version
capture outbound-nostarttls none ">=TLSv1.2"
vno=$version
[ "$v12" = TLSv1.2 ] && [ "$v13" = TLSv1.3 ] && [ -z "$vno" ] ||
  { echo "make-outbound.sh: unexpected TLS versions: '$v12' '$v13' '$vno'" >&2; exit 1; }

cat > "$here/expected.json" <<EOF
{
  "_comment": "made by make-outbound.sh: Postfix $(postconf -h mail_version) smtp client $SND -> Postfix smtpd $RCV:25 (mx.rcv.example); one message alice@snd.example -> bob@rcv.example per capture",
  "outbound-tls12.pcap": {"client": "$SND", "server": "$RCV", "starttls_offered": true, "starttls_used": true,
                          "tls_version": "TLSv1.2", "sni": "mx.rcv.example", "cert_seen": true,
                          "cert_names": ["mx.rcv.example"], "issuer": "CN=wireseal outbound test CA",
                          "rcpt_domains_visible": [], "anomalies": []},
  "outbound-tls13.pcap": {"client": "$SND", "server": "$RCV", "starttls_offered": true, "starttls_used": true,
                          "tls_version": "TLSv1.3", "sni": "mx.rcv.example", "cert_seen": false,
                          "rcpt_domains_visible": [], "anomalies": []},
  "outbound-nostarttls.pcap": {"client": "$SND", "server": "$RCV", "starttls_offered": false,
                               "starttls_used": false, "tls_version": null, "cert_seen": false,
                               "rcpt_domains_visible": ["rcv.example"], "anomalies": []}
}
EOF
ls -l "$here"/*.pcap
