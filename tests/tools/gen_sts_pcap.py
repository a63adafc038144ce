#!/usr/bin/python3
"""Write the outbound-SMTP captures of the STARTTLS/TLS wire signals.

Every capture is one or more SMTP sessions from a sending MTA
(198.51.100.N, one N per capture) to an MX (192.0.2.25, mx.example.net). The TLS bytes are
real: each handshake runs at generation time between two Python ssl objects
joined by memory BIOs (OpenSSL underneath), with test certificates made on
the fly by python3-cryptography (a test CA, a leaf for mx.example.net, an
expired leaf, a leaf for another name, a leaf from a CA nobody trusts). TLS
1.2 full handshakes, TLS 1.3, TLS 1.2 resumption, client aborts. What no
modern OpenSSL will negotiate (TLS 1.0, a rewritten ClientHello) is spliced
or built by hand from real handshake bytes.

Per wire signal of the research note there is an attack capture and a
benign one; each is written three times: NAME.pcap (IPv4, segments up to
1460 bytes), NAME-split.pcap (every write cut into random 1..7-byte
segments) and NAME-v6-ooo.pcap (IPv6, 1..200-byte segments, neighbours
swapped and some sent twice), which must give the same session lines. expected.json says, per capture, the
replay arguments and per session (client port) the anomaly names, the
offsets the generator knows (where it put the evidence bytes), the sts
result and reason, and TLS facts.

usage: gen_sts_pcap.py OUTDIR   (tests/data/captures/sts/make-captures.sh)
"""
import datetime
import json
import os
import random
import ssl
import struct
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_smtp_pcap import Frames  # noqa: E402

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

CAPTURE_T0 = 1790000000  # capture time of the first packet (2026-09-21)
CIP = bytes([198, 51, 100, 7])
SIP = bytes([192, 0, 2, 25])
MX = "mx.example.net"
POLICY_ARGS = ["--sts-policy", "example.net=@DIR@/example.net.policy",
               "--mx-map", "192.0.2.25=mx.example.net", "--mx-map", "2001:db8::19=mx.example.net",
               "--ca-file", "@DIR@/ca.pem"]


# ---- certificates ----------------------------------------------------------

def when(y, m=1, d=1):
    return datetime.datetime(y, m, d, tzinfo=datetime.timezone.utc)


def make_ca(name):
    key = ec.generate_private_key(ec.SECP256R1())
    subj = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "wireseal tests")])
    cert = (x509.CertificateBuilder().subject_name(subj).issuer_name(subj)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(when(2024)).not_valid_after(when(2036))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                           critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def make_leaf(ca, names, cn, nb, na):
    ca_key, ca_cert = ca
    key = ec.generate_private_key(ec.SECP256R1())
    b = (x509.CertificateBuilder()
         .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
         .issuer_name(ca_cert.subject).public_key(key.public_key())
         .serial_number(x509.random_serial_number()).not_valid_before(nb).not_valid_after(na)
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True))
    if names:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
                            critical=False)
    return key, b.sign(ca_key, hashes.SHA256())


def pem(c):
    return c.public_bytes(serialization.Encoding.PEM)


def key_pem(k):
    return k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                           serialization.NoEncryption())


class Certs:
    def __init__(self, tmp, outdir):
        self.tmp = tmp
        self.ca = make_ca("wireseal test CA")
        self.rogue = make_ca("rogue CA")
        with open(os.path.join(outdir, "ca.pem"), "wb") as f:
            f.write(pem(self.ca[1]))
        self.ca_file = os.path.join(tmp, "ca.pem")
        with open(self.ca_file, "wb") as f:
            f.write(pem(self.ca[1]))
        self.files = {}
        self.add("good", self.ca, [MX], MX, when(2025), when(2030))
        self.add("expired", self.ca, [MX], MX, when(2024), when(2025))
        self.add("wrongname", self.ca, ["other.example.org"], "other.example.org", when(2025), when(2030))
        self.add("rogue", self.rogue, [MX], MX, when(2025), when(2030))

    def add(self, name, ca, names, cn, nb, na):
        key, cert = make_leaf(ca, names, cn, nb, na)
        chain = os.path.join(self.tmp, name + ".pem")
        with open(chain, "wb") as f:
            f.write(pem(cert) + pem(ca[1]))  # leaf, then the CA: a two-certificate chain
        kf = os.path.join(self.tmp, name + ".key")
        with open(kf, "wb") as f:
            f.write(key_pem(key))
        self.files[name] = (chain, kf)

    def server(self, name, minv=ssl.TLSVersion.TLSv1_2, maxv=ssl.TLSVersion.TLSv1_3):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version, ctx.maximum_version = minv, maxv
        ctx.load_cert_chain(*self.files[name])
        return ctx

    def client(self, verify=False, minv=ssl.TLSVersion.TLSv1_2, maxv=ssl.TLSVersion.TLSv1_3):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version, ctx.maximum_version = minv, maxv
        ctx.check_hostname = False
        if verify:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(self.ca_file)
        else:
            ctx.verify_mode = ssl.CERT_NONE  # opportunistic TLS, as MTAs do by default
        return ctx


