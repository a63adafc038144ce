#!/usr/bin/python3
"""Monitor mode in one command, live: deploy/monitor.sh IFACE CONFIG runs in
a server network namespace (wireseal-cp dropping to nobody, wireseal-dp on
net_af_packet of the server's veth); a small SMTP server listens there;
swaks in a client namespace sends each bundled sample message (one with
PIPELINING) over the veth pair. Then the control plane's JSON sink must hold
one "message" event per message with the DKIM results `wireseal verify`
gives for that file and a DMARC verdict, and a "session" event per SMTP
session; keys came from the control plane (the dataplane has no zone), the
daemon ran as nobody. Then the control plane is killed (kill -9) and
started again by hand: wireseal-dp reconnects by itself, and a second round
of mail is in the sink too. SIGTERM to monitor.sh stops both halves.

Needs root and swaks: exits 77 (skip) with the reason otherwise, or when a
network namespace cannot be created.

usage: monitor_live.py BUILD_DIR SOURCE_ROOT
       monitor_live.py --smtpd IP   (the SMTP server, run inside the namespace)
"""
import glob
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

SRV, CLI = "10.98.0.1", "10.98.0.2"


def smtpd(ip):
    """Enough SMTP for swaks: every command accepted, DATA read to the dot."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((ip, 25))
    srv.listen(16)
    print("listening", flush=True)

    def serve(c):
        f = c.makefile("rb")
        c.sendall(b"220 mx.example ESMTP test\r\n")
        data = False
        for line in f:
            if data:
                if line in (b".\r\n", b".\n"):
                    data = False
                    c.sendall(b"250 2.0.0 queued\r\n")
                continue
            cmd = line[:4].upper()
            if cmd in (b"EHLO",):
                c.sendall(b"250-mx.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
            elif cmd == b"DATA":
                data = True
                c.sendall(b"354 go ahead\r\n")
            elif cmd == b"QUIT":
                c.sendall(b"221 2.0.0 bye\r\n")
                break
            else:
                c.sendall(b"250 2.0.0 ok\r\n")
        c.close()

    while True:
        c, _ = srv.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()


def skip(why):
    print("SKIP: " + why)
    return 77


def sh(*args, check=False, timeout=60):
    return subprocess.run(list(args), capture_output=True, text=True, check=check, timeout=timeout)


def events(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--smtpd":
        smtpd(sys.argv[2])
        return 0
    build, root = sys.argv[1:3]
    if os.geteuid() != 0:
        return skip("not root: network namespaces and AF_PACKET need CAP_SYS_ADMIN/CAP_NET_RAW")
    if not shutil.which("swaks"):
        return skip("swaks is not installed (deploy/install-deps.sh installs it)")
    tag = str(os.getpid())
    ns_s, ns_c = "wsmons" + tag, "wsmonc" + tag
    r = sh("ip", "netns", "add", ns_s)
    if r.returncode != 0:
        return skip("cannot create a network namespace: " + r.stderr.strip())
    sh("ip", "netns", "add", ns_c)
    d = tempfile.mkdtemp(prefix="wsmon")
    os.chmod(d, 0o755)
    mon = srv = None
    a, b = "wsma" + tag[-4:], "wsmb" + tag[-4:]
    try:
        sh("ip", "link", "add", a, "netns", ns_s, "type", "veth", "peer", "name", b, "netns", ns_c,
           check=True)
        for ns, dev, ip in ((ns_s, a, SRV), (ns_c, b, CLI)):
            sh("ip", "-n", ns, "addr", "add", ip + "/24", "dev", dev, check=True)
            sh("ip", "-n", ns, "link", "set", dev, "up", check=True)
            sh("ip", "-n", ns, "link", "set", "lo", "up", check=True)
            # a capture sees what the wire carries: no 64 KB offload super-frames
            # (larger than af_packet's frames; README: monitor mode)
            sh("ip", "netns", "exec", ns, "ethtool", "-K", dev, "tso", "off", "gso", "off", "gro", "off")
        zone = os.path.join(root, "tests", "data", "sample", "zone.db")
        sink = os.path.join(d, "log", "eve.json")
        conf = os.path.join(d, "wireseal.yaml")
        with open(conf, "w") as f:
            f.write("""# written by tests/e2e/monitor_live.py
user: nobody
cpm_socket: {d}/run/cpm.sock
control_socket: {d}/run/ctl.sock
dns:
  zone_file: {zone}
policy:
  authserv_id: mx.example
sinks:
  json_file: {sink}
metrics:
  port: 0
