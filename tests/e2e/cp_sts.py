#!/usr/bin/python3
"""wireseal-cp MTA-STS session verdicts and TLS-RPT reports, end to end.

Runs inside tests/harness/stsd.py (test CA, nginx serving the policies, a
TLS-RPT report receiver) inside tests/harness/dnsd.py (nsd with the
stsrig.net zone and the 2.0.192.in-addr.arpa reverse zone). A Python
dataplane stand-in (tests/lib/cpm.py) sends SESSION_RECORDs as the dataplane
will, and STS_QUERYs:

- a TLS 1.2 session whose certificate names the MX: pass (policy domain from
  the SNI through the MX RRset: sni-mx; then the same MX learned);
- the same with a certificate for another name, an expired one, an
  untrusted one: fail with the matching TLS-RPT result type, enforce;
- TLS 1.3 (no certificate visible): not-assessable, never pass;
- cleartext to an enforce domain without STARTTLS: fail,
  starttls-not-supported (policy domain from RCPT TO);
- an MX outside the policy: fail validation-failure /
  mtasts-policy-mx-mismatch, under enforce and under testing (not enforced);
- no policy: none; a policy host answering 404: none, reported as
  sts-policy-fetch-error; no RCPT, no SNI: the server IP's PTR (ptr-mx;
  TLS 1.3 to a domain without a policy counts as a no-policy-found success);
  sts.policy_domains (config); an unknown domain: not-assessable;
- the appliance's own client address: judged, never counted in reports;
- metrics per result; the inline hook (STS_QUERY -> STS_ANSWER);
- TLS-RPT: a session of the next day writes the first day's reports: one
  .json.gz per policy domain with RFC 8460 file names, checked against the
  shape of the fixture reports (conformance/tls-rpt) and for the exact
  counts; the cp-enforce report is POSTed (application/tlsrpt+gzip) to the
  rua=https: of its _smtp._tls record and moves to sent/; a receiver that
  answers 500 leaves the report in the spool, and it is POSTed again after
  tlsrpt.retry_s; a domain without an https: rua: no-endpoint/;
  `wiresealctl tlsrpt flush` writes the open day at once.
- restart: the policy cache file keeps the policies (no new fetch).
"""
import calendar
import glob
import gzip
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import cpm  # noqa: E402
import wstest  # noqa: E402

T = wstest.Tally("cp-sts")
CP = os.path.join(wstest.BUILD, "wireseal-cp")
CTL = os.path.join(wstest.BUILD, "wiresealctl")
Z = "stsrig.net"
DAY1 = calendar.timegm((2026, 11, 27, 0, 0, 0))
DAY2 = DAY1 + 86400
SUBMITTER = "reports.wireseal.example"
OWN = "192.0.2.200"


class Env:
    pass


E = Env()


def write_config():
    # unbound answers the TEST-NET-1 reverse zone itself (RFC 6303 default
    # local zones): let it go to nsd instead
    ub = os.path.join(E.dir, "unbound.conf")
    text = open(os.environ["WS_DNSD_UNBOUND_CONF"]).read()
    text = text.replace("server:\n", "server:\n  local-zone: \"2.0.192.in-addr.arpa.\" nodefault\n", 1)
    with open(ub, "w") as f:
        f.write(text)
    with open(E.conf, "w") as f:
        f.write("""# written by tests/e2e/cp_sts.py
cpm_socket: {d}/cpm.sock
control_socket: {d}/ctl.sock
dns:
  unbound_conf: {ub}
  timeout_ms: 1500
sinks:
  json_file: {d}/eve.json
metrics:
  port: 0
sts:
  workers: 1
  cache_file: {d}/sts-cache.sqlite
  ca_file: {ca}
  fetch_timeout_ms: 5000
  test_port: {port}
  policy_domains:
    192.0.2.77: cp-enforce.{z}
tlsrpt:
  spool_dir: {d}/spool
  organization_name: wireseal test
  contact_info: tlsrpt@{sub}
  submitter: {sub}
  own_addresses: [{own}]
  deliver: true
  ca_file: {ca}
  post_timeout_ms: 5000
  retry_s: 2
  test_port: {rua}
""".format(d=E.dir, ub=ub, ca=os.environ["WS_STS_CA"], port=os.environ["WS_STS_HTTPS_PORT"],
           rua=os.environ["WS_STS_RUA_PORT"], z=Z, sub=SUBMITTER, own=OWN))