# ---- a TLS conversation through memory BIOs --------------------------------

class TLS:
    """Runs the handshake; .flights is [(c2s, bytes)] as they went on the wire."""

    def __init__(self, sctx, cctx, sni, session=None):
        self.sin, self.sout, self.cin, self.cout = (ssl.MemoryBIO() for _ in range(4))
        self.s = sctx.wrap_bio(self.sin, self.sout, server_side=True)
        self.c = cctx.wrap_bio(self.cin, self.cout, server_side=False, server_hostname=sni,
                               session=session)
        self.flights = []
        self.error = None
        cdone = sdone = False
        for _ in range(20):
            if not cdone:
                try:
                    self.c.do_handshake()
                    cdone = True
                except ssl.SSLWantReadError:
                    pass
                except ssl.SSLError as e:
                    self.error = ("client", e)
            self._pump(True)
            if self.error:
                break
            if not sdone:
                try:
                    self.s.do_handshake()
                    sdone = True
                except ssl.SSLWantReadError:
                    pass
                except ssl.SSLError as e:
                    self.error = ("server", e)
            self._pump(False)
            if self.error or (cdone and sdone):
                break
        # a client that finished after the server's last flight (TLS 1.3)
        if not self.error and not cdone:
            try:
                self.c.do_handshake()
            except ssl.SSLError as e:
                self.error = ("client", e)
            self._pump(True)

    def _pump(self, c2s):
        out = (self.cout if c2s else self.sout).read()
        if out:
            self.flights.append((c2s, out))
            (self.sin if c2s else self.cin).write(out)

    def client_says(self, data):
        self.c.write(data)
        out = self.cout.read()
        self.sin.write(out)
        try:
            self.s.read(65536)
        except ssl.SSLWantReadError:
            pass
        return out

    def server_says(self, data):
        self.s.write(data)
        out = self.sout.read()
        self.cin.write(out)
        try:
            self.c.read(65536)
        except ssl.SSLWantReadError:
            pass
        return out


# ---- hand-built hello messages ----------------------------------------------

def record(typ, version, body):
    return struct.pack("!BHH", typ, version, len(body)) + body


def handshake(typ, body):
    return struct.pack("!B", typ) + len(body).to_bytes(3, "big") + body


def client_hello(legacy, versions, sni, rng):
    ext = b""
    if sni:
        name = sni.encode()
        sn = struct.pack("!BH", 0, len(name)) + name
        ext += struct.pack("!HH", 0, len(sn) + 2) + struct.pack("!H", len(sn)) + sn
    if versions:
        sv = b"".join(struct.pack("!H", v) for v in versions)
        ext += struct.pack("!HHB", 43, len(sv) + 1, len(sv)) + sv
    suites = struct.pack("!HHH", 0x002f, 0x0035, 0x000a)
    body = (struct.pack("!H", legacy) + bytes(rng.randrange(256) for _ in range(32)) + b"\x00" +
            struct.pack("!H", len(suites)) + suites + b"\x01\x00" + struct.pack("!H", len(ext)) + ext)
    return record(22, 0x0301, handshake(1, body))


def server_hello(version, suite, rng):
    body = (struct.pack("!H", version) + bytes(rng.randrange(256) for _ in range(32)) + b"\x00" +
            struct.pack("!HB", suite, 0))
    return record(22, version, handshake(2, body))


# ---- sessions and captures ---------------------------------------------------

class Conv:
    """One TCP connection's byte streams, with marks (expected evidence offsets)."""

    def __init__(self, port):
        self.port = port
        self.writes = []  # (c2s | "FIN" | "RST", bytes)
        self.pos = [0, 0]
        self.marks = {}

    def c(self, data):
        self.writes.append((True, data))
        self.pos[0] += len(data)

    def s(self, data):
        self.writes.append((False, data))
        self.pos[1] += len(data)

    def mark(self, name, c2s, ahead=0):
        """The evidence of name starts ahead bytes past what was written so far."""
        self.marks.setdefault(name, ("c2s" if c2s else "s2c", self.pos[0 if c2s else 1] + ahead))

    def flights(self, tls):
        for c2s, data in tls.flights:
            (self.c if c2s else self.s)(data)

    def end(self, how="FIN"):
        self.writes.append((how, b""))


