#!/usr/bin/python3
"""Real Postfix outbound deliveries (tests/data/captures/outbound, made by
make-outbound.sh) through `wireseal replay`, and on to wireseal-cp.

- replay --json: each capture's session line holds what expected.json says
  the capture shows (STARTTLS offered/used, TLS version, SNI, certificate
  names and issuer, cleartext RCPT domains);
- with an enforce policy for rcv.example naming mx.rcv.example (and
  --mx-map for the cleartext session, which has no SNI): TLS 1.2 with a
  certificate from a CA the replay was not given -> fail
  certificate-not-trusted; TLS 1.3 -> not-assessable (never pass);
  no STARTTLS -> fail starttls-not-supported, policy domain from RCPT TO;
- --spawn-cp: the session events in the control plane's sink carry the same
  TLS facts, anomalies and reply codes per command as the replay's session
  lines (the dataplane -> control plane SESSION_RECORD mapping).
"""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wstest  # noqa: E402

T = wstest.Tally("outbound-replay")
D = os.path.join(wstest.SOURCE, "tests", "data", "captures", "outbound")
ZONE = os.path.join(wstest.SOURCE, "tests", "data", "sample", "zone.db")
POLICY = "version: STSv1\nmode: enforce\nmx: mx.rcv.example\nmax_age: 86400\n"
WANT_STS = {
    "outbound-tls12.pcap": ("fail", "certificate-not-trusted", "mx-host", "not-trusted"),
    "outbound-tls13.pcap": ("not-assessable", "none", "mx-host", "not-assessable"),
    "outbound-nostarttls.pcap": ("fail", "starttls-not-supported", "rcpt", "not-assessable"),
}


def session_lines(stdout):
    return [json.loads(l)["session_record"] for l in stdout.splitlines() if '"session_record"' in l]


def main():
    exp = json.load(open(os.path.join(D, "expected.json")))
    tmp = tempfile.mkdtemp(prefix="ws-outbound-")
    pol = os.path.join(tmp, "rcv.policy")
    with open(pol, "w") as f:
        f.write(POLICY)
    by_cap = {}
    for cap, want in sorted(exp.items()):
        if cap.startswith("_"):
            continue
        r = subprocess.run([wstest.WIRESEAL, "replay", "--json", "--no-verify",
                            "--sts-policy", "rcv.example=" + pol, "--mx-map", "10.77.0.2=mx.rcv.example",
                            os.path.join(D, cap)], capture_output=True, text=True, timeout=60)
        ss = session_lines(r.stdout)
        if not T.check(r.returncode == 0 and len(ss) == 1, "%s: one session line (rc %d, %d lines) %s" %
                       (cap, r.returncode, len(ss), r.stderr[-300:])):
            continue
        s = ss[0]
        by_cap[cap] = s
        tls = s["tls"]
        got = {"client": s["client_ip"], "server": s["server_ip"],
               "starttls_offered": s["starttls_offered"], "starttls_used": s["starttls_used"],
               "tls_version": tls["version"], "cert_seen": tls["cert_seen"],
               "rcpt_domains_visible": s["rcpt_domains"]}
        if "sni" in want:
            got["sni"] = tls["sni"]
        if "cert_names" in want:
            got["cert_names"] = [n for n in tls.get("cert_names", []) if not n.startswith("CN=")]
        if "issuer" in want:
            got["issuer"] = tls.get("issuer")
        for k, v in got.items():
            T.check(want[k] == v, "%s: %s is %r, the capture shows %r" % (cap, k, v, want[k]))
        res, reason, src, cert = WANT_STS[cap]
        st = s["sts"]
        T.check((st["result"], st["reason"], st["policy_domain"], st["policy_domain_source"],
                 st["certificate"]) == (res, reason, "rcv.example", src, cert),
                "%s: sts %r, want %r" % (cap, st, (res, reason, src, cert)))
        T.check(st["result"] != "pass", "%s: never pass without the CA" % cap)

    # on to the control plane: the SESSION_RECORD carries the same facts
    sink = os.path.join(tmp, "eve.json")
    caps = [os.path.join(D, c) for c in sorted(by_cap)]
    r = subprocess.run([wstest.WIRESEAL, "replay", "--json", "--no-verify", "--zone", ZONE,
                        "--spawn-cp", sink] + caps, capture_output=True, text=True, timeout=120)
    T.check(r.returncode == 0, "--spawn-cp exits 0: %s" % r.stderr[-400:])
    ev = []
    if os.path.exists(sink):
        ev = [json.loads(l) for l in open(sink) if l.strip()]
    sess = {(e["src_ip"], e["src_port"]): e for e in ev if e.get("event_type") == "session"}
    T.check(len(sess) == len(by_cap), "sink holds %d session events, want %d" % (len(sess), len(by_cap)))
    for cap, s in sorted(by_cap.items()):
        e = sess.get((s["client_ip"], s["client_port"]))
        if not T.check(e is not None, "%s: its session event is in the sink" % cap):
            continue
        a, b = e["tls"], s["tls"]
        for k in ("client_hello", "server_hello", "version", "version_offered_max", "resumed", "sni",
                  "cert_seen", "cert_names", "issuer", "chain_trusted"):
            T.check(a.get(k) == b.get(k), "%s: sink tls.%s %r, replay %r" % (cap, k, a.get(k), b.get(k)))
        T.check(e["smtp"]["rcpt_domains"] == s["rcpt_domains"] and
                e["smtp"]["starttls_offered"] == s["starttls_offered"] and
                e["smtp"]["starttls_used"] == s["starttls_used"],
                "%s: sink smtp facts %r" % (cap, e["smtp"]))
        # the reply code per command, in order, and how many were not kept
        T.check(len(s.get("replies", [])) > 2 and e["smtp"].get("replies") == s["replies"] and
                e["smtp"].get("replies_over") == s.get("replies_over"),
                "%s: sink replies %r, replay %r" % (cap, e["smtp"].get("replies"), s.get("replies")))
        # the dataplane's own wire signals (the policy-dependent ones are the
        # control plane's to add)
        names = sorted(x["name"] for x in e["anomalies"])
        T.check(all(n in [x["name"] for x in s["anomalies"]] for n in names),
                "%s: sink anomalies %r within the replay's %r" % (cap, names, s["anomalies"]))
    T.finish()


if __name__ == "__main__":
    main()
