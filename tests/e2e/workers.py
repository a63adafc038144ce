#!/usr/bin/python3
"""Spreading flows over workers changes nothing: `wireseal replay --json`
with 1 worker (its own lcore, and --inline on the reading lcore), 2 and 3
workers gives the same set of message records (every field,
verdicts and session facts) on the captures where flows interleave and
segments are cut, reordered, duplicated, fragmented and lost.

Both directions of a connection must reach one worker (the symmetric hash
of dpe's software spreading); a server reply handled by another worker than
its client's data would make two flows of one connection (one per worker),
each seeing one side: the flow, session and verdict counts of the summary
(compared too) differ even where the records happen not to.

usage: workers.py BUILD_DIR SOURCE_ROOT
"""
import collections
import json
import os
import subprocess
import sys

NOW = "1800000000"
CAPTURES = ["adversarial", "concurrent", "frag-v6", "loss", "pipelining"]
# (workers, extra arguments, what the summary must say)
CONFIGS = [(1, [], "software spreading"), (1, ["--inline"], "inline worker"),
           (2, [], "software spreading"), (3, [], "software spreading")]


def records(wireseal, zone, pcap, workers, extra, mode):
    r = subprocess.run([wireseal, "replay", "--json", "--zone", zone, "--now", NOW,
                        "--workers", str(workers)] + extra + [pcap],
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise SystemExit("replay --workers %d %s exited %d: %s" % (workers, pcap, r.returncode, r.stderr))
    if "%d workers" % workers not in r.stderr or "(%s)" % mode not in r.stderr:
        raise SystemExit("replay did not run %d workers (%s): %s" % (workers, mode, r.stderr))
    lines = [json.dumps(json.loads(l), sort_keys=True) for l in r.stdout.splitlines()]
    # the summary's flow and session lines, without the timing line
    for l in r.stderr.splitlines():
        l = l.split(": ", 1)[-1]
        if l.startswith("flows=") or l.startswith("sessions=") or l.startswith("packets:"):
            lines.append("summary " + l)
    return collections.Counter(lines)


def main():
    build, root = sys.argv[1:3]
    wireseal = os.path.join(build, "wireseal")
    zone = os.path.join(root, "tests", "data", "sample", "zone.db")
    bad = 0
    for name in CAPTURES:
        pcap = os.path.join(root, "tests", "data", "captures", name + ".pcap")
        base = records(wireseal, zone, pcap, *CONFIGS[0])
        if not any(not l.startswith("summary") for l in base):
            print("%s: no records with one worker" % name)
            bad += 1
            continue
        for w, extra, mode in CONFIGS[1:]:
            got = records(wireseal, zone, pcap, w, extra, mode)
            label = "%d workers (%s)" % (w, mode)
            if got != base:
                bad += 1
                print("%s: %s differ from 1 worker" % (name, label))
                for l in (base - got):
                    print("  only with 1: " + l[:300])
                for l in (got - base):
                    print("  only with %s: %s" % (label, l[:300]))
            else:
                print("%s: %d records, same with %s" % (name, sum(base.values()), label))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
