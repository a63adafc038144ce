#!/usr/bin/python3
"""What `wireseal replay` shows, beyond the verdicts run_case.py compares:

 - a capture made here frame by frame: one session over IPv4 whose client
   sequence numbers wrap inside DATA, one over IPv6 with a hop-by-hop and a
   destination-options header before TCP; each logs in (AUTH PLAIN with an
   initial response, then AUTH LOGIN over 334 challenges), starts a
   transaction and RSETs it, then MAIL, two RCPTs (the server refuses
   one), DATA. Checked: the verdicts equal `wireseal verify`'s, the record
   carries the envelope after the RSET and only the accepted recipient, and
   no credential (base64 or decoded) appears anywhere in the output, JSON or
   text, stdout or stderr;
 - the session line's reply code to each command, in order;
 - the summary on stderr: sessions, messages, verdict counts, gaps, packets/s;
 - progress on a TTY (stderr a pseudo-terminal): "\\r... packets, ...
   messages" lines; none when stderr is not a terminal;
 - replay without root (as nobody, when the test runs as root);
 - numeric options that are not numbers are refused (exit 2, the option
   named);
 - output into a regular file (written 64 KiB at a time) is the same
   lines as through a pipe (flushed line by line), each whole, with two
   workers writing;
 - eviction under pressure: each evicted session's record says "evicted",
   as many as the summary counts;
 - `make run`: the bundled sample's verdicts through replay.

usage: replay_output.py BUILD_DIR SOURCE_ROOT
"""
import base64
import json
import os
import pty
import re
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tools'))
from gen_smtp_pcap import csum  # noqa: E402  (one Internet checksum for every capture tool)

NOW = "1800000000"
SECRETS = [b"alice", b"SECRET-PLAIN-pw", b"SECRET-LOGIN-pw"]


class Conn:
    """One TCP connection's frames; v6: IPv6 with two extension headers."""

    def __init__(self, v6, cport, isn_c, isn_s):
        self.v6, self.cport = v6, cport
        if v6:
            self.cip = bytes.fromhex("20010db8000000000000000000000010")
            self.sip = bytes.fromhex("20010db8000000000000000000000025")
        else:
            self.cip, self.sip = bytes([192, 0, 2, 10]), bytes([192, 0, 2, 25])
        self.seq = [isn_c, isn_s]  # next sequence number per side (0 client)
        self.frames = []

    def frame(self, c2s, flags, payload=b""):
        src, dst = (self.cip, self.sip) if c2s else (self.sip, self.cip)
        sp, dp = (self.cport, 25) if c2s else (25, self.cport)
        me, peer = (0, 1) if c2s else (1, 0)
        ack = self.seq[peer] & 0xFFFFFFFF if flags & 0x10 else 0
        tcp = struct.pack("!HHIIBBHHH", sp, dp, self.seq[me] & 0xFFFFFFFF, ack, 5 << 4, flags,
                          65535, 0, 0) + payload
        if self.v6:
            pseudo = src + dst + struct.pack("!IxxxB", len(tcp), 6)
        else:
            pseudo = src + dst + struct.pack("!xBH", 6, len(tcp))
        tcp = tcp[:16] + struct.pack("!H", csum(pseudo + tcp)) + tcp[18:]
        if self.v6:
            hbh = bytes([60, 0, 1, 4, 0, 0, 0, 0])  # next: destination options; PadN
            dst_opts = bytes([6, 0, 1, 4, 0, 0, 0, 0])  # next: TCP; PadN
            body = hbh + dst_opts + tcp
            ip = struct.pack("!IHBB", 6 << 28, len(body), 0, 64) + src + dst + body
            eth_type = 0x86DD
        else:
            hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 1, 0x4000, 64, 6, 0, src, dst)
            ip = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:] + tcp
            eth_type = 0x0800
        eth = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01" + struct.pack("!H", eth_type)
        self.frames.append(eth + ip)
        self.seq[me] += len(payload) + (1 if flags & 0x03 else 0)

    def say(self, c2s, text, mss=700):
        for i in range(0, len(text), mss):
            self.frame(c2s, 0x18, text[i:i + mss])


