#!/usr/bin/python3
"""Run one e2e case: replay its capture and compare with `wireseal verify`.

A case is a folder tests/e2e/NAME/ with
  capture   the capture's name under tests/data/captures/ (NAME.pcap or
            NAME.pcapng, with
            the generator's manifest NAME.json next to it)
  args      extra `wireseal replay` arguments (one line, may be empty)
  stderr    (optional) regular expressions, one a line, that the replay's
            summary on stderr must match
  absent    (optional, empty) no message may be reported at all (a port the
            dataplane does not parse)
  sessions  (optional) how many implicit-TLS session-facts lines
            ("event": "session") replay must print; none without the file
The manifest lists every message put on the wire: its session (client
address/port), transaction number, .eml file and what to expect:
  same    the replayed DKIM results (d, s, a, result) equal `wireseal verify`
          on the .eml file;
  gap     bytes of it were lost: it is reported with a "gap" and every
          signature temperror, or not at all when nothing of it was seen;
  absent  sent before the capture begins: never reported.
A session picked up mid-stream numbers its transactions from where the
capture begins, so its records are paired with the messages sent after the
pickup in order.
A message reported by replay that the manifest does not list fails the case.

usage: run_case.py BUILD_DIR SOURCE_ROOT CASE_DIR
"""
import json
import os
import subprocess
import sys

NOW = "1800000000"  # the sample signatures carry no x=; fixed for repeatability


def main():
    build, root, case = sys.argv[1:4]
    wireseal = os.path.join(build, "wireseal")
    name = open(os.path.join(case, "capture")).read().strip()
    args_file = os.path.join(case, "args")
    extra = open(args_file).read().split() if os.path.exists(args_file) else []
    capdir = os.path.join(root, "tests", "data", "captures")
    pcap = os.path.join(capdir, name + ".pcap")
    if not os.path.exists(pcap):
        pcap += "ng"
    manifest = json.load(open(os.path.join(capdir, name + ".json")))
    zone = os.path.join(root, "tests", "data", "sample", "zone.db")

    emls = sorted({m["eml"] for m in manifest})
    paths = [p if os.path.isabs(p) else os.path.join(root, p) for p in emls]
    v = subprocess.run([wireseal, "verify", "--json", "--zone", zone, "--now", NOW] + paths,
                       capture_output=True, text=True)
    want_by_eml = {}
    want_arc = {}
    for eml, line in zip(emls, v.stdout.splitlines()):
        o = json.loads(line)
        want_by_eml[os.path.basename(eml)] = [(d["d"], d["s"], d["a"], d["result"]) for d in o["dkim"]]
        want_arc[os.path.basename(eml)] = (o["arc"]["result"], o["arc"]["oldest_pass"])
    if len(want_by_eml) != len(emls):
        print("verify gave %d lines for %d files: %s" % (len(want_by_eml), len(emls), v.stderr))
        return 1

    r = subprocess.run([wireseal, "replay", "--json", "--zone", zone, "--now", NOW] + extra + [pcap],
                       capture_output=True, text=True, timeout=120)
    sys.stderr.write(r.stderr)
    if r.returncode != 0:
        print("replay exited %d" % r.returncode)
        return 1
    # per session (client address and port): records in transaction order
    sessions = {}
    facts = []
    for line in r.stdout.splitlines():
        o = json.loads(line)
        if "session_record" in o:
            # implicit-TLS connections are checked here; the STARTTLS
            # session lines by sts_captures.py
            if o["session_record"].get("implicit_tls"):
                facts.append(o["session_record"])
            continue
        s = o["session"]
        sessions.setdefault((s["client_ip"], s["client_port"]), []).append(o)
    got = {}
    for (ip, port), recs in sessions.items():
        # a flow that ended (idle, evicted) and was picked up again comes
        # after the one it continues
        recs.sort(key=lambda o: (bool(o["session"].get("midstream")), o["session"]["transaction"]))
        if any(o["session"].get("midstream") for o in recs):
            # picked up mid-stream: the session cannot know how many
            # transactions came before, so pair records with the manifest's
            # messages that were on the wire after the pickup, in order
            sent = sorted((m["transaction"] for m in manifest
                           if (m["client_ip"], m["client_port"]) == (ip, port)
                           and m["expect"] != "absent"))
            numbers = sent + list(range(10000, 10000 + len(recs)))
        else:
            numbers = [o["session"]["transaction"] for o in recs]
        for n, o in zip(numbers, recs):
            key = (ip, port, n)
            if key in got:
                print("message reported twice: %s" % (key,))
                return 1
            got[key] = o

    bad = 0
    exp_file = os.path.join(case, "stderr")
    if os.path.exists(exp_file):
        import re
        for pat in open(exp_file).read().splitlines():
            if pat and not re.search(pat, r.stderr):
                print("FAIL: summary does not match %r" % pat)
                bad += 1
    # implicit TLS: one session-facts line per connection, bytes both ways
    want_facts = 0
    facts_file = os.path.join(case, "sessions")
    if os.path.exists(facts_file):
        want_facts = int(open(facts_file).read().strip())
    if len(facts) != want_facts:
        print("FAIL: %d session-facts lines, want %d: %s" % (len(facts), want_facts, facts))
        bad += 1
    for f in facts:
        if not (f.get("implicit_tls") is True and f["tls_bytes_c2s"] > 0 and f["tls_bytes_s2c"] > 0
                and f["end_reason"] in ("fin", "rst", "idle", "evicted", "capture-end")
                and {"client_ip", "client_port", "server_ip", "server_port"} <= set(f)):
            print("FAIL: session facts incomplete: %s" % f)
            bad += 1
    counts = {"same": 0, "gap": 0, "absent": 0}
    if os.path.exists(os.path.join(case, "absent")):
        for m in manifest:
            m["expect"] = "absent"
    for m in manifest:
        key = (m["client_ip"], m["client_port"], m["transaction"])
        o = got.pop(key, None)
        exp = m["expect"]
        counts[exp] += 1
        eml = os.path.basename(m["eml"])
        if exp == "absent":
            if o is not None:
                print("FAIL %s %s: reported, but it was sent before the capture began" % (key, eml))
                bad += 1
            continue
        if o is None:
            if exp == "gap":
                continue
            print("FAIL %s %s: not reported" % (key, eml))
            bad += 1
            continue
        res = [(d["d"], d["s"], d["a"], d["result"]) for d in o["dkim"]]
        if exp == "same":
            if sorted(res) != sorted(want_by_eml[eml]) or o["session"].get("gap"):
                print("FAIL %s %s: replay %s gap=%s, verify %s" %
                      (key, eml, res, o["session"].get("gap"), want_by_eml[eml]))
                bad += 1
            arc = o.get("arc")
            if arc is None or (arc["result"], arc["oldest_pass"]) != want_arc[eml]:
                print("FAIL %s %s: replay arc %s, verify %s" % (key, eml, arc, want_arc[eml]))
                bad += 1
        else:  # gap
            if o.get("arc") is not None:
                print("FAIL %s %s: bytes were lost but replay judged the ARC chain: %s" %
                      (key, eml, o["arc"]))
                bad += 1
            if not o["session"].get("gap") or any(x[3] != "temperror" for x in res):
                print("FAIL %s %s: bytes were lost but replay says %s gap=%s" %
                      (key, eml, res, o["session"].get("gap")))
                bad += 1
    for key, o in got.items():
        print("FAIL %s: reported but never sent" % (key,))
        bad += 1
    print("%s: %d messages expected same, %d with gaps, %d absent; %d failures" %
          (os.path.basename(case), counts["same"], counts["gap"], counts["absent"], bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
