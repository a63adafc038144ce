#!/bin/bash
# Regenerates the committed captures (and their manifests) from the bundled
# sample messages. Deterministic: same script, same bytes.
#   tests/data/captures/make-captures.sh
# Each NAME.pcap has a NAME.json manifest (tests/tools/gen_smtp_pcap.py
# --manifest) that the e2e runner (tests/e2e/run_case.py) checks against.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
gen="/usr/bin/python3 $root/tests/tools/gen_smtp_pcap.py"
s=$root/tests/data/sample
cd "$here"
# a message whose body has lines starting with "." (dot-stuffing on the
# wire), signed by dkimpy with the sample's RSA key; kept once made
if [ ! -f dots.eml ]; then
  /usr/bin/python3 - "$s/rsa2048.pem" <<'PY'
import dkim, sys
body = (b"Lines that start with a dot:\r\n.\r\n..two dots\r\n. one dot and a space\r\n"
        b"...\r\n.end\r\n")
m = (b"From: Sample Sender <sender@sample.example>\r\nTo: reader@example.org\r\n"
     b"Subject: dots\r\nDate: Sun, 29 Nov 2026 08:00:00 +0000\r\n"
     b"Message-ID: <dots@sample.example>\r\n\r\n" + body)
sig = dkim.sign(m, b"mail2026", b"sample.example", open(sys.argv[1], "rb").read(),
                include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
open("dots.eml", "wb").write(sig + m)
PY
fi
# a 30 KB message (frames above the mbuf data room need a long write), signed
if [ ! -f big.eml ]; then
  /usr/bin/python3 - "$s/rsa2048.pem" <<'PY'
import dkim, sys
body = b"".join(b"line %05d of a long body, long enough to span many frames\r\n" % i
                for i in range(500))
m = (b"From: Sample Sender <sender@sample.example>\r\nTo: reader@example.org\r\n"
     b"Subject: big\r\nDate: Sun, 29 Nov 2026 08:00:00 +0000\r\n"
     b"Message-ID: <big@sample.example>\r\n\r\n" + body)
sig = dkim.sign(m, b"mail2026", b"sample.example", open(sys.argv[1], "rb").read(),
                include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
open("big.eml", "wb").write(sig + m)
PY
fi
# manifests name the messages relative to the source root
cd "$root"
eml=(tests/data/sample/0*.eml tests/data/captures/dots.eml)
g() { local name=$1; shift; $gen --out "$here/$name.pcap" --manifest "$here/$name.json" "$@"; }
gng() { local name=$1; shift; $gen --pcapng --out "$here/$name.pcapng" --manifest "$here/$name.json" "$@"; }

# make run: one plain session carrying every sample message
g sample "${eml[@]}"
# PIPELINING + CHUNKING/BDAT over IPv6 with QinQ tags
g bdat-v6-qinq --ipv6 --vlan 100 --vlan 200 --pipelining --bdat --bdat-chunk 200 "${eml[@]}"
# dot-stuffing-heavy and pipelined DATA over one VLAN, two sessions
g pipelining --pipelining --vlan 7 --sessions 2 --repeat 2 "${eml[@]}"
# every reordering trick at once, interleaved sessions, IPv4 fragments
g adversarial --seed 7 --sessions 6 --repeat 2 --interleave --mix-ipv6 --mss 700 \
  --random-sizes --reorder 0.3 --dup 0.2 --overlap 0.2 --frag 256 "${eml[@]}"
# IPv6 fragments (fragment header right after the fixed header), reordered
g frag-v6 --seed 9 --ipv6 --sessions 2 --frag 296 --mss 1200 --reorder 0.3 "${eml[@]}"
# later copies of overlapping bytes differ: the first copy must win; reordered
# so that some originals are still held when their differing copy comes (only
# held bytes can be compared, tcpr.h), which the summary counts
g overlap-differ --seed 3 --sessions 2 --mss 300 --reorder 0.3 --overlap-differ 0.5 "${eml[@]}"
# lost segments: those messages become temperror (capture gap)
g loss --seed 11 --sessions 5 --repeat 2 --mss 200 --loss 0.08 "${eml[@]}"
# the client resets in the middle of DATA
g rst-mid-data --sessions 2 --rst-mid-data "${eml[@]}"
# the capture starts in the middle of a session (after its first message)
g midstream --midstream --pipelining "${eml[@]}"
# the same as pcapng (net_pcap reads it through libpcap)
gng pcapng --pipelining --sessions 2 "${eml[@]}"
# 15 s pauses between transactions: quiet sessions are trimmed (and, with a
# short idle timeout, end "idle" and are picked up again mid-stream)
g pauses --pause 15 --sessions 2 "${eml[@]}"
# frames above the mbuf data room (1920 bytes): chained mbufs, linearised
g jumbo --mss 9000 --pipelining --sessions 2 "${eml[@]}" tests/data/captures/big.eml
# submission port 587 (an SMTP port by default) and 465 (implicit TLS: the
# bytes are cleartext here, but a 465 flow is only counted, never parsed)
g port587 --server-port 587 "${eml[@]}"
g port465 --server-port 465 "${eml[@]}"
# many concurrent sessions
g concurrent --seed 5 --sessions 40 --repeat 8 --interleave --mss 536 "${eml[@]}"
ls -l "$here"/*.pcap "$here"/*.pcapng