def session(v6, cport, isn_c, eml):
    c = Conn(v6, cport, isn_c, 1000)
    c.frame(True, 0x02)
    c.frame(False, 0x12)
    c.frame(True, 0x10)
    plain = base64.b64encode(b"\0" + SECRETS[0] + b"\0" + SECRETS[1])
    steps = [
        (False, b"220 mx.example ESMTP\r\n"),
        (True, b"EHLO client.example\r\n"),
        (False, b"250-mx.example\r\n250-PIPELINING\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n"),
        (True, b"AUTH PLAIN " + plain + b"\r\n"),
        (False, b"235 2.7.0 Authentication successful\r\n"),
        (True, b"AUTH LOGIN\r\n"),
        (False, b"334 VXNlcm5hbWU6\r\n"),
        (True, base64.b64encode(SECRETS[0]) + b"\r\n"),
        (False, b"334 UGFzc3dvcmQ6\r\n"),
        (True, base64.b64encode(SECRETS[2]) + b"\r\n"),
        (False, b"235 2.7.0 Authentication successful\r\n"),
        (True, b"MAIL FROM:<old@sample.example>\r\n"),
        (False, b"250 2.1.0 Ok\r\n"),
        (True, b"RCPT TO:<gone@example.org>\r\n"),
        (False, b"250 2.1.5 Ok\r\n"),
        (True, b"RSET\r\n"),
        (False, b"250 2.0.0 Ok\r\n"),
        (True, b"MAIL FROM:<sender@sample.example>\r\n"),
        (False, b"250 2.1.0 Ok\r\n"),
        (True, b"RCPT TO:<reader@example.org>\r\n"),
        (False, b"250 2.1.5 Ok\r\n"),
        (True, b"RCPT TO:<nobody@example.org>\r\n"),
        (False, b"550 5.1.1 <nobody@example.org>: Recipient address rejected\r\n"),
        (True, b"DATA\r\n"),
        (False, b"354 End data with <CR><LF>.<CR><LF>\r\n"),
    ]
    for c2s, text in steps:
        c.say(c2s, text)
    msg = open(eml, "rb").read().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if not msg.endswith(b"\r\n"):
        msg += b"\r\n"
    stuffed = b"".join(b"." + l if l.startswith(b".") else l
                       for l in msg.splitlines(keepends=True))
    c.say(True, stuffed + b".\r\n")
    c.say(False, b"250 2.0.0 Ok: queued\r\n")
    c.say(True, b"QUIT\r\n")
    c.say(False, b"221 2.0.0 Bye\r\n")
    c.frame(True, 0x11)
    c.frame(False, 0x11)
    c.frame(True, 0x10)
    return c


