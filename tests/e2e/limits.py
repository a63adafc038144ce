#!/usr/bin/python3
"""wireseal replay at and past its named limits: workers (DPE_MAX_WORKERS
16), captures (REPLAY_MAX_CAPTURES 16), verify's policy options
(--random-pct 0..99, DMARC_MAX_TRUSTED_SEALERS trusted sealers), flows per worker (FLOW_MIN_CAPACITY
8; a table that small under 40 concurrent sessions must evict, count it, and
never turn a message into a pass that `wireseal verify` does not give).

usage: limits.py BUILD_DIR SOURCE_ROOT
"""
import json
import os
import re
import subprocess
import sys

NOW = "1800000000"


def main():
    build, root = sys.argv[1:3]
    ws = os.path.join(build, "wireseal")
    cap = os.path.join(root, "tests", "data", "captures")
    zone = os.path.join(root, "tests", "data", "sample", "zone.db")
    sample = os.path.join(cap, "sample.pcap")
    bad = 0

    def replay(args, want_rc, what):
        nonlocal bad
        r = subprocess.run([ws, "replay", "--zone", zone, "--now", NOW, "--json"] + args,
                           capture_output=True, text=True, timeout=120)
        if r.returncode != want_rc:
            print("FAIL %s: exit %d, want %d\n%s" % (what, r.returncode, want_rc, r.stderr))
            bad += 1
        return r

    # what one capture holds: messages from its manifest, packets from one run
    nmsg = len(json.load(open(os.path.join(cap, "sample.json"))))
    one = replay([sample], 0, "one capture")
    m = re.search(r"(\d+) packets,", one.stderr)
    npkt = int(m.group(1)) if m else -1
    r = replay(["--workers", "16", sample], 0, "16 workers (the limit)")
    msgs = [l for l in r.stdout.splitlines() if '"session_record"' not in l]
    if len(msgs) != nmsg:
        print("FAIL 16 workers: %d messages, want %d" % (len(msgs), nmsg))
        bad += 1
    replay(["--workers", "17", sample], 2, "17 workers (past the limit)")
    r = replay([sample] * 16, 0, "16 captures (the limit)")
    if not re.search(r"16 ports, 1 workers: %d packets" % (16 * npkt), r.stderr):
        print("FAIL 16 captures: summary %s" % r.stderr.splitlines()[:1])
        bad += 1
    replay([sample] * 17, 2, "17 captures (past the limit)")
    # verify's policy options, as verify bounds them (cli/policy.h)
    r = replay(["--random-pct", "99", sample], 0, "--random-pct 99 (the limit)")
    # message lines (session lines have a "session_record" key instead)
    mlines = [l for l in r.stdout.splitlines() if "session_record" not in json.loads(l)]
    if len(mlines) != nmsg or not all("dmarc" in json.loads(l) for l in mlines):
        print("FAIL --random-pct 99: %d lines with dmarc, want %d" % (len(mlines), nmsg))
        bad += 1
    r = replay(["--random-pct", "100", sample], 2, "--random-pct 100 (past the limit)")
    if "--random-pct wants 0..99" not in r.stderr:
        print("FAIL --random-pct 100: no reason given: %s" % r.stderr)
        bad += 1
    DMARC_MAX_TRUSTED_SEALERS = int(re.search(r"#define DMARC_MAX_TRUSTED_SEALERS (\d+)", open(
        os.path.join(root, "auth", "dmarc.h")).read()).group(1))
    sealers = ",".join("s%d.example" % i for i in range(DMARC_MAX_TRUSTED_SEALERS))
    replay(["--trusted-sealers", sealers, sample], 0, "%d trusted sealers (the limit)" %
           DMARC_MAX_TRUSTED_SEALERS)
    r = replay(["--trusted-sealers", sealers + ",one.more", sample], 2,
               "%d trusted sealers (past the limit)" % (DMARC_MAX_TRUSTED_SEALERS + 1))
    if "more than %d domains" % DMARC_MAX_TRUSTED_SEALERS not in r.stderr:
        print("FAIL too many sealers: no reason given: %s" % r.stderr)
        bad += 1
    r = replay(["--flows", "7", sample], 1, "7 flows (below the table's minimum)")
    if "out of range" not in r.stderr:
        print("FAIL 7 flows: no reason given: %s" % r.stderr)
        bad += 1

    # a table of 8 flows under 40 interleaved sessions
    r = replay(["--flows", "8", os.path.join(cap, "concurrent.pcap")], 0, "8 flows under pressure")
    m = re.search(r"evicted (\d+)", r.stderr)
    if not m or int(m.group(1)) == 0:
        print("FAIL 8 flows: nothing evicted: %s" % r.stderr)
        bad += 1
    manifest = json.load(open(os.path.join(cap, "concurrent.json")))
    passes = {}
    v = subprocess.run([ws, "verify", "--json", "--zone", zone, "--now", NOW] +
                       sorted({os.path.join(root, x["eml"]) for x in manifest}),
                       capture_output=True, text=True, check=True)
    for line in v.stdout.splitlines():
        o = json.loads(line)
        for d in o["dkim"]:
            passes[(d["s"], d["result"])] = True
    reported = 0
    for line in r.stdout.splitlines():
        o = json.loads(line)
        if "session_record" in o:
            continue
        reported += 1
        for d in o["dkim"]:
            if d["result"] == "pass" and o["session"].get("gap"):
                print("FAIL: a message with a gap passed: %s" % line)
                bad += 1
            if d["result"] not in ("temperror",) and (d["s"], d["result"]) not in passes:
                print("FAIL: result verify never gives: %s" % line)
                bad += 1
    print("limits: %d messages reported under eviction (%s evicted), %d failures" %
          (reported, m.group(1) if m else "?", bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