def ehlo(cv, starttls=True, masked=None, banner=b"220 mx.example.net ESMTP\r\n"):
    cv.s(banner)
    cv.c(b"EHLO sender.example\r\n")
    caps = b"250-mx.example.net\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"
    if masked:
        cv.mark("starttls-capability-masked", False, len(caps))
        caps += b"250-" + masked + b"\r\n"
    elif starttls:
        caps += b"250-STARTTLS\r\n"
    cv.s(caps + b"250 8BITMIME\r\n")


def cleartext_mail(cv, rcpt, quit=True):
    cv.c(b"MAIL FROM:<alice@sender.example>\r\n")
    cv.s(b"250 2.1.0 Ok\r\n")
    cv.c(b"RCPT TO:<" + rcpt.encode() + b">\r\n")
    cv.s(b"250 2.1.5 Ok\r\n")
    cv.c(b"DATA\r\n")
    cv.s(b"354 End data with <CR><LF>.<CR><LF>\r\n")
    cv.c(b"From: alice@sender.example\r\nTo: " + rcpt.encode() + b"\r\nSubject: t\r\n\r\nhello\r\n.\r\n")
    cv.s(b"250 2.0.0 Ok: queued\r\n")
    if quit:
        cv.c(b"QUIT\r\n")
        cv.s(b"221 2.0.0 Bye\r\n")


def starttls(cv, reply=b"220 2.0.0 Ready to start TLS\r\n"):
    cv.c(b"STARTTLS\r\n")
    cv.s(reply)


def tls_mail(cv, tls, rcpt="bob@example.net"):
    """The encrypted SMTP transaction after a completed handshake."""
    for c2s, line in [(True, b"EHLO sender.example\r\n"), (False, b"250-mx.example.net\r\n250 8BITMIME\r\n"),
                      (True, b"MAIL FROM:<alice@sender.example>\r\n"), (False, b"250 2.1.0 Ok\r\n"),
                      (True, b"RCPT TO:<" + rcpt.encode() + b">\r\n"), (False, b"250 2.1.5 Ok\r\n"),
                      (True, b"DATA\r\n"), (False, b"354 go ahead\r\n"),
                      (True, b"Subject: t\r\n\r\nhello\r\n.\r\n"), (False, b"250 2.0.0 Ok: queued\r\n"),
                      (True, b"QUIT\r\n"), (False, b"221 2.0.0 Bye\r\n")]:
        if c2s:
            cv.c(tls.client_says(line))
        else:
            cv.s(tls.server_says(line))


CIP6 = bytes.fromhex("20010db8000000000000000000000007")
SIP6 = bytes.fromhex("20010db8000000000000000000000019")


