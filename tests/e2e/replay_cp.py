#!/usr/bin/python3
"""`wireseal replay --cp SOCKET` against a real wireseal-cp (zone_file mode,
no network): the dataplane's first connection to the control plane.

- every message of tests/data/captures/sample.pcap (sample.json lists them)
  arrives in the control plane's JSON sink as one "message" event, with the
  DKIM results replay printed on stdout for that message (d, s, a, result,
  reason), the From field and a DMARC verdict object;
- the replay's stdout is the same with and without --cp;
- the stderr summary says every record sent was acknowledged, also with
  two worker lcores sharing the connection;
- with --cp and no --zone the keys come from the control plane (KEY_REQUEST,
  the daemon has the sample zone): stdout (DKIM and ARC results) is the same
  as with --zone, every record is acknowledged, the daemon's metrics count
  the key requests, also with two workers asking at once;
- --cp to a path where nothing listens, and to a peer that answers HELLO
  with another protocol version, each give a clear error and exit non-zero;
- every SMTP session arrives as one "session" event (helo, transactions,
  end reason) and every record carries the flow id (not 0) of its session;
- kill -9 of wireseal-cp while the replay's records wait for their ACK (the
  daemon's DNS is a blackhole, so no verdict is done), then a restart:
  the replay reconnects, re-sends what was not acknowledged and ends with
  every record acknowledged; the sink holds every message and session once
  (what the first daemon wrote but never ACKed is deduped);
- the daemon's DNS server gone (blackhole, short timeout): the replay ends
  in bounded time with temperror SPF/DMARC verdicts;
- kill -9 of the replay mid-stream: every record the daemon acknowledged is
  in its sink, and the daemon serves the next replay;
- asynchronous keys (--async-keys, the wireseal-dp path): with the daemon's
  zone the results are the replay's with --zone and messages were parked
  and finished; with the keys' DNS a blackhole the parked messages end
  temperror in bounded time, --park-timeout makes parked-timeout move,
  --max-parked bounds the park (the rest: temperror "key-park-full");
- --spawn-cp SINK: the replay runs a wireseal-cp child on its --zone (temp
  config and socket, removed at the end): every message and session is in
  SINK with a DMARC verdict, stdout is the same as without it;
- the default (no --cp, a --zone): SPF and DMARC are the VERDICTs of a
  wireseal-cp child serving the zone, stdout byte for byte that of --no-cp
  (in-process), the child's folder gone at the end; kill -9 of the replay
  takes the child with it (PR_SET_PDEATHSIG); --no-cp with --cp is a usage
  error;
- a control plane that ACKs but never sends a VERDICT: every line leaves
  after --verdict-wait without SPF/DMARC, the reason on stderr, exit 1;
- REPLAY_MAX_PENDING via --max-pending (1..4096, else a usage error): a
  control plane that answers once every message waits; at the bound (the
  capture's message count) the worker never stops, one past it the worker
  stops once for its oldest line (the stderr count) and its last message
  reaches the control plane only after the answers; every line has its
  VERDICT.
- REPLAY_CP_ACK_MS (--cp-wait): the last ACK 0.5 s after the last record
  with a 3 s wait: exit 0; 2 s after with a 1 s wait: exit 1 "within 1000
  ms"; never, without --cp-wait: exit 1 "within REPLAY_CP_ACK_MS ms", no
  sooner (real clock: the boundary is the wait, not an exact instant).
"""
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import cpm  # noqa: E402
import wstest  # noqa: E402

T = wstest.Tally("replay-cp")
CP = os.path.join(wstest.BUILD, "wireseal-cp")
ZONE = os.path.join(wstest.SOURCE, "tests", "data", "sample", "zone.db")
PCAP = os.path.join(wstest.SOURCE, "tests", "data", "captures", "sample.pcap")
MANIFEST = os.path.join(wstest.SOURCE, "tests", "data", "captures", "sample.json")
NOW = "1800000000"  # as run_case.py: the sample signatures carry no x=


CTL = os.path.join(wstest.BUILD, "wiresealctl")
EXAMPLE_ZONE = """$ORIGIN example.
$TTL 300
@ IN SOA ns1.example. hostmaster.example. ( 1 3600 600 86400 60 )
  NS ns1.example.
ns1 A 127.0.0.1
"""


def replay(*extra, zone=True):
    return subprocess.run([wstest.WIRESEAL, "replay", "--json", "--now", NOW] +
                          (["--zone", ZONE] if zone else []) +
                          list(extra) + [PCAP], capture_output=True, text=True, timeout=120)


def key_requests_served(d):
    r = subprocess.run([CTL, "-s", os.path.join(d, "ctl.sock"), "stats"], capture_output=True,
                       text=True, timeout=20)
    for l in r.stdout.splitlines():
        if l.startswith("wireseal_cp_key_requests_total "):
            return float(l.split()[1])
    return -1


def key(ip, port, transaction):
    return (ip, port, transaction)


