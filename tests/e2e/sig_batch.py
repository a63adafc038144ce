#!/usr/bin/python3
"""`wireseal replay --sig-batch N`: a worker verifies the signatures of several
messages in one batch (dpe.h DPE_SIG_BATCH), and nothing it prints changes.

 - the concurrent capture (40 interleaved sessions: RSA, Ed25519 + RSA (two
   signatures), a tampered body, a revoked key, ARC, dot-stuffing, a big
   body) and one made here with many messages per session (10 sessions,
   160 messages, interleaved, PIPELINING): stdout byte for byte the same
   with --sig-batch 1 (off), 2, 8 (the default, also without the option)
   and 64 (DPE_SIG_BATCH_MAX), one worker, JSON and text; with three
   workers the same lines (their order across workers is not fixed);
 - the summary's "sig-batch:" line: no batch with 1; with 8 more than one
   signature per batch on average, none above 8 - 1 + DKIM_MAX_SIGS;
 - --sig-batch 0 and 65 (past the limits) and "8x" are usage errors naming
   the option.

usage: sig_batch.py BUILD_DIR SOURCE_ROOT
"""
import os
import re
import subprocess
import sys
import tempfile

NOW = "1800000000"
DPE_SIG_BATCH_MAX = 64
DKIM_MAX_SIGS = 8


with open("/proc/cpuinfo") as _f:
    _flags = _f.read().split()
AVX512 = "avx512f" in _flags and "avx512bw" in _flags


def fail(msg):
    print("FAIL " + msg)
    sys.exit(1)


def replay(ws, zone, cap, extra):
    args = [ws, "replay", "--zone", zone, "--now", NOW, "--no-cp"] + extra + [cap]
    r = subprocess.run(args, capture_output=True, text=True, timeout=180)
    if r.returncode != 0:
        fail("%s: exit %d\n%s" % (" ".join(args), r.returncode, r.stderr[-1500:]))
    m = re.search(r"sig-batch: size (\d+), batches=(\d+) jobs=(\d+) \([0-9.]+ per batch, max (\d+)\)",
                  r.stderr)
    if not m:
        fail("no sig-batch line in the summary:\n" + r.stderr[-1500:])
    # the workers' body hashes: a lane group where the CPU has AVX-512
    lanes = re.search(r"sha256 lanes: (\d+) body blocks in 16-lane passes, (\d+) otherwise", r.stderr)
    if AVX512 and (not lanes or int(lanes.group(1)) + int(lanes.group(2)) == 0):
        fail("no body blocks in the 'sha256 lanes:' summary line:\n" + r.stderr[-1500:])
    return r.stdout, tuple(int(x) for x in m.groups())


def main():
    build, root = sys.argv[1], sys.argv[2]
    ws = os.path.join(build, "wireseal")
    zone = os.path.join(root, "tests", "data", "sample", "zone.db")
    caps = os.path.join(root, "tests", "data", "captures")
    with tempfile.TemporaryDirectory() as tmp:
        many = os.path.join(tmp, "many.pcap")
        eml = sorted(os.path.join(root, "tests", "data", "sample", f)
                     for f in os.listdir(os.path.join(root, "tests", "data", "sample"))
                     if f.endswith(".eml"))
        eml.append(os.path.join(caps, "dots.eml"))
        subprocess.run(["/usr/bin/python3", os.path.join(root, "tests", "tools", "gen_smtp_pcap.py"),
                        "--out", many, "--seed", "7", "--sessions", "10", "--repeat", "20",
                        "--interleave", "--pipelining"] + eml, check=True, timeout=120)
        fills = {}
        for cap in (os.path.join(caps, "concurrent.pcap"), many):
            name = os.path.basename(cap)
            for mode in (["--json"], []):
                base, st = replay(ws, zone, cap, mode + ["--workers", "1", "--sig-batch", "1"])
                if st[0] != 1 or st[1] != 0 or st[2] != 0:
                    fail("%s --sig-batch 1: batches ran: %r" % (name, st))
                if base.count("\n") < 50 or '"result": "pass"' not in base and "dkim=pass" not in base:
                    fail("%s: too few lines or no pass:\n%s" % (name, base[:500]))
                for size in ([], ["--sig-batch", "2"], ["--sig-batch", "8"],
                             ["--sig-batch", str(DPE_SIG_BATCH_MAX)]):
                    out, st = replay(ws, zone, cap, mode + ["--workers", "1"] + size)
                    n = int(size[1]) if size else 8
                    if out != base:
                        a, b = base.splitlines(), out.splitlines()
                        first = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]),
                                     min(len(a), len(b)))
                        fail("%s %s --sig-batch %d: output differs from --sig-batch 1 at line %d:"
                             "\n  off %s\n  on  %s" % (name, mode, n, first + 1,
                                                       a[first] if first < len(a) else "(none)",
                                                       b[first] if first < len(b) else "(none)"))
                    if st[0] != n or st[1] == 0 or st[3] > n - 1 + DKIM_MAX_SIGS:
                        fail("%s --sig-batch %d: summary %r" % (name, n, st))
                    fills[(name, n)] = st[2] / st[1]
                print("ok %s %s: the same %d lines with --sig-batch 1, 2, 8, %d" %
                      (name, " ".join(mode) or "text", base.count("\n"), DPE_SIG_BATCH_MAX))
            # three workers: the same lines, whatever order the workers interleave them in
            off, _ = replay(ws, zone, cap, ["--json", "--workers", "3", "--sig-batch", "1"])
            on, st = replay(ws, zone, cap, ["--json", "--workers", "3"])
            if sorted(off.splitlines()) != sorted(on.splitlines()):
                fail("%s: three workers, the lines differ with the batch" % name)
        for k, v in sorted(fills.items()):
            print("  %s --sig-batch %d: %.2f signatures per batch" % (k[0], k[1], v))
        if fills[("many.pcap", 8)] <= 2.0 or fills[("concurrent.pcap", 8)] <= 1.0:
            fail("batches of 8 are not filled: %r" % fills)

    cap = os.path.join(caps, "sample.pcap")
    for val in ("0", str(DPE_SIG_BATCH_MAX + 1), "8x"):
        r = subprocess.run([ws, "replay", "--zone", zone, "--sig-batch", val, cap],
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 2 or "--sig-batch:" not in r.stderr or r.stdout:
            fail("--sig-batch %s: exit %d, want 2 naming the option: %r" %
                 (val, r.returncode, r.stderr[-300:]))
    print("ok --sig-batch 0, %d, 8x refused" % (DPE_SIG_BATCH_MAX + 1))


if __name__ == "__main__":
    main()