def start_cp():
    log = open(os.path.join(E.dir, "cp.log"), "a")
    p = subprocess.Popen([CP, "-c", E.conf], stdout=log, stderr=log)
    for _ in range(200):
        if os.path.exists(os.path.join(E.dir, "cpm.sock")) and os.path.exists(os.path.join(E.dir, "ctl.sock")):
            break
        if p.poll() is not None:
            break
        time.sleep(0.05)
    return p


def ctl(*args):
    return subprocess.run([CTL, "-s", os.path.join(E.dir, "ctl.sock")] + list(args),
                          capture_output=True, text=True, timeout=30)


def events():
    out = {}
    path = os.path.join(E.dir, "eve.json")
    if os.path.exists(path):
        for line in open(path):
            if line.strip():
                o = json.loads(line)
                out.setdefault(o["record_id"], o)
    return out


def metric(text, name, labels):
    for line in text.splitlines():
        key, _, val = line.rpartition(" ")
        if key == name + labels:
            return float(val)
    return None


def cert(names, nb=DAY1 - 30 * 86400, na=DAY1 + 60 * 86400, trusted=1):
    return cpm.tls(version=cpm.TLS12, sni="mx.cp-enforce." + Z, cert_seen=1, cert_names=names,
                   not_before=nb, not_after=na, issuer="CN=wireseal test CA", chain_trusted=trusted)


ENF_MX = ("192.0.2.25", 25)


def sessions():
    """(record, expected sts fields) for day 1."""
    good = cert(["mx.cp-enforce." + Z])
    ts = lambda i: (DAY1 + 43200 + i) * 1000000  # noqa: E731
    cases = [
        (cpm.session(1, ts=ts(1), server=ENF_MX, tls_facts=good),
         dict(result="pass", reason=None, policy_domain="cp-enforce." + Z, policy_domain_source="sni-mx",
              mode="enforce", mx_host="mx.cp-enforce." + Z, mx_source="dns", mx_matched=True, cert="valid")),
        (cpm.session(2, ts=ts(2), server=ENF_MX, tls_facts=cert(["other.example.org"])),
         dict(result="fail", reason="certificate-host-mismatch", enforce=True, policy_domain_source="learned",
              cert="host-mismatch")),
        (cpm.session(3, ts=ts(3), server=ENF_MX, tls_facts=cert(["mx.cp-enforce." + Z], na=DAY1 - 1)),
         dict(result="fail", reason="certificate-expired", enforce=True)),
        (cpm.session(4, ts=ts(4), server=ENF_MX, tls_facts=cert(["*.cp-enforce." + Z], trusted=0)),
         dict(result="fail", reason="certificate-not-trusted", enforce=True)),
        (cpm.session(5, ts=ts(5), server=ENF_MX,
                     tls_facts=cpm.tls(version=cpm.TLS13, sni="mx.cp-enforce." + Z)),
         dict(result="not-assessable", reason=None, cert="not-assessable", mode="enforce")),
        (cpm.session(6, ts=ts(6), server=ENF_MX, offered=0, used=0, rcpt_domains=("cp-enforce." + Z,),
                     tls_facts=cpm.tls(client_hello=0, server_hello=0, version=0, version_offered_max=0, sni=""),
                     anomalies=(("starttls-missing", cpm.S2C, 41),)),
         dict(result="fail", reason="starttls-not-supported", enforce=True, policy_domain_source="rcpt",
              anomalies=["starttls-missing"])),
        (cpm.session(7, ts=ts(7), server=("192.0.2.66", 25), offered=1, used=0,
                     rcpt_domains=("cp-mismatch." + Z,), tls_facts=cpm.tls(client_hello=0, server_hello=0, sni="")),
         dict(result="fail", reason="validation-failure", reason_code="mtasts-policy-mx-mismatch", enforce=True,
              mx_host="evil.cp-mismatch." + Z, mx_source="dns", mx_matched=False)),
        (cpm.session(8, ts=ts(8), server=("192.0.2.99", 25), offered=1, used=0,
                     rcpt_domains=("cp-testing." + Z,), tls_facts=cpm.tls(client_hello=0, server_hello=0, sni="")),
         dict(result="fail", reason="validation-failure", reason_code="mtasts-policy-mx-mismatch", enforce=False,
              mode="testing", mx_host="192.0.2.99", mx_source="ip")),
        (cpm.session(9, ts=ts(9), server=("192.0.2.30", 25), offered=0, used=0,
                     rcpt_domains=("cp-nopolicy." + Z,), tls_facts=cpm.tls(client_hello=0, server_hello=0, sni="")),
         dict(result="none", reason=None, policy="none", mode=None, policy_domain="cp-nopolicy." + Z)),
        (cpm.session(10, ts=ts(10), client=(OWN, 40000), server=ENF_MX, tls_facts=good),
         dict(result="pass")),
        (cpm.session(11, ts=ts(11), server=("192.0.2.77", 25), tls_facts=good),
         dict(result="pass", policy_domain="cp-enforce." + Z, policy_domain_source="config", mx_source="sni")),
        (cpm.session(12, ts=ts(12), server=("192.0.2.27", 25), tls_facts=cpm.tls(version=cpm.TLS13, sni="")),
         dict(result="none", policy_domain="cp-ptr." + Z, policy_domain_source="ptr-mx",
              mx_host="mx.cp-ptr." + Z, mx_source="dns", mx_matched=None)),
        (cpm.session(13, ts=ts(13), server=("198.51.100.9", 25), tls_facts=cpm.tls(sni="mx.unknown.example")),
         dict(result="not-assessable", policy_domain=None, policy_domain_source="unknown")),
        (cpm.session(14, ts=ts(14), server=("192.0.2.31", 25), offered=1, used=1,
                     rcpt_domains=("cp-broken." + Z,), tls_facts=good),
         dict(result="none", policy="failed", fetch_error="sts-policy-fetch-error")),
        (cpm.session(15, ts=ts(15), server=ENF_MX, offered=1, used=1, rcpt_domains=("cp-enforce." + Z,),
                     tls_facts=cpm.tls(version=cpm.TLS12, sni="mx.cp-enforce." + Z, server_hello=0)),
         dict(result="fail", reason="validation-failure", reason_code="starttls-not-established")),
    ]
    return cases


