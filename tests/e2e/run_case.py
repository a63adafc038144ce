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

Both policy paths: replay runs by default with a wireseal-cp child serving
the zone (SPF and DMARC are the control plane's VERDICTs; stderr says how
many), and again with --no-cp (the same policy in-process); the two stdouts
must be the same bytes (the same lines in any order with several workers).

SPF and DMARC: both commands run over the sample zone plus the policy
records below (POLICY_RECORDS: SPF passes only from 198.51.100.1, a HELO
record that fails, DMARC quarantine at pct=50 with a fixed --random-pct).
Each "same" message's replay line must be, key for key and in order, the
`wireseal verify --json --client-ip IP [--helo H] --mail-from M` object of
its .eml with the session's envelope, without "file" and with replay's
"session" (so the same spf/dmarc objects and the same A-R string). A "gap"
message carries spf and a dmarc that is pass or temperror, never a fail.

usage: run_case.py BUILD_DIR SOURCE_ROOT CASE_DIR
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

NOW = "1800000000"  # the sample signatures carry no x=; fixed for repeatability
# the same on both sides: pct sampling and the A-R authserv-id
POLICY_ARGS = ["--random-pct", "42", "--authserv-id", "e2e.mx"]
POLICY_RECORDS = """
sample.example. IN TXT "v=spf1 ip4:198.51.100.1 -all"
client1.example. IN TXT "v=spf1 a -all"
_dmarc.sample.example. IN TXT "v=DMARC1; p=quarantine; pct=50"
"""


def verify_envelope(wireseal, zone, paths, sess):
    """verify --json of paths with the session's envelope: {basename: object}."""
    env = ["--client-ip", sess["client_ip"], "--mail-from", sess["mail_from"]]
    if sess["helo"]:
        env += ["--helo", sess["helo"]]
    v = subprocess.run([wireseal, "verify", "--json", "--zone", zone, "--now", NOW] + POLICY_ARGS +
                       env + paths, capture_output=True, text=True)
    out = {}
    for line in v.stdout.splitlines():
        o = json.loads(line)
        out[os.path.basename(o["file"])] = o
    if len(out) != len(paths):
        raise RuntimeError("verify %s gave %d objects for %d files: %s" %
                           (env, len(out), len(paths), v.stderr))
    return out


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
    tmp = tempfile.mkdtemp(prefix="e2e-case-")
    zone = os.path.join(tmp, "zone.db")
    with open(zone, "w") as f:
        f.write(open(os.path.join(root, "tests", "data", "sample", "zone.db")).read())
        f.write(POLICY_RECORDS)
    try:
        return check(wireseal, zone, case, pcap, manifest, root, extra)
    finally:
        shutil.rmtree(tmp)


def check(wireseal, zone, case, pcap, manifest, root, extra):
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

    r = subprocess.run([wireseal, "replay", "--json", "--zone", zone, "--now", NOW] + POLICY_ARGS +
                       extra + [pcap],
                       capture_output=True, text=True, timeout=120)
    sys.stderr.write(r.stderr)
    if r.returncode != 0:
        print("replay exited %d" % r.returncode)
        return 1
    inproc = subprocess.run([wireseal, "replay", "--json", "--zone", zone, "--now", NOW, "--no-cp"] +
                            POLICY_ARGS + extra + [pcap], capture_output=True, text=True, timeout=120)
    if inproc.returncode != 0:
        print("replay --no-cp exited %d: %s" % (inproc.returncode, inproc.stderr[-600:]))
        return 1
    one_worker = "--workers" not in extra
    same = (r.stdout == inproc.stdout if one_worker else
            sorted(r.stdout.splitlines()) == sorted(inproc.stdout.splitlines()))
    import re
    nverdicts = re.search(r"control plane policy: (\d+) verdicts, 0 refused, 0 not answered", r.stderr)
    if not same:
        print("FAIL: stdout with the control plane's policy differs from --no-cp's:\n%s\n---\n%s" %
              (r.stdout[:3000], inproc.stdout[:3000]))
        return 1
    nmsg = sum(1 for l in r.stdout.splitlines() if '"dmarc"' in l)
    if nmsg and (not nverdicts or int(nverdicts.group(1)) < nmsg):
        print("FAIL: %d lines with DMARC but the control plane gave %s verdicts" %
              (nmsg, nverdicts.group(1) if nverdicts else "no"))
        return 1
    print("policy from the control plane and in-process: the same %d lines (%s verdicts)" %
          (len(r.stdout.splitlines()), nverdicts.group(1) if nverdicts else "no"))
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
    counts = {"same": 0, "gap": 0, "absent": 0, "policy-same": 0}
    eml_path = {os.path.basename(e): (e if os.path.isabs(e) else os.path.join(root, e))
                for e in emls}
    verified = {}  # envelope -> {eml basename: verify object}
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
            # the whole line: verify with the session's envelope, minus
            # "file", plus "session", keys in the same order
            sess = o["session"]
            envk = (sess["client_ip"], sess["helo"], sess["mail_from"])
            if envk not in verified:
                verified[envk] = verify_envelope(wireseal, zone, sorted(eml_path.values()), sess)
            want = dict(verified[envk][eml])
            del want["file"]
            want["session"] = sess
            if list(o.items()) != list(want.items()):
                print("FAIL %s %s: replay line differs from verify with the session's envelope:"
                      "\n  replay %s\n  verify %s" % (key, eml, json.dumps(o), json.dumps(want)))
                bad += 1
            else:
                counts["policy-same"] += 1
        else:  # gap
            if o.get("arc") is not None:
                print("FAIL %s %s: bytes were lost but replay judged the ARC chain: %s" %
                      (key, eml, o["arc"]))
                bad += 1
            if not o["session"].get("gap") or any(x[3] != "temperror" for x in res):
                print("FAIL %s %s: bytes were lost but replay says %s gap=%s" %
                      (key, eml, res, o["session"].get("gap")))
                bad += 1
            dm = o.get("dmarc", {}).get("result")
            if "spf" not in o or dm not in ("pass", "temperror"):
                print("FAIL %s %s: bytes were lost: spf %s, dmarc %s (want pass or temperror)" %
                      (key, eml, o.get("spf"), dm))
                bad += 1
    for key, o in got.items():
        print("FAIL %s: reported but never sent" % (key,))
        bad += 1
    print("%s: %d messages expected same (%d lines equal to verify with the envelope), "
          "%d with gaps, %d absent; %d failures" %
          (os.path.basename(case), counts["same"], counts["policy-same"], counts["gap"],
           counts["absent"], bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
