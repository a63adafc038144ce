#!/usr/bin/python3
"""MTA-STS policy hosts on loopback for tests: a test CA and certificates
made now (openssl req/x509), nginx (Debian's, as a foreground child with its
config in a temporary directory) serving one HTTPS virtual host per test
domain of tests/data/sts/stsrig.net.zone, and a small Python HTTPS server for
what nginx cannot do on demand (a body that stalls, a chunked body over
64 KiB).

Usage: stsd.py -- COMMAND [ARG ...]
  Runs COMMAND (normally tests/harness/dnsd.py wrapping the test binary) with
  these variables, stops the servers when it ends, exits with its status:

  WS_STS_HTTPS_PORT  nginx's port on 127.0.0.1
  WS_STS_SLOW_PORT   the Python server's port on 127.0.0.1
  WS_STS_CA          the trusted test CA (PEM), for CURLOPT_CAINFO
  WS_STS_WWW         nginx's document root for mta-sts.cache.stsrig.net:
                     the test writes .well-known/mta-sts.txt there itself
  WS_STS_ACCESS_LOG  nginx's access log ("host uri status" per line)
  WS_STS_RUA_PORT    a TLS-RPT report receiver (HTTPS, the main certificate,
                     which also names rua.stsrig.net): each POST is stored
  WS_STS_RUA_DIR     as N.body with N.headers beside it, answered 201; a
                     path ending in /fail is answered 500 (the report
                     receiver is the peer of the code under test, not a
                     component of ours, so a small Python server will do)

Exit status: the command's; 77 (skip) when nginx or openssl is missing;
1 when nginx does not start within 10 s, with its log on stderr.
"""

import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

NGINX = "/usr/sbin/nginx"
OPENSSL = "/usr/bin/openssl"
ZONE = "stsrig.net"

GOOD = "version: STSv1\nmode: enforce\nmx: mail.loc\nmax_age: 86400"

# domain -> (status, content type, body or None for a file, certificate)
# cert: "main" (trusted, names every mta-sts host below), or one of the bad ones.
HOSTS = {
    "good": (200, "text/plain", GOOD, "main"),
    "charset": (200, "text/plain; charset=utf-8", GOOD, "main"),
    "valid-none": (200, "text/plain", "version: STSv1\nmode: none\nmax_age: 86400", "main"),
    "testing": (200, "text/plain", "version: STSv1\nmode: testing\nmax_age: 86400\nmx: mail.loc\n", "main"),
    "bad-policy1": (200, "text/plain", "garbage", "main"),
    "bad-policy2": (200, "text/plain", "version: STSv1\nmode: enforce\nmax_age: 86400", "main"),
    "bad-policy3": (200, "text/html", GOOD, "main"),
    "bad-policy4": (404, "text/plain", GOOD, "main"),
    "bad-policy5": (200, "text/plain", "version: STSv1\nmode: enforce\nmx: mail.loc\nmax_age: xxx", "main"),
    "bad-policy6": (200, "text/plain", "version: STSv1\nmode: enforce\nmx: mail.loc\nmax_age: 31557601", "main"),
    "bad-policy7": (200, "text/plain", "version: STSv1\nmx: mail.loc\nmax_age: 86400", "main"),
    "bad-policy8": (200, "text/plain", "version: STSv1\nmode: doubt\nmx: mail.loc\nmax_age: 86400", "main"),
    "bad-cert1": (200, "text/plain", GOOD, "untrusted"),
    "bad-cert2": (200, "text/plain", GOOD, "wrongname"),
    "expired": (200, "text/plain", GOOD, "expired"),
    "cn-only": (200, "text/plain", GOOD, "cnonly"),
    "partial": (200, "text/plain", GOOD, "partial"),
    "wild": (200, "text/plain", GOOD, "wild"),
    "redirect": (301, None, None, "main"),
    "e500": (500, "text/plain", GOOD, "main"),
    "static-overlength": (200, "text/plain", None, "main"),
    "limit-at": (200, "text/plain", None, "main"),
    "limit-past": (200, "text/plain", None, "main"),
    "a.cnames": (200, "text/plain", GOOD, "main"),
    "bad-record1": (200, "text/plain", GOOD, "main"),
    "no-record": (200, "text/plain", GOOD, "main"),
    "cache": (200, "text/plain", None, "main"),
    "ctype-json": (200, "text/json", GOOD, "main"),
    "ctype-bad": (200, "invalid/content/type", GOOD, "main"),
    "ctype-prefix": (200, "text/plainx", GOOD, "main"),
    # wireseal-cp session verdicts (tests/e2e/cp_sts.py)
    "cp-enforce": (200, "text/plain", "version: STSv1\nmode: enforce\nmx: mx.cp-enforce.stsrig.net\n"
                   "max_age: 86400\n", "main"),
    "cp-testing": (200, "text/plain", "version: STSv1\nmode: testing\nmx: *.cp-testing.stsrig.net\n"
                   "max_age: 86400\n", "main"),
    "cp-mismatch": (200, "text/plain", "version: STSv1\nmode: enforce\nmx: mx.cp-mismatch.stsrig.net\n"
                    "max_age: 86400\n", "main"),
    "cp-broken": (404, "text/plain", GOOD, "main"),
}
SLOW_HOSTS = ["slow", "chunked-overlength"]


