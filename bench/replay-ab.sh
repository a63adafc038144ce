#!/bin/bash
# Before/after of `wireseal replay` binaries, alternated within each
# repetition (not a test): per repetition the physical limit of the RSA-2048
# quick corpus (bench-physlimit, CPU time), then for each binary a
# one-message run (its start-up) and the capture; prints each binary's
# "keys cached" ratio to the physical limit as bench/replay.sh computes it
# (messages / (worker CPU - start-up worker CPU) / physical limit), medians.
#
#   bench/replay-ab.sh [--reps N] [--per-session K] BIN...
#
# The capture is bench/replay.sh's (the corpus x 5 over 50 interleaved
# pipelined sessions); --per-session K instead makes sessions of K messages
# each, 50 open at once (K=1: every message starts a session).
# Each binary runs with --no-cp (the in-process policy, as bench/replay.sh)
# when its `replay --help` lists it; older builds, whose only path is the
# in-process one, run without it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
py=/usr/bin/python3
reps=5
per=
while [ $# -gt 0 ]; do
  case $1 in
    --reps) reps=$2; shift 2 ;;
    --per-session) per=$2; shift 2 ;;
    -h|--help) sed -n 2,16p "$0"; exit 0 ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || { echo "replay-ab.sh: no binaries" >&2; exit 2; }
corpus=$root/bench/corpus/rsa2048-quick
[ -f "$corpus/zone.db" ] || { echo "replay-ab.sh: run bench/replay.sh once first (it makes $corpus)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ -n "$per" ]; then
  $py "$root/tests/tools/gen_smtp_pcap.py" --out "$tmp/cap.pcap" --seed 1 --concurrent 50 \
    --per-session "$per" --corpus "$corpus" --repeat 5 --pipelining >&2
else
  $py "$root/tests/tools/gen_smtp_pcap.py" --out "$tmp/cap.pcap" --seed 1 --sessions 50 --repeat 5 \
    --interleave --pipelining "$corpus"/msgs/*.eml >&2
fi
small=$(ls -Sr "$corpus"/msgs/*.eml | sed -n 1p)
$py "$root/tests/tools/gen_smtp_pcap.py" --out "$tmp/small.pcap" --seed 1 "$small" >&2
wcpu() { grep -o 'cpu: main [0-9.-]* s, workers [0-9.]* s' "$1" | awk '{print $6}'; }
msgs() { grep -o 'messages=[0-9]*' "$1" | cut -d= -f2; }
declare -A nocp
for b in "$@"; do
  # the whole help first (an old binary may exit non-zero on --help; pipefail)
  help=$("$b" replay --help 2>&1 || true)
  case $help in *--no-cp*) nocp[$b]=--no-cp ;; *) nocp[$b]= ;; esac
  echo "$b: ${nocp[$b]:-no --no-cp (in-process is its only policy path)}" >&2
done
for r in $(seq 1 "$reps"); do
  pl=$(taskset -c 0 "$root/build/bench/bench-physlimit" "$corpus" | grep '^{' |
       $py -c 'import json,sys; print(json.loads(sys.stdin.read())["msgs_per_cpu_s"])')
  for b in "$@"; do
    args=(replay --workers 1 --zone "$corpus/zone.db" --now 1800000000 --inline ${nocp[$b]})
    "$b" "${args[@]}" "$tmp/small.pcap" >/dev/null 2>"$tmp/s.txt"
    "$b" "${args[@]}" "$tmp/cap.pcap" >"$tmp/out.txt" 2>"$tmp/c.txt"
    echo "$r $b $pl $(wcpu "$tmp/s.txt") $(wcpu "$tmp/c.txt") $(msgs "$tmp/c.txt") $(md5sum <"$tmp/out.txt" | cut -c1-12)"
  done
done | $py -c '
import sys, statistics as st, collections
cached = collections.defaultdict(list); core = collections.defaultdict(list); outs = collections.defaultdict(set)
for l in sys.stdin:
    r, b, pl, s, w, n, md5 = l.split()
    pl, s, w, n = float(pl), float(s), float(w), int(n)
    cached[b].append(n / max(w - s, 1e-9) / pl)
    core[b].append(n / w / pl)
    outs[b].add(md5)
    print("rep %s %s: physical limit %.0f msg/s, start-up %.3f s, worker %.3f s, keys cached %.3f" %
          (r, b, pl, s, w, cached[b][-1]), flush=True)
for b in cached:
    print("%s: keys cached %.2f of the physical limit (median; per rep %s), per worker core %.2f; output %s" %
          (b, st.median(cached[b]), " ".join("%.2f" % x for x in cached[b]), st.median(core[b]),
           "identical across reps" if len(outs[b]) == 1 else "DIFFERS across reps"))
print("outputs of all binaries %s" % ("identical" if len(set().union(*outs.values())) == 1 else "DIFFER"))
'
