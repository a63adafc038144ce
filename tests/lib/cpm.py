"""The cpm protocol (ctrlplane/cpm.h) written again in Python, for tests that
play the dataplane side against wireseal-cp. A separate implementation on
purpose: the daemon's C codec is checked against it, not against itself.

Wire: a datagram is records `u16 type | u32 len | payload`; integers are
big-endian; strings are u32 length + bytes; lists are u32 count + items.
"""
import socket
import struct
import time

MAGIC = 0x57534350
VERSION = 4
ROLE_DP, ROLE_CP = 1, 2
MAX_DATAGRAM = 65536

(HELLO, ERROR, KEY_REQUEST, KEY_ANSWER, MESSAGE_RECORD, SESSION_RECORD, ACK, STATS, STS_QUERY,
 STS_ANSWER, VERDICT) = range(1, 12)
SPF_RESULTS = ["none", "neutral", "pass", "fail", "softfail", "temperror", "permerror"]
DMARC_RESULTS = ["none", "pass", "fail", "temperror", "permerror"]
DMARC_POLICIES = ["none", "quarantine", "reject"]
ORG_METHODS = ["treewalk", "psl"]
KEY_STATUS = ["found", "missing", "invalid", "tempfail"]
ARC_NONE, ARC_PASS, ARC_FAIL = 0, 1, 2
STS_STATUS = ["policy", "none", "tempfail"]
STS_MODE = ["enforce", "testing", "none"]
C2S, S2C = 0, 1
TLS12, TLS13 = 0x0303, 0x0304


def _s(x):
    if isinstance(x, str):
        x = x.encode()
    return struct.pack(">I", len(x)) + x


def _ep(ip, port):
    return _s(ip) + struct.pack(">H", port)


def record(t, payload):
    return struct.pack(">HI", t, len(payload)) + payload


def hello(version=VERSION, role=ROLE_DP, magic=MAGIC):
    return record(HELLO, struct.pack(">IHB", magic, version, role))


def key_request(req_id, name):
    return record(KEY_REQUEST, struct.pack(">Q", req_id) + _s(name))


def stats(pairs):
    p = struct.pack(">I", len(pairs))
    for k, v in pairs:
        p += _s(k) + struct.pack(">Q", v)
    return record(STATS, p)


def message(rid, flow=1, ts=None, client=("192.0.2.10", 40000), server=("198.51.100.25", 25),
            helo="mail.example.org", mail_from="alice@example.org", rcpts=("bob@example.net",),
            starttls=1, transaction=1, dkim=(), from_=(" Alice <alice@example.org>",),
            arc_chain=ARC_NONE, arc=(), gap="", verdict_wanted=0):
    """dkim: (d, s, a, result, reason) tuples; arc: (instance, sealer, aar) tuples;
    gap: why bytes were lost ("" none); verdict_wanted: 1 asks for a VERDICT."""
    ts = ts if ts is not None else int(time.time() * 1e6)
    p = struct.pack(">QQQ", rid, flow, ts) + _ep(*client) + _ep(*server) + _s(helo) + _s(mail_from)
    p += struct.pack(">I", len(rcpts)) + b"".join(_s(r) for r in rcpts)
    p += struct.pack(">BI", starttls, transaction)
    p += struct.pack(">I", len(dkim)) + b"".join(b"".join(_s(f) for f in d) for d in dkim)
    p += struct.pack(">I", len(from_)) + b"".join(_s(f) for f in from_)
    p += struct.pack(">B", arc_chain)
    p += struct.pack(">I", len(arc)) + b"".join(struct.pack(">I", i) + _s(s) + _s(a) for i, s, a in arc)
    p += _s(gap) + struct.pack(">B", verdict_wanted)
    return record(MESSAGE_RECORD, p)


