#!/bin/bash
# Benchmark of `wireseal replay` (not a test): packets/s, Gbit/s and
# messages/s per worker core on a generated capture of signed mail, with
# verification on and off, beside the raw read rate of the same capture
# (libpcap read loop, and the replay pipeline with nothing but parsing).
#   bench/replay.sh [BUILD_DIR] [SESSIONS] [REPEAT]
# The capture: the bundled sample messages (RSA-2048 and Ed25519 signed)
# dealt over SESSIONS concurrent interleaved sessions, REPEAT times over.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
sessions=${2:-200}
repeat=${3:-2000}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$root"
/usr/bin/python3 tests/tools/gen_smtp_pcap.py --out "$tmp/bench.pcap" --seed 1 \
  --sessions "$sessions" --repeat "$repeat" --interleave --pipelining \
  tests/data/sample/0*.eml tests/data/captures/dots.eml
ls -l "$tmp/bench.pcap" | awk '{print "capture: " $5 " bytes"}'
echo "cpus: $(nproc), load: $(cut -d' ' -f1-3 /proc/loadavg)"
"$build/bench/bench-pcap-read" "$tmp/bench.pcap" 3
# net_pcap's own ceiling: dpdk-testpmd rxonly over the capture held in memory
# (infinite_rx), the last of its 2-second rate reports
if command -v dpdk-testpmd >/dev/null; then
  tp=$(timeout 14 dpdk-testpmd -l 0-1 --no-huge -m 2048 --no-pci --no-shconf --no-telemetry \
         --log-level='*:error' --vdev="net_pcap0,rx_pcap=$tmp/bench.pcap,infinite_rx=1" -- \
         --forward-mode=rxonly --stats-period 2 --total-num-mbufs=131072 2>&1 | grep Rx-pps | tail -1 || true)
  echo "testpmd rxonly (net_pcap, infinite_rx): ${tp:-not measured}" | tr -s ' '
fi
zone=tests/data/sample/zone.db
for w in 1 2; do
  for mode in --no-verify verify; do
    args=(--workers "$w" --zone "$zone" --now 1800000000)
    [ "$mode" = --no-verify ] && args+=(--no-verify)
    out=$("$build/wireseal" replay "${args[@]}" "$tmp/bench.pcap" 2>&1 >/dev/null)
    line=${out%%$'\n'*}
    # "...: N packets, B bytes in S s: P packets/s, G Gbit/s, M messages/s ..."
    echo "$line" | awk -v w="$w" -v m="$mode" '{
      for (i = 1; i <= NF; i++) {
        if ($(i+1) == "packets/s,") pps = $i;
        if ($(i+1) == "Gbit/s,") g = $i;
        if ($(i+1) == "messages/s") mps = $i;
        if ($(i+1) == "s:" && $(i-1) == "in") s = $i;
      }
      printf "replay workers=%d %-11s %8.3f s  %10.0f packets/s  %6.3f Gbit/s  %8.0f messages/s  per worker: %10.0f packets/s %8.0f messages/s\n", w, m, s, pps, g, mps, pps / w, mps / w
    }'
  done
done
