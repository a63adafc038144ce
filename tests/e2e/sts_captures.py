#!/usr/bin/python3
"""Replay the STARTTLS/TLS wire-signal captures and check the session lines.

tests/data/captures/sts/expected.json (written by tests/tools/gen_sts_pcap.py
with the captures) lists per capture the replay arguments and per session
(client port): the anomaly names (exactly: a benign capture has none), the
evidence offsets the generator knows, the sts result and reason, where the
policy domain and MX host came from, and TLS facts. Each capture exists as
NAME.pcap, NAME-split.pcap (1..7-byte segments) and NAME-v6-ooo.pcap (IPv6,
reordered, retransmitted): each must match the expectations, and all give
identical session lines (anomaly offsets included; addresses aside).

usage: sts_captures.py BUILD_DIR SOURCE_ROOT [NAME...]
"""
import json
import os
import subprocess
import sys


def sessions(ws, pcaps, args):
    """Session lines of one replay over pcaps, by (client address, port)."""
    r = subprocess.run([ws, "replay", "--json", "--no-verify", "--end-idle", "100"] + args + pcaps,
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        return None, "replay exited %d: %s" % (r.returncode, r.stderr[-500:])
    out = {}
    for line in r.stdout.splitlines():
        o = json.loads(line)
        if "session_record" in o:
            s = o["session_record"]
            out[(s["client_ip"], s["client_port"])] = s
    return out, None


def same_facts(m):
    """A session line without what the variants may change (addresses)."""
    drop = ("client_ip", "server_ip")
    return {p: {k: v for k, v in s.items() if k not in drop} for p, s in m.items()}


def check(name, got, want):
    bad = []
    for e in want:
        s = got.get(e["client_port"])
        where = "%s port %d" % (name, e["client_port"])
        if s is None:
            bad.append("%s: no session line" % where)
            continue
        names = sorted(a["name"] for a in s["anomalies"])
        if names != sorted(e["anomalies"]):
            bad.append("%s: anomalies %s, want %s" % (where, names, sorted(e["anomalies"])))
        for n, (d, off) in e["offsets"].items():
            hit = [a for a in s["anomalies"] if a["name"] == n]
            if hit and (hit[0]["dir"], hit[0]["offset"]) != (d, off):
                bad.append("%s: %s at %s %d, want %s %d" % (where, n, hit[0]["dir"], hit[0]["offset"], d, off))
        sts = [s["sts"]["result"], s["sts"]["reason"]]
        if sts != e["sts"]:
            bad.append("%s: sts %s, want %s (%s)" % (where, sts, e["sts"], s["sts"]))
        if "source" in e and s["sts"]["policy_domain_source"] != e["source"]:
            bad.append("%s: policy domain from %s, want %s" % (where, s["sts"]["policy_domain_source"], e["source"]))
        if "mx_source" in e and s["sts"]["mx_host_source"] != e["mx_source"]:
            bad.append("%s: MX host from %s, want %s" % (where, s["sts"]["mx_host_source"], e["mx_source"]))
        for k, v in e.get("tls", {}).items():
            if s["tls"].get(k) != v:
                bad.append("%s: tls.%s = %r, want %r" % (where, k, s["tls"].get(k), v))
    if len(got) != len(want):
        bad.append("%s: %d session lines, want %d" % (name, len(got), len(want)))
    return bad


def main():
    build, root = sys.argv[1:3]
    only = sys.argv[3:]
    ws = os.path.join(build, "wireseal")
    d = os.path.join(root, "tests", "data", "captures", "sts")
    expected = json.load(open(os.path.join(d, "expected.json")))
    bad = []
    n = 0
    items = [(k, v) for k, v in sorted(expected.items()) if not only or k in only]
    # replay start-up dominates: one run per variant over up to 16 captures
    # with the same arguments (each capture has its own client address and
    # ports, so their sessions cannot mix)
    groups = {}
    for name, e in items:
        groups.setdefault(tuple(e["args"]), []).append(name)
    got = {}
    for args, names in groups.items():
        args = [a.replace("@DIR@", d) for a in args]
        for k in range(0, len(names), 16):
            chunk = names[k:k + 16]
            for variant in ("", "-split", "-v6-ooo"):
                res, err = sessions(ws, [os.path.join(d, nm + variant + ".pcap") for nm in chunk], args)
                if err:
                    bad.append("%s%s: %s" % (chunk, variant, err))
                    continue
                for (ip, port), s in res.items():
                    got.setdefault(variant, {})[port] = s
    for name, e in items:
        ports = [x["client_port"] for x in e["sessions"]]
        per = {v: {p: s for p, s in got.get(v, {}).items() if p in ports} for v in ("", "-split", "-v6-ooo")}
        bad += check(name, per[""], e["sessions"])
        for variant in ("-split", "-v6-ooo"):
            bad += check(name + variant, per[variant], e["sessions"])
            if same_facts(per[""]) != same_facts(per[variant]):
                bad.append("%s%s: session lines differ from the whole capture's:\n  %s\n  %s" %
                           (name, variant, per[""], per[variant]))
    n = len(items)
    # the option limits, at and past: --sts-policy (16), --mx-map (64)
    pol = os.path.join(d, "example.net.policy")
    one = os.path.join(d, "tls12-full.pcap")
    for k, rc in ((16, 0), (17, 2)):
        args = [x for i in range(k) for x in ("--sts-policy", "d%d.example=%s" % (i, pol))]
        r = subprocess.run([ws, "replay", "--json", "--no-verify", "--end-idle", "100"] + args + [one],
                           capture_output=True, text=True, timeout=120)
        if r.returncode != rc:
            bad.append("%d --sts-policy: exit %d, want %d" % (k, r.returncode, rc))
    for k, rc in ((64, 0), (65, 2)):
        args = [x for i in range(k) for x in ("--mx-map", "192.0.2.%d=mx%d.example" % (i + 1, i))]
        r = subprocess.run([ws, "replay", "--json", "--no-verify", "--end-idle", "100"] + args + [one],
                           capture_output=True, text=True, timeout=120)
        if r.returncode != rc:
            bad.append("%d --mx-map: exit %d, want %d" % (k, r.returncode, rc))
    for arg in ("--sts-policy=example.net", "--sts-policy=example.net=/nonexistent", "--mx-map=x=y"):
        r = subprocess.run([ws, "replay", "--json", arg, one], capture_output=True, text=True, timeout=120)
        if r.returncode != 2:
            bad.append("%s: exit %d, want 2 (usage)" % (arg, r.returncode))
    for b in bad:
        print("FAIL " + b)
    print("%d captures (x3 variants), %d failures" % (n, len(bad)))
    return 1 if bad or n == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