# The shape of an RFC 8460 report: key -> JSON type, per level, read off the
# fixture reports (the RFC 8460 4.5 example as corrected by erratum 6241).
def shape_of(obj, path="", out=None):
    out = {} if out is None else out
    if isinstance(obj, dict):
        for k, v in obj.items():
            p = path + "/" + k
            out.setdefault(p, set()).add(type(v).__name__)
            shape_of(v, p, out)
    elif isinstance(obj, list):
        for v in obj:
            out.setdefault(path + "[]", set()).add(type(v).__name__)
            shape_of(v, path + "[]", out)
    return out


def fixture_shape():
    shape = {}
    for f in ("stalwart-mail-auth/rpt01.json", "parsedmarc/smtp_tls.json", "parsedmarc/mail.ru.json"):
        shape_of(json.load(open(os.path.join(wstest.SHARED, "conformance", "tls-rpt", f))), out=shape)
    return shape


REQUIRED = ["/organization-name", "/date-range", "/date-range/start-datetime", "/date-range/end-datetime",
            "/contact-info", "/report-id", "/policies", "/policies[]/policy", "/policies[]/policy/policy-type",
            "/policies[]/policy/policy-domain", "/policies[]/summary",
            "/policies[]/summary/total-successful-session-count",
            "/policies[]/summary/total-failure-session-count"]