def write_pcap(path, convs, split, rng, v6=False, ooo=False, client=7):
    """ooo: each side's data segments are sent as the research note's case (d):
    some swapped with their neighbour, some sent twice (retransmits).
    client: the last byte of the client's address (one per capture, so that
    captures replayed together never look like one MTA's retries)."""
    cip, cip6 = CIP[:3] + bytes([client]), CIP6[:15] + bytes([client])
    fr = Frames(True, [], cip6, SIP6) if v6 else Frames(False, [], cip, SIP)
    ts = CAPTURE_T0 * 1000000
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))

        def put(c2s, sport, dport, seq, ack, flags, payload):
            nonlocal ts
            src, dst, seg = fr.tcp(c2s, sport, dport, seq, ack, flags, payload)
            for frame in fr.ip(src, dst, seg):
                ts += 10
                f.write(struct.pack("<IIII", ts // 1000000, ts % 1000000, len(frame), len(frame)) + frame)

        for cv in convs:
            ts += 1000000  # one second between sessions
            cport = cv.port
            cseq, sseq = 1000, 5000
            put(True, cport, 25, cseq, 0, 0x02, b"")
            put(False, 25, cport, sseq, cseq + 1, 0x12, b"")
            cseq += 1
            sseq += 1
            put(True, cport, 25, cseq, sseq, 0x10, b"")
            for c2s, data in cv.writes:
                if c2s == "FIN":
                    put(True, cport, 25, cseq, sseq, 0x11, b"")
                    put(False, 25, cport, sseq, cseq + 1, 0x11, b"")
                    put(True, cport, 25, cseq + 1, sseq + 1, 0x10, b"")
                    break
                if c2s == "RST":
                    put(True, cport, 25, cseq, sseq, 0x14, b"")
                    break
                off = 0
                segs = []
                while off < len(data):
                    n = rng.randint(1, 7) if split else (rng.randint(1, 200) if ooo else 1460)
                    piece = data[off:off + n]
                    if c2s:
                        segs.append((True, cport, 25, cseq, sseq, 0x18, piece))
                        cseq += len(piece)
                    else:
                        segs.append((False, 25, cport, sseq, cseq, 0x18, piece))
                        sseq += len(piece)
                    off += len(piece)
                if ooo:
                    for i in range(len(segs) - 1):
                        if rng.random() < 0.3:
                            segs[i], segs[i + 1] = segs[i + 1], segs[i]
                    segs = [x for seg in segs for x in ([seg, seg] if rng.random() < 0.2 else [seg])]
                for seg in segs:
                    put(*seg)


def cases(certs, rng):
    """name -> (description, [(Conv, expectation)], extra replay args)."""
    out = {}

    def case(name, desc, sessions, policy=True):
        out[name] = (desc, sessions, POLICY_ARGS if policy else [])

    def tls12(cert="good", sni=MX, verify=False, session=None, maxv=ssl.TLSVersion.TLSv1_2):
        return TLS(certs.server(cert), certs.client(verify, maxv=maxv), sni, session)

    # -- benign baselines -------------------------------------------------
    cv = Conv(41001)
    ehlo(cv)
    starttls(cv)
    t = tls12()
    cv.flights(t)
    tls_mail(cv, t)
    cv.end()
    case("tls12-full", "TLS 1.2 full handshake, valid chain, SNI = MX: pass",
         [(cv, {"anomalies": [], "sts": ["pass", "none"], "source": "mx-host",
                "tls": {"version": "TLSv1.2", "cert_seen": True, "chain_trusted": True,
                        "sni": MX, "resumed": False, "established": True}})])

    cv = Conv(41002)
    ehlo(cv)
    starttls(cv)
    t = TLS(certs.server("good"), certs.client(), MX)
    cv.flights(t)
    tls_mail(cv, t)
    cv.end()
    case("tls13", "TLS 1.3: the chain is encrypted: not-assessable, never pass",
         [(cv, {"anomalies": [], "sts": ["not-assessable", "none"],
                "tls": {"version": "TLSv1.3", "cert_seen": False, "established": True}})])

    sctx = certs.server("good", maxv=ssl.TLSVersion.TLSv1_2)
    cctx = certs.client(maxv=ssl.TLSVersion.TLSv1_2)
    a, b = Conv(41003), Conv(41004)
    for cv, sess in ((a, None), (b, "resume")):
        ehlo(cv)
        starttls(cv)
        t = TLS(sctx, cctx, MX, first.c.session if sess else None)
        if not sess:
            first = t
        cv.flights(t)
        tls_mail(cv, t)
        cv.end()
    case("tls12-resumed", "TLS 1.2 full, then resumed (no certificate): not-assessable",
         [(a, {"anomalies": [], "sts": ["pass", "none"], "tls": {"resumed": False, "cert_seen": True}}),
          (b, {"anomalies": [], "sts": ["not-assessable", "none"],
               "tls": {"resumed": True, "cert_seen": False, "established": True}})])

    # -- W-1 STARTTLS missing from EHLO (policy) ----------------------------
    cv = Conv(41011)
    ehlo(cv, starttls=False)
    cleartext_mail(cv, "carol@other.example")
    cv.end()
    case("w01-benign", "no STARTTLS, no policy for the recipient: nothing to say",
         [(cv, {"anomalies": [], "sts": ["none", "none"]})])
    cv = Conv(41012)
    ehlo(cv, starttls=False)
    cleartext_mail(cv, "bob@example.net")
    cv.end()
    case("w01-attack", "no STARTTLS to an enforce domain's MX, mail goes in cleartext",
         [(cv, {"anomalies": ["cleartext-rcpt-enforce-domain", "starttls-not-offered"],
                "sts": ["fail", "starttls-not-supported"], "source": "rcpt"})])

    # -- W-2 masked capability ----------------------------------------------
    cv = Conv(41021)
    ehlo(cv, starttls=False)
    cleartext_mail(cv, "carol@other.example")
    cv.end()
    case("w02-benign", "EHLO without STARTTLS, unmasked", [(cv, {"anomalies": [], "sts": ["none", "none"]})])
    cv = Conv(41022)
    ehlo(cv, masked=b"XXXXXXXA")
    cv.c(b"STARTTLS\r\n")
    cv.s(b"500 #5.5.1 command not recognized\r\n")
    cv.c(b"QUIT\r\n")
    cv.s(b"221 bye\r\n")
    cv.end()
    case("w02-attack", "250-XXXXXXXA where STARTTLS was, then 500 #5.5.1 to STARTTLS",
         [(cv, {"anomalies": ["starttls-capability-masked"], "sts": ["none", "none"]})], policy=False)

    # -- W-3 masked STARTTLS command ------------------------------------------
    cv = Conv(41031)
    ehlo(cv, starttls=False)
    cleartext_mail(cv, "carol@other.example")
    cv.end()
    case("w03-benign", "STARTTLS not advertised, not sent", [(cv, {"anomalies": [], "sts": ["none", "none"]})])
    a = Conv(41032)
    ehlo(a)
    a.mark("starttls-command-masked", True)
    a.c(b"XXXXXXXX\r\n")
    a.s(b"500 5.5.1 command not recognized\r\n")
    a.c(b"QUIT\r\n")
    a.s(b"221 bye\r\n")
    a.end()
    b = Conv(41033)
    ehlo(b)
    b.c(b"STARTTLS\r\n")
    b.mark("starttls-command-unrecognized", False)
    b.s(b"500 #5.5.1 command not recognized\r\n")
    b.c(b"QUIT\r\n")
    b.s(b"221 bye\r\n")
    b.end()
    case("w03-attack", "(a) the MTA's STARTTLS masked to XXXXXXXX before the capture point; "
         "(b) STARTTLS sent, 'command not recognized' from downstream",
         [(a, {"anomalies": ["starttls-command-masked"], "sts": ["none", "none"]}),
          (b, {"anomalies": ["starttls-command-unrecognized"], "sts": ["none", "none"]})], policy=False)

    # -- W-4 PIX MailGuard ------------------------------------------------------
    cv = Conv(41041)
    ehlo(cv, starttls=False)
    cv.c(b"XYZZY\r\n")
    cv.s(b"502 5.5.2 Error: command not recognized\r\n")  # Postfix's own words: benign
    cleartext_mail(cv, "carol@other.example")
    cv.end()
    case("w04-benign", "a normal banner; Postfix's 502 5.5.2 to an unknown command",
         [(cv, {"anomalies": [], "sts": ["none", "none"]})])
    cv = Conv(41042)
    cv.mark("smtp-banner-masked", False)
    cv.s(b"220 ***************************2***0****\r\n")
    cv.c(b"EHLO sender.example\r\n")
    cv.mark("smtp-mailguard-reply", False)
    cv.s(b"502 5.5.2 Error: command not recognized\r\n")
    cv.c(b"HELO sender.example\r\n")
    cv.s(b"250 ****************\r\n")
    cleartext_mail(cv, "carol@other.example")
    cv.end()
    case("w04-attack", "220 ****...2...0 banner, EHLO refused with MailGuard's 502",
         [(cv, {"anomalies": ["smtp-banner-masked", "smtp-mailguard-reply"], "sts": ["none", "none"]})],
         policy=False)

    # -- W-5 454 then cleartext -------------------------------------------------
    cv = Conv(41051)
    ehlo(cv)
    starttls(cv, b"454 4.7.0 TLS not available due to temporary reason\r\n")
    cv.c(b"QUIT\r\n")
    cv.s(b"221 bye\r\n")
    cv.end()
    case("w05-benign", "454 to STARTTLS, then QUIT", [(cv, {"anomalies": [], "sts": ["none", "none"]})],
         policy=False)
    cv = Conv(41052)
    ehlo(cv)
    starttls(cv, b"454 4.7.0 TLS not available due to temporary reason\r\n")
    cv.mark("starttls-refused-then-cleartext", True)
    cleartext_mail(cv, "carol@other.example")
    cv.end()
    case("w05-attack", "454 to STARTTLS, then MAIL FROM in cleartext",
         [(cv, {"anomalies": ["starttls-refused-then-cleartext"], "sts": ["none", "none"]})], policy=False)

    # -- W-6 cleartext retry after a failed handshake ------------------------
    def failed_then(port, retry_tls):
        a = Conv(port)
        ehlo(a)
        starttls(a)
        # the server speaks only TLS 1.3, the client at most 1.2: protocol_version alert
        t = TLS(certs.server("good", minv=ssl.TLSVersion.TLSv1_3), certs.client(maxv=ssl.TLSVersion.TLSv1_2), MX)
        assert t.error, "the handshake was meant to fail"
        a.flights(t)
        a.end("RST")
        b = Conv(port + 1)
        ehlo(b)
        if retry_tls:
            starttls(b)
            t = tls12()
            b.flights(t)
            tls_mail(b, t)
        else:
            b.mark("starttls-offered-not-used", True)
            b.mark("cleartext-retry-after-tls-failure", True)
            cleartext_mail(b, "carol@other.example")
        b.end()
        return a, b

    a, b = failed_then(41061, True)
    case("w06-benign", "handshake fails, the retry uses STARTTLS successfully",
         [(a, {"anomalies": [], "sts": ["none", "none"], "tls": {"established": False, "failed": "alert"}}),
          (b, {"anomalies": [], "sts": ["none", "none"], "tls": {"established": True}})], policy=False)
    a, b = failed_then(41063, False)
    case("w06-attack", "handshake fails, the retry goes in cleartext (opportunistic fallback)",
         [(a, {"anomalies": [], "sts": ["none", "none"]}),
          (b, {"anomalies": ["cleartext-retry-after-tls-failure", "starttls-offered-not-used"],
               "sts": ["none", "none"]})], policy=False)

    # -- W-7 command injection ---------------------------------------------------
    cv = Conv(41071)
    ehlo(cv)
    cv.c(b"NOOP\r\nSTARTTLS\r\n")  # STARTTLS last in its pipelined group: fine
    cv.s(b"250 2.0.0 Ok\r\n220 2.0.0 Ready to start TLS\r\n")
    t = tls12()
    cv.flights(t)
    tls_mail(cv, t)
    cv.end()
    case("w07-benign", "STARTTLS as the last command of a pipelined group",
         [(cv, {"anomalies": [], "sts": ["pass", "none"]})])
    cv = Conv(41072)
    ehlo(cv)
    cv.c(b"STARTTLS\r\n")
    cv.mark("starttls-command-injection", True)
    cv.c(b"RSET\r\n")
    cv.s(b"220 2.0.0 Ready to start TLS\r\n")
    t = tls12()
    cv.flights(t)
    tls_mail(cv, t)
    cv.end()
    case("w07-attack", "STARTTLS\\r\\nRSET\\r\\n: a command after STARTTLS before the handshake",
         [(cv, {"anomalies": ["starttls-command-injection"], "sts": ["pass", "none"]})])

    # -- W-8 response injection ---------------------------------------------------
    cv = Conv(41081)
    ehlo(cv)
    starttls(cv)
    t = tls12()
    cv.flights(t)
    tls_mail(cv, t)
    cv.end()
    case("w08-benign", "a plain 220 to STARTTLS", [(cv, {"anomalies": [], "sts": ["pass", "none"]})])
    cv = Conv(41082)
    ehlo(cv)
    cv.c(b"STARTTLS\r\n")
    cv.s(b"220 2.0.0 Ready to start TLS\r\n")
    cv.mark("starttls-response-injection", False)
    cv.s(b"250 injected\r\n")
    t = tls12()
    cv.flights(t)
    tls_mail(cv, t)
    cv.end()
    case("w08-attack", "220 Ready\\r\\n250 injected\\r\\n before the ServerHello",
         [(cv, {"anomalies": ["starttls-response-injection"], "sts": ["pass", "none"]})])

    # -- W-9 not TLS after 220 ------------------------------------------------------
    cv = Conv(41091)
    ehlo(cv)
    starttls(cv)
    t = tls12()
    cv.flights(t)
    tls_mail(cv, t)
    cv.end()
    case("w09-benign", "a TLS handshake after 220", [(cv, {"anomalies": [], "sts": ["pass", "none"]})])
    a = Conv(41092)
    ehlo(a)
    starttls(a)
    a.mark("non-tls-after-starttls", True)
    a.c(b"\x00\x01\x02\x80garbage that is not TLS\r\n")
    a.end("RST")
    b = Conv(41093)
    ehlo(b)
    starttls(b)
    t = tls12()
    b.c(t.flights[0][1])  # the ClientHello
    b.mark("non-tls-after-starttls", False)
    b.s(b"\x80\x2e\x00\x02binary middlebox answer\r\n")
    b.end("RST")
    case("w09-attack", "non-TLS bytes after 220: from the client; from the server",
         [(a, {"anomalies": ["non-tls-after-starttls"], "sts": ["fail", "validation-failure"],
               "tls": {"failed": "not-tls"}}),
          (b, {"anomalies": ["non-tls-after-starttls"], "sts": ["fail", "validation-failure"],
               "tls": {"failed": "not-tls"}})])

    # -- W-10 downgrade markers --------------------------------------------------------
    cv = Conv(41101)
    ehlo(cv)
    starttls(cv)
    t = TLS(certs.server("good", maxv=ssl.TLSVersion.TLSv1_2), certs.client(), MX)
    cv.flights(t)
    tls_mail(cv, t)
    cv.end()
    case("w10-benign", "client offers 1.3, a 1.2-only server picks 1.2 (no sentinel)",
         [(cv, {"anomalies": [], "sts": ["pass", "none"],
                "tls": {"version": "TLSv1.2", "version_offered_max": "TLSv1.3"}})])
    a = Conv(41102)
    ehlo(a)
    starttls(a)
    offered = TLS(certs.server("good"), certs.client(), MX).flights[0][1]  # a ClientHello offering 1.3
    t = TLS(certs.server("good"), certs.client(maxv=ssl.TLSVersion.TLSv1_2), MX)  # what the server saw
    a.c(offered)
    a.mark("tls-downgrade-sentinel", False, 5)  # the ServerHello message, past its record header
    for c2s, data in t.flights[1:]:
        (a.c if c2s else a.s)(data)
    a.end("RST")
    b = Conv(41103)
    ehlo(b)
    starttls(b)
    b.c(client_hello(0x0301, [0x0302, 0x0301], MX, rng))
    b.mark("tls-legacy-version", False, 5)
    b.s(server_hello(0x0301, 0x002f, rng))
    b.end("RST")
    case("w10-attack", "(a) DOWNGRD\\x01 in ServerHello.random while the wire's ClientHello offered 1.3; "
         "(b) TLS 1.0 negotiated",
         [(a, {"anomalies": ["tls-downgrade-sentinel"], "sts": ["pass", "none"]}),
          (b, {"anomalies": ["tls-legacy-version"], "sts": ["fail", "validation-failure"],
               "tls": {"version": "TLSv1.0"}})])

    # -- W-11 bad certificate, session continues (policy) ---------------------------
    cv = Conv(41111)
    ehlo(cv)
    starttls(cv)
    t = tls12()
    cv.flights(t)
    tls_mail(cv, t)
    cv.end()
    case("w11-benign", "valid certificate, session continues", [(cv, {"anomalies": [], "sts": ["pass", "none"]})])
    sess = []
    for port, cert, reason in ((41112, "expired", "certificate-expired"),
                               (41113, "wrongname", "certificate-host-mismatch"),
                               (41114, "rogue", "certificate-not-trusted")):
        cv = Conv(port)
        ehlo(cv)
        starttls(cv)
        t = tls12(cert)
        cv.flights(t)
        tls_mail(cv, t)
        cv.end()
        sess.append((cv, {"anomalies": ["tls-cert-invalid-continued"], "sts": ["fail", reason]}))
    case("w11-attack", "expired / wrong-name / untrusted certificate, the MTA delivers anyway", sess)

    # -- W-12 client alert after the certificate ---------------------------------------
    cv = Conv(41121)
    ehlo(cv)
    starttls(cv)
    t = tls12(verify=True)
    cv.flights(t)
    tls_mail(cv, t)
    cv.end()
    case("w12-benign", "a verifying client accepts a valid chain", [(cv, {"anomalies": [], "sts": ["pass", "none"]})])
    cv = Conv(41122)
    ehlo(cv)
    starttls(cv)
    t = tls12("rogue", verify=True)
    assert t.error and t.error[0] == "client"
    for c2s, data in t.flights:
        if c2s and data[0] == 21:
            cv.mark("tls-client-certificate-alert", True)
        (cv.c if c2s else cv.s)(data)
    cv.end()
    case("w12-attack", "a verifying client sends unknown_ca (48) after an untrusted chain",
         [(cv, {"anomalies": ["tls-client-certificate-alert"], "sts": ["fail", "validation-failure"],
                "tls": {"failed": "alert"}})])

    # -- W-13 TLS 1.3 client abort -----------------------------------------------------------
    cv = Conv(41131)
    ehlo(cv)
    starttls(cv)
    t = TLS(certs.server("good"), certs.client(True), MX)
    cv.flights(t)
    tls_mail(cv, t)
    cv.end()
    case("w13-benign", "TLS 1.3, the client accepts: not-assessable",
         [(cv, {"anomalies": [], "sts": ["not-assessable", "none"]})])
    cv = Conv(41132)
    ehlo(cv)
    starttls(cv)
    t = TLS(certs.server("rogue"), certs.client(True), MX)
    assert t.error and t.error[0] == "client"
    for c2s, data in t.flights:
        if c2s and len(t.flights) > 2 and (c2s, data) == t.flights[-1]:
            cv.mark("tls13-client-abort", True)
        (cv.c if c2s else cv.s)(data)
    cv.end()
    case("w13-attack", "TLS 1.3, the client aborts after the server's flight",
         [(cv, {"anomalies": ["tls13-client-abort"], "sts": ["fail", "validation-failure"]})])

    # -- W-14 MX outside the policy (policy) -----------------------------------------------
    cv = Conv(41142)
    ehlo(cv, starttls=False)
    cleartext_mail(cv, "bob@example.net")
    cv.end()
    out["w14-attack"] = ("connection to an MX the enforce policy does not name (mapped from its address)",
                         [(cv, {"anomalies": ["cleartext-rcpt-enforce-domain", "mx-not-in-policy",
                                              "starttls-not-offered"],
                                "sts": ["fail", "validation-failure"], "source": "rcpt"})],
                         ["--sts-policy", "example.net=@DIR@/example.net.policy",
                          "--mx-map", "192.0.2.25=mx.attacker.example",
                          "--mx-map", "2001:db8::19=mx.attacker.example"])
    cv = Conv(41143)
    ehlo(cv)
    starttls(cv)
    t = tls12()
    cv.flights(t)
    tls_mail(cv, t)
    cv.end()
    case("w14-benign", "the MX (SNI) is in the policy, TLS 1.2 with a valid chain",
         [(cv, {"anomalies": [], "sts": ["pass", "none"], "source": "mx-host"})])

    # -- W-16 no SNI to a policy domain's MX (policy) -----------------------------------------
    cv = Conv(41161)
    ehlo(cv)
    starttls(cv)
    t = tls12()
    cv.flights(t)
    tls_mail(cv, t)
    cv.end()
    case("w16-benign", "SNI = the MX host", [(cv, {"anomalies": [], "sts": ["pass", "none"], "source": "mx-host"})])
    cv = Conv(41162)
    ehlo(cv)
    starttls(cv)
    t = tls12(sni=None)
    cv.flights(t)
    tls_mail(cv, t)
    cv.end()
    case("w16-attack", "no SNI (Postfix without an MTA-STS resolver); the MX host comes from --mx-map",
         [(cv, {"anomalies": ["tls-sni-missing"], "sts": ["pass", "none"], "mx_source": "mx-map",
                "tls": {"sni": None}})])

    # -- W-18 / W-19 cleartext despite STARTTLS ------------------------------------------------
    cv = Conv(41191)
    ehlo(cv)
    starttls(cv)
    t = tls12()
    cv.flights(t)
    tls_mail(cv, t)
    cv.end()
    case("w19-benign", "STARTTLS offered and used", [(cv, {"anomalies": [], "sts": ["pass", "none"]})])
    cv = Conv(41192)
    ehlo(cv)
    cv.mark("starttls-offered-not-used", True)
    cv.mark("cleartext-rcpt-enforce-domain", True, len(b"MAIL FROM:<alice@sender.example>\r\n"))
    cleartext_mail(cv, "bob@example.net")
    cv.end()
    case("w19-attack", "STARTTLS offered, the MTA sends MAIL/RCPT in cleartext to an enforce domain",
         [(cv, {"anomalies": ["cleartext-rcpt-enforce-domain", "starttls-offered-not-used"],
                "sts": ["fail", "validation-failure"], "source": "rcpt"})])
    return out


def main():
    outdir = sys.argv[1]
    rng = random.Random(8461)
    expected = {}
    with tempfile.TemporaryDirectory() as tmp:
        certs = Certs(tmp, outdir)
        for i, (name, (desc, sessions, args)) in enumerate(cases(certs, rng).items()):
            convs = [cv for cv, _ in sessions]
            cl = 10 + i
            write_pcap(os.path.join(outdir, name + ".pcap"), convs, False, rng, client=cl)
            write_pcap(os.path.join(outdir, name + "-split.pcap"), convs, True, rng, client=cl)
            write_pcap(os.path.join(outdir, name + "-v6-ooo.pcap"), convs, False, rng, v6=True, ooo=True,
                       client=cl)
            exp = []
            for cv, e in sessions:
                e = dict(e)
                e["client_port"] = cv.port
                # offsets the generator knows: where it put each signal's evidence
                e["offsets"] = {k: list(v) for k, v in cv.marks.items() if k in e["anomalies"]}
                exp.append(e)
            expected[name] = {"description": desc, "args": args, "sessions": exp}
    with open(os.path.join(outdir, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
