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
  with another protocol version, each give a clear error and exit non-zero.
"""
import json
import os
import shutil
import socket
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


def wrong_version_peer(path, stop):
    """Accepts one connection and answers HELLO with version 99."""
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    srv.bind(path)
    srv.listen(1)
    srv.settimeout(30)
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


def main():
    with open(MANIFEST) as f:
        nmsg = len(json.load(f))
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
        want = "%d records sent, %d acknowledged, 0 not sent" % (nmsg, nmsg)
        T.check(any(want in l for l in summ), "summary: %r (want %r)" % (summ, want))

        with open(sink) as f:
            ev = [json.loads(l) for l in f if l.strip()]
        msgs = [e for e in ev if e.get("event_type") == "message"]
        T.check(len(msgs) == nmsg, "sink holds %d message events, want %d" % (len(msgs), nmsg))
        T.check(sorted(e.get("record_id") for e in msgs) == list(range(1, nmsg + 1)),
                "record ids 1..%d" % nmsg)
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
        T.check(r.stdout == plain.stdout,
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
                sorted(r.stdout.splitlines()) == sorted(plain.stdout.splitlines()),
                "--cp without --zone, --workers 2: exit %d, same results, %r" % (r.returncode, r.stderr[-300:]))
        T.check(key_requests_served(d) > served, "the second run asked for keys too")
    finally:
        cp.terminate()
        try:
            cp.wait(10)
        except subprocess.TimeoutExpired:
            cp.kill()
        log.close()

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
