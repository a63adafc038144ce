#!/usr/bin/python3
"""Real outbound deliveries: a sending Postfix (its own config and queue
under a temporary folder) relays to a receiving Postfix, the MX
mx.example.net, each in its own network namespace over a veth pair;
tcpdump captures the link. Three deliveries, the MX reconfigured between
them: TLS 1.2 only, TLS 1.3, no STARTTLS at all, and TLS 1.2 again with the
sender at Postfix's opportunistic default, which lets Postfix pick an
anonymous suite (no certificate). The sender uses opportunistic TLS with
SNI = mx.example.net (smtp_tls_servername), aNULL excluded until the last. The test
CA and the MX certificate are made at test time. Then `wireseal replay`
with the example.net policy (enforce, mx: mx.example.net) must give per
session: TLS 1.2 -> sts pass with the certificate seen and trusted; TLS 1.3
-> not-assessable; no STARTTLS -> fail starttls-not-supported with the
anomalies starttls-not-offered and cleartext-rcpt-enforce-domain; anonymous
TLS 1.2 -> fail certificate-not-trusted with tls-weak-cipher.

Needs root, postfix, swaks, tcpdump and python3-cryptography: exits 77
(skip) with the reason otherwise.

usage: postfix_sts.py BUILD_DIR SOURCE_ROOT
"""
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import postfix_capture as pc  # noqa: E402  (MASTER_CF, sh, skip)

MX_IP, SND_IP = "10.98.0.1", "10.98.0.2"  # not postfix_capture.py's subnet

SENDER_MASTER = pc.MASTER_CF + """\
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
"""
MX_MASTER = pc.MASTER_CF + """\
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
"""


def common(d, host, iface):
    return f"""\
compatibility_level = 3.6
queue_directory = {d}/spool
data_directory = {d}/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = {iface}
inet_protocols = ipv4
myhostname = {host}
alias_maps =
alias_database =
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
smtputf8_enable = no
biff = no
maillog_file_prefixes = {d}
maillog_file = {d}/maillog
"""


def mx_cf(d, cert, key, mode):
    tls = {"tls12": f"smtpd_tls_security_level = may\nsmtpd_tls_cert_file = {cert}\n"
                    f"smtpd_tls_key_file = {key}\nsmtpd_tls_protocols = >=TLSv1.2, <=TLSv1.2\n",
           "tls13": f"smtpd_tls_security_level = may\nsmtpd_tls_cert_file = {cert}\n"
                    f"smtpd_tls_key_file = {key}\nsmtpd_tls_protocols = >=TLSv1.3\n",
           "none": "smtpd_tls_security_level = none\n"}[mode]
    return common(d, "mx.example.net", MX_IP) + f"""\
mydestination = example.net
local_recipient_maps =
local_transport = discard:
default_transport = discard:
mynetworks = 10.98.0.0/24
smtpd_relay_restrictions = permit_mynetworks, reject
""" + tls


def sender_cf(d):
    return common(d, "sender.example", "127.0.0.1") + f"""\
mydestination =
mynetworks = 127.0.0.0/8
relayhost = [{MX_IP}]
smtp_tls_security_level = may
smtp_tls_servername = mx.example.net
smtp_tls_exclude_ciphers = aNULL
smtp_tls_session_cache_database =
smtp_connection_cache_on_demand = no
smtpd_relay_restrictions = permit_mynetworks, reject
"""


def make_certs(d):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    now = datetime.datetime.now(datetime.timezone.utc)
    cak = ec.generate_private_key(ec.SECP256R1())
    can = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "postfix_sts test CA")])
    ca = (x509.CertificateBuilder().subject_name(can).issuer_name(can).public_key(cak.public_key())
          .serial_number(1).not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(cak, hashes.SHA256()))
    k = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mx.example.net")]))
            .issuer_name(can).public_key(k.public_key()).serial_number(2)
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("mx.example.net")]), critical=False)
            .sign(cak, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    paths = {n: os.path.join(d, n) for n in ("ca.pem", "mx.pem", "mx.key")}
    open(paths["ca.pem"], "wb").write(ca.public_bytes(pem))
    open(paths["mx.pem"], "wb").write(leaf.public_bytes(pem) + ca.public_bytes(pem))
    open(paths["mx.key"], "wb").write(k.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                      serialization.NoEncryption()))
    os.chmod(paths["mx.key"], 0o600)
    return paths


