#!/usr/bin/python3
"""The ARC override decided the same way by the control plane and in-process.

A message from author.example (DMARC p=reject) DKIM-signed by
sample.example (a pass, not aligned: DMARC fails), then sealed by
sample.example over an Authentication-Results that is unusual but valid
RFC 8601: comments (with ';' and a quoted string inside) after the
authserv-id and inside a clause, folding, CFWS around '=', a quoted
header.d, methods and results in mixed case, a method version, several
methods (arc-seal keeps them in the AAR, bar the authserv-id's comment).
Its dkim=pass header.d="Author.Example" is aligned with the
From domain, so a trusted sealer's AAR overrides the DMARC fail.

`wireseal replay --trusted-sealers sample.example` runs it with the
default policy path (a wireseal-cp child: the AAR is read by the control
plane) and with --no-cp (in-process): both must apply the override by
sample.example and print the same bytes; without the sealer trusted,
neither overrides (and the bytes are again the same).

usage: replay_arc_aar.py BUILD_DIR SOURCE_ROOT
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import dkim

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wstest  # noqa: E402

T = wstest.Tally("replay-arc-aar")
SAMPLE = os.path.join(wstest.SOURCE, "tests", "data", "sample")
GEN = os.path.join(wstest.SOURCE, "tests", "tools", "gen_smtp_pcap.py")
NOW = "1800000000"
RECORDS = """
_dmarc.author.example. IN TXT "v=DMARC1; p=reject"
"""
# what the forwarder's verifier stamped; arc-seal makes it the AAR of i=1
AR = (b'Authentication-Results: fwd.sample.example (relay; "x";\r\n\tsays) ;\r\n'
      b' DKIM = Pass (good;\r\n  sig) Header.D="Author.Example" header.s=sel ;\r\n'
      b' spf=SoftFail smtp.mailfrom="b@Bounce.Example";\r\n'
      b' DMARC/1=fail (p=reject) header.from=author.example; x-other=pass\r\n')


def main():
    d = tempfile.mkdtemp(prefix="ws-arc-aar-")
    try:
        zone = os.path.join(d, "zone.db")
        shutil.copy(os.path.join(SAMPLE, "zone.db"), zone)
        with open(zone, "a") as f:
            f.write(RECORDS)
        key = os.path.join(SAMPLE, "rsa2048.pem")
        m = (b"From: Author <a@author.example>\r\nTo: reader@example.org\r\n"
             b"Subject: forwarded\r\nDate: Sun, 29 Nov 2026 08:00:00 +0000\r\n"
             b"Message-ID: <arc-aar@author.example>\r\n\r\nforwarded through a relay\r\n")
        signed = dkim.sign(m, b"mail2026", b"sample.example", open(key, "rb").read(),
                           include_headers=[b"from", b"to", b"subject", b"date",
                                            b"message-id"]) + m
        unsealed = os.path.join(d, "unsealed.eml")
        with open(unsealed, "wb") as f:
            f.write(AR + signed)
        p = subprocess.run([wstest.WIRESEAL, "arc-seal", "--key", key, "--domain",
                            "sample.example", "--selector", "mail2026", "--authserv-id",
                            "fwd.sample.example", "--timestamp", "1795939200", "--zone", zone,
                            unsealed], capture_output=True)
        T.check(p.returncode == 0 and b"ARC-Authentication-Results: i=1;" in p.stdout,
                "arc-seal: %s" % p.stderr.decode(errors="replace"))
        eml = os.path.join(d, "sealed.eml")
        with open(eml, "wb") as f:
            f.write(p.stdout)
        pcap = os.path.join(d, "arc.pcap")
        g = subprocess.run(["/usr/bin/python3", GEN, "--out", pcap, eml], capture_output=True)
        T.check(g.returncode == 0, "capture: %s" % g.stderr.decode(errors="replace"))
        for trusted, want in (("sample.example", True), ("other.example", False)):
            runs = []
            for extra in ([], ["--no-cp"]):
                r = subprocess.run([wstest.WIRESEAL, "replay", "--json", "--zone", zone, "--now",
                                    NOW, "--trusted-sealers", trusted] + extra + [pcap],
                                   capture_output=True, text=True, timeout=120)
                runs.append(r)
                lines = [json.loads(l) for l in r.stdout.splitlines() if l.strip()]
                msgs = [o for o in lines if "dkim" in o]
                o = msgs[0] if len(msgs) == 1 else {}
                dm = o.get("dmarc") or {}
                ov = dm.get("override")
                name = "%s, %s" % ("--no-cp" if extra else "control plane",
                                   "trusted" if want else "not trusted")
                T.check(r.returncode == 0 and o.get("arc", {}).get("result") == "pass" and
                        dm.get("result") == "fail",
                        "%s: ARC pass, DMARC fail: exit %d %r %r" %
                        (name, r.returncode, o.get("arc"), dm))
                if want:
                    T.check(bool(ov) and ov.get("by") == "arc" and
                            ov.get("sealer") == "sample.example" and
                            "policy.override=arc" in o.get("authres", ""),
                            "%s: the AAR's aligned dkim=pass overrides: %r" % (name, ov))
                else:
                    T.check(ov is None, "%s: no override: %r" % (name, ov))
            T.check("control plane policy: 1 verdicts" in runs[0].stderr and
                    "control plane" not in runs[1].stderr,
                    "one path each: %r / %r" % (runs[0].stderr[-300:], runs[1].stderr[-300:]))
            T.check(runs[0].stdout == runs[1].stdout and runs[0].stdout,
                    "trusted %s: the same bytes both ways:\n%s---\n%s" %
                    (trusted, runs[0].stdout, runs[1].stdout))
    finally:
        shutil.rmtree(d, ignore_errors=True)
    T.finish()


if __name__ == "__main__":
    main()
