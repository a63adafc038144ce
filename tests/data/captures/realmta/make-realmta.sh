#!/bin/bash
# Inbound SMTP captures made by real software: Debian's Postfix (the
# receiving MTA, as a monitored MX would be) gets the signed sample messages
# from another Postfix (its smtp client relaying them: PIPELINING, several
# messages over one cached connection) and from swaks (one message per
# session, one of them with --pipeline), through two network namespaces
# joined by a veth pair; tcpdump records the wire on the receiver's side.
#
#   tests/data/captures/realmta/make-realmta.sh     (root; postfix, swaks, tcpdump)
#
# Writes, next to this script:
#   postfix-relay.pcap   Postfix -> Postfix: the seven sample messages (one
#                        with dot-stuffed lines), queued together, delivered
#                        with destination concurrency 1 and the connection
#                        cache on, so one session carries several messages
#   swaks.pcap           swaks -> Postfix: each message in its own session
#   exim-bdat.pcap       Exim -> Postfix: CHUNKING (BDAT ... LAST) under
#                        PIPELINING, each message in its own session
#   manifest.json        the .eml files each capture carries (source-root
#                        relative), for tests/e2e/realmta.py
# Neither Postfix's smtp client nor swaks sends BDAT; Exim does, to a server
# that offers CHUNKING, but Debian's exim4 conflicts with the postfix
# package: its binary is taken from the exim4-daemon-light package unpacked
# into the work folder (apt-get download + dpkg-deb -x; it needs libidn12,
# installed by deploy/install-deps.sh, and the Debian-exim user, made here)
# and run with a configuration of its own (-C). Not here: STARTTLS
# (outbound/make-outbound.sh has it, real Postfix to Postfix). Times and
# ports differ between runs, nothing else.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../../.." && pwd)
[ "$(id -u)" = 0 ] || { echo "make-realmta.sh: needs root (netns, tcpdump, postfix)" >&2; exit 1; }
for t in postfix tcpdump ip sendmail swaks apt-get dpkg-deb; do
  command -v $t >/dev/null || [ -x /usr/sbin/$t ] || { echo "make-realmta.sh: $t missing" >&2; exit 1; }
done

NS_S=w3dp-mta-snd NS_R=w3dp-mta-rcv
VA=w3dpmtaA VB=w3dpmtaB
SND=10.78.0.1 RCV=10.78.0.2
d=$(mktemp -d /tmp/w3dp-mta.XXXXXX)
chmod 755 "$d"
emls=(tests/data/sample/0*.eml tests/data/captures/dots.eml)

. "$here/../postfix-instance.sh"
netns_pair_up


setup_instance rcv "inet_interfaces = $RCV
myhostname = mx.rcv.example
mydestination = rcv.example, example.org, example.com
local_recipient_maps =
local_transport = discard:
default_transport = discard:
mynetworks = 10.78.0.0/24
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_peername_lookup = no" "smtp      inet  n       -       n       -       -       smtpd"
# the relay: every message to the MX, one at a time over a cached connection;
# no header rewriting (the messages stay as signed)
setup_instance snd "inet_interfaces = loopback-only
myhostname = out.snd.example
mydestination =
relayhost = [mx.rcv.example]
smtp_destination_concurrency_limit = 1
default_destination_concurrency_limit = 1
smtp_connection_cache_destinations = [mx.rcv.example]
smtp_connection_cache_time_limit = 10s
local_header_rewrite_clients =
always_add_missing_headers = no" ""

ip netns exec $NS_R script -qec "postfix -c $d/rcv/etc start" /dev/null >/dev/null
for _ in $(seq 100); do
  ip netns exec $NS_S bash -c "exec 3<>/dev/tcp/$RCV/25" 2>/dev/null && break
  sleep 0.1
done

start_capture() {
  pcap="$d/$1.pcap"
  ip netns exec $NS_R tcpdump -i $VB -w "$pcap" -U --immediate-mode -s 0 -Z root tcp port 25 \
    2>"$d/$1.tcpdump.log" &
  tcpdump_pid=$!
  for _ in $(seq 50); do [ -s "$pcap" ] && break; sleep 0.1; done
  sleep 0.5
}

