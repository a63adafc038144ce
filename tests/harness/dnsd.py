#!/usr/bin/python3
"""Real DNS servers on loopback for tests: nsd serving given zone files, plus
a "blackhole" server that reads queries and never answers.

Usage (run with /usr/bin/python3: it needs Debian's python3-dnspython):

  dnsd.py --zone ORIGIN=FILE [--zone ORIGIN=FILE ...] [--blackhole NAME ...]
          [--via-nsd NAME ...]
          [--sign ORIGIN ...] [--sign-expired ORIGIN ...]
          [--dir DIR] [-- COMMAND [ARG ...]]

  --zone ORIGIN=FILE  serve FILE (an RFC 1035 master file with a SOA) as the
                      zone ORIGIN ("example.com"); repeatable, at least once.
  --blackhole NAME    send queries for NAME and below to the blackhole server
                      (in the unbound.conf written); repeatable.
  --via-nsd NAME      a name below a --blackhole NAME that still goes to nsd
                      (a more specific forward-zone, with everything below
                      it); repeatable.
  --sign ORIGIN       DNSSEC-sign that --zone (ldns-keygen/ldns-signzone,
                      Debian ldnsutils, fresh keys each run, NSEC) and add its
                      key to the trust-anchor file; repeatable.
  --sign-expired ORIGIN  the same with signatures that expired in 2020, so a
                      validator finds the zone bogus; repeatable.
  --dir DIR           where nsd.conf, unbound.conf and nsd's state go
                      (default: a new temporary directory, removed at exit).
  -- COMMAND ...      wrap mode: run COMMAND with the environment below,
                      stop the servers when it ends, exit with its status.

Without a command it prints the same variables, one NAME=VALUE a line, then
"ready", and serves until its stdin closes or it gets SIGINT/SIGTERM.

  WS_DNSD_PORT            nsd's port on 127.0.0.1 (UDP and TCP)
  WS_DNSD_BLACKHOLE_PORT  the blackhole's port on 127.0.0.1 (UDP and TCP)
  WS_DNSD_UNBOUND_CONF    an unbound.conf: forward-zone for each --blackhole
                          NAME to the blackhole, everything else to nsd
                          (pick names outside test., invalid., localhost.,
                          onion. and home.arpa.: unbound answers those itself)
  WS_DNSD_TRUST_ANCHORS   the DNSKEYs of the signed zones, one a line (for
                          unbound's trust-anchor-file; empty without --sign)
  WS_DNSD_DIR             the directory of the files above

Exit status: the command's; 77 (the "skip" status of meson and automake)
when /usr/sbin/nsd is missing, with the reason on stderr; 1 when nsd does
not start or answer within 10 s, with its log on stderr.
"""

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

NSD = "/usr/sbin/nsd"
START_TIMEOUT_S = 10.0


