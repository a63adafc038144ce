#!/bin/bash
# Benchmark of `wireseal replay` (not a test): per worker core packets/s,
# Gbit/s and messages/s with verification on and off, 1 and 2 workers, on a
# capture of the RSA-2048 reference corpus (keys cached: the embedded zone),
# beside the raw read rate of the same capture (libpcap loop) and the
# physical limit of the same corpus (bench-physlimit: SHA-256 of every byte
# plus one RSA verify per signature, CPU time), measured in the same run;
# the full-pipeline target is judged on the steady state (a capture dealt
# 3x less the same capture dealt once, so one-time costs cancel), with the
# single-run figures beside it;
# the signature batch's fill (signatures per ws_sig_verify_batch) and the
# inline verify run against the same run with --sig-batch 1 (no batch);
# then the state an idle session costs with 100,000 sessions open at once,
# and the peak memory of one big message against one small one.
#
#   bench/replay.sh [--json FILE] [--build DIR] [--repeat R] [--reps N] [--idle N]
#
# Rates are CPU-time based (replay's lcores sleep when idle, so their CPU
# time is their work; see `wireseal replay`'s "cpu:" summary line), and the
# verdict of each target is a ratio taken in the same run: this machine's
# absolute speed varies up to 1.7x minute to minute.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
py=/usr/bin/python3
build=$root/build
json=
repeat=5   # the corpus dealt this many times onto the capture
reps=5     # repetitions of every measurement (medians reported; the steady-state
           # ratio moves 0.6-1.0 between repetitions on this VM, so five, not three)
idle_n=100000
while [ $# -gt 0 ]; do
  case $1 in
    --json) json=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --repeat) repeat=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --idle) idle_n=$2; shift 2 ;;
    -h|--help) sed -n 2,22p "$0"; exit 0 ;;
    *) if [ -d "$1" ]; then build=$1; shift; else echo "replay.sh: unknown argument $1" >&2; exit 2; fi ;;
  esac