def verdict(rid, status=0, why="", spf=None, helo=None, spf_null_sender=0, mail_from="",
            helo_name="", dmarc=None, arc=None, override="", disposition="", authres=""):
    """A VERDICT (the control plane sends these; here for seeds). spf/helo:
    (result, domain, mechanism, reason, explanation); dmarc: dict of the
    DMARC fields (decode()'s names); arc: (by, sealer, instance, reason)."""
    def outcome(o):
        if o is None:
            return struct.pack(">B", 0) + b"".join(_s("") for _ in range(4))
        return struct.pack(">B", SPF_RESULTS.index(o[0])) + b"".join(_s(x) for x in o[1:])
    p = struct.pack(">QB", rid, status) + _s(why)
    p += struct.pack(">BB", spf is not None, spf_null_sender) + _s(mail_from) + _s(helo_name)
    p += outcome(spf) + struct.pack(">B", helo is not None) + outcome(helo)
    d = dmarc or {}
    p += struct.pack(">BBBBBBBBBBI", dmarc is not None, DMARC_RESULTS.index(d.get("result", "none")),
                     DMARC_POLICIES.index(d.get("policy", "none")),
                     DMARC_POLICIES.index(d.get("disposition", "none")),
                     ORG_METHODS.index(d.get("org_method", "treewalk")), d.get("testing", 0),
                     d.get("sampled_out", 0), d.get("org_disagree", 0), d.get("spf_aligned", 0),
                     d.get("dkim_aligned", 0), d.get("pct", 100))
    for k in ("from_domain", "record_domain", "org_domain", "psl_org_domain", "walk_org_domain",
              "reason"):
        p += _s(d.get(k, ""))
    a = arc or ("", "", 0, "")
    p += struct.pack(">B", arc is not None) + _s(a[0]) + _s(a[1]) + struct.pack(">I", a[2]) + _s(a[3])
    p += _s(override) + _s(disposition) + _s(authres)
    return record(VERDICT, p)


def tls(client_hello=1, server_hello=1, version_offered_max=TLS13, version=TLS12, resumed=0,
        sni="mx.example.net", cert_seen=0, cert_names=(), not_before=0, not_after=0, issuer="",
        chain_trusted=0):
    """The TLS facts of a SESSION_RECORD (dataplane struct dp_tls_facts), as a dict."""
    return dict(client_hello=client_hello, server_hello=server_hello,
                version_offered_max=version_offered_max, version=version, resumed=resumed, sni=sni,
                cert_seen=cert_seen, cert_names=tuple(cert_names), not_before=not_before,
                not_after=not_after, issuer=issuer, chain_trusted=chain_trusted)


def session(rid, flow=1, ts=None, client=("192.0.2.10", 40000), server=("198.51.100.25", 25),
            helo="mail.example.org", offered=1, used=1, end_reason="fin", transactions=1,
            rcpt_domains=(), tls_facts=None, anomalies=(), replies=(), replies_over=0):
    """anomalies: (name, direction, offset) tuples, or names (C2S, offset 0);
    replies: (command, code) pairs."""
    ts = ts if ts is not None else int(time.time() * 1e6)
    t = tls_facts if tls_facts is not None else tls()
    p = struct.pack(">QQQ", rid, flow, ts) + _ep(*client) + _ep(*server) + _s(helo)
    p += struct.pack(">BB", offered, used) + _s(end_reason) + struct.pack(">I", transactions)
    p += struct.pack(">I", len(rcpt_domains)) + b"".join(_s(d) for d in rcpt_domains)
    p += struct.pack(">BBHHB", t["client_hello"], t["server_hello"], t["version_offered_max"],
                     t["version"], t["resumed"]) + _s(t["sni"]) + struct.pack(">B", t["cert_seen"])
    p += struct.pack(">I", len(t["cert_names"])) + b"".join(_s(n) for n in t["cert_names"])
    p += struct.pack(">qq", t["not_before"], t["not_after"]) + _s(t["issuer"])
    p += struct.pack(">B", t["chain_trusted"])
    an = [(a, C2S, 0) if isinstance(a, str) else a for a in anomalies]
    p += struct.pack(">I", len(an)) + b"".join(_s(n) + struct.pack(">BQ", d, o) for n, d, o in an)
    p += struct.pack(">I", len(replies)) + b"".join(_s(v) + struct.pack(">H", c) for v, c in replies)
    p += struct.pack(">Q", replies_over)
    return record(SESSION_RECORD, p)


def sts_query(req_id, domain):
    return record(STS_QUERY, struct.pack(">Q", req_id) + _s(domain))


def sts_answer(req_id, status, mode, ttl, mx=(), why=""):
    p = struct.pack(">QBBI", req_id, status, mode, ttl)
    p += struct.pack(">I", len(mx)) + b"".join(_s(m) for m in mx) + _s(why)
    return record(STS_ANSWER, p)


class Reader:
    def __init__(self, b):
        self.b, self.o = b, 0

    def take(self, n):
        if self.o + n > len(self.b):
            raise ValueError("truncated")
        v = self.b[self.o:self.o + n]
        self.o += n
        return v

    def u8(self):
        return self.take(1)[0]

    def u16(self):
        return struct.unpack(">H", self.take(2))[0]

    def u32(self):
        return struct.unpack(">I", self.take(4))[0]

    def u64(self):
        return struct.unpack(">Q", self.take(8))[0]

    def s(self):
        return self.take(self.u32()).decode("utf-8", "surrogateescape")