stop_capture() {
  sleep 1.5 # QUIT and the FINs reach the file
  kill -INT $tcpdump_pid; wait $tcpdump_pid || true
  tcpdump_pid=
  cp "$pcap" "$here/$1.pcap"
}

# ---- Postfix -> Postfix: the cached connection carries the next messages
# (-i: a line with a lone dot is content, dots.eml has one). Injected while
# the relay is stopped, so all seven wait in its maildrop and leave together.
start_capture postfix-relay
cd "$root"
for e in "${emls[@]}"; do
  ip netns exec $NS_S sendmail -i -C "$d/snd/etc" -f sender@sample.example reader@example.org < "$e"
done
ip netns exec $NS_S script -qec "postfix -c $d/snd/etc start" /dev/null >/dev/null
for _ in $(seq 600); do
  [ "$(grep -c 'status=sent' "$d/snd/maillog" 2>/dev/null || true)" -ge ${#emls[@]} ] && break
  sleep 0.1
done
[ "$(grep -c 'status=sent' "$d/snd/maillog")" -ge ${#emls[@]} ] ||
  { echo "make-realmta.sh: relay: not all delivered" >&2; cat "$d/snd/maillog" >&2; exit 1; }
sleep 11 # the cached connection times out: QUIT
stop_capture postfix-relay
postfix -c "$d/snd/etc" stop >/dev/null 2>&1 || true

# ---- swaks -> Postfix: one session per message, the dots one pipelined
start_capture swaks
for e in "${emls[@]}"; do
  pipe=
  case "$e" in *dots.eml) pipe=--pipeline ;; esac
  ip netns exec $NS_S swaks --server $RCV --from sender@sample.example --to reader@example.org \
    --helo client.snd.example --data "@$e" $pipe >/dev/null
done
stop_capture swaks

# ---- Exim -> Postfix: BDAT (hosts_try_chunking), one session per message
mkdir -p "$d/exim/spool" "$d/exim/log"
(cd "$d/exim" && apt-get download exim4-daemon-light >/dev/null 2>&1 &&
  dpkg-deb -x exim4-daemon-light_*.deb root) ||
  { echo "make-realmta.sh: cannot unpack exim4-daemon-light" >&2; exit 1; }
exim=$d/exim/root/usr/sbin/exim4
id Debian-exim >/dev/null 2>&1 ||
  useradd --system --no-create-home --shell /usr/sbin/nologin Debian-exim
chmod 777 "$d/exim/spool" "$d/exim/log"
cat >"$d/exim/exim.conf" <<EOC
exim_path = $exim
keep_environment =
spool_directory = $d/exim/spool
log_file_path = $d/exim/log/%slog
primary_hostname = exim.snd.example
begin routers
to_mx:
  driver = manualroute
  route_list = * $RCV
  transport = remote
begin transports
remote:
  driver = smtp
  hosts_try_chunking = *
EOC
start_capture exim-bdat
for e in "${emls[@]}"; do
  ip netns exec $NS_S "$exim" -C "$d/exim/exim.conf" -odf -oi -f sender@sample.example \
    reader@example.org < "$e"
done
grep -q ' K C=' "$d/exim/log/mainlog" ||
  { echo "make-realmta.sh: exim did not use CHUNKING" >&2; cat "$d/exim/log/mainlog" >&2; exit 1; }
stop_capture exim-bdat

list=$(printf '"%s", ' "${emls[@]}" | sed 's/, $//')
printf '{\n  "_comment": "made by make-realmta.sh: Postfix %s, Exim %s; the .eml files each capture carries, in order",\n  "postfix-relay.pcap": [%s],\n  "swaks.pcap": [%s],\n  "exim-bdat.pcap": [%s]\n}\n' \
  "$(postconf -h mail_version)" "$("$exim" -C "$d/exim/exim.conf" -bV 2>/dev/null | sed -n 's/^Exim version \([^ ]*\).*/\1/p')" \
  "$list" "$list" "$list" > "$here/manifest.json"
ls -l "$here"/*.pcap
