#!/usr/bin/python3
"""Real MTA capture: a private Postfix (Debian's, own config and queue under
a temporary folder, delivering to discard:) listens in one network
namespace; swaks in another sends each bundled sample message over a veth
pair (one with PIPELINING); tcpdump captures on the server's veth. Then
`wireseal replay` reads that capture and every message's DKIM results must
equal `wireseal verify` on the same file.

Needs root, postfix, swaks and tcpdump: exits 77 (skip) with the reason
otherwise, or when a network namespace cannot be created.

usage: postfix_capture.py BUILD_DIR SOURCE_ROOT
"""
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

NOW = "1800000000"
SRV, CLI = "10.99.0.1", "10.99.0.2"

MASTER_CF = """\
smtp      inet  n       -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def main_cf(d):
    return f"""\
compatibility_level = 3.6
queue_directory = {d}/spool
data_directory = {d}/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = {SRV}
inet_protocols = ipv4
myhostname = mx.example
mydestination = mx.example
local_recipient_maps =
local_transport = discard:
default_transport = discard:
relay_transport = discard:
alias_maps =
alias_database =
mynetworks = 10.99.0.0/24
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
smtputf8_enable = no
biff = no
maillog_file_prefixes = {d}
maillog_file = {d}/maillog
"""


def skip(why):
    print("SKIP: " + why)
    return 77


def sh(*args, **kw):
    return subprocess.run(list(args), capture_output=True, text=True, **kw)


def main():
    build, root = sys.argv[1:3]
    if os.geteuid() != 0:
        return skip("not root: network namespaces, tcpdump and postfix need root")
    for tool in ("postfix", "swaks", "tcpdump"):
        if not shutil.which(tool) and not os.path.exists("/usr/sbin/" + tool):
            return skip(tool + " is not installed (deploy/install-deps.sh installs it)")
    tag = str(os.getpid())
    ns_s, ns_c = "wspfs" + tag, "wspfc" + tag
    r = sh("ip", "netns", "add", ns_s)
    if r.returncode != 0:
        return skip("cannot create a network namespace: " + r.stderr.strip())
    sh("ip", "netns", "add", ns_c)
    d = tempfile.mkdtemp(prefix="wspf")
    os.chmod(d, 0o755)
    tcpdump = None
    etc = os.path.join(d, "etc")
    try:
        sh("ip", "link", "add", "wspa" + tag[-4:], "netns", ns_s, "type", "veth", "peer", "name",
           "wspb" + tag[-4:], "netns", ns_c, check=True)
        a, b = "wspa" + tag[-4:], "wspb" + tag[-4:]
        for ns, dev, ip in ((ns_s, a, SRV), (ns_c, b, CLI)):
            sh("ip", "-n", ns, "addr", "add", ip + "/24", "dev", dev, check=True)
            sh("ip", "-n", ns, "link", "set", dev, "up", check=True)
            sh("ip", "-n", ns, "link", "set", "lo", "up", check=True)
        os.makedirs(etc)
        open(os.path.join(etc, "main.cf"), "w").write(main_cf(d))
        open(os.path.join(etc, "master.cf"), "w").write(MASTER_CF)
        os.makedirs(os.path.join(d, "spool"))
        sh("postfix", "-c", etc, "post-install", "create-missing")
        # postfix prints its fatal errors to a terminal only: give it one
        r = sh("script", "-qec", "ip netns exec %s postfix -c %s start" % (ns_s, etc), "/dev/null")
        if r.returncode != 0:
            print("FAIL: postfix did not start: %s %s" % (r.stdout, r.stderr))
            return 1
        cap = os.path.join(d, "postfix.pcap")
        tcpdump = subprocess.Popen(["ip", "netns", "exec", ns_s, "tcpdump", "-i", a, "-w", cap,
                                    "-U", "--immediate-mode", "-s", "0", "-Z", "root", "tcp", "port", "25"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for _ in range(100):  # postfix's smtpd and tcpdump both ready
            if sh("ip", "netns", "exec", ns_c, "bash", "-c",
                  f"exec 3<>/dev/tcp/{SRV}/25").returncode == 0 and os.path.exists(cap):
                break
            time.sleep(0.1)
        time.sleep(0.3)
        emls = sorted(glob.glob(os.path.join(root, "tests", "data", "sample", "0*.eml")))
        emls.append(os.path.join(root, "tests", "data", "captures", "dots.eml"))
        for i, eml in enumerate(emls):
            args = ["ip", "netns", "exec", ns_c, "swaks", "--server", SRV, "--helo",
                    "client.example", "--from", "sender%d@sample.example" % i, "--to",
                    "reader@mx.example", "--data", eml, "--silent", "2"]
            if i % 2:
                args.append("--pipeline")
            r = sh(*args, timeout=60)
            if r.returncode != 0:
                print("FAIL: swaks %s: %s %s" % (eml, r.stdout, r.stderr))
                return 1
        time.sleep(1.5)  # the last frames reach the file before tcpdump stops
        tcpdump.send_signal(signal.SIGINT)
        tcpdump.wait(timeout=10)
        print(tcpdump.stderr.read().decode().strip().splitlines()[-2:])
        tcpdump = None
        zone = os.path.join(root, "tests", "data", "sample", "zone.db")
        v = sh(os.path.join(build, "wireseal"), "verify", "--json", "--zone", zone, "--now", NOW,
               *emls, check=True)
        want = [sorted((x["d"], x["s"], x["result"]) for x in json.loads(l)["dkim"])
                for l in v.stdout.splitlines()]
        r = sh(os.path.join(build, "wireseal"), "replay", "--json", "--zone", zone, "--now", NOW,
               cap, timeout=120)
        sys.stderr.write(r.stderr)
        bad = 0
        got = {}
        for l in r.stdout.splitlines():
            o = json.loads(l)
            if "session_record" in o:
                continue
            got[o["session"]["mail_from"]] = o
        for i, eml in enumerate(emls):
            o = got.pop("sender%d@sample.example" % i, None)
            if o is None:
                print("FAIL: %s not reported" % eml)
                bad += 1
                continue
            res = sorted((x["d"], x["s"], x["result"]) for x in o["dkim"])
            if res != want[i] or o["session"].get("gap"):
                print("FAIL: %s: replay %s (gap %s), verify %s" %
                      (eml, res, o["session"].get("gap"), want[i]))
                bad += 1
            if o["session"]["server_port"] != 25 or o["session"]["helo"] != "client.example":
                print("FAIL: %s: session %s" % (eml, o["session"]))
                bad += 1
        bad += len(got)
        print("postfix capture: %d messages through Postfix, %d failures" % (len(emls), bad))
        return 1 if bad else 0
    finally:
        if tcpdump is not None:
            tcpdump.kill()
            tcpdump.wait()
        if os.path.isdir(etc):
            sh("ip", "netns", "exec", ns_s, "postfix", "-c", etc, "stop")
            time.sleep(0.3)
        sh("ip", "netns", "del", ns_s)
        sh("ip", "netns", "del", ns_c)
        if os.environ.get("WS_KEEP") is None:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
