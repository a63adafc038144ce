#!/usr/bin/python3
"""wireseal-cp end to end, with a Python dataplane stand-in (tests/lib/cpm.py)
and a real nsd on loopback (tests/harness/dnsd.py):

- configuration: --check-config accepts the sample and refuses errors by line;
- start as root with `user: nobody`: the daemon runs as uid 65534, says
  READY=1 on $NOTIFY_SOCKET, the control socket is mode 0660;
- handshake: a version mismatch, a message before HELLO and garbage after it
  are each answered with ERROR and the connection is closed;
- key service: found / missing / invalid answers with TTLs, not cached at
  start, cached after (metrics count the hits);
- policy: SPF and DMARC verdicts, ARC override by a trusted sealer, a
  per-domain override; the same records again are answered from the cache;
- metrics scraped with curl and checked by `promtool check metrics`;
- wiresealctl status / stats / cache show / cache flush / reload (a bad
  configuration is refused and the daemon keeps running);
- rotation: the sink is moved away, SIGHUP, new events go to a new file;
- kill -9 mid-stream and restart: every ACKed record is in the sink, the
  client re-sends the rest after reconnecting, all arrive (at-least-once);
- slow DNS (blackhole): key requests park up to keys.max_parked, the rest
  are refused at once, all answered tempfail within the timeout;
- DNS server stopped: temperror verdicts and tempfail keys, no hang.
"""
import json
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import cpm  # noqa: E402
import wstest  # noqa: E402

T = wstest.Tally("cp-daemon")
CP = os.path.join(wstest.BUILD, "wireseal-cp")
CTL = os.path.join(wstest.BUILD, "wiresealctl")
SAMPLE_CONF = os.path.join(wstest.SOURCE, "deploy", "wireseal.yaml")
ED_KEY = "v=DKIM1; k=ed25519; p=GU1ZXYjRcuOwvWo1lZj6hM+5U3VnE4HgafNg5DqtMEc="

ORG_ZONE = """$ORIGIN org.
$TTL 300
@ IN SOA ns1.org. hostmaster.org. ( 1 3600 600 86400 60 )
  NS ns1.org.
ns1 A 127.0.0.1
sel._domainkey.example TXT "%s"
bad._domainkey.example TXT "v=DKIM1; k=rsa; p=!!!notbase64"
example TXT "v=spf1 ip4:192.0.2.0/24 -all"
_dmarc.example TXT "v=DMARC1; p=reject"
override TXT "v=spf1 -all"
_dmarc.override TXT "v=DMARC1; p=reject"
""" % ED_KEY

NET_ZONE = """$ORIGIN net.
$TTL 300
@ IN SOA ns1.net. hostmaster.net. ( 1 3600 600 86400 60 )
  NS ns1.net.
ns1 A 127.0.0.1
example TXT "v=spf1 -all"
_dmarc.example TXT "v=DMARC1; p=quarantine"
fwd.example TXT "v=spf1 -all"
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Env:
    pass


E = Env()


def write_config(extra=""):
    with open(E.conf, "w") as f:
        f.write("""# written by tests/e2e/cp_daemon.py
user: nobody
cpm_socket: {d}/cpm.sock
control_socket: {d}/ctl.sock
dns:
  unbound_conf: {ub}
  timeout_ms: 1500
cache:
  max_ttl: 3600
keys:
  max_parked: 5
policy:
  authserv_id: mx.test
  trusted_arc_sealers: [fwd.example.net]
  domain_overrides:
    override.org: none
sinks:
  json_file: {d}/log/eve.json
  syslog: true
  syslog_ident: wstest
  syslog_socket: {d}/syslog.sock