def dkim_of(lst):
    return [{k: d.get(k) or "" for k in ("d", "s", "a", "result", "reason")} for d in lst]


def fake_cp_listen(path):
    """The listening socket of a fake control plane at path."""
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    srv.bind(path)
    srv.listen(1)
    srv.settimeout(30)
    return srv


def fake_cp_accept(srv):
    """The dataplane's connection, after its HELLO and ours."""
    c, _ = srv.accept()
    c.settimeout(0.05)
    c.recv(65536)
    c.send(cpm.hello(role=cpm.ROLE_CP))
    return c


def wrong_version_peer(path, stop):
    """Accepts one connection and answers HELLO with version 99."""
    srv = fake_cp_listen(path)
    try:
        c, _ = srv.accept()
        c.settimeout(10)
        c.recv(65536)
        c.send(cpm.hello(version=99, role=cpm.ROLE_CP))
        stop.wait(30)
        c.close()
    except socket.timeout:
        pass
    srv.close()


def mute_peer(path, stop, ack_quiet=0.0):
    """A control plane that acknowledges every record and never sends a
    VERDICT (the HELLO, then ACK up to the highest record id seen): at once
    (ack_quiet 0), once nothing more came for ack_quiet seconds, or never
    (ack_quiet None)."""
    srv = fake_cp_listen(path)
    try:
        c = fake_cp_accept(srv)
        top, acked, last = 0, 0, time.time()
        while not stop.is_set():
            try:
                d = c.recv(65536)
            except socket.timeout:
                if ack_quiet and top > acked and time.time() - last >= ack_quiet:
                    c.send(cpm.record(cpm.ACK, struct.pack(">Q", top)))
                    acked = top
                continue
            if not d:
                break
            last = time.time()
            off = 0
            while off + 6 <= len(d):
                t, n = struct.unpack(">HI", d[off:off + 6])
                if t in (cpm.MESSAGE_RECORD, cpm.SESSION_RECORD):
                    top = max(top, struct.unpack(">Q", d[off + 6:off + 14])[0])
                off += 6 + n
            if ack_quiet == 0:
                c.send(cpm.record(cpm.ACK, struct.pack(">Q", top)))
        c.close()
    except (socket.timeout, BrokenPipeError):
        pass
    srv.close()


def gate_peer(path, stop, hold_s, log):
    """A control plane that holds the VERDICTs of the MESSAGE_RECORDs until
    none came for hold_s; then it sends the held ones and answers the rest at
    once. It ACKs what it does not hold (a VERDICT must come before the ACK
    of its record: the dataplane drops a later one). log gets ("message",
    rid) for each MESSAGE_RECORD and ("answered", n) when the held ones go."""
    srv = fake_cp_listen(path)
    try:
        c = fake_cp_accept(srv)
        top, acked, held, gate_open, last = 0, 0, [], False, time.time()
        while not stop.is_set():
            try:
                d = c.recv(65536)
            except socket.timeout:
                d = None
            if d == b"":
                break
            off = 0
            while d and off + 6 <= len(d):
                t, n = struct.unpack(">HI", d[off:off + 6])
                if t in (cpm.MESSAGE_RECORD, cpm.SESSION_RECORD):
                    rid = struct.unpack(">Q", d[off + 6:off + 14])[0]
                    top = max(top, rid)
                    if t == cpm.MESSAGE_RECORD:
                        log.append(("message", rid))
                        held.append(rid)
                        last = time.time()
                off += 6 + n
            if not gate_open and held and time.time() - last > hold_s:
                gate_open = True
                log.append(("answered", len(held)))
            if gate_open:
                for rid in held:
                    c.send(cpm.verdict(rid, spf=("none", "", "", "", "")))
                held = []
            upto = min(held) - 1 if held else top
            if upto > acked:
                acked = upto
                c.send(cpm.record(cpm.ACK, struct.pack(">Q", upto)))
        c.close()
    except socket.timeout:
        pass
    srv.close()