def check_report(path, want):
    """want: {"type": policy-type, "ok": n, "fail": n, "failures": {result-type: n}, ...}"""
    name = os.path.basename(path)
    parts = name.split("!")
    T.check(len(parts) == 5 and parts[0] == SUBMITTER and parts[2] == str(DAY1) and
            parts[3] == str(DAY1 + 86399) and parts[4].endswith(".json.gz"),
            "RFC 8460 file name: %s" % name)
    rep = json.loads(gzip.open(path).read())
    shape = shape_of(rep)
    fx = fixture_shape()
    odd = {k: v for k, v in shape.items() if k not in fx or not v <= fx[k] | {"int"} and v != {"int"}}
    T.check(not odd, "%s: every field is one the fixture reports have, with the same JSON type: %r" % (name, odd))
    missing = [k for k in REQUIRED if k not in shape]
    T.check(not missing, "%s: required fields present: %r" % (name, missing))
    T.check(rep["date-range"] == {"start-datetime": "2026-11-27T00:00:00Z", "end-datetime": "2026-11-27T23:59:59Z"},
            "%s: one UTC day: %r" % (name, rep["date-range"]))
    T.check(rep["organization-name"] == "wireseal test" and rep["contact-info"] == "tlsrpt@" + SUBMITTER and
            rep["report-id"].endswith("@" + SUBMITTER), "%s: header fields" % name)
    pols = rep["policies"]
    T.check(len(pols) == 1, "%s: one policy: %d" % (name, len(pols)))
    p = pols[0]
    s = p["summary"]
    got_f = {}
    for d in p.get("failure-details", []):
        got_f[d["result-type"]] = got_f.get(d["result-type"], 0) + d["failed-session-count"]
    T.check(p["policy"]["policy-type"] == want["type"] and s["total-successful-session-count"] == want["ok"] and
            s["total-failure-session-count"] == want["fail"] and got_f == want["failures"],
            "%s: %s %d ok / %d failed %r: %r" % (name, want["type"], want["ok"], want["fail"], want["failures"], p))
    if "mx" in want:
        T.check(p["policy"].get("mx-host") == want["mx"] and
                "mode: " + want["mode"] in p["policy"].get("policy-string", []),
                "%s: mx-host array and policy-string: %r" % (name, p["policy"]))
    for d in p.get("failure-details", []):
        T.check(d.get("sending-mta-ip") == "192.0.2.10" and d.get("receiving-ip", "").startswith("192.0.2.") and
                d.get("receiving-mx-hostname"), "%s: failure detail addresses: %r" % (name, d))
    return rep


def main():
    for tool in (CP, CTL):
        if not os.access(tool, os.X_OK):
            print("SKIP: %s not built" % tool)
            return 77
    E.dir = tempfile.mkdtemp(prefix="ws-cpsts-")
    os.makedirs(os.path.join(E.dir, "spool"))
    E.conf = os.path.join(E.dir, "wireseal.yaml")
    write_config()
    proc = start_cp()
    try:
        run(proc)
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(10)
        if T.failed:
            sys.stderr.write(open(os.path.join(E.dir, "cp.log")).read()[-6000:])
        if os.environ.get("WS_KEEP") is None:
            shutil.rmtree(E.dir, ignore_errors=True)
    return T.finish()