def padded(total):
    """A valid policy of exactly `total` bytes (an extension line pads it)."""
    head = GOOD + "\nx: "
    return head + "a" * (total - len(head) - 1) + "\n"


def run(args, **kw):
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)


def make_ca(d, name):
    key, pem = os.path.join(d, name + ".key"), os.path.join(d, name + ".pem")
    run([OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", key, "-out", pem, "-days", "2", "-subj", "/CN=wireseal " + name])
    return key, pem


def make_leaf(d, name, ca, cn, sans, days="1"):
    key, csr, pem = (os.path.join(d, name + s) for s in (".key", ".csr", ".pem"))
    run([OPENSSL, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=" + cn])
    args = [OPENSSL, "x509", "-req", "-in", csr, "-CA", ca[1], "-CAkey", ca[0],
            "-CAcreateserial", "-out", pem, "-days", days]
    if sans:
        ext = os.path.join(d, name + ".ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=" + ",".join("DNS:" + s for s in sans) + "\n")
        args += ["-extfile", ext]
    run(args)
    return key, pem


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def nginx_quote(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def write_nginx(d, port, certs):
    www = os.path.join(d, "www")
    servers = []
    for dom, (status, ctype, body, cert) in HOSTS.items():
        host = "mta-sts.%s.%s" % (dom, ZONE)
        root = os.path.join(www, dom)
        os.makedirs(os.path.join(root, ".well-known"), exist_ok=True)
        key, pem = certs[cert]
        if dom == "redirect":
            loc = ("location = /.well-known/mta-sts.txt { return 301 /other; }\n"
                   "    location = /other { default_type text/plain; return 200 %s; }"
                   % nginx_quote(GOOD))
        elif body is None:
            size = {"static-overlength": 4 * 16 + 2049 * 64 + 1, "limit-at": 65536,
                    "limit-past": 65537}.get(dom)
            if size:
                with open(os.path.join(root, ".well-known", "mta-sts.txt"), "w") as f:
                    f.write(padded(size))
            loc = ("location = /.well-known/mta-sts.txt { types { } default_type %s; }"
                   % nginx_quote(ctype))
        else:
            loc = ("location = /.well-known/mta-sts.txt { types { } default_type %s; return %d %s; }"
                   % (nginx_quote(ctype), status, nginx_quote(body)))
        servers.append("""  server {
    listen 127.0.0.1:%d ssl;
    server_name %s;
    ssl_certificate %s;
    ssl_certificate_key %s;
    root %s;
    %s
  }""" % (port, host, pem, key, root, loc))
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write("""daemon off;
master_process on;
worker_processes 1;
%s
pid %s/nginx.pid;
error_log stderr warn;
events { worker_connections 64; }
http {
  log_format h '$ssl_server_name $request_uri $status';
  access_log %s/access.log h;
  client_body_temp_path %s/body;
  ssl_protocols TLSv1.2 TLSv1.3;
  # the default server: an unknown SNI gets a handshake failure
  server { listen 127.0.0.1:%d ssl default_server; ssl_reject_handshake on; }
%s
}
""" % ("user root;" if os.geteuid() == 0 else "", d, d, d, port, "\n".join(servers)))
    return conf, www


class SlowServer:
    """HTTPS on one loopback port: mta-sts.slow.* sends headers and part of
    the body, then stalls; mta-sts.chunked-overlength.* streams a chunked
    body of 2049 x 64 bytes after a valid policy."""

    def __init__(self, cert):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert[1], cert[0])
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, raw):
        try:
            raw.settimeout(10)
            c = self.ctx.wrap_socket(raw, server_side=True)
            req = b""
            while b"\r\n\r\n" not in req:
                chunk = c.recv(4096)
                if not chunk:
                    return
                req += chunk
            host = ""
            for line in req.split(b"\r\n"):
                if line.lower().startswith(b"host:"):
                    host = line[5:].strip().decode()
            if host.startswith("mta-sts.slow."):
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                          b"Content-Length: 200\r\n\r\nversion: STSv1\n")
                self.stop.wait(30)
            else:
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                          b"Transfer-Encoding: chunked\r\n\r\n")
                first = (GOOD + "\n").encode()
                c.sendall(b"%x\r\n%s\r\n" % (len(first), first))
                line = b"x" + b"a" * 62 + b"\n"
                for _ in range(2049):
                    c.sendall(b"%x\r\n%s\r\n" % (len(line), line))
                c.sendall(b"0\r\n\r\n")
            c.close()
        except (OSError, ssl.SSLError):
            pass

    def close(self):
        self.stop.set()
        self.sock.close()


class ReportReceiver:
    """HTTPS POST sink for TLS-RPT reports: stores each body and its headers."""

    def __init__(self, cert, d):
        self.dir = d
        os.makedirs(d, exist_ok=True)
        self.n = 0
        self.lock = threading.Lock()
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert[1], cert[0])
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, raw):
        try:
            raw.settimeout(10)
            c = self.ctx.wrap_socket(raw, server_side=True)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = c.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, body = data.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            length = 0
            for l in lines[1:]:
                k, _, v = l.partition(":")
                if k.strip().lower() == "content-length":
                    length = int(v.strip())
            while len(body) < length:
                chunk = c.recv(65536)
                if not chunk:
                    break
                body += chunk
            with self.lock:
                self.n += 1
                n = self.n
            with open(os.path.join(self.dir, "%d.headers" % n), "w") as f:
                f.write("\n".join(lines) + "\n")
            with open(os.path.join(self.dir, "%d.body" % n), "wb") as f:
                f.write(body)
            status = b"500 Internal Server Error" if lines[0].split(" ")[1].endswith("/fail") \
                else b"201 Created"
            c.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            c.close()
        except (OSError, ssl.SSLError, ValueError, IndexError):
            pass

    def close(self):
        self.stop.set()
        self.sock.close()