def free_port():
    """A port free for both UDP and TCP on 127.0.0.1 right now."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                    t.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free loopback port")


class Blackhole:
    """UDP and TCP on one loopback port; reads everything, answers nothing."""

    def __init__(self):
        self.stop = threading.Event()
        for _ in range(50):
            self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.udp.bind(("127.0.0.1", 0))
            self.port = self.udp.getsockname()[1]
            self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                self.tcp.bind(("127.0.0.1", self.port))
                break
            except OSError:
                self.udp.close()
                self.tcp.close()
        else:
            raise RuntimeError("no free loopback port for the blackhole")
        self.tcp.listen(64)
        self.udp.settimeout(0.2)
        self.tcp.settimeout(0.2)
        self.conns = []
        self.received = 0
        for fn in (self._udp_loop, self._tcp_loop):
            threading.Thread(target=fn, daemon=True).start()

    def _udp_loop(self):
        while not self.stop.is_set():
            try:
                self.udp.recvfrom(65535)
                self.received += 1
            except socket.timeout:
                pass
            except OSError:
                return

    def _tcp_loop(self):
        while not self.stop.is_set():
            try:
                c, _ = self.tcp.accept()
                c.settimeout(0.2)
                self.conns.append(c)  # held open, read by nobody, never answered
                self.received += 1
            except socket.timeout:
                pass
            except OSError:
                return

    def close(self):
        self.stop.set()
        for s in [self.udp, self.tcp] + self.conns:
            try:
                s.close()
            except OSError:
                pass


def write_nsd_conf(d, port, zones):
    lines = [
        "server:",
        "  ip-address: 127.0.0.1",
        "  port: %d" % port,
        "  do-ip4: yes",
        "  do-ip6: no",
        '  username: ""',
        '  chroot: ""',
        "  zonesdir: \"%s\"" % d,
        "  pidfile: \"%s/nsd.pid\"" % d,
        '  database: ""',
        "  zonelistfile: \"%s/zone.list\"" % d,
        "  xfrdfile: \"%s/xfrd.state\"" % d,
        "  xfrdir: \"%s\"" % d,
        "  logfile: \"%s/nsd.log\"" % d,
        "  server-count: 1",
        "  tcp-count: 32",
        "  reuseport: no",
        "  verbosity: 1",
        "remote-control:",
        "  control-enable: no",
    ]
    for origin, path in zones:
        lines += ["zone:", "  name: \"%s\"" % origin, "  zonefile: \"%s\"" % path]
    conf = os.path.join(d, "nsd.conf")
    with open(conf, "w") as f:
        f.write("\n".join(lines) + "\n")
    return conf


def write_unbound_conf(d, nsd_port, bh_port, blackholes, via_nsd=()):
    lines = ["server:", "  do-not-query-localhost: no", ""]
    for name in blackholes:
        lines += ["forward-zone:", "  name: \"%s.\"" % name.rstrip("."),
                  "  forward-addr: 127.0.0.1@%d" % bh_port, ""]
    for name in via_nsd:
        lines += ["forward-zone:", "  name: \"%s.\"" % name.rstrip("."),
                  "  forward-addr: 127.0.0.1@%d" % nsd_port, ""]
    lines += ["forward-zone:", "  name: \".\"", "  forward-addr: 127.0.0.1@%d" % nsd_port, ""]
    conf = os.path.join(d, "unbound.conf")
    with open(conf, "w") as f:
        f.write("\n".join(lines))
    return conf


def probe(port, origin):
    """None while nsd does not answer yet; True once it answers the SOA of
    origin; else the reason its answer is wrong (the zone did not load)."""
    import dns.message
    import dns.query
    import dns.rcode
    q = dns.message.make_query(origin, "SOA")
    try:
        r = dns.query.udp(q, "127.0.0.1", port=port, timeout=0.3)
    except Exception:  # not up yet: refused, timeout
        return None
    if r.rcode() == dns.rcode.NOERROR and len(r.answer) > 0:
        return True
    return "SOA %s: %s with %d answers" % (origin, dns.rcode.to_text(r.rcode()), len(r.answer))


def start_nsd(d, zones):
    """Starts nsd in the foreground mode on a free port; returns (proc, port)."""
    log = os.path.join(d, "nsd.log")
    last_err = ""
    for origin, path in zones:
        chk = subprocess.run(["/usr/sbin/nsd-checkzone", origin, path], capture_output=True,
                             text=True)
        if chk.returncode != 0:
            raise RuntimeError("nsd-checkzone %s %s: %s" % (origin, path,
                                                          (chk.stdout + chk.stderr).strip()))
    for _attempt in range(3):  # a port taken between free_port() and bind
        port = free_port()
        conf = write_nsd_conf(d, port, zones)
        chk = subprocess.run(["/usr/sbin/nsd-checkconf", conf], capture_output=True, text=True)
        if chk.returncode != 0:
            raise RuntimeError("nsd-checkconf refused %s: %s" % (conf, chk.stdout + chk.stderr))
        proc = subprocess.Popen([NSD, "-d", "-c", conf], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        wrong = None
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            ok = probe(port, zones[0][0])
            if ok is True:
                return proc, port
            if ok is not None:
                wrong = ok
                break
            time.sleep(0.05)
        stop_nsd(proc)
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        try:
            with open(log) as f:
                err += f.read()
        except OSError:
            pass
        last_err = "nsd exited with %s: %s" % (proc.returncode, err.strip())
        if wrong:
            raise RuntimeError("%s; %s" % (wrong, last_err))
        if "already in use" not in err and "bind" not in err.lower():
            break  # not a port race: trying again would only repeat it
    raise RuntimeError(last_err)


def sign_zone(d, origin, path, expired):
    """Signs path with a new key in d; returns (signed path, DNSKEY line)."""
    name = origin.rstrip(".")
    key = subprocess.run(["/usr/bin/ldns-keygen", "-a", "ECDSAP256SHA256", "-k", name], cwd=d,
                         capture_output=True, text=True)
    if key.returncode != 0:
        raise RuntimeError("ldns-keygen %s: %s" % (name, key.stderr.strip()))
    base = os.path.join(d, key.stdout.strip())
    out = os.path.join(d, name + (".expired" if expired else "") + ".signed")
    cmd = ["/usr/bin/ldns-signzone", "-o", origin, "-f", out]
    if expired:
        cmd += ["-i", "20190101000000", "-e", "20200101000000"]
    sig = subprocess.run(cmd + [path, base], capture_output=True, text=True)
    if sig.returncode != 0:
        raise RuntimeError("ldns-signzone %s: %s" % (name, sig.stderr.strip()))
    with open(base + ".key") as f:
        dnskey = f.read().split(";")[0].strip()
    return out, dnskey


def stop_nsd(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main():
    argv = sys.argv[1:]
    command = []
    if "--" in argv:
        i = argv.index("--")
        argv, command = argv[:i], argv[i + 1:]
    ap = argparse.ArgumentParser(description="nsd + blackhole DNS servers on loopback")
    ap.add_argument("--zone", action="append", required=True, metavar="ORIGIN=FILE")
    ap.add_argument("--blackhole", action="append", default=[], metavar="NAME")
    ap.add_argument("--via-nsd", action="append", default=[], metavar="NAME")
    ap.add_argument("--sign", action="append", default=[], metavar="ORIGIN")
    ap.add_argument("--sign-expired", action="append", default=[], metavar="ORIGIN")
    ap.add_argument("--dir")
    args = ap.parse_args(argv)

    for prog, pkg in ((NSD, "nsd"), ("/usr/bin/ldns-signzone", "ldnsutils")):
        if (pkg == "nsd" or args.sign or args.sign_expired) and not os.access(prog, os.X_OK):
            print("dnsd.py: SKIP: %s is missing (Debian package %s; deploy/install-deps.sh)"
                  % (prog, pkg), file=sys.stderr)
            return 77
    zones = []
    for z in args.zone:
        origin, sep, path = z.partition("=")
        if not sep or not origin or not path:
            ap.error("--zone wants ORIGIN=FILE, got %r" % z)
        path = os.path.abspath(path)
        if not os.path.isfile(path):
            ap.error("zone file %s does not exist" % path)
        zones.append((origin.rstrip(".") + ".", path))
    for o in args.sign + args.sign_expired:
        if o.rstrip(".") + "." not in [z[0] for z in zones]:
            ap.error("--sign %s: no --zone with that origin" % o)

    tmp = None
    d = args.dir
    if d is None:
        tmp = tempfile.mkdtemp(prefix="ws-dnsd-")
        d = tmp
    os.makedirs(d, exist_ok=True)
    d = os.path.abspath(d)

    nsd = None
    bh = None
    stopping = threading.Event()

    def on_signal(signum, _frame):
        stopping.set()
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        anchors = []
        try:
            signed = {o.rstrip(".") + ".": False for o in args.sign}
            signed.update({o.rstrip(".") + ".": True for o in args.sign_expired})
            for i, (origin, path) in enumerate(zones):
                if origin in signed:
                    spath, key = sign_zone(d, origin, path, signed[origin])
                    zones[i] = (origin, spath)
                    anchors.append(key)
            nsd, port = start_nsd(d, zones)
        except RuntimeError as e:
            print("dnsd.py: FAIL: nsd did not start: %s" % e, file=sys.stderr)
            return 1
        bh = Blackhole()
        uconf = write_unbound_conf(d, port, bh.port, args.blackhole, args.via_nsd)
        ta = os.path.join(d, "trust-anchors")
        with open(ta, "w") as f:
            f.write("".join(a + "\n" for a in anchors))
        env = {
            "WS_DNSD_PORT": str(port),
            "WS_DNSD_BLACKHOLE_PORT": str(bh.port),
            "WS_DNSD_UNBOUND_CONF": uconf,
            "WS_DNSD_TRUST_ANCHORS": ta,
            "WS_DNSD_DIR": d,
        }
        if command:
            child_env = dict(os.environ)
            child_env.update(env)
            child = subprocess.Popen(command, env=child_env)
            try:
                rc = child.wait()
            except KeyboardInterrupt:
                child.terminate()
                rc = child.wait()
            if nsd.poll() is not None:
                print("dnsd.py: nsd died while the command ran (status %s)" % nsd.returncode,
                      file=sys.stderr)
                if rc == 0:
                    rc = 1
            return rc if rc >= 0 else 128 - rc
        for k, v in env.items():
            print("%s=%s" % (k, v))
        print("ready", flush=True)
        try:
            while sys.stdin.read(4096):
                pass
        except KeyboardInterrupt:
            pass
        return 0
    except KeyboardInterrupt:
        return 130
    finally:
        if bh:
            bh.close()
        if nsd:
            stop_nsd(nsd)
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