done
case $build in /*) ;; *) build=$PWD/$build ;; esac
[ -n "$json" ] && case $json in /*) ;; *) json=$PWD/$json ;; esac
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$root"
ws=$build/wireseal

# ---- the corpus (the same one `make bench` quick mode uses) and its capture
corpus=bench/corpus/rsa2048-quick
gen=(-n 200 --seed 20261129 --mix rsa2048=1.0 --canon relaxed/relaxed=1.0)
want=$($py bench/gen_corpus.py --print-params "$corpus" "${gen[@]}")
if [ ! -f "$corpus/params.json" ] || [ "$(cat "$corpus/params.json")" != "$want" ]; then
  echo "generating $corpus" >&2
  $py bench/gen_corpus.py "$corpus" "${gen[@]}" --key-cache bench/corpus/keycache >&2
fi
cap=$tmp/rsa.pcap
$py tests/tools/gen_smtp_pcap.py --out "$cap" --seed 1 --sessions 50 --repeat "$repeat" \
  --interleave --pipelining "$corpus"/msgs/*.eml
# the same sessions dealt 3x as often: the difference between the two runs
# is the steady-state cost of the extra messages, with every one-time cost
# (EAL, first touch of pools and arenas, key parsing) cancelled out
cap3=$tmp/rsa3.pcap
$py tests/tools/gen_smtp_pcap.py --out "$cap3" --seed 1 --sessions 50 --repeat "$((3 * repeat))" \
  --interleave --pipelining "$corpus"/msgs/*.eml
zone=$corpus/zone.db
{
  echo "machine: $(nproc) cpus, load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "capture: $(stat -c %s "$cap") bytes, corpus $corpus x $repeat over 50 interleaved pipelined sessions"
} | tee "$tmp/head.txt"

# one replay run -> a JSON object on stdout (from the summary lines)
replay_json() { # workers verify(0/1) rep [extra args...]
  local w=$1 v=$2 rep=$3
  shift 3
  # --no-cp: the dataplane with its in-process policy, as the figures in
  # BENCHMARKS.md were measured (replay's default asks wireseal-cp)
  local args=(--workers "$w" --zone "$zone" --now 1800000000 --no-cp)
  [ "$v" = 0 ] && args+=(--no-verify)
  "$ws" replay "${args[@]}" "$@" >/dev/null 2>"$tmp/err" || { cat "$tmp/err" >&2; return 1; }
  W=$w V=$v REP=$rep $py - "$tmp/err" <<'EOF'
import json, os, re, sys
t = open(sys.argv[1]).read()
def num(pat):
    m = re.search(pat, t)
    return float(m.group(1)) if m else None
cpu = re.search(r"cpu: main ([\d.-]+) s, workers ([\d.]+) s: per worker core (\d+) packets/s, "
                r"([\d.]+) Gbit/s, (\d+) messages/s; all lcores (\d+) packets/s, ([\d.]+) Gbit/s, "
                r"(\d+) messages/s \(([^)]*)\)", t)
wall = re.search(r"(\d+) packets, (\d+) bytes in ([\d.]+) s: (\d+) packets/s, ([\d.]+) Gbit/s, "
                 r"(\d+) messages/s", t)
mem = re.search(r"memory: peak rss (-?\d+) kB, flow tables (\d+) bytes, peak open flows (\d+)", t)
ses = re.search(r"sessions=(\d+) messages=(\d+) gaps=(\d+)", t)
sb = re.search(r"sig-batch: size (\d+), batches=(\d+) jobs=(\d+) \([\d.]+ per batch, max (\d+)\)", t)
print(json.dumps({
    "workers": int(os.environ["W"]), "verify": os.environ["V"] == "1", "rep": int(os.environ["REP"]),
    "mode": cpu.group(9), "cpu_main_s": float(cpu.group(1)), "cpu_workers_s": float(cpu.group(2)),
    "per_worker_core": {"packets_per_s": int(cpu.group(3)), "gbit_per_s": float(cpu.group(4)),
                        "messages_per_s": int(cpu.group(5))},
    "all_lcores": {"packets_per_s": int(cpu.group(6)), "gbit_per_s": float(cpu.group(7)),
                   "messages_per_s": int(cpu.group(8))},
    "wall": {"s": float(wall.group(3)), "packets_per_s": int(wall.group(4)),
             "gbit_per_s": float(wall.group(5)), "messages_per_s": int(wall.group(6))},
    "packets": int(wall.group(1)), "bytes": int(wall.group(2)),
    "sessions": int(ses.group(1)), "messages": int(ses.group(2)), "gaps": int(ses.group(3)),
    "peak_rss_kb": int(mem.group(1)), "flow_table_bytes": int(mem.group(2)),
    "peak_open_flows": int(mem.group(3)),
    "sig_batch": {"size": int(sb.group(1)), "batches": int(sb.group(2)), "jobs": int(sb.group(3)),
                  "max": int(sb.group(4))} if sb else None,
}))
EOF
}

# the smallest corpus message alone: what a run costs before its first
# message is done (the first key lookup through the zone, the first
# verifier), subtracted for the "keys cached" figure
small=$(ls -Sr "$corpus"/msgs/*.eml | sed -n 1p)
$py tests/tools/gen_smtp_pcap.py --out "$tmp/small.pcap" --seed 1 "$small"

# ---- the measurements, interleaved so that each ratio comes from one stretch
: >"$tmp/warm.jsonl"
: >"$tmp/long.jsonl"
: >"$tmp/runs.jsonl"
: >"$tmp/nobatch.jsonl"
: >"$tmp/physlimit.jsonl"
: >"$tmp/lib.jsonl"
: >"$tmp/pcapread.txt"
for rep in $(seq 1 "$reps"); do
  "$build/bench/bench-pcap-read" "$cap" 1 >>"$tmp/pcapread.txt"
  taskset -c 0 "$build/bench/bench-physlimit" "$corpus" | grep '^{' >>"$tmp/physlimit.jsonl"
  # the same verification in-process, no packets (what the dataplane adds is the difference)
  taskset -c 0 "$build/bench/bench-wireseal-lib" "$corpus" 2>/dev/null | grep '^{' >>"$tmp/lib.jsonl" || true
  replay_json 1 1 "$rep" --inline "$tmp/small.pcap" >>"$tmp/warm.jsonl"
  for w in 1i 1 2; do
    for v in 1 0; do
      if [ "$w" = 1i ]; then
        replay_json 1 "$v" "$rep" --inline "$cap" >>"$tmp/runs.jsonl"
        # the same without the signature batch (--sig-batch 1), next to it
        [ "$v" = 1 ] && replay_json 1 1 "$rep" --inline --sig-batch 1 "$cap" >>"$tmp/nobatch.jsonl"
        [ "$v" = 1 ] && replay_json 1 1 "$rep" --inline "$cap3" >>"$tmp/long.jsonl"
      else
        replay_json "$w" "$v" "$rep" "$cap" >>"$tmp/runs.jsonl"
      fi
    done
  done
done

# ---- idle sessions: N open at once, against the same sessions closing
$py bench/gen_idle_pcap.py --sessions "$idle_n" --out "$tmp/idle.pcap"
$py bench/gen_idle_pcap.py --sessions "$idle_n" --out "$tmp/idle-closed.pcap" --close
slots=$(( (idle_n + 1023) / 1024 * 1024 ))
replay_json 1 0 0 --inline --flows "$slots" "$tmp/idle.pcap" >"$tmp/idle.json"
replay_json 1 0 0 --inline --flows "$slots" "$tmp/idle-closed.pcap" >"$tmp/idle-closed.json"
rm -f "$tmp/idle.pcap" "$tmp/idle-closed.pcap"

# ---- memory per message: the largest corpus message alone against the smallest
big=$(ls -S "$corpus"/msgs/*.eml | sed -n 1p)
$py tests/tools/gen_smtp_pcap.py --out "$tmp/big.pcap" --seed 1 "$big"
replay_json 1 1 0 --inline "$tmp/big.pcap" >"$tmp/big.json"
replay_json 1 1 0 --inline "$tmp/small.pcap" >"$tmp/small.json"

# ---- report
BIG=$big SMALL=$small IDLE_N=$idle_n SLOTS=$slots JSON_OUT=$json REPEAT=$repeat CORPUS=$corpus \
CMD="bench/replay.sh $*" $py - "$tmp" <<'EOF'
import json, os, re, socket, statistics as st, sys, time
tmp = sys.argv[1]
runs = [json.loads(l) for l in open(tmp + "/runs.jsonl")]
phys = [json.loads(l) for l in open(tmp + "/physlimit.jsonl")]
lib = [json.loads(l).get("msgs_per_cpu_s") for l in open(tmp + "/lib.jsonl")]
lib = [x for x in lib if x]
reads = [re.search(r"(\d+) packets/s, ([\d.]+) Gbit/s", l) for l in open(tmp + "/pcapread.txt")]
idle, closed = (json.load(open(tmp + f)) for f in ("/idle.json", "/idle-closed.json"))
big, small = (json.load(open(tmp + f)) for f in ("/big.json", "/small.json"))
med = st.median
pr = {"packets_per_s": med(int(m.group(1)) for m in reads), "gbit_per_s": med(float(m.group(2)) for m in reads)}
print("pcap-read (libpcap loop, wall): %.0f packets/s, %.3f Gbit/s" % (pr["packets_per_s"], pr["gbit_per_s"]))
pl = [p["msgs_per_cpu_s"] for p in phys]
print("physical limit (bench-physlimit, %s, CPU time): %.0f messages/s (%s)" %
      (os.environ["CORPUS"], med(pl), ", ".join("%.0f" % x for x in pl)))
groups = {}
for r in runs:
    groups.setdefault((r["workers"], r["mode"], r["verify"]), []).append(r)
summary = []
for (w, mode, v), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] != "inline worker", not kv[0][2])):
    pc = {k: med(r["per_worker_core"][k] for r in rs) for k in ("packets_per_s", "gbit_per_s", "messages_per_s")}
    al = {k: med(r["all_lcores"][k] for r in rs) for k in ("packets_per_s", "gbit_per_s", "messages_per_s")}
    wl = {k: med(r["wall"][k] for r in rs) for k in ("packets_per_s", "gbit_per_s", "messages_per_s")}
    summary.append({"workers": w, "verify": v, "mode": rs[0]["mode"], "per_worker_core": pc,
                    "all_lcores": al, "wall": wl, "messages": rs[0]["messages"], "packets": rs[0]["packets"]})
    print("replay workers=%d %-13s %-9s per worker core: %9.0f packets/s %7.3f Gbit/s %7.0f messages/s | "
          "all lcores: %9.0f packets/s %7.3f Gbit/s %7.0f messages/s | wall %7.0f messages/s (%s)" %
          (w, "(inline)" if mode == "inline worker" else "", "verify" if v else "no-verify", pc["packets_per_s"], pc["gbit_per_s"], pc["messages_per_s"],
           al["packets_per_s"], al["gbit_per_s"], al["messages_per_s"], wl["messages_per_s"], rs[0]["mode"]))
# in-run ratios: each repetition's verify run against the physlimit run next to it
ratios = []
for rep, p in enumerate(phys, 1):
    for r in runs:
        if r["rep"] == rep and r["mode"] == "inline worker" and r["verify"]:
            ratios.append({"rep": rep, "per_worker_core": r["per_worker_core"]["messages_per_s"] / p["msgs_per_cpu_s"],
                           "all_lcores": r["all_lcores"]["messages_per_s"] / p["msgs_per_cpu_s"]})
# keys cached: the inline verify run's worker CPU less the start-up cost
# (the one-message run next to it)
warm = [json.loads(l) for l in open(tmp + "/warm.jsonl")]
for x in ratios:
    r = next(r for r in runs if r["rep"] == x["rep"] and r["mode"] == "inline worker" and r["verify"])
    w = next(w for w in warm if w["rep"] == x["rep"])
    cpu = max(r["cpu_workers_s"] - w["cpu_workers_s"], 1e-9)
    x["startup_cpu_s"] = w["cpu_workers_s"]
    x["keys_cached_messages_per_s"] = r["messages"] / cpu
    x["keys_cached"] = x["keys_cached_messages_per_s"] / phys[x["rep"] - 1]["msgs_per_cpu_s"]
# steady state: the 3x capture's extra messages over its extra worker CPU
longs = [json.loads(l) for l in open(tmp + "/long.jsonl")]
for x in ratios:
    r = next(r for r in runs if r["rep"] == x["rep"] and r["mode"] == "inline worker" and r["verify"])
    l = next(l for l in longs if l["rep"] == x["rep"])
    cpu = max(l["cpu_workers_s"] - r["cpu_workers_s"], 1e-9)
    x["steady_messages_per_s"] = (l["messages"] - r["messages"]) / cpu
    x["steady"] = x["steady_messages_per_s"] / phys[x["rep"] - 1]["msgs_per_cpu_s"]
ratio_cached = med(x["keys_cached"] for x in ratios)
ratio_steady = med(x["steady"] for x in ratios)
ratio_core = med(x["per_worker_core"] for x in ratios)
ratio_all = med(x["all_lcores"] for x in ratios)
print("full pipeline / physical limit, 1 inline worker: %.2f per worker core, %.2f with the reading (per rep: %s)" %
      (ratio_core, ratio_all, ", ".join("%.2f/%.2f" % (x["per_worker_core"], x["all_lcores"]) for x in ratios)))
print("keys cached (less the start-up of a one-message run, %.3f s): %.0f messages/s per worker core, "
      "%.2f of the physical limit (per rep: %s)" % (med(x["startup_cpu_s"] for x in ratios),
      med(x["keys_cached_messages_per_s"] for x in ratios), ratio_cached,
      ", ".join("%.2f" % x["keys_cached"] for x in ratios)))
print("steady state (the %dx capture less the %dx one: %d more messages): %.0f messages/s per worker core, "
      "%.2f of the physical limit (per rep: %s)" % (3 * int(os.environ["REPEAT"]), int(os.environ["REPEAT"]),
      longs[0]["messages"] - runs[0]["messages"] if longs else 0,
      med(x["steady_messages_per_s"] for x in ratios), ratio_steady,
      ", ".join("%.2f" % x["steady"] for x in ratios)))
lib_ratio = med(l / p["msgs_per_cpu_s"] for l, p in zip(lib, phys)) if lib else None
if lib:
    print("library alone (bench-wireseal-lib, same corpus, no packets): %.0f messages/s, %.2f of the physical limit; "
          "replay per worker core is %.2f of it" % (med(lib), lib_ratio, med(
              r["per_worker_core"]["messages_per_s"] for r in runs if r["mode"] == "inline worker" and r["verify"]) / med(lib)))
# the signature batch: its fill (jobs per ws_sig_verify_batch), and the
# inline verify run against the same run with --sig-batch 1 in each rep
nob = [json.loads(l) for l in open(tmp + "/nobatch.jsonl")]
batch = []
for x in nob:
    r = next(r for r in runs if r["rep"] == x["rep"] and r["mode"] == "inline worker" and r["verify"])
    sb = r["sig_batch"]
    batch.append({"rep": x["rep"], "size": sb["size"], "batches": sb["batches"], "jobs": sb["jobs"],
                  "fill": sb["jobs"] / sb["batches"] if sb["batches"] else 0, "max": sb["max"],
                  "on_messages_per_s": r["per_worker_core"]["messages_per_s"],
                  "off_messages_per_s": x["per_worker_core"]["messages_per_s"],
                  "on_vs_off": r["per_worker_core"]["messages_per_s"] / max(x["per_worker_core"]["messages_per_s"], 1)})
if batch:
    print("signature batch (1 inline worker, verify): %d jobs in %d batches of up to %d: %.2f per batch (max %d); "
          "per worker core %.0f messages/s with it, %.0f with --sig-batch 1: %.2fx (per rep: %s)" %
          (batch[0]["jobs"], batch[0]["batches"], batch[0]["size"], med(b["fill"] for b in batch), batch[0]["max"],
           med(b["on_messages_per_s"] for b in batch), med(b["off_messages_per_s"] for b in batch),
           med(b["on_vs_off"] for b in batch), ", ".join("%.2f" % b["on_vs_off"] for b in batch)))
nv = [r["per_worker_core"]["gbit_per_s"] for r in runs if r["mode"] == "inline worker" and not r["verify"]]
n = int(os.environ["IDLE_N"])
slots = int(os.environ["SLOTS"])
heap = (idle["peak_rss_kb"] - closed["peak_rss_kb"]) * 1024 / n
table = idle["flow_table_bytes"] / slots
per_idle = heap + table
print("idle sessions: %d open at once (peak open flows %d): peak RSS %d kB against %d kB when they close "
      "one by one: %.0f bytes each, + flow table %.0f bytes per slot (%d slots) = %.0f bytes per idle session" %
      (n, idle["peak_open_flows"], idle["peak_rss_kb"], closed["peak_rss_kb"], heap, table, slots, per_idle))
bs, ss = os.path.getsize(os.environ["BIG"]), os.path.getsize(os.environ["SMALL"])
print("memory per message: peak RSS %d kB with one %d-byte message, %d kB with one %d-byte message" %
      (big["peak_rss_kb"], bs, small["peak_rss_kb"], ss))
targets = {
    "pipeline_vs_physlimit": {"want": 0.70, "got": round(ratio_steady, 3), "met": ratio_steady >= 0.70,
                              "raw": round(ratio_core, 3), "startup_subtracted": round(ratio_cached, 3),
                              "what": "1 inline worker, verify, keys cached, steady state: the extra messages "
                                      "of a capture dealt 3x over the extra worker-core CPU seconds, "
                                      "/ bench-physlimit in the same repetition; raw: one run's messages over "
                                      "its worker CPU; startup_subtracted: less a one-message run's CPU"},
    "noverify_gbit_per_worker_core": {"want": 20.0, "got": med(nv), "met": med(nv) >= 20.0,
                                      "what": "1 inline worker, --no-verify, frame bits per worker-core CPU second"},
    "idle_session_bytes": {"want": 2048, "got": round(per_idle), "met": per_idle <= 2048,
                           "what": "RSS growth per open idle session + flow-table bytes per slot, %d sessions" % n},
    "memory_flat_per_message": {"want": "peak RSS of a %d-byte message within 2 MB of a %d-byte one" % (bs, ss),
                                "got": big["peak_rss_kb"] - small["peak_rss_kb"],
                                "met": big["peak_rss_kb"] - small["peak_rss_kb"] <= 2048},
}
for k, t in targets.items():
    print("target %-30s want %-8s got %-10s %s" % (k, t["want"] if not isinstance(t["want"], str) else "flat",
                                                  t["got"], "met" if t["met"] else "NOT met"))
out = {
    "bench": "replay", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "host": socket.gethostname(),
    "cpus": os.cpu_count(), "load": open("/proc/loadavg").read().split()[:3], "command": os.environ["CMD"].strip(),
    "corpus": os.environ["CORPUS"], "capture_repeat": int(os.environ["REPEAT"]),
    "pcap_read": pr, "physlimit_msgs_per_cpu_s": pl, "wireseal_lib_msgs_per_cpu_s": lib,
    "wireseal_lib_vs_physlimit": lib_ratio, "summary": summary, "ratios": ratios,
    "ratio_pipeline_vs_physlimit": {"per_worker_core": ratio_core, "all_lcores": ratio_all,
                                    "per_worker_core_keys_cached": ratio_cached,
                                    "per_worker_core_steady": ratio_steady},
    "idle": {"sessions": n, "peak_open_flows": idle["peak_open_flows"], "rss_open_kb": idle["peak_rss_kb"],
             "rss_closed_kb": closed["peak_rss_kb"], "flow_table_bytes": idle["flow_table_bytes"],
             "flow_slots": slots, "heap_bytes_per_session": heap, "table_bytes_per_slot": table,
             "bytes_per_idle_session": per_idle},
    "memory_per_message": {"big_bytes": bs, "big_peak_rss_kb": big["peak_rss_kb"],
                           "small_bytes": ss, "small_peak_rss_kb": small["peak_rss_kb"]},
    "targets": targets, "runs": runs, "sig_batch": batch,
}
if os.environ["JSON_OUT"]:
    with open(os.environ["JSON_OUT"], "w") as f:
        json.dump(out, f, indent=1)
    print("json: " + os.environ["JSON_OUT"])
EOF