def decode(dgram):
    """[(type, dict)] for every record; raises ValueError on anything malformed."""
    out = []
    r = Reader(dgram)
    if not dgram:
        raise ValueError("empty datagram")
    while r.o < len(dgram):
        t, n = r.u16(), r.u32()
        p = Reader(r.take(n))
        if t == HELLO:
            m = {"magic": p.u32(), "version": p.u16(), "role": p.u8()}
        elif t == ERROR:
            m = {"code": p.u32(), "text": p.s()}
        elif t == KEY_ANSWER:
            m = {"req_id": p.u64(), "status": KEY_STATUS[p.u8()], "ttl": p.u32(), "record": p.s()}
        elif t == ACK:
            m = {"up_to": p.u64()}
        elif t == VERDICT:
            def outcome():
                return {"result": SPF_RESULTS[p.u8()], "domain": p.s(), "mechanism": p.s(),
                        "reason": p.s(), "explanation": p.s()}
            m = {"record_id": p.u64(), "status": ["done", "error"][p.u8()], "why": p.s(),
                 "spf_ran": p.u8(), "spf_null_sender": p.u8(), "mail_from": p.s(), "helo_name": p.s()}
            m["spf"] = outcome()
            m["helo_ran"] = p.u8()
            m["helo"] = outcome()
            d = {"ran": p.u8(), "result": DMARC_RESULTS[p.u8()], "policy": DMARC_POLICIES[p.u8()],
                 "disposition": DMARC_POLICIES[p.u8()], "org_method": ORG_METHODS[p.u8()]}
            for k in ("testing", "sampled_out", "org_disagree", "spf_aligned", "dkim_aligned"):
                d[k] = p.u8()
            d["pct"] = p.u32()
            for k in ("from_domain", "record_domain", "org_domain", "psl_org_domain",
                      "walk_org_domain", "reason"):
                d[k] = p.s()
            m["dmarc"] = d
            m["arc"] = {"applied": p.u8(), "by": p.s(), "sealer": p.s(), "instance": p.u32(),
                        "reason": p.s()}
            m["override"], m["disposition"], m["authres"] = p.s(), p.s(), p.s()
        elif t == STS_ANSWER:
            m = {"req_id": p.u64(), "status": STS_STATUS[p.u8()], "mode": STS_MODE[p.u8()],
                 "ttl": p.u32()}
            m["mx"] = [p.s() for _ in range(p.u32())]
            m["why"] = p.s()
        else:
            raise ValueError("unexpected type %d from the control plane" % t)
        if p.o != n:
            raise ValueError("trailing bytes in type %d" % t)
        out.append((t, m))
    return out


class Client:
    """A dataplane stand-in: connect, HELLO both ways, then send and receive."""

    def __init__(self, path, version=VERSION, timeout=10.0, do_hello=True):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.answers, self.acked, self.errors = {}, 0, []
        self.sts_answers = {}
        self.verdicts = {}     # record id -> VERDICT
        self.verdict_acked = {}  # record id -> the ACK already covered it when its VERDICT came
        self.closed = False
        self.peer_hello = None
        if do_hello:
            self.send(hello(version))
            self.wait(lambda: self.peer_hello is not None or self.errors or self.closed)

    closed = False

    def send(self, *records):
        self.sock.send(b"".join(records))

    def pump(self, timeout=None):
        """Read one datagram (or time out); False once the peer closed."""
        if timeout is not None:
            self.sock.settimeout(timeout)
        try:
            d = self.sock.recv(MAX_DATAGRAM + 1)
        except socket.timeout:
            return True
        except ConnectionResetError:
            d = b""
        if not d:
            self.closed = True
            return False
        for t, m in decode(d):
            if t == HELLO:
                self.peer_hello = m
            elif t == KEY_ANSWER:
                self.answers[m["req_id"]] = m
            elif t == STS_ANSWER:
                self.sts_answers[m["req_id"]] = m
            elif t == VERDICT:
                self.verdicts[m["record_id"]] = m
                self.verdict_acked[m["record_id"]] = m["record_id"] <= self.acked
            elif t == ACK:
                if m["up_to"] < self.acked:
                    raise ValueError("ACK went backwards: %d after %d" % (m["up_to"], self.acked))
                self.acked = m["up_to"]
            elif t == ERROR:
                self.errors.append(m)
        return True

    def wait(self, cond, timeout=15.0):
        end = time.time() + timeout
        while time.time() < end:
            v = cond()
            if v:
                return v
            if not self.pump(timeout=max(0.05, min(0.5, end - time.time()))):
                return cond()
        return cond()

    def close(self):
        self.sock.close()