""".format(d=d, zone=zone, sink=sink))
        srv = subprocess.Popen(["ip", "netns", "exec", ns_s, "/usr/bin/python3", __file__, "--smtpd", SRV],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        srv.stdout.readline()
        env = dict(os.environ, BUILD=build, DP_OPTS="--json")
        mon = subprocess.Popen(["ip", "netns", "exec", ns_s, os.path.join(root, "deploy", "monitor.sh"), a, conf],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                               start_new_session=True)
        ctl = os.path.join(d, "run", "ctl.sock")
        st = ""
        for _ in range(200):
            st = sh(os.path.join(build, "wiresealctl"), "-s", ctl, "status").stdout
            if "dataplane_connections 1" in st or mon.poll() is not None:
                break
            time.sleep(0.05)
        if "dataplane_connections 1" not in st:
            out, err = mon.communicate(timeout=30) if mon.poll() is not None else ("", "")
            print("FAIL: monitor.sh: no dataplane connected to the control plane: %s %s %s" % (st, out, err))
            return 1
        time.sleep(1.0)  # the af_packet port starts after the cpm connection
        nobody = pwd.getpwnam("nobody").pw_uid
        bad = 0
        if "uid %d" % nobody not in st:
            print("FAIL: wireseal-cp does not run as nobody: %s" % st)
            bad += 1
        emls = sorted(glob.glob(os.path.join(root, "tests", "data", "sample", "0*.eml")))

        def send_round(tag):
            for i, eml in enumerate(emls):
                args = ["ip", "netns", "exec", ns_c, "swaks", "--server", SRV, "--helo", "client.example",
                        "--from", "%s%d@sample.example" % (tag, i), "--to", "reader@mx.example",
                        "--data", eml, "--silent", "2"]
                if i % 2:
                    args.append("--pipeline")
                r = sh(*args)
                if r.returncode != 0:
                    print("FAIL: swaks %s: %s %s" % (eml, r.stdout, r.stderr))
                    return False
            return True

        def wait_events(n):
            for _ in range(300):
                ev = events(sink)
                if (len([e for e in ev if e.get("event_type") == "message"]) >= n and
                        len([e for e in ev if e.get("event_type") == "session"]) >= n):
                    return
                time.sleep(0.05)

        if not send_round("sender"):
            return 1
        wait_events(len(emls))
        # kill -9 the control plane, start it again by hand: the dataplane
        # reconnects and the next round lands in the sink too
        cp_pid = int([l.split()[1] for l in st.splitlines() if l.startswith("pid ")][0])
        os.kill(cp_pid, signal.SIGKILL)
        time.sleep(0.3)
        log = open(os.path.join(d, "cp2.log"), "w")
        cp2 = subprocess.Popen([os.path.join(build, "wireseal-cp"), "-c", conf], stdout=log, stderr=log)
        try:
            for _ in range(200):
                if "dataplane_connections 1" in sh(os.path.join(build, "wiresealctl"), "-s", ctl,
                                                   "status").stdout:
                    break
                time.sleep(0.05)
            if not send_round("again"):
                return 1
            wait_events(2 * len(emls))
        finally:
            cp2.terminate()
            cp2.wait(timeout=20)
            log.close()
        os.killpg(mon.pid, signal.SIGTERM)
        out, err = mon.communicate(timeout=60)
        mon = None
        sys.stderr.write(err[-3000:])
        v = sh(os.path.join(build, "wireseal"), "verify", "--json", "--zone", zone, *emls, check=True)
        want = [sorted((x["d"], x["s"], x["result"]) for x in json.loads(l)["dkim"])
                for l in v.stdout.splitlines()]
        ev = events(sink)
        msgs = {e["smtp"]["mail_from"]: e for e in ev if e.get("event_type") == "message"}
        sess = [e for e in ev if e.get("event_type") == "session"]
        for i, eml in [(i, e) for i, e in enumerate(emls)] + [(-1 - i, e) for i, e in enumerate(emls)]:
            who = "sender%d@sample.example" % i if i >= 0 else "again%d@sample.example" % (-1 - i)
            i = i if i >= 0 else -1 - i
            e = msgs.pop(who, None)
            if e is None:
                print("FAIL: %s (%s): no message event in the sink" % (eml, who))
                bad += 1
                continue
            got = sorted((x["d"], x["s"], x["result"]) for x in e["verdict"]["dkim"])
            if got != want[i] or not e["verdict"].get("dmarc", {}).get("result") or not e.get("flow_id"):
                print("FAIL: %s: sink DKIM %s, verify %s; DMARC %r flow %r" %
                      (eml, got, want[i], e["verdict"].get("dmarc"), e.get("flow_id")))
                bad += 1
        if len(sess) != 2 * len(emls) or any(s["smtp"]["helo"] != "client.example" for s in sess):
            print("FAIL: %d session events for %d swaks sessions: %r" % (len(sess), 2 * len(emls), sess[:1]))
            bad += 1
        lines = out.splitlines()
        if len(lines) < 2 * len(emls):
            print("FAIL: wireseal-dp printed %d messages" % len(lines))
            bad += 1
        if not re.search(r"[1-9]\d* reconnects", err):
            print("FAIL: wireseal-dp did not reconnect: %r" % err[-400:])
            bad += 1
        print("monitor mode: %d messages sent by swaks, %d sink events, %d failures" %
              (len(emls), len(ev), bad))
        return 1 if bad else 0
    finally:
        if mon is not None:
            os.killpg(mon.pid, signal.SIGKILL)
            mon.wait()
        if srv is not None:
            srv.kill()
            srv.wait()
        sh("ip", "netns", "del", ns_s)
        sh("ip", "netns", "del", ns_c)
        shutil.rmtree(d, ignore_errors=True)
        shutil.rmtree("/var/run/dpdk/wireseal-mon-" + a, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