metrics:
  listen: 127.0.0.1
  port: {port}
{extra}""".format(d=E.dir, ub=E.dns["WS_DNSD_UNBOUND_CONF"], port=E.port, extra=extra))


def start_cp():
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    npath = os.path.join(E.dir, "notify-%d.sock" % time.time_ns())
    notify.bind(npath)
    os.chmod(npath, 0o777)  # the daemon says STOPPING=1 as nobody
    notify.settimeout(10)
    env = dict(os.environ, NOTIFY_SOCKET=npath)
    log = open(os.path.join(E.dir, "cp.log"), "a")
    p = subprocess.Popen([CP, "-c", E.conf], stdout=log, stderr=log, env=env)
    try:
        msg = notify.recv(4096).decode()
    except socket.timeout:
        msg = ""
    E.notify = notify
    return p, msg


def ctl(*args):
    return subprocess.run([CTL, "-s", os.path.join(E.dir, "ctl.sock")] + list(args),
                          capture_output=True, text=True, timeout=20)


def scrape():
    p = subprocess.run(["curl", "-sf", "http://127.0.0.1:%d/metrics" % E.port], capture_output=True,
                       text=True, timeout=20)
    return p.stdout if p.returncode == 0 else ""


def metric(text, name, labels=None):
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        key, _, val = line.rpartition(" ")
        if key == name + (labels or ""):
            return float(val)
    return None


def events():
    out = {}
    path = os.path.join(E.dir, "log", "eve.json")
    if not os.path.exists(path):
        return out, []
    lines = []
    with open(path) as f:
        for line in f:
            if line.strip():
                o = json.loads(line)
                lines.append(o)
                out.setdefault(o["record_id"], o)
    return out, lines


def connect():
    c = cpm.Client(os.path.join(E.dir, "cpm.sock"))
    T.check(c.peer_hello == {"magic": cpm.MAGIC, "version": cpm.VERSION, "role": cpm.ROLE_CP},
            "control plane HELLO: %r" % c.peer_hello)
    return c


def check_config():
    # the sample as shipped, with the user this machine has
    sample = os.path.join(E.dir, "sample.yaml")
    with open(sample, "w") as f:
        f.write(open(SAMPLE_CONF).read().replace("\nuser: wireseal\n", "\nuser: nobody\n"))
    p = subprocess.run([CP, "-c", sample, "--check-config"], capture_output=True, text=True)
    T.check(p.returncode == 0, "sample deploy/wireseal.yaml passes --check-config: %s" % p.stderr)
    p = subprocess.run([CP, "-c", SAMPLE_CONF.replace(".yaml", ".nosuch"), "--check-config"],
                       capture_output=True, text=True)
    T.check(p.returncode == 1 and "No such file" in p.stderr, "missing config file named")
    bad = os.path.join(E.dir, "bad.yaml")
    for text, want in (("dns:\n  timeout_ms: soon\n", "line 2"), ("nosuch: 1\n", "unknown directive"),
                       ("policy:\n  org_domain: psl2\n", "org_domain"),
                       ("metrics:\n  port: 1\nmetrics:\n  port: 2\n", "duplicate"),
                       ("user: [a\n", "line"), ("user: no-such-user-here\n", "no such user"),
                       ("metrics:\n  listen: localhost\n", "not an IP address"),
                       ("dns:\n  zone_file: /z\n  servers: [127.0.0.1]\n", "exclude each other"),
                       ("policy:\n  domain_overrides:\n    a.example: allow\n", "not none, quarantine"),
                       ("sts:\n  workers: 0\n", "sts.workers"),
                       ("tlsrpt:\n  own_addresses: [mta.example]\n", "own_addresses")):
        with open(bad, "w") as f:
            f.write(text)
        p = subprocess.run([CP, "-c", bad, "--check-config"], capture_output=True, text=True)
        T.check(p.returncode == 1 and want in p.stderr, "bad config %r refused naming %r: %r" % (text, want, p.stderr))
    p = subprocess.run([CP, "--directives"], capture_output=True, text=True)
    T.check(p.returncode == 0 and "keys.max_parked" in p.stdout and "policy.domain_overrides" in p.stdout,
            "--directives lists the table")


def handshake_refusals():
    path = os.path.join(E.dir, "cpm.sock")
    c = cpm.Client(path, version=cpm.VERSION + 1)
    c.wait(lambda: c.errors or c.closed, 5)
    T.check(c.errors and c.errors[0]["code"] == 1 and "version" in c.errors[0]["text"],
            "version mismatch answered with ERROR: %r" % c.errors)
    T.check(c.wait(lambda: c.closed, 5), "version mismatch: connection closed")
    c = cpm.Client(path, do_hello=False)
    c.send(cpm.key_request(1, "sel._domainkey.example.org"))
    c.wait(lambda: c.closed, 5)
    T.check(c.closed and c.errors and c.errors[0]["code"] == 4, "message before HELLO refused: %r" % c.errors)
    c = connect()
    c.send(b"\x00\x03\x00\x00\x00\x40garbage")
    c.wait(lambda: c.closed, 5)
    T.check(c.closed and c.errors and c.errors[0]["code"] == 5, "garbage: ERROR malformed, closed: %r" % c.errors)
    c = connect()
    c.send(cpm.record(cpm.ACK, b"\x00" * 9))  # one trailing byte
    c.wait(lambda: c.closed, 5)
    T.check(c.closed and c.errors and "trailing" in c.errors[0]["text"], "trailing byte refused: %r" % c.errors)
    c = connect()
    c.send(cpm.record(cpm.ACK, b"\x00" * 8) + b"\x00" * (cpm.MAX_DATAGRAM - 14 + 1))
    c.wait(lambda: c.closed, 5)
    T.check(c.closed and c.errors and "CPM_MAX_DATAGRAM" in c.errors[0]["text"],
            "a datagram over CPM_MAX_DATAGRAM is refused: %r" % c.errors)
    c = connect()
    c.send(cpm.record(cpm.ACK, b"\x00" * 8) + cpm.record(cpm.ACK, b"\x00" * 8)[:-1])
    c.wait(lambda: c.closed, 5)
    T.check(c.closed and c.errors and c.errors[0]["code"] == 5, "a truncated second record is refused")
    m = scrape()
    T.check((metric(m, "wireseal_cp_protocol_errors_total") or 0) >= 4, "protocol errors counted")
    T.check((metric(m, "wireseal_cp_handshake_refused_total") or 0) >= 2, "refused handshakes counted")


def keys_and_verdicts():
    m0 = scrape()
    T.check(metric(m0, "wireseal_cp_dns_cache_entries") == 0, "no key cached at start")
    c = connect()
    names = {1: "sel._domainkey.example.org", 2: "nokey._domainkey.example.org",
             3: "bad._domainkey.example.org"}
    c.send(*[cpm.key_request(i, n) for i, n in names.items()])
    c.wait(lambda: len(c.answers) == 3)
    a = c.answers
    T.check(a.get(1, {}).get("status") == "found" and a[1]["record"] == ED_KEY and 0 < a[1]["ttl"] <= 300,
            "key found with its record and TTL: %r" % a.get(1))
    T.check(a.get(2, {}).get("status") == "missing" and 0 < a[2]["ttl"] <= 60, "absent key: missing, negative TTL: %r" % a.get(2))
    T.check(a.get(3, {}).get("status") == "invalid", "unparsable key: invalid: %r" % a.get(3))
    m1 = scrape()
    q1 = metric(m1, "wireseal_cp_dns_queries_total")
    T.check(q1 == 3, "three DNS queries for three keys: %r" % q1)

    dk_pass = [("example.org", "sel", "ed25519-sha256", "pass", "")]
    c.send(cpm.message(1, dkim=dk_pass),
           cpm.message(2, client=("203.0.113.5", 5000), helo="h.example.net", mail_from="bob@example.net",
                       from_=("bob@example.net",)),
           cpm.message(3, client=("203.0.113.5", 5000), mail_from="alice@example.org", arc_chain=cpm.ARC_PASS,
                       arc=[(1, "fwd.example.net", "i=1; fwd.example.net; spf=pass smtp.mailfrom=alice@example.org;"
                             " dmarc=pass header.from=example.org")]),
           cpm.message(4, client=("203.0.113.5", 5000), mail_from="x@override.org", from_=("x@override.org",)),
           cpm.session(5, anomalies=("starttls_stripped",)))
    c.wait(lambda: c.acked >= 5)
    T.check(c.acked == 5, "records 1-5 acknowledged: %d" % c.acked)
    ev, _ = events()
    e1, e2, e3, e4, e5 = (ev.get(i, {}) for i in range(1, 6))
    v1 = e1.get("verdict", {})
    T.check(e1.get("event_type") == "message" and v1.get("spf", {}).get("result") == "pass" and
            v1.get("dmarc", {}).get("result") == "pass" and v1["dmarc"].get("disposition") == "none",
            "record 1: spf pass, dmarc pass: %r" % v1)
    T.check("dkim=pass" in v1.get("authres", "") and "spf=pass" in v1.get("authres", "") and
            v1.get("authres", "").startswith("mx.test;"), "record 1: Authentication-Results: %r" % v1.get("authres"))
    T.check(v1.get("dkim") == [{"d": "example.org", "s": "sel", "a": "ed25519-sha256", "result": "pass", "reason": ""}],
            "record 1: the verify JSON dkim list")
    T.check(e1.get("src_ip") == "192.0.2.10" and e1.get("dest_port") == 25 and e1.get("flow_id") == 1 and
            e1.get("smtp", {}).get("rcpt_to") == ["bob@example.net"] and "T" in e1.get("timestamp", ""),
            "record 1: EVE fields")
    v2 = e2.get("verdict", {})
    T.check(v2.get("spf", {}).get("result") == "fail" and v2.get("dmarc", {}).get("result") == "fail" and
            v2["dmarc"].get("disposition") == "quarantine", "record 2: spf fail, dmarc fail, quarantine: %r" % v2)
    v3 = e3.get("verdict", {}).get("dmarc", {})
    T.check(v3.get("result") == "fail" and v3.get("disposition") == "none" and
            v3.get("arc_override", {}).get("sealer") == "fwd.example.net",
            "record 3: DMARC fail overridden by the trusted ARC sealer: %r" % v3)
    v4 = e4.get("verdict", {}).get("dmarc", {})
    T.check(v4.get("result") == "fail" and v4.get("override") == "none" and v4.get("disposition") == "none",
            "record 4: per-domain override: %r" % v4)
    lines = []
    try:
        while len(lines) < 5:
            lines.append(E.syslog.recv(4096).decode())
    except socket.timeout:
        pass
    T.check(len(lines) == 5 and all(l.startswith("<22>") and "wstest[" in l for l in lines) and
            any("message record_id=1 " in l and "dmarc=pass" in l for l in lines) and
            any("session record_id=5 " in l for l in lines),
            "one syslog line per record: %r" % lines[:2])
    T.check(e5.get("event_type") == "session" and
            e5.get("anomalies") == [{"name": "starttls_stripped", "dir": "c2s", "offset": 0}] and
            e5.get("tls", {}).get("sni") == "mx.example.net" and
            e5.get("sts", {}).get("result") == "not-assessable" and
            e5.get("sts", {}).get("policy_domain_source") == "unknown",
            "record 5: session event (no policy domain to be found: not-assessable): %r" % e5)

    # the same traffic again: keys and policy records come from the cache
    m2 = scrape()
    q2, h2 = metric(m2, "wireseal_cp_dns_queries_total"), metric(m2, "wireseal_cp_dns_cache_hits_total")
    c.send(*[cpm.key_request(10 + i, n) for i, n in names.items()])
    c.send(cpm.message(6, dkim=dk_pass),
           cpm.message(7, client=("203.0.113.5", 5000), helo="h.example.net", mail_from="bob@example.net",
                       from_=("bob@example.net",), verdict_wanted=1),
           cpm.message(8, client=("203.0.113.5", 5000), helo="h.example.net", mail_from="bob@example.net",
                       from_=("bob@example.net",), verdict_wanted=1, gap="capture-gap"))
    c.wait(lambda: c.acked >= 8 and len(c.answers) == 6)
    # VERDICT: only for the records that asked, before the ACK covering them
    vd = c.verdicts.get(7, {})
    T.check(sorted(c.verdicts) == [7, 8] and not any(c.verdict_acked.values()),
            "VERDICTs for records 7 and 8 only, each before its ACK: %r %r" % (sorted(c.verdicts), c.verdict_acked))
    T.check(vd.get("status") == "done" and vd.get("spf_ran") == 1 and vd["spf"]["result"] == "fail" and
            vd["spf"]["domain"] == "example.net" and vd.get("mail_from") == "bob@example.net" and
            vd.get("helo_name") == "h.example.net" and vd.get("helo_ran") == 1 and
            vd["helo"]["domain"] == "h.example.net",
            "VERDICT 7: SPF fail for the MAIL FROM, the HELO identity checked beside it: %r" % vd)
    T.check(vd.get("dmarc", {}).get("ran") == 1 and vd["dmarc"]["result"] == "fail" and
            vd["dmarc"]["disposition"] == "quarantine" and vd["dmarc"]["from_domain"] == "example.net" and
            vd.get("disposition") == "quarantine" and vd.get("authres", "").startswith("mx.test;") and
            "dmarc=fail" in vd.get("authres", ""),
            "VERDICT 7: DMARC fail, quarantine, the A-R value: %r" % vd.get("dmarc"))
    v8 = c.verdicts.get(8, {}).get("dmarc", {})
    T.check(v8.get("result") == "temperror" and v8.get("reason", "").startswith("capture-gap") and
            v8.get("disposition") == "none",
            "VERDICT 8 (bytes lost): DMARC temperror with the gap as reason, never a fail: %r" % v8)
    m3 = scrape()
    q3, h3 = metric(m3, "wireseal_cp_dns_queries_total"), metric(m3, "wireseal_cp_dns_cache_hits_total")
    T.check(q3 == q2, "no new DNS query for records seen before: %r -> %r" % (q2, q3))
    T.check(h3 >= h2 + 3 + 2, "cache hits counted: %r -> %r" % (h2, h3))
    T.check(c.answers.get(11, {}).get("status") == "found" and c.answers[11]["ttl"] <= a[1]["ttl"],
            "cached key answer, TTL counting down")
    ev, _ = events()
    T.check(ev.get(6, {}).get("verdict", {}).get("dmarc", {}).get("result") == "pass" and
            ev.get(7, {}).get("verdict", {}).get("dmarc", {}).get("disposition") == "quarantine" and
            ev.get(8, {}).get("verdict", {}).get("dmarc", {}).get("result") == "temperror",
            "same verdicts from the cache; the gap's temperror in the sink too")
    c.send(cpm.stats([("rx_packets", 12345), ("flows_active", 7)]))
    time.sleep(0.3)
    m4 = scrape()
    T.check(metric(m4, "wireseal_dataplane_stat", '{name="rx_packets"}') == 12345,
            "dataplane STATS relayed to metrics")
    T.check(metric(m4, "wireseal_cp_verdicts_total", '{method="dmarc",result="pass"}') == 2 and
            metric(m4, "wireseal_cp_verdicts_total", '{method="spf",result="fail"}') >= 4,
            "verdicts by result in metrics")
    # CP_MAX_DP_STATS (1024) distinct dataplane counters are kept, more are not
    for k in range(5):
        c.send(cpm.stats([("dp_c%d" % (k * 256 + i), i) for i in range(256)]))
    time.sleep(0.3)
    m5 = scrape()
    n = len([l for l in m5.splitlines() if l.startswith("wireseal_dataplane_stat{")])
    T.check(n == 1024, "dataplane counters capped at 1024: %d" % n)
    # a dataplane that sends but never reads: answers pile up to CP_MAX_OUTQ
    # (16 MiB), then the control plane closes the connection
    slow = connect()
    one = cpm.key_request(1, "sel._domainkey.example.org")
    batch = one * (cpm.MAX_DATAGRAM // len(one))
    end, closed = time.time() + 20, False
    try:
        for _ in range(200000 // (cpm.MAX_DATAGRAM // len(one)) + 1):
            slow.send(batch)
    except (ConnectionResetError, BrokenPipeError):
        closed = True  # cut off while still sending: the cap was reached first
    slow.sock.settimeout(1)
    while time.time() < end and not closed:
        try:
            closed = slow.sock.recv(cpm.MAX_DATAGRAM) == b""
        except socket.timeout:
            pass
        except ConnectionResetError:
            closed = True
    T.check(closed, "a dataplane that does not read is disconnected at CP_MAX_OUTQ")
    slow.close()
    prom = os.path.join(E.dir, "metrics.txt")
    with open(prom, "w") as f:
        f.write(m4)
    p = subprocess.run(["promtool", "check", "metrics"], stdin=open(prom), capture_output=True, text=True)
    T.check(p.returncode == 0, "promtool check metrics: %s%s" % (p.stdout, p.stderr))
    c.close()


def control():
    st = os.stat(os.path.join(E.dir, "ctl.sock"))
    T.check(stat.S_IMODE(st.st_mode) == 0o660, "control socket mode 0660: %o" % stat.S_IMODE(st.st_mode))
    p = ctl("status")
    T.check(p.returncode == 0 and "uid 65534" in p.stdout and "protocol %d" % cpm.VERSION in p.stdout, "status: %r" % p.stdout)
    p = ctl("stats")
    T.check(p.returncode == 0 and "wireseal_cp_dns_cache_hits_total" in p.stdout, "stats")
    p = ctl("cache", "show")
    T.check(p.returncode == 0 and "sel._domainkey.example.org TXT ok" in p.stdout, "cache show: %r" % p.stdout)
    p = ctl("cache", "flush")
    T.check(p.returncode == 0 and "flushed" in p.stdout and int(p.stdout.split()[-1]) >= 3, "cache flush: %r" % p.stdout)
    T.check(metric(scrape(), "wireseal_cp_dns_cache_entries") == 0, "cache empty after flush")
    def raw(line):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(os.path.join(E.dir, "ctl.sock"))
            s.sendall(line)
            out = b""
            while True:
                d = s.recv(4096)
                if not d:
                    return out.decode()
                out += d
    T.check(raw(b"x" * 255 + b"\n").startswith("error: unknown command"), "a 256-byte line (CTL_LINE_MAX) is read whole")
    T.check(raw(b"x" * 256 + b"\n").startswith("error: command line too long"), "one byte more is refused")
    p = ctl("x" * 200)
    T.check(p.returncode == 1 and "unknown command" in p.stderr, "wiresealctl sends a 200-byte command")
    p = ctl("x" * 201)
    T.check(p.returncode == 2 and "too long" in p.stderr, "wiresealctl refuses 201 bytes")
    p = ctl("nonsense")
    T.check(p.returncode == 1 and "unknown command" in p.stderr, "unknown command refused")
    p = ctl("reload")
    T.check(p.returncode == 0 and "reloaded" in p.stdout, "reload: %r %r" % (p.stdout, p.stderr))
    good = open(E.conf).read()
    with open(E.conf, "a") as f:
        f.write("bogus_directive: 1\n")
    p = ctl("reload")
    T.check(p.returncode == 1 and "bogus_directive" in p.stderr, "bad reload refused: %r" % p.stderr)
    with open(E.conf, "w") as f:
        f.write(good)
    T.check(ctl("status").returncode == 0, "daemon still up after a refused reload")


def rotation(proc):
    log = os.path.join(E.dir, "log", "eve.json")
    c = connect()
    c.send(cpm.key_request(77, "sel._domainkey.example.org"))
    c.wait(lambda: 77 in c.answers)
    before = metric(scrape(), "wireseal_cp_dns_cache_entries")
    os.rename(log, log + ".1")
    proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    notes = []
    E.notify.settimeout(0.5)
    try:
        while True:
            notes.append(E.notify.recv(4096).decode())
    except socket.timeout:
        pass
    E.notify.settimeout(10)
    T.check(notes[-2:] == ["RELOADING=1", "READY=1"], "reload told to systemd: %r" % notes[-4:])
    after = scrape()
    T.check(before >= 1 and metric(after, "wireseal_cp_dns_cache_entries") == before and
            metric(after, "wireseal_cp_reloads_total") >= 2, "SIGHUP keeps the cache (%r entries)" % before)
    c.send(cpm.session(1000))
    c.wait(lambda: c.acked >= 1000)
    T.check(c.acked == 1000 and not c.closed, "the dataplane connection survives SIGHUP")
    c.close()
    c = connect()
    c.send(cpm.session(5), cpm.session(5))
    c.wait(lambda: c.closed, 5)
    T.check(c.closed and c.errors and c.errors[0]["code"] == 6, "a repeated record id is refused (ORDER): %r" % c.errors)
    T.check(os.path.exists(log) and '"record_id":1000' in open(log).read() and
            '"record_id":1000' not in open(log + ".1").read(), "after SIGHUP the sink writes a new file")
    T.check(os.stat(log).st_uid == 65534, "the new sink file belongs to nobody")


def crash(proc):
    c = connect()
    ids = list(range(2000, 2200))
    recs = {i: cpm.message(i, flow=i, mail_from="alice@example.org", dkim=[("example.org", "sel", "ed25519-sha256", "pass", "")])
            if i % 2 else cpm.session(i, flow=i) for i in ids}
    # one record whose SPF lookup goes to the blackhole: it holds the ACKs
    # after it for the DNS timeout, so the kill lands mid-stream
    recs[2101] = cpm.message(2101, flow=2101, mail_from="z@slow.example.net", from_=("z@slow.example.net",))
    sent = 0
    for i in ids[:150]:
        c.send(recs[i])
        sent = i
    c.wait(lambda: c.acked >= 2050)
    time.sleep(0.2)  # the records after 2101 get written, not ACKed
    acked = c.acked
    T.check(2050 <= acked < 2101, "killed mid-stream: ACKed up to %d of %d sent" % (acked, sent))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    ev, _ = events()
    missing = [i for i in ids if i <= acked and i not in ev]
    T.check(acked >= 2050 and not missing, "after kill -9 every ACKed record (<= %d) is in the sink; missing %r" % (acked, missing[:5]))
    proc, msg = start_cp()
    T.check("READY=1" in msg, "restarted")
    c2 = connect()
    for i in ids:
        if i > acked:  # the dataplane re-sends what was not acknowledged
            c2.send(recs[i])
    c2.wait(lambda: c2.acked >= ids[-1], 30)
    T.check(c2.acked == ids[-1], "all re-sent records acknowledged: %d" % c2.acked)
    ev, lines = events()
    T.check(all(i in ev for i in ids), "every record is in the sink once re-sent (at-least-once)")
    dup = len([o for o in lines if 2000 <= o["record_id"] < 2200]) - len(ids)
    T.check(dup == 0, "no duplicate lines: the restarted sink knew the ids at its file's end (%d)" % dup)
    T.check((metric(scrape(), "wireseal_cp_sink_duplicates_total") or 0) > 0,
            "re-sent records written before the crash were recognised")
    print("cp-daemon: crash at ACK %d of %d sent: %d duplicate lines" % (acked, sent, dup))
    c.close()
    c2.close()
    return proc


def slow_dns():
    c = connect()
    t0 = time.time()
    c.send(*[cpm.key_request(500 + i, "k%d._domainkey.slow.example.net" % i) for i in range(8)])
    time.sleep(0.3)
    m = scrape()
    T.check(metric(m, "wireseal_cp_key_requests_parked") == 5, "5 key requests parked (keys.max_parked)")
    c.wait(lambda: len(c.answers) >= 3, 2)
    refused = [a for a in c.answers.values() if "busy" in a["record"]]
    T.check(len(refused) == 3 and all(a["status"] == "tempfail" for a in refused),
            "past the limit: tempfail at once: %r" % list(c.answers.values()))
    c.wait(lambda: len(c.answers) == 8, 10)
    took = time.time() - t0
    T.check(len(c.answers) == 8 and all(a["status"] == "tempfail" for a in c.answers.values()),
            "every parked request answered tempfail")
    T.check(took < 1.5 + 2.5, "within the DNS timeout: %.1fs" % took)
    m = scrape()
    T.check(metric(m, "wireseal_cp_key_requests_parked") == 0 and
            metric(m, "wireseal_cp_key_requests_refused_total") == 3 and
            metric(m, "wireseal_cp_dns_timeouts_total") >= 5, "parking counters moved")
    c.close()


def dns_down():
    E.dnsd.stdin.close()
    E.dnsd.wait(timeout=20)
    c = connect()
    t0 = time.time()
    c.send(cpm.key_request(900, "other._domainkey.example.net"),
           cpm.message(3000, client=("203.0.113.9", 1), mail_from="z@example.net", from_=("z@example.net",)))
    c.wait(lambda: c.acked >= 3000 and 900 in c.answers, 15)
    took = time.time() - t0
    T.check(c.answers.get(900, {}).get("status") == "tempfail", "DNS down: key tempfail: %r" % c.answers.get(900))
    ev, _ = events()
    v = ev.get(3000, {}).get("verdict", {})
    T.check(v.get("spf", {}).get("result") == "temperror" and v.get("dmarc", {}).get("result") == "temperror",
            "DNS down: temperror verdicts: %r" % v)
    T.check(took < 10, "no hang: %.1fs" % took)
    c.close()


def main():
    if os.geteuid() != 0:
        print("cp-daemon: SKIP: needs root (privilege drop to nobody)")
        sys.exit(77)
    for tool in ("curl", "promtool"):
        if not shutil.which(tool):
            print("cp-daemon: FAIL: %s missing (deploy/install-deps.sh)" % tool)
            sys.exit(1)
    E.dir = tempfile.mkdtemp(prefix="ws-cp-")
    os.chmod(E.dir, 0o755)
    os.mkdir(os.path.join(E.dir, "log"))
    nobody = pwd.getpwnam("nobody")
    os.chown(os.path.join(E.dir, "log"), nobody.pw_uid, nobody.pw_gid)
    zones = []
    for name, text in (("org", ORG_ZONE), ("net", NET_ZONE)):
        path = os.path.join(E.dir, name + ".zone")
        with open(path, "w") as f:
            f.write(text)
        zones += ["--zone", "%s=%s" % (name, path)]
    E.dnsd, E.dns = wstest.dnsd_start(zones + ["--blackhole", "slow.example.net"])
    if E.dns is None:
        print("cp-daemon: FAIL: dnsd.py did not start (rc %r)" % E.dnsd.returncode)
        sys.exit(1)
    E.syslog = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    E.syslog.bind(os.path.join(E.dir, "syslog.sock"))
    os.chmod(os.path.join(E.dir, "syslog.sock"), 0o666)
    E.syslog.settimeout(5)
    os.chmod(E.dns["WS_DNSD_DIR"], 0o755)
    os.chmod(E.dns["WS_DNSD_UNBOUND_CONF"], 0o644)
    E.port = free_port()
    E.conf = os.path.join(E.dir, "wireseal.yaml")
    write_config()
    proc = None
    try:
        check_config()
        proc, msg = start_cp()
        T.check("READY=1" in msg, "READY=1 on NOTIFY_SOCKET: %r" % msg)
        with open("/proc/%d/status" % proc.pid) as f:
            uid = [l.split()[1:] for l in f if l.startswith("Uid:")][0]
        T.check(uid == ["65534"] * 4, "runs as nobody: Uid %r" % uid)
        handshake_refusals()
        keys_and_verdicts()
        control()
        rotation(proc)
        proc = crash(proc)
        slow_dns()
        dns_down()
        proc.send_signal(signal.SIGTERM)
        T.check(proc.wait(timeout=10) == 0, "SIGTERM: clean exit")
        try:
            T.check("STOPPING=1" in E.notify.recv(4096).decode(), "STOPPING=1 on NOTIFY_SOCKET")
        except socket.timeout:
            T.check(False, "STOPPING=1 on NOTIFY_SOCKET")
    finally:
        if proc and proc.poll() is None:
            proc.kill()
            proc.wait()
        if E.dnsd.poll() is None:
            E.dnsd.stdin.close()
            E.dnsd.wait(timeout=20)
        if T.failed:
            print("cp-daemon: daemon log:\n" + open(os.path.join(E.dir, "cp.log")).read()[-4000:])
        shutil.rmtree(E.dir, ignore_errors=True)
    T.finish()


if __name__ == "__main__":
    main()