def run(proc):
    T.check(proc.poll() is None, "wireseal-cp started")
    c = cpm.Client(os.path.join(E.dir, "cpm.sock"))
    cases = sessions()
    for rec, _ in cases:
        c.send(rec)
    n = len(cases)
    c.wait(lambda: c.acked >= n, 60)
    T.check(c.acked == n, "all %d session records acknowledged: %d" % (n, c.acked))
    ev = events()
    for i, (_, want) in enumerate(cases, 1):
        e = ev.get(i, {})
        sts = e.get("sts", {})
        bad = {k: (sts.get(k), v) for k, v in want.items() if sts.get(k) != v}
        T.check(e.get("event_type") == "session" and not bad, "session %d: %r (got %r)" % (i, bad, sts))
    e1 = ev.get(1, {})
    T.check(e1.get("tls", {}).get("version") == "TLSv1.2" and e1["tls"].get("cert_names") == ["mx.cp-enforce." + Z],
            "session event carries the TLS facts: %r" % e1.get("tls"))
    T.check(ev.get(6, {}).get("anomalies") == [{"name": "starttls-missing", "dir": "s2c", "offset": 41}],
            "session event carries the anomalies with direction and offset")

    # the inline hook
    c.send(cpm.sts_query(71, "cp-enforce." + Z), cpm.sts_query(72, "cp-nopolicy." + Z),
           cpm.sts_query(73, "CP-Testing." + Z + "."), cpm.sts_query(74, "cp-broken." + Z))
    c.wait(lambda: len(c.sts_answers) >= 4, 30)
    a = c.sts_answers
    T.check(a.get(71, {}).get("status") == "policy" and a[71]["mode"] == "enforce" and
            a[71]["mx"] == ["mx.cp-enforce." + Z] and 0 < a[71]["ttl"] <= 300,
            "STS_QUERY enforce domain: %r" % a.get(71))
    T.check(a.get(72, {}).get("status") == "none" and a[72]["ttl"] > 0, "STS_QUERY no policy: %r" % a.get(72))
    T.check(a.get(73, {}).get("status") == "policy" and a[73]["mode"] == "testing" and
            a[73]["mx"] == ["*.cp-testing." + Z], "STS_QUERY testing, name normalised: %r" % a.get(73))
    T.check(a.get(74, {}).get("status") == "tempfail" and a[74]["ttl"] == 0, "STS_QUERY failed fetch: %r" % a.get(74))

    st = ctl("stats").stdout
    res = {r: metric(st, "wireseal_cp_sts_sessions_total", '{result="%s"}' % r)
           for r in ("pass", "fail", "none", "not-assessable")}
    T.check(res == {"pass": 3, "fail": 7, "none": 3, "not-assessable": 2}, "metrics by result: %r" % res)
    T.check(metric(st, "wireseal_cp_sts_failures_total", '{result_type="certificate-expired"}') == 1 and
            metric(st, "wireseal_cp_sts_queries_total", "") == 4, "metrics by failure type and queries")
    T.check(metric(st, "wireseal_cp_tlsrpt_sessions_total", '{kind="own"}') == 1 and
            metric(st, "wireseal_cp_tlsrpt_sessions_total", '{kind="not_assessable"}') == 1 and
            metric(st, "wireseal_cp_tlsrpt_sessions_total", '{kind="unattributed"}') == 1,
            "TLS-RPT: own session, not-assessable and unattributed sessions not counted")
    spool = os.path.join(E.dir, "spool")
    T.check(not glob.glob(os.path.join(spool, "*.json.gz")), "no report before the day is over")

    # day 2: the first day's reports are written and delivered
    c.send(cpm.session(100, ts=(DAY2 + 60) * 1000000, server=ENF_MX, tls_facts=cert(["mx.cp-enforce." + Z])))
    c.wait(lambda: c.acked >= 100, 30)
    rua_dir = os.environ["WS_STS_RUA_DIR"]
    end = time.time() + 20
    while time.time() < end and not (glob.glob(os.path.join(spool, "sent", "*cp-enforce*")) and
                                     len(glob.glob(os.path.join(rua_dir, "*.body"))) >= 2):
        time.sleep(0.2)
    files = sorted(glob.glob(os.path.join(spool, "**", "*.json.gz"), recursive=True))
    by_dom = {os.path.basename(f).split("!")[1]: f for f in files}
    T.check(sorted(by_dom) == sorted("cp-%s.%s" % (d, Z) for d in ("enforce", "mismatch", "testing", "nopolicy",
                                                                      "broken", "ptr")),
            "one report per policy domain of day 1: %r" % sorted(by_dom))
    if "cp-enforce." + Z in by_dom:
        check_report(by_dom["cp-enforce." + Z],
                     {"type": "sts", "ok": 2, "fail": 5, "mode": "enforce", "mx": ["mx.cp-enforce." + Z],
                      "failures": {"certificate-host-mismatch": 1, "certificate-expired": 1,
                                   "certificate-not-trusted": 1, "starttls-not-supported": 1,
                                   "validation-failure": 1}})
        T.check("/sent/" in by_dom["cp-enforce." + Z], "the delivered report moved to sent/")
    if "cp-mismatch." + Z in by_dom:
        rep = check_report(by_dom["cp-mismatch." + Z], {"type": "sts", "ok": 0, "fail": 1,
                                                         "failures": {"validation-failure": 1}})
        fd = rep["policies"][0].get("failure-details", [{}])[0]
        T.check(fd.get("failure-reason-code") == "mtasts-policy-mx-mismatch" and
                fd.get("receiving-mx-hostname") == "evil.cp-mismatch." + Z, "mx mismatch detail: %r" % fd)
    if "cp-testing." + Z in by_dom:
        check_report(by_dom["cp-testing." + Z], {"type": "sts", "ok": 0, "fail": 1, "mode": "testing",
                                                  "mx": ["*.cp-testing." + Z], "failures": {"validation-failure": 1}})
        T.check(os.path.dirname(by_dom["cp-testing." + Z]) == spool,
                "a report the receiver refused (500) stays in the spool")
    T.check("/no-endpoint/" in by_dom.get("cp-nopolicy." + Z, ""),
            "a report without an https: rua moves to no-endpoint/")
    if "cp-nopolicy." + Z in by_dom:
        check_report(by_dom["cp-nopolicy." + Z], {"type": "no-policy-found", "ok": 0, "fail": 1,
                                                   "failures": {"starttls-not-supported": 1}})
    if "cp-ptr." + Z in by_dom:
        check_report(by_dom["cp-ptr." + Z], {"type": "no-policy-found", "ok": 1, "fail": 0, "failures": {}})
    if "cp-broken." + Z in by_dom:
        check_report(by_dom["cp-broken." + Z], {"type": "sts", "ok": 0, "fail": 1,
                                                 "failures": {"sts-policy-fetch-error": 1}})
    posts = {}
    for h in glob.glob(os.path.join(rua_dir, "*.headers")):
        head = open(h).read()
        posts[head.splitlines()[0]] = (head, open(h[:-len(".headers")] + ".body", "rb").read())
    p = posts.get("POST /tlsrpt/cp-enforce HTTP/1.1")
    T.check(p is not None and "content-type: application/tlsrpt+gzip" in p[0].lower() and
            "cp-enforce." + Z in by_dom and p[1] == open(by_dom["cp-enforce." + Z], "rb").read(),
            "the report was POSTed to rua=https: as application/tlsrpt+gzip: %r" % list(posts))
    T.check("POST /tlsrpt/fail HTTP/1.1" in posts, "the refusing receiver was tried")
    # tlsrpt.retry_s: the refused report is POSTed again
    end = time.time() + 15
    fails = 0
    while time.time() < end and fails < 2:
        fails = sum(1 for h in glob.glob(os.path.join(rua_dir, "*.headers"))
                    if open(h).readline().startswith("POST /tlsrpt/fail "))
        time.sleep(0.2)
    st = ctl("stats").stdout
    T.check(fails >= 2 and (metric(st, "wireseal_cp_tlsrpt_reports_total", '{outcome="retried"}') or 0) >= 1,
            "an undelivered report is tried again (%d POSTs)" % fails)

    # wiresealctl tlsrpt flush: the open day (2) now
    r = ctl("tlsrpt", "flush")
    T.check(r.returncode == 0 and "files 1" in r.stdout, "wiresealctl tlsrpt flush: %r %r" % (r.stdout, r.stderr))
    day2 = [f for f in glob.glob(os.path.join(spool, "**", "*.json.gz"), recursive=True) if "!%d!" % DAY2 in f]
    T.check(len(day2) == 1, "day 2 report written on demand: %r" % day2)
    c.close()

    # restart: the policies come from the cache file, nothing is fetched
    log_before = open(os.environ["WS_STS_ACCESS_LOG"]).read().count("cp-enforce")
    proc.terminate()
    proc.wait(10)
    proc2 = start_cp()
    try:
        c = cpm.Client(os.path.join(E.dir, "cpm.sock"))
        c.send(cpm.session(1, ts=(DAY2 + 120) * 1000000, server=ENF_MX, tls_facts=cert(["mx.cp-enforce." + Z])))
        c.wait(lambda: c.acked >= 1, 30)
        lines = [json.loads(l) for l in open(os.path.join(E.dir, "eve.json")) if l.strip()]
        last = lines[-1].get("sts", {})
        log_after = open(os.environ["WS_STS_ACCESS_LOG"]).read().count("cp-enforce")
        T.check(last.get("result") == "pass" and last.get("from_cache") is True and log_after == log_before,
                "after a restart the cached policy applies without a fetch: %r (fetches %d -> %d)" %
                (last, log_before, log_after))
        c.close()
    finally:
        proc2.terminate()
        proc2.wait(10)


if __name__ == "__main__":
    sys.exit(main())