def max_pending_checks(d, nmsg, nocp_lines):
    """REPLAY_MAX_PENDING through --max-pending: its range, then a control
    plane that answers only once the messages stop coming (gate_peer): with
    the bound at the capture's line count (messages and the session line
    queue behind the first message) the worker never stops; one below, it
    stops once for its oldest line. Every line has its VERDICT, in order."""
    nlines = len(nocp_lines)
    want_order = [json.loads(l).get("dkim") for l in nocp_lines]
    for v, ok in (("1", True), ("4096", True), ("0", False), ("4097", False), ("", False),
                  ("8x", False), ("-1", False)):
        r = replay("--no-cp", "--max-pending", v)
        T.check((r.returncode == 0) == ok and (ok or ("--max-pending: 1 to 4096 lines" in r.stderr
                                                       and r.returncode == 2)),
                "--max-pending %r: exit %d %r" % (v, r.returncode, r.stderr[-200:]))
    for bound, waits in ((nlines, 0), (nlines - 1, 1)):
        stop = threading.Event()
        path = os.path.join(d, "gate-%d.sock" % bound)
        log = []
        t = threading.Thread(target=gate_peer, args=(path, stop, 2.0, log))
        t.start()
        end = time.time() + 5
        while not os.path.exists(path) and time.time() < end:
            time.sleep(0.02)
        r = replay("--cp", path, "--max-pending", str(bound), "--verdict-wait", "20000")
        stop.set()
        t.join()
        lines = [json.loads(l) for l in r.stdout.splitlines() if l.strip()]
        withspf = [o for o in lines if "spf" in o]
        first = [e for e in log if e[0] == "answered"]
        T.check(r.returncode == 0 and len(withspf) == nmsg and len(lines) == nlines and
                [o.get("dkim") for o in lines] == want_order and
                "%d verdicts, 0 refused, 0 not answered, %d waits at --max-pending %d" %
                (nmsg, waits, bound) in r.stderr and first == [("answered", nmsg)],
                "--max-pending %d (%s the limit), %d lines: %d waits, the control plane "
                "answered %r: exit %d %r" %
                (bound, "at" if waits == 0 else "past", nlines, waits, first,
                 r.returncode, r.stderr[-300:]))


def peer_run(path, ack_quiet, *args):
    """(replay result, seconds) of a replay against a mute_peer."""
    stop = threading.Event()
    t = threading.Thread(target=mute_peer, args=(path, stop, ack_quiet))
    t.start()
    end = time.time() + 5
    while not os.path.exists(path) and time.time() < end:
        time.sleep(0.02)
    t0 = time.time()
    r = replay("--cp", path, "--no-verify", *args)
    took = time.time() - t0
    stop.set()
    t.join()
    os.unlink(path)
    return r, took


def write_conf(d, sock, sink, dns):
    conf = os.path.join(d, "cp-%d.yaml" % time.time_ns())
    with open(conf, "w") as f:
        f.write("""# written by tests/e2e/replay_cp.py
user: ""
cpm_socket: {sock}
control_socket: {d}/ctl.sock
dns:
{dns}
policy:
  authserv_id: mx.test
sinks:
  json_file: {sink}
metrics:
  port: 0
""".format(sock=sock, d=d, dns=dns, sink=sink))
    return conf


def start_cp(d, conf, sock):
    if os.path.exists(sock):
        os.unlink(sock)
    log = open(os.path.join(d, "cp.log"), "a")
    p = subprocess.Popen([CP, "-c", conf], stdout=log, stderr=log)
    log.close()
    end = time.time() + 15
    while not os.path.exists(sock) and time.time() < end and p.poll() is None:
        time.sleep(0.05)
    return p


def stop(p):
    p.terminate()
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def ctl_stat(d, name):
    r = subprocess.run([CTL, "-s", os.path.join(d, "ctl.sock"), "stats"], capture_output=True,
                       text=True, timeout=20)
    for l in r.stdout.splitlines():
        if l.startswith(name + " "):
            return float(l.split()[1])
    return -1


def status_val(d, name):
    r = subprocess.run([CTL, "-s", os.path.join(d, "ctl.sock"), "status"], capture_output=True,
                       text=True, timeout=20)
    for l in r.stdout.splitlines():
        if l.startswith(name + " "):
            return int(l.split()[1])
    return -1