def write_pcap(path, conns):
    ts = 1700000000 * 1000000
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for c in conns:
            for fr in c.frames:
                ts += 10
                f.write(struct.pack("<IIII", ts // 1000000, ts % 1000000, len(fr), len(fr)) + fr)


def main():
    build, root = sys.argv[1:3]
    ws = os.path.join(build, "wireseal")
    zone = os.path.join(root, "tests", "data", "sample", "zone.db")
    sample_dir = os.path.join(root, "tests", "data", "sample")
    cap = os.path.join(root, "tests", "data", "captures")
    tmp = tempfile.mkdtemp(prefix="ws-replay-output-")
    bad = 0

    def fail(msg):
        nonlocal bad
        print("FAIL " + msg)
        bad += 1

    # ---- the crafted capture
    emls = [os.path.join(sample_dir, "01-rsa-dkimpy.eml"),
            os.path.join(sample_dir, "02-ed25519-and-rsa.eml")]
    # client ISN 1500 before the wrap: it falls inside DATA
    conns = [session(False, 40001, 2**32 - 1500, emls[0]), session(True, 40002, 7, emls[1])]
    pcap = os.path.join(tmp, "auth-rset.pcap")
    write_pcap(pcap, conns)
    v = subprocess.run([ws, "verify", "--json", "--zone", zone, "--now", NOW] + emls,
                       capture_output=True, text=True, check=True)
    want = [sorted((d["d"], d["s"], d["result"]) for d in json.loads(l)["dkim"])
            for l in v.stdout.splitlines()]
    outputs = []
    for mode in (["--json"], []):
        r = subprocess.run([ws, "replay", "--zone", zone, "--now", NOW] + mode + [pcap],
                           capture_output=True, timeout=120)
        if r.returncode != 0:
            fail("replay %s: exit %d\n%s" % (mode, r.returncode, r.stderr.decode()))
        outputs.append(r.stdout + r.stderr)
        if mode:
            lines = [json.loads(l) for l in r.stdout.decode().splitlines()]
            msgs = sorted((o for o in lines if "session_record" not in o),
                          key=lambda o: o["session"]["client_port"])
            got = [sorted((d["d"], d["s"], d["result"]) for d in o["dkim"]) for o in msgs]
            if got != want:
                fail("verdicts: replay %s, verify %s" % (got, want))
            for o in msgs:
                s = o["session"]
                if (s["mail_from"] != "sender@sample.example" or s["rcpt"] != ["reader@example.org"]
                        or s["helo"] != "client.example" or s.get("gap") or s.get("midstream")):
                    fail("envelope after RSET / refused RCPT: %s" % s)
            if [o["session"]["client_ip"] for o in msgs] != ["192.0.2.10", "2001:db8::10"]:
                fail("sessions: %s" % [o["session"] for o in msgs])
            # the reply code to every command, in order, on the session lines
            want_replies = [["(greeting)", 220], ["EHLO", 250], ["AUTH", 235], ["AUTH", 334],
                            ["AUTH", 334], ["AUTH", 235], ["MAIL", 250], ["RCPT", 250],
                            ["RSET", 250], ["MAIL", 250], ["RCPT", 250], ["RCPT", 550],
                            ["DATA", 354], ["(end of data)", 250], ["QUIT", 221]]
            srecs = [o["session_record"] for o in lines if "session_record" in o]
            if len(srecs) != 2 or any(x.get("replies") != want_replies for x in srecs):
                fail("reply codes per command: %s" % [x.get("replies") for x in srecs])
            summ = r.stderr.decode()
            if not re.search(r"sessions=2 messages=2 gaps=0 overlaps-differ=0 dkim: pass=\d+", summ):
                fail("summary: sessions/messages/gaps/verdicts missing:\n%s" % summ)
            if not re.search(r": \d+ packets, \d+ bytes in [\d.]+ s: \d+ packets/s, [\d.]+ Gbit/s, "
                             r"\d+ messages/s", summ):
                fail("summary: no packets/s line:\n%s" % summ)
            if "ipv6-ext-limit=0" not in summ or not re.search(r"tcp=%d\b" % sum(
                    len(c.frames) for c in conns), summ):
                fail("summary: not every frame parsed to TCP:\n%s" % summ)
    for out in outputs:
        for s in SECRETS:
            for form in (s, base64.b64encode(s), base64.b64encode(b"\0" + SECRETS[0] + b"\0" +
                                                                 SECRETS[1])):
                if form in out:
                    fail("credential %r in the output" % form)

    # ---- progress on a TTY, none without
    sample = os.path.join(cap, "sample.pcap")
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(ws, [ws, "replay", "--zone", zone, "--now", NOW, sample])
    tty_out = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        tty_out += chunk
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        fail("replay on a TTY: status %d" % status)
    if not re.search(rb"\rwireseal replay: \d+ packets, \d+ messages ", tty_out):
        fail("no progress line on a TTY: %r" % tty_out[:300])
    r = subprocess.run([ws, "replay", "--zone", zone, "--now", NOW, sample], capture_output=True,
                       text=True, timeout=120)
    if "\r" in r.stderr:
        fail("progress written to a non-terminal: %r" % r.stderr[:200])

    # ---- no root needed (README): the same run as nobody, when we are root
    if os.geteuid() == 0 and os.path.exists("/usr/bin/setpriv"):
        r = subprocess.run(["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            "env", "HOME=/tmp", ws, "replay", "--json", "--zone", zone, "--now",
                            NOW, sample], capture_output=True, text=True, timeout=120)
        n = len([l for l in r.stdout.splitlines() if "session_record" not in l])
        want_n = len(json.load(open(os.path.join(cap, "sample.json"))))
        if r.returncode != 0 or n != want_n:
            fail("replay as nobody: exit %d, %d messages, want %d\n%s" %
                 (r.returncode, n, want_n, r.stderr[-1500:]))

    # ---- numeric options: a number or a clear usage error, never a silent 0
    for opt, val in (("--flows", "12k"), ("--now", "abc"), ("--cp-wait", "5s"), ("--workers", "x"),
                     ("--idle-timeout", "-1"), ("--end-idle", "")):
        r = subprocess.run([ws, "replay", "--zone", zone, opt, val, sample], capture_output=True,
                           text=True, timeout=120)
        if r.returncode != 2 or opt + ":" not in r.stderr or r.stdout:
            fail("replay %s %r: exit %d, want 2 with the option named: %r" %
                 (opt, val, r.returncode, r.stderr[-300:]))

    # ---- into a regular file lines are buffered 64 KiB at a time, not
    # flushed one by one: the same lines as through a pipe, each whole,
    # with two workers writing at once
    # (lines written as made: --no-cp; lines queued for their verdicts: the
    # default control-plane child)
    cc = os.path.join(cap, "concurrent.pcap")
    for cpmode in (["--no-cp"], []):
        args = [ws, "replay", "--json", "--workers", "2", "--zone", zone, "--now", NOW] + cpmode + [cc]
        piped = subprocess.run(args, capture_output=True, text=True, timeout=120)
        with tempfile.TemporaryFile("w+") as outf:
            filed = subprocess.run(args, stdout=outf, stderr=subprocess.PIPE, text=True,
                                   timeout=120)
            outf.seek(0)
            flines = outf.read().splitlines()
        plines = piped.stdout.splitlines()
        try:
            for l in flines:
                json.loads(l)
            whole = True
        except ValueError:
            whole = False
        if piped.returncode != 0 or filed.returncode != 0 or not whole or not plines or \
                sorted(flines) != sorted(plines):
            fail("replay %s into a file: exit %d/%d, %d lines against %d through a pipe, whole %s" %
                 (cpmode, piped.returncode, filed.returncode, len(flines), len(plines), whole))

    # ---- eviction: every evicted session's record says so
    r = subprocess.run([ws, "replay", "--json", "--zone", zone, "--now", NOW, "--flows", "8",
                        os.path.join(cap, "concurrent.pcap")], capture_output=True, text=True,
                       timeout=120)
    m = re.search(r"evicted (\d+)", r.stderr)
    recs = [json.loads(l)["session_record"] for l in r.stdout.splitlines()
            if "session_record" in json.loads(l)]
    ev = sum(1 for x in recs if x["end_reason"] == "evicted")
    if not m or int(m.group(1)) == 0 or ev != int(m.group(1)):
        fail("eviction: summary %s, %d session records say evicted" %
             (m.group(0) if m else None, ev))

    # ---- make run
    mr = subprocess.run(["make", "-s", "run", "BUILD=" + os.path.relpath(build, root)], cwd=root,
                        capture_output=True, text=True, timeout=300)
    replayed = [json.loads(l) for l in mr.stdout.splitlines() if l.startswith("{")
                and '"session"' in l and '"file"' not in l]
    nsample = len(json.load(open(os.path.join(cap, "sample.json"))))
    if mr.returncode != 0 or len(replayed) != nsample:
        fail("make run: exit %d, %d replayed message lines, want %d\n%s" %
             (mr.returncode, len(replayed), nsample, mr.stderr[-2000:]))

    print("replay output: %d failures" % bad)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