def wait_port(port, proc, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def main():
    if "--" not in sys.argv:
        print(__doc__, file=sys.stderr)
        return 2
    cmd = sys.argv[sys.argv.index("--") + 1:]
    for tool in (NGINX, OPENSSL):
        if not os.access(tool, os.X_OK):
            print("stsd.py: %s is missing (Debian nginx-light / openssl)" % tool, file=sys.stderr)
            return 77
    d = tempfile.mkdtemp(prefix="ws-stsd-")
    os.chmod(d, 0o755)
    nginx = None
    slow = None
    rua = None
    try:
        ca = make_ca(d, "ca")
        other_ca = make_ca(d, "untrusted-ca")
        names = ["mta-sts.%s.%s" % (h, ZONE) for h in list(HOSTS) + SLOW_HOSTS] + ["rua." + ZONE]
        certs = {
            "main": make_leaf(d, "main", ca, "mta-sts test", names),
            "untrusted": make_leaf(d, "untrusted", other_ca, "x", ["mta-sts.bad-cert1." + ZONE]),
            "wrongname": make_leaf(d, "wrongname", ca, "bad-cert2." + ZONE, ["bad-cert2." + ZONE]),
            "expired": make_leaf(d, "expired", ca, "x", ["mta-sts.expired." + ZONE], days="-1"),
            "cnonly": make_leaf(d, "cnonly", ca, "mta-sts.cn-only." + ZONE, []),
            "partial": make_leaf(d, "partial", ca, "x", ["mta*.partial." + ZONE]),
            "wild": make_leaf(d, "wild", ca, "x", ["*.wild." + ZONE]),
        }
        port = free_port()
        conf, www = write_nginx(d, port, certs)
        nginx = subprocess.Popen([NGINX, "-p", d, "-c", conf, "-e", "stderr"],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if not wait_port(port, nginx):
            nginx.kill()
            out = nginx.communicate()[0].decode(errors="replace")
            print("stsd.py: nginx did not start:\n" + out, file=sys.stderr)
            return 1
        slow = SlowServer(certs["main"])
        rua = ReportReceiver(certs["main"], os.path.join(d, "rua"))
        env = dict(os.environ)
        env.update({
            "WS_STS_HTTPS_PORT": str(port),
            "WS_STS_SLOW_PORT": str(slow.port),
            "WS_STS_CA": ca[1],
            "WS_STS_WWW": os.path.join(www, "cache"),
            "WS_STS_ACCESS_LOG": os.path.join(d, "access.log"),
            "WS_STS_RUA_PORT": str(rua.port),
            "WS_STS_RUA_DIR": rua.dir,
        })
        return subprocess.call(cmd, env=env)
    except subprocess.CalledProcessError as e:
        print("stsd.py: %s failed: %s" % (e.cmd[0], e.stderr.decode(errors="replace")),
              file=sys.stderr)
        return 1
    finally:
        if slow:
            slow.close()
        if rua:
            rua.close()
        if nginx and nginx.poll() is None:
            nginx.send_signal(signal.SIGQUIT)
            try:
                nginx.wait(5)
            except subprocess.TimeoutExpired:
                nginx.kill()
                nginx.wait()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