def sink_events(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def start_dnsd(d):
    """nsd for example. with sample.example sent to the blackhole; None when
    nsd is missing (that part is skipped)."""
    zf = os.path.join(d, "example.zone")
    with open(zf, "w") as f:
        f.write(EXAMPLE_ZONE)
    p, env = wstest.dnsd_start(["--zone", "example=" + zf, "--blackhole", "sample.example"])
    if env is None:
        print("replay-cp: dnsd.py did not start (rc %r): DNS-down and crash cases skipped" % p.returncode)
        return None, None
    return p, env


def nrecords(stderr):
    """sessions + messages from the replay's summary."""
    for l in stderr.splitlines():
        if "sessions=" in l and "messages=" in l:
            f = dict(x.split("=", 1) for x in l.split() if "=" in x and x.split("=")[0] in ("sessions", "messages"))
            return int(f["sessions"]) + int(f["messages"])
    return -1


def keys_line(stderr):
    for l in stderr.splitlines():
        if ": keys: " in l:
            return {k: int(v) for k, v in (x.split("=") for x in l.split(": keys: ")[1].split())}
    return {}


def without_policy(stdout):
    """replay's lines without what replay's own policy adds with --zone
    (spf, dmarc and their A-R entries): a --cp run without a zone leaves
    SPF and DMARC to the control plane."""
    out = []
    for l in stdout.splitlines():
        if not l.strip():
            continue
        o = json.loads(l)
        o.pop("spf", None)
        o.pop("dmarc", None)
        if "authres" in o:
            o["authres"] = o["authres"].split("; spf=")[0]
        out.append(json.dumps(o, sort_keys=True))
    return out


def dkim_results(stdout):
    return [(d.get("result"), d.get("reason", "")) for l in stdout.splitlines() if l.strip()
            for d in json.loads(l).get("dkim", [])]


def dp_stat(d, name):
    return ctl_stat(d, 'wireseal_dataplane_stat{name="%s"}' % name)


def slow_keys(d, sock, nmsg):
    """The key DNS is a blackhole behind a daemon with a short DNS timeout."""
    t0 = time.time()
    r = replay("--cp", sock, "--async-keys", "--cp-wait", "30000", zone=False)
    took = time.time() - t0
    k = keys_line(r.stderr)
    res = dkim_results(r.stdout)
    T.check(r.returncode == 0 and k.get("parked") == nmsg and k.get("finished") == nmsg and
            k.get("parked-timeout") == 0, "slow keys: every message parked then finished: %r" % k)
    T.check(res and all(x[0] == "temperror" for x in res),
            "slow keys: the DKIM results are temperror: %r" % res[:4])
    T.check(took < 20, "slow keys: no hang (%.1f s)" % took)
    r = replay("--cp", sock, "--async-keys", "--park-timeout", "150", "--cp-wait", "30000", zone=False)
    k = keys_line(r.stderr)
    res = dkim_results(r.stdout)
    T.check(r.returncode == 0 and k.get("parked-timeout") == nmsg and k.get("finished") == 0,
            "--park-timeout 150: parked-timeout moves: %r" % k)
    T.check(res and all(x[0] == "temperror" and "parked-timeout" in x[1] for x in res),
            "--park-timeout: reason parked-timeout: %r" % res[:2])
    T.check(dp_stat(d, "parked_timeout_total") == nmsg and dp_stat(d, "parked_total") == nmsg,
            "the daemon's metrics show the dataplane's parked-timeout counter (STATS): %r" %
            dp_stat(d, "parked_timeout_total"))
    r = replay("--cp", sock, "--async-keys", "--max-parked", "2", "--cp-wait", "30000", zone=False)
    k = keys_line(r.stderr)
    res = dkim_results(r.stdout)
    T.check(r.returncode == 0 and k.get("parked-max") == 2 and k.get("parked") == 2 and
            k.get("park-refused") == nmsg - 2, "--max-parked 2: the park is bounded: %r" % k)
    T.check(len([x for x in res if "key-park-full" in x[1]]) >= nmsg - 2,
            "--max-parked 2: the others temperror key-park-full: %r" % res[:3])
    T.check(dp_stat(d, "park_refused_total") == nmsg - 2 and dp_stat(d, "parked_now") == 0,
            "metrics: park_refused_total %r, parked_now %r" % (dp_stat(d, "park_refused_total"),
                                                               dp_stat(d, "parked_now")))


def crash_and_dns_down(d, nmsg, nsess):
    """kill -9 of the control plane mid-replay, restart; DNS down."""
    dnsd, env = start_dnsd(d)
    if dnsd is None:
        return
    sock = os.path.join(d, "crash.sock")
    ub = "  unbound_conf: %s\n  timeout_ms: %d"
    try:
        # DNS down: verdicts temperror, in bounded time
        sink = os.path.join(d, "down.json")
        cp = start_cp(d, write_conf(d, sock, sink, ub % (env["WS_DNSD_UNBOUND_CONF"], 800)), sock)
        t0 = time.time()
        r = replay("--cp", sock, "--cp-wait", "30000")
        took = time.time() - t0
        ev = [e for e in sink_events(sink) if e.get("event_type") == "message"]
        slow_keys(d, sock, nmsg)
        stop(cp)
        T.check(r.returncode == 0 and len(ev) == nmsg, "DNS down: replay exit %d, %d sink events (want %d)"
                % (r.returncode, len(ev), nmsg))
        T.check(all(e["verdict"]["spf"]["result"] == "temperror" and e["verdict"]["dmarc"]["result"] == "temperror"
                    for e in ev), "DNS down: SPF and DMARC temperror: %r" %
                [(e["verdict"]["spf"]["result"], e["verdict"]["dmarc"]["result"]) for e in ev])
        T.check(took < 20, "DNS down: no hang (%.1f s)" % took)

        # kill -9 while every record waits for DNS, restart with working DNS
        sink = os.path.join(d, "crash.json")
        cp = start_cp(d, write_conf(d, sock, sink, ub % (env["WS_DNSD_UNBOUND_CONF"], 20000)), sock)
        rp = subprocess.Popen([wstest.WIRESEAL, "replay", "--json", "--now", NOW, "--zone", ZONE,
                               "--cp", sock, "--cp-wait", "60000", PCAP],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        end = time.time() + 30
        while time.time() < end and status_val(d, "message_records") < nmsg:
            time.sleep(0.05)
        got = status_val(d, "message_records")
        acked = status_val(d, "records_acked")
        T.check(got == nmsg and acked == 0, "the daemon holds %d message records, %d acknowledged, "
                "before kill -9" % (got, acked))
        before = sink_events(sink)
        cp.kill()
        cp.wait()
        time.sleep(0.3)  # the replay sees the close and starts backing off
        cp = start_cp(d, write_conf(d, sock, sink, "  zone_file: " + ZONE), sock)
        out, err = rp.communicate(timeout=90)
        total = nmsg + nsess
        T.check(rp.returncode == 0, "after the restart the replay exits 0: %d %s" % (rp.returncode, err[-400:]))
        want = "%d records sent, %d acknowledged, 0 not sent" % (total, total)
        summ = [l for l in err.splitlines() if "control plane" in l]
        T.check(any(want in l for l in summ), "after the restart: %r (want %r)" % (summ, want))
        m = [re.search(r"(\d+) re-sent, (\d+) reconnects", l) for l in summ]
        m = [x for x in m if x]
        T.check(m and int(m[0].group(1)) >= nmsg and int(m[0].group(2)) >= 1,
                "the unacknowledged records were re-sent after a reconnect: %r" % summ)
        ev = sink_events(sink)
        msgs = [e for e in ev if e.get("event_type") == "message"]
        sess = [e for e in ev if e.get("event_type") == "session"]
        ids = sorted(e["record_id"] for e in ev)
        T.check(len(msgs) == nmsg and len(sess) == nsess and ids == list(range(1, total + 1)),
                "every record in the sink once: %d messages, %d sessions, ids %r (%d lines written "
                "before the kill)" % (len(msgs), len(sess), ids, len(before)))
        T.check(all(e["verdict"]["dmarc"]["result"] != "temperror" for e in msgs),
                "the verdicts come from the restarted daemon's working DNS")
        print("replay-cp: kill -9 with %d records unacknowledged (%d already written): %s" %
              (total, len(before), summ[0] if summ else "?"))
        stop(cp)

        # kill -9 of the dataplane: what the daemon acknowledged is in its sink
        sink = os.path.join(d, "dpkill.json")
        cp = start_cp(d, write_conf(d, sock, sink, "  zone_file: " + ZONE), sock)
        rp = subprocess.Popen([wstest.WIRESEAL, "replay", "--zone", ZONE, "--now", NOW, "--cp", sock,
                               "--workers", "2", PCAP, PCAP, PCAP],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        end = time.time() + 30
        while time.time() < end and status_val(d, "records_acked") < 1:
            time.sleep(0.01)
        rp.kill()
        rp.wait()
        acked = status_val(d, "records_acked")
        lines = len(sink_events(sink))
        T.check(acked >= 1 and lines >= acked,
                "dataplane killed: %d records acknowledged, %d in the sink" % (acked, lines))
        r = replay("--cp", sock)
        T.check(r.returncode == 0, "the daemon serves the next replay after the dataplane's death")
        stop(cp)
    finally:
        dnsd.stdin.close()
        dnsd.wait(timeout=20)


def main():
    with open(MANIFEST) as f:
        man = json.load(f)
    nmsg = len(man)
    nsess = len({(m["client_ip"], m["client_port"]) for m in man})
    d = tempfile.mkdtemp(prefix="ws-replay-cp-")
    sock = os.path.join(d, "cpm.sock")
    sink = os.path.join(d, "eve.json")
    conf = os.path.join(d, "cp.yaml")
    with open(conf, "w") as f:
        f.write("""# written by tests/e2e/replay_cp.py
user: ""
cpm_socket: {sock}
control_socket: {d}/ctl.sock
dns:
  zone_file: {zone}
policy:
  authserv_id: mx.test
sinks:
  json_file: {sink}
metrics:
  port: 0
""".format(sock=sock, d=d, zone=ZONE, sink=sink))
    log = open(os.path.join(d, "cp.log"), "w")
    cp = subprocess.Popen([CP, "-c", conf], stdout=log, stderr=log)
    try:
        end = time.time() + 15
        while not os.path.exists(sock) and time.time() < end and cp.poll() is None:
            time.sleep(0.05)
        T.check(os.path.exists(sock), "wireseal-cp listens on %s" % sock)

        plain = replay()
        r = replay("--cp", sock)
        T.check(r.returncode == 0, "replay --cp exits 0: %d %s" % (r.returncode, r.stderr[-600:]))
        T.check(r.stdout == plain.stdout and plain.returncode == 0,
                "stdout is the same with and without --cp")
        out = [json.loads(l) for l in r.stdout.splitlines() if l.strip() and '"session_record"' not in l]
        T.check(len(out) == nmsg, "replay printed %d messages, the manifest lists %d" % (len(out), nmsg))
        summ = [l for l in r.stderr.splitlines() if "control plane" in l]
        total = nmsg + nsess
        T.check(nrecords(r.stderr) == total, "the summary counts %d sessions + messages" % total)
        want = "%d records sent, %d acknowledged, 0 not sent" % (total, total)
        T.check(any(want in l for l in summ), "summary: %r (want %r)" % (summ, want))

        with open(sink) as f:
            ev = [json.loads(l) for l in f if l.strip()]
        msgs = [e for e in ev if e.get("event_type") == "message"]
        sess = [e for e in ev if e.get("event_type") == "session"]
        T.check(len(msgs) == nmsg, "sink holds %d message events, want %d" % (len(msgs), nmsg))
        T.check(len(sess) == nsess, "sink holds %d session events, want %d" % (len(sess), nsess))
        T.check(sorted(e.get("record_id") for e in ev) == list(range(1, total + 1)),
                "record ids 1..%d" % total)
        # with --zone replay runs SPF/DMARC itself: the daemon's verdicts agree
        by_msg = {key(e.get("src_ip"), e.get("src_port"), e.get("smtp", {}).get("transaction")): e
                  for e in msgs}
        for o in out:
            s = o["session"]
            v = by_msg.get(key(s["client_ip"], s["client_port"], s["transaction"]), {}).get("verdict", {})
            T.check("spf" in o and "dmarc" in o and
                    (o["spf"]["result"], o["dmarc"]["result"]) ==
                    (v.get("spf", {}).get("result"), v.get("dmarc", {}).get("result")),
                    "replay --zone's spf/dmarc %r as the daemon's %r" %
                    ((o.get("spf", {}).get("result"), o.get("dmarc", {}).get("result")),
                     (v.get("spf", {}).get("result"), v.get("dmarc", {}).get("result"))))
        for se in sess:
            mine = [e for e in msgs if e.get("src_port") == se.get("src_port") and e.get("src_ip") == se.get("src_ip")]
            T.check(se.get("flow_id") and all(e.get("flow_id") == se["flow_id"] for e in mine),
                    "session %r: flow id %r (not 0) on it and its %d messages" %
                    (se.get("src_port"), se.get("flow_id"), len(mine)))
            sm = se.get("smtp", {})
            T.check(sm.get("transactions") == len(mine) and sm.get("end_reason") and sm.get("helo"),
                    "session %r: helo %r, %r transactions, end %r" %
                    (se.get("src_port"), sm.get("helo"), sm.get("transactions"), sm.get("end_reason")))
        by = {key(e.get("src_ip"), e.get("src_port"), e.get("smtp", {}).get("transaction")): e
              for e in msgs}
        for o in out:
            s = o["session"]
            k = key(s["client_ip"], s["client_port"], s["transaction"])
            e = by.get(k)
            T.check(e is not None, "message %r has a sink event" % (k,))
            if e is None:
                continue
            v = e.get("verdict", {})
            T.check(dkim_of(v.get("dkim", [])) == dkim_of(o.get("dkim", [])),
                    "message %r: sink DKIM %r == replay DKIM %r" % (k, v.get("dkim"), o.get("dkim")))
            T.check(isinstance(v.get("dmarc"), dict) and v["dmarc"].get("result"),
                    "message %r: a DMARC verdict: %r" % (k, v.get("dmarc")))
            T.check(e.get("smtp", {}).get("mail_from") == s["mail_from"] and
                    e.get("smtp", {}).get("rcpt_to") == s["rcpt"] and e.get("dest_port") == s["server_port"],
                    "message %r: envelope and endpoints" % (k,))
            T.check(len(e.get("from", [])) >= 1, "message %r: From field sent: %r" % (k, e.get("from")))
            arc = o.get("arc")
            if arc:
                T.check(v.get("arc", {}).get("chain") == arc["result"] and
                        len(v["arc"].get("aar", [])) == arc["instances"],
                        "message %r: ARC chain %s with %d AARs: %r" % (k, arc["result"], arc["instances"],
                                                                      v.get("arc")))
        T.check(any(o.get("arc") for o in out), "the sample has a message with ARC fields")

        # two worker lcores hand records to the one connection
        r = replay("--cp", sock, "--workers", "2")
        T.check(r.returncode == 0 and want in r.stderr,
                "--workers 2: exit %d, %r" % (r.returncode, r.stderr[-300:]))
        with open(sink) as f:
            n2 = sum(1 for l in f if '"event_type":"message"' in l)
        T.check(n2 == 2 * nmsg, "after the second run the sink holds %d message events, want %d" % (n2, 2 * nmsg))

        # no --zone: the keys come from the control plane
        T.check(key_requests_served(d) == 0, "no key requests before the --cp-only run")
        r = replay("--cp", sock, zone=False)
        T.check(r.returncode == 0, "--cp without --zone exits 0: %d %s" % (r.returncode, r.stderr[-600:]))
        T.check(without_policy(r.stdout) == without_policy(plain.stdout),
                "--cp without --zone: stdout (DKIM, ARC) is the same as with --zone:\n%s\n---\n%s" %
                (r.stdout[:1500], plain.stdout[:1500]))
        T.check(want in r.stderr, "--cp without --zone: %r" % r.stderr[-300:])
        served = key_requests_served(d)
        T.check(served > 0, "the control plane served %r key requests" % served)
        with open(sink) as f:
            ev = [json.loads(l) for l in f if l.strip()]
        msgs = [e for e in ev if e.get("event_type") == "message"][2 * nmsg:]
        T.check(len(msgs) == nmsg, "--cp without --zone: %d new sink events, want %d" % (len(msgs), nmsg))
        by = {key(e.get("src_ip"), e.get("src_port"), e.get("smtp", {}).get("transaction")): e
              for e in msgs}
        for o in out:
            s = o["session"]
            e = by.get(key(s["client_ip"], s["client_port"], s["transaction"]), {})
            T.check(dkim_of(e.get("verdict", {}).get("dkim", [])) == dkim_of(o.get("dkim", [])),
                    "--cp without --zone: sink DKIM of %r as with --zone" % (s["client_port"],))
        # two workers ask for keys over the one connection at once
        r = replay("--cp", sock, "--workers", "2", zone=False)
        T.check(r.returncode == 0 and want in r.stderr and
                sorted(without_policy(r.stdout)) == sorted(without_policy(plain.stdout)),
                "--cp without --zone, --workers 2: exit %d, same results, %r" % (r.returncode, r.stderr[-300:]))
        T.check(key_requests_served(d) > served, "the second run asked for keys too")
        # asynchronous keys (the wireseal-dp path): parked, then finished
        for workers in ("1", "2"):
            r = replay("--cp", sock, "--async-keys", "--workers", workers, zone=False)
            k = keys_line(r.stderr)
            T.check(r.returncode == 0 and
                    sorted(without_policy(r.stdout)) == sorted(without_policy(plain.stdout)),
                    "--async-keys --workers %s: the same results as with --zone: %r" % (workers, r.stderr[-300:]))
            T.check(k.get("parked", 0) >= 1 and k.get("finished") == k.get("parked") and
                    k.get("parked-timeout") == 0 and k.get("park-refused") == 0 and want in r.stderr,
                    "--async-keys --workers %s: messages parked and finished: %r" % (workers, k))
    finally:
        cp.terminate()
        try:
            cp.wait(10)
        except subprocess.TimeoutExpired:
            cp.kill()
        log.close()

    crash_and_dns_down(d, nmsg, nsess)

    # --spawn-cp: a control plane of the replay's own
    sink = os.path.join(d, "spawned.json")
    r = replay("--spawn-cp", sink)
    T.check(r.returncode == 0, "--spawn-cp exits 0: %r" % r.stderr[-400:])
    ev = sink_events(sink)
    msgs = [e for e in ev if e.get("event_type") == "message"]
    T.check(len(msgs) == nmsg and len([e for e in ev if e.get("event_type") == "session"]) == nsess and
            all(e["verdict"]["dmarc"].get("result") for e in msgs),
            "--spawn-cp: %d messages with DMARC verdicts and the sessions in the sink" % len(msgs))
    m = re.search(r"control plane (\S+)/cpm.sock:", r.stderr)
    T.check(m and m.group(1).startswith("/tmp/wireseal-cp-") and not os.path.exists(m.group(1)),
            "--spawn-cp: the child's temporary folder is gone: %r" % (m.group(1) if m else r.stderr[-200:]))
    T.check(r.stdout == replay().stdout, "--spawn-cp: stdout as without it")

    # the default: a child control plane, the same bytes as in-process
    r = replay()
    nocp = replay("--no-cp")
    T.check(r.returncode == 0 and nocp.returncode == 0 and r.stdout == nocp.stdout and
            '"dmarc"' in r.stdout,
            "default (a wireseal-cp child) and --no-cp print the same bytes: %r" % r.stderr[-300:])
    m = re.search(r"control plane (\S+)/cpm.sock: .*\n.*control plane policy: (\d+) verdicts", r.stderr)
    T.check(m and int(m.group(2)) == nmsg and not os.path.exists(m.group(1)) and
            "control plane" not in nocp.stderr,
            "default: %r verdicts from the child, its folder gone; --no-cp none: %r" %
            (m.group(2) if m else None, r.stderr[-300:]))
    # kill -9 of the replay: the child goes too (PR_SET_PDEATHSIG)
    rp = subprocess.Popen([wstest.WIRESEAL, "replay", "--json", "--now", NOW, "--zone", ZONE,
                           "--end-idle", "20000", PCAP],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    child = None
    end = time.time() + 20
    while child is None and time.time() < end:
        for t in os.listdir("/proc/%d/task" % rp.pid):
            try:
                kids = open("/proc/%d/task/%s/children" % (rp.pid, t)).read().split()
            except OSError:
                kids = []
            for k in kids:
                try:
                    if open("/proc/%s/comm" % k).read().strip() == "wireseal-cp":
                        child = int(k)
                except OSError:
                    pass
        time.sleep(0.05)
    T.check(child is not None, "the default replay runs a wireseal-cp child")
    child_dir = None
    try:  # "-c /tmp/wireseal-cp-XXXXXX/cp.yaml": a replay killed -9 cannot remove it
        argv = open("/proc/%d/cmdline" % child, "rb").read().split(b"\0")
        child_dir = os.path.dirname(argv[argv.index(b"-c") + 1].decode())
    except (OSError, ValueError, IndexError, TypeError):
        pass
    rp.kill()
    rp.wait()
    gone = False
    end = time.time() + 5
    while child and not gone and time.time() < end:
        try:
            st = open("/proc/%d/stat" % child).read().split(")")[-1].split()[0]
            gone = st == "Z"  # dead, not yet reaped by its new parent
        except OSError:
            gone = True
        time.sleep(0.05)
    T.check(gone, "kill -9 of the replay: its wireseal-cp child %r is gone" % child)
    if child_dir and os.path.basename(child_dir).startswith("wireseal-cp-"):
        shutil.rmtree(child_dir, ignore_errors=True)
    r = replay("--no-cp", "--cp", sock)
    T.check(r.returncode == 2 and "usage" in r.stderr, "--no-cp with --cp: usage error")

    # a control plane that never answers VERDICTs: each line waits
    # --verdict-wait, then leaves without SPF/DMARC; exit 1, no hang
    stop = threading.Event()
    mute = os.path.join(d, "mute.sock")
    t = threading.Thread(target=mute_peer, args=(mute, stop))
    t.start()
    end = time.time() + 5
    while not os.path.exists(mute) and time.time() < end:
        time.sleep(0.02)
    t0 = time.time()
    r = replay("--cp", mute, "--verdict-wait", "300")
    took = time.time() - t0
    stop.set()
    t.join()
    lines = [json.loads(l) for l in r.stdout.splitlines() if l.strip()]
    T.check(r.returncode == 1 and len(lines) == len(nocp.stdout.splitlines()) and
            all("dkim" in o and "spf" not in o and "dmarc" not in o for o in lines if "session" in o) and
            "no verdict from the control plane within 300 ms" in r.stderr and
            "%d not answered" % nmsg in r.stderr and took < 20,
            "no VERDICT: lines without SPF/DMARC after --verdict-wait, exit 1, %.1f s: %r" %
            (took, r.stderr[-400:]))

    max_pending_checks(d, nmsg, nocp.stdout.splitlines())

    # REPLAY_CP_ACK_MS / --cp-wait: the last ACK inside the wait, past it,
    # and the default (no --cp-wait) waited out in full
    ack_ms = int(re.search(r"#define REPLAY_CP_ACK_MS (\d+)",
                           open(os.path.join(wstest.SOURCE, "cli", "replay.c")).read()).group(1))
    r, took = peer_run(os.path.join(d, "late.sock"), 0.5, "--cp-wait", "3000")
    T.check(r.returncode == 0 and re.search(r"(\d+) records sent, \1 acknowledged", r.stderr),
            "ACK 0.5 s after the last record, --cp-wait 3000: exit 0, all acknowledged: %r" %
            r.stderr[-300:])
    r, took = peer_run(os.path.join(d, "late.sock"), 2.0, "--cp-wait", "1000")
    T.check(r.returncode == 1 and "acknowledged within 1000 ms" in r.stderr and took < 1.0 + 8,
            "ACK 2 s after the last record, --cp-wait 1000: exit 1 with the reason (%.1f s): %r" %
            (took, r.stderr[-300:]))
    r, took = peer_run(os.path.join(d, "never.sock"), None)
    T.check(r.returncode == 1 and "acknowledged within %d ms" % ack_ms in r.stderr and
            took >= ack_ms / 1000.0,
            "no ACK, no --cp-wait: exit 1 after REPLAY_CP_ACK_MS %d (%.1f s): %r" %
            (ack_ms, took, r.stderr[-300:]))

    # nothing listens there
    r = replay("--cp", os.path.join(d, "nobody.sock"))
    T.check(r.returncode != 0 and "cannot connect to the control plane" in r.stderr and not r.stdout,
            "--cp to a dead socket: exit %d, %r" % (r.returncode, r.stderr[-300:]))
    # a peer that speaks another version
    stop = threading.Event()
    bad = os.path.join(d, "bad.sock")
    t = threading.Thread(target=wrong_version_peer, args=(bad, stop))
    t.start()
    end = time.time() + 5
    while not os.path.exists(bad) and time.time() < end:
        time.sleep(0.02)
    r = replay("--cp", bad)
    stop.set()
    t.join()
    T.check(r.returncode != 0 and "HELLO mismatch" in r.stderr and "version" in r.stderr,
            "--cp to a peer of version 99: exit %d, %r" % (r.returncode, r.stderr[-300:]))
    shutil.rmtree(d, ignore_errors=True)
    T.finish()


if __name__ == "__main__":
    main()
