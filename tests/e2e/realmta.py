#!/usr/bin/python3
"""The committed captures made by real software (tests/data/captures/realmta/,
make-realmta.sh: Debian's Postfix receiving from another Postfix, from
swaks and from Exim, captured by tcpdump), replayed: every message's DKIM
results must be those of `wireseal verify` on the .eml it carried (as a
multiset: the relay's queue decides the order), with the envelope as sent
and no gap; the relay's capture must show one session carrying several
messages under PIPELINING, swaks' and Exim's one session per message, and
Exim's every message sent with BDAT (CHUNKING), none with DATA.

usage: realmta.py BUILD_DIR SOURCE_ROOT
"""
import collections
import json
import os
import subprocess
import sys

NOW = "1800000000"


def main():
    build, root = sys.argv[1:3]
    ws = os.path.join(build, "wireseal")
    zone = os.path.join(root, "tests", "data", "sample", "zone.db")
    here = os.path.join(root, "tests", "data", "captures", "realmta")
    manifest = json.load(open(os.path.join(here, "manifest.json")))
    bad = 0
    for cap, emls in sorted(manifest.items()):
        if cap.startswith("_"):
            continue
        paths = [os.path.join(root, e) for e in emls]
        v = subprocess.run([ws, "verify", "--json", "--zone", zone, "--now", NOW] + paths,
                           capture_output=True, text=True, check=True)
        want = collections.Counter(
            tuple(sorted((d["d"], d["s"], d["a"], d["result"]) for d in json.loads(l)["dkim"]))
            for l in v.stdout.splitlines())
        r = subprocess.run([ws, "replay", "--json", "--zone", zone, "--now", NOW,
                            os.path.join(here, cap)], capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            print("FAIL %s: replay exit %d\n%s" % (cap, r.returncode, r.stderr))
            bad += 1
            continue
        lines = [json.loads(l) for l in r.stdout.splitlines()]
        msgs = [o for o in lines if "session_record" not in o]
        sess = [o["session_record"] for o in lines if "session_record" in o]
        got = collections.Counter(
            tuple(sorted((d["d"], d["s"], d["a"], d["result"]) for d in o["dkim"])) for o in msgs)
        if got != want:
            print("FAIL %s: replay %s, verify %s" % (cap, dict(got), dict(want)))
            bad += 1
        for o in msgs:
            s = o["session"]
            if s.get("gap") or s["mail_from"] != "sender@sample.example" or \
                    s["rcpt"] != ["reader@example.org"]:
                print("FAIL %s: session %s" % (cap, s))
                bad += 1
        with_msgs = [x for x in sess if x["messages"] > 0]
        if cap.startswith("postfix"):
            if not any(x["messages"] >= 2 and x["pipelining"] for x in with_msgs):
                print("FAIL %s: no pipelined session with several messages: %s" % (cap, sess))
                bad += 1
        elif len(with_msgs) != len(emls) or any(x["messages"] != 1 for x in with_msgs):
            print("FAIL %s: want one session per message: %s" % (cap, sess))
            bad += 1
        if cap.startswith("exim"):
            for x in with_msgs:
                cmds = [c for c, _ in x.get("replies", [])]
                if "BDAT" not in cmds or "DATA" in cmds:
                    print("FAIL %s: want BDAT and no DATA: %s" % (cap, x.get("replies")))
                    bad += 1
        print("%s: %d messages in %d sessions" % (cap, len(msgs), len(with_msgs)))
    print("real MTA captures: %d failures" % bad)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