def start(ns, etc, d, cf, master):
    os.makedirs(etc, exist_ok=True)
    os.makedirs(os.path.join(d, "spool"), exist_ok=True)
    open(os.path.join(etc, "main.cf"), "w").write(cf)
    open(os.path.join(etc, "master.cf"), "w").write(master)
    pc.sh("postfix", "-c", etc, "post-install", "create-missing")
    r = pc.sh("script", "-qec", "ip netns exec %s postfix -c %s start" % (ns, etc), "/dev/null")
    return r.returncode == 0, r.stdout + r.stderr


def main():
    build, root = sys.argv[1:3]
    if os.geteuid() != 0:
        return pc.skip("not root: network namespaces, tcpdump and postfix need root")
    for tool in ("postfix", "swaks", "tcpdump"):
        if not shutil.which(tool) and not os.path.exists("/usr/sbin/" + tool):
            return pc.skip(tool + " is not installed (deploy/install-deps.sh installs it)")
    try:
        import cryptography  # noqa: F401
    except ImportError:
        return pc.skip("python3-cryptography is not installed")
    tag = str(os.getpid())
    ns_m, ns_s = "wstlsm" + tag, "wstlss" + tag
    r = pc.sh("ip", "netns", "add", ns_m)
    if r.returncode != 0:
        return pc.skip("cannot create a network namespace: " + r.stderr.strip())
    pc.sh("ip", "netns", "add", ns_s)
    d = tempfile.mkdtemp(prefix="wstls")
    os.chmod(d, 0o755)
    dm, ds = os.path.join(d, "mx"), os.path.join(d, "snd")
    etc_m, etc_s = os.path.join(dm, "etc"), os.path.join(ds, "etc")
    tcpdump = None
    started = []
    try:
        a, b = "wsta" + tag[-4:], "wstb" + tag[-4:]
        pc.sh("ip", "link", "add", a, "netns", ns_m, "type", "veth", "peer", "name", b, "netns", ns_s,
              check=True)
        for ns, dev, ip in ((ns_m, a, MX_IP), (ns_s, b, SND_IP)):
            pc.sh("ip", "-n", ns, "addr", "add", ip + "/24", "dev", dev, check=True)
            pc.sh("ip", "-n", ns, "link", "set", dev, "up", check=True)
            pc.sh("ip", "-n", ns, "link", "set", "lo", "up", check=True)
        os.makedirs(dm)
        os.makedirs(ds)
        certs = make_certs(d)
        ok, why = start(ns_s, etc_s, ds, sender_cf(ds), SENDER_MASTER)
        if not ok:
            print("FAIL: the sending postfix did not start: " + why)
            return 1
        started.append((ns_s, etc_s))
        cap = os.path.join(d, "outbound.pcap")
        tcpdump = subprocess.Popen(["ip", "netns", "exec", ns_m, "tcpdump", "-i", a, "-w", cap, "-U",
                                    "--immediate-mode", "-s", "0", "-Z", "root", "tcp", "port", "25"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        modes = ["tls12", "tls13", "none", "tls12-anon"]
        for i, mode in enumerate(modes):
            if mode == "tls12-anon":
                # Postfix's opportunistic default: anonymous suites allowed,
                # and Postfix's smtpd offers them (no certificate is sent)
                pc.sh("postconf", "-c", etc_s, "-e", "smtp_tls_exclude_ciphers =")
                pc.sh("ip", "netns", "exec", ns_s, "postfix", "-c", etc_s, "reload")
                time.sleep(1.0)
            if started and started[-1][1] == etc_m:
                pc.sh("ip", "netns", "exec", ns_m, "postfix", "-c", etc_m, "stop")
                started.pop()
                time.sleep(0.5)
            ok, why = start(ns_m, etc_m, dm, mx_cf(dm, certs["mx.pem"], certs["mx.key"], mode.split("-")[0]),
                            MX_MASTER)
            if not ok:
                print("FAIL: the MX postfix (%s) did not start: %s" % (mode, why))
                return 1
            started.append((ns_m, etc_m))
            for _ in range(100):  # listening (asked inside the MX's namespace: no probe on the wire)
                if (MX_IP + ":25") in pc.sh("ip", "netns", "exec", ns_m, "ss", "-ltn").stdout:
                    break
                time.sleep(0.1)
            r = pc.sh("ip", "netns", "exec", ns_s, "swaks", "--server", "127.0.0.1", "--helo", "local",
                      "--from", "alice%d@sender.example" % i, "--to", "bob%d@example.net" % i,
                      "--header", "Subject: %s" % mode, "--silent", "2", timeout=60)
            if r.returncode != 0:
                print("FAIL: swaks to the sending postfix: %s %s" % (r.stdout, r.stderr))
                return 1
            # the sender relays at once: wait for the MX to log the delivery
            log = os.path.join(dm, "maillog")
            for _ in range(150):
                if os.path.exists(log) and open(log).read().count("status=sent") > i:
                    break
                time.sleep(0.1)
            else:
                print("FAIL: %s: no delivery at the MX; sender log:\n%s" %
                      (mode, open(os.path.join(ds, "maillog")).read()[-2000:]))
                return 1
            time.sleep(0.5)
        time.sleep(1.0)
        tcpdump.send_signal(signal.SIGINT)
        tcpdump.wait(timeout=10)
        tcpdump = None
        pol = os.path.join(d, "example.net.policy")
        open(pol, "w").write("version: STSv1\nmode: enforce\nmx: mx.example.net\nmax_age: 86400\n")
        r = pc.sh(os.path.join(build, "wireseal"), "replay", "--json", "--no-verify", "--sts-policy",
                  "example.net=" + pol, "--mx-map", MX_IP + "=mx.example.net", "--ca-file", certs["ca.pem"],
                  cap, timeout=120)
        if r.returncode != 0:
            print("FAIL: replay exited %d: %s" % (r.returncode, r.stderr))
            return 1
        sess = sorted((json.loads(l)["session_record"] for l in r.stdout.splitlines()
                       if '"session_record"' in l), key=lambda s: s["client_port"])
        # port order is not connection order in general: match by what each shows
        by = {}
        for s in sess:
            key = "none" if not s["starttls_used"] else (s["tls"]["version"] or "?")
            if s["tls"].get("anonymous"):
                key += "-anon"
            by[key] = s
        bad = []
        want = {
            "TLSv1.2": (["pass", "none"], [], {"sni": "mx.example.net", "cert_seen": True,
                                               "chain_trusted": True, "established": True}),
            "TLSv1.3": (["not-assessable", "none"], [], {"sni": "mx.example.net", "cert_seen": False,
                                                          "established": True}),
            "none": (["fail", "starttls-not-supported"],
                     ["cleartext-rcpt-enforce-domain", "starttls-not-offered"], {}),
            "TLSv1.2-anon": (["fail", "certificate-not-trusted"], ["tls-weak-cipher"],
                             {"cert_seen": False, "resumed": False, "established": True}),
        }
        for key, (sts, anomalies, tls) in want.items():
            s = by.get(key)
            if s is None:
                bad.append("no %s session (got %s)" % (key, sorted(by)))
                continue
            if [s["sts"]["result"], s["sts"]["reason"]] != sts:
                bad.append("%s: sts %s, want %s" % (key, s["sts"], sts))
            names = sorted(x["name"] for x in s["anomalies"])
            if names != anomalies:
                bad.append("%s: anomalies %s, want %s" % (key, names, anomalies))
            for k, v in tls.items():
                if s["tls"].get(k) != v:
                    bad.append("%s: tls.%s = %r, want %r" % (key, k, s["tls"].get(k), v))
        if len(sess) != len(want):
            bad.append("%d sessions, want %d" % (len(sess), len(want)))
        for x in bad:
            print("FAIL " + x)
        print("postfix outbound: %d sessions (TLS 1.2, TLS 1.3, no STARTTLS, TLS 1.2 anonymous), %d failures" %
              (len(sess), len(bad)))
        if bad:
            print(r.stdout)
        return 1 if bad else 0
    finally:
        if tcpdump is not None:
            tcpdump.kill()
            tcpdump.wait()
        for ns, etc in started:
            pc.sh("ip", "netns", "exec", ns, "postfix", "-c", etc, "stop")
        time.sleep(0.3)
        pc.sh("ip", "netns", "del", ns_m)
        pc.sh("ip", "netns", "del", ns_s)
        if os.environ.get("WS_KEEP") is None:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
