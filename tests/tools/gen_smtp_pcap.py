#!/usr/bin/python3
"""Write a classic pcap (or pcapng) of SMTP sessions carrying given .eml files.

Every frame is built by hand (Ethernet, optional 802.1Q/QinQ tags, IPv4 or
IPv6, TCP) with correct IP and TCP checksums. The output is a function of the
arguments and --seed only.

Sessions: the messages are dealt round-robin onto --sessions sessions
(--per-session messages each, default: all of them in one session). Each
session: handshake, 220 greeting, EHLO (PIPELINING, CHUNKING offered), then per
message MAIL/RCPT/DATA (dot-stuffed) or BDAT chunks, QUIT, FIN both ways.

Adversarial options act on the client's data segments: random segment sizes,
reordering, duplicates, overlapping retransmissions (same or different bytes;
the different copy always comes after the original, so a receiver keeping the
first copy sees the original), lost segments, IPv4/IPv6 fragments, interleaved
sessions, RST in the middle of DATA, a capture starting mid-stream.

--manifest writes JSON: one entry per message with the session's endpoints,
its 1-based transaction number, and "expect": "same" (the verdicts must equal
those of the .eml file), "gap" (some of its bytes were lost: temperror) or
"absent" (before a mid-stream pickup: never reported).

Streaming mode (--concurrent K, for benchmark captures of any size): the
messages (the .eml arguments, or --corpus DIR's msgs/ in manifest order,
cycled --repeat times or until --max-bytes of capture) are read one session
at a time, --per-session messages per session; at most K sessions are open at
once, their packets interleaved at random, and a session's frames are
written as they are chosen. Memory is O(K x one session), never the capture.
Each session has its own random stream (seed, session number), and sessions
get distinct endpoints (10.x.y.z / fd00::x:y client addresses, 60,000 ports
per address), so millions of sessions do not collide. The adversarial
options apply per session as in the default mode. Without --concurrent the
output is byte-for-byte what it always was.
"""
import itertools
import os
import argparse
import json
import random
import struct
import sys

SMTP_PORT = 25


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


class Frames:
    """L2/L3 framing for one session's endpoints."""

    def __init__(self, v6, vlans, cip, sip):
        self.v6, self.vlans, self.cip, self.sip = v6, vlans, cip, sip
        self.ipid = 1

    def l2(self, ethertype):
        eth = b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01"
        tpids = [0x88A8] + [0x8100] * (len(self.vlans) - 1) if len(self.vlans) > 1 else [0x8100] * len(self.vlans)
        for tpid, vid in zip(tpids, self.vlans):
            eth += struct.pack("!HH", tpid, vid)
        return eth + struct.pack("!H", ethertype)

    def tcp(self, c2s, sport, dport, seq, ack, flags, payload):
        src, dst = (self.cip, self.sip) if c2s else (self.sip, self.cip)
        opts = b"\x02\x04\x05\xb4" if flags & 0x02 else b""  # MSS on SYN
        hl = 20 + len(opts)
        hdr = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                          (hl // 4) << 4, flags, 65535, 0, 0) + opts
        seg = hdr + payload
        if self.v6:
            pseudo = src + dst + struct.pack("!IxxxB", len(seg), 6)
        else:
            pseudo = src + dst + struct.pack("!xBH", 6, len(seg))
        c = csum(pseudo + seg)
        seg = seg[:16] + struct.pack("!H", c) + seg[18:]
        return src, dst, seg

    def ip(self, src, dst, seg, frag_size=0):
        """Frames for one TCP segment; IPv4 split into fragments when frag_size."""
        self.ipid = (self.ipid + 1) & 0xFFFF
        if self.v6:
            if frag_size and len(seg) > frag_size:
                # fragment header (next header TCP) right after the fixed header
                out = []
                for off in range(0, len(seg), frag_size):
                    data = seg[off:off + frag_size]
                    more = 1 if off + frag_size < len(seg) else 0
                    fh = struct.pack("!BBHI", 6, 0, off | more, self.ipid)
                    ip = struct.pack("!IHBB", 0x60000000, 8 + len(data), 44, 64) + src + dst
                    out.append(self.l2(0x86DD) + ip + fh + data)
                return out
            ip = struct.pack("!IHBB", 0x60000000, len(seg), 6, 64) + src + dst
            return [self.l2(0x86DD) + ip + seg]
        out = []
        if frag_size and len(seg) > frag_size:
            pieces = [(o, seg[o:o + frag_size]) for o in range(0, len(seg), frag_size)]
        else:
            pieces = [(0, seg)]
        for i, (off, data) in enumerate(pieces):
            more = 0x2000 if i < len(pieces) - 1 else 0
            if len(pieces) == 1:
                more = 0x4000  # DF
            hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(data), self.ipid,
                              more | (off // 8 if len(pieces) > 1 else 0), 64, 6, 0, src, dst)
            hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
            out.append(self.l2(0x0800) + hdr + data)
        return out


def dot_stuff(msg):
    lines = msg.split(b"\r\n")
    return b"\r\n".join(b"." + l if l.startswith(b".") else l for l in lines)


class Session:
    def __init__(self, idx, msgs, args, rng):
        self.idx, self.msgs, self.args, self.rng = idx, msgs, args, rng
        self.last = False  # the RST-mid-DATA option hits the last session only
        self.v6 = args.ipv6 or (args.mix_ipv6 and idx % 2 == 1)
        if self.v6:
            self.cip = bytes.fromhex("20010db8000000000000000000010000") [:14] + struct.pack("!H", 1 + idx)
            self.sip = bytes.fromhex("20010db8000000000000000000000019")
        else:
            self.cip = bytes([198, 51, 100, 1 + idx % 250])
            self.sip = bytes([192, 0, 2, 25])
        self.cport = 40000 + idx
        self.frames = Frames(self.v6, args.vlan, self.cip, self.sip)
        # writes: (c2s, bytes, msg_index or None)
        self.writes = []
        self.manifest = []

    def ip_text(self, b):
        if len(b) == 4:
            return ".".join(str(x) for x in b)
        import ipaddress
        return str(ipaddress.IPv6Address(b))

    def dialogue(self):
        a, w = self.args, self.writes
        w.append((False, b"220 mx.example ESMTP wireseal-gen\r\n", None))
        w.append((True, b"EHLO client%d.example\r\n" % self.idx, None))
        w.append((False, b"250-mx.example\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 8BITMIME\r\n", None))
        for t, (path, body) in enumerate(self.msgs, 1):
            mail = b"MAIL FROM:<sender%d@sample.example>\r\n" % t
            rcpts = [b"RCPT TO:<rcpt%d@mx.example>\r\n" % r for r in range(1 + t % 2)]
            ent = {"eml": path, "client_ip": self.ip_text(self.cip), "client_port": self.cport,
                   "server_ip": self.ip_text(self.sip), "server_port": self.args.server_port,
                   "transaction": t, "expect": "same"}
            self.manifest.append(ent)
            rst = a.rst_mid_data and t == len(self.msgs) and self.last
            if a.bdat:
                if a.pipelining:
                    w.append((True, mail + b"".join(rcpts), ("cmd", t)))
                    w.append((False, b"250 ok\r\n" * (1 + len(rcpts)), None))
                else:
                    w.append((True, mail, ("cmd", t)))
                    w.append((False, b"250 ok\r\n", None))
                    for r in rcpts:
                        w.append((True, r, None))
                        w.append((False, b"250 ok\r\n", None))
                chunk = max(1, a.bdat_chunk)
                pieces = [body[o:o + chunk] for o in range(0, len(body), chunk)] or [b""]
                for i, p in enumerate(pieces):
                    last = i == len(pieces) - 1
                    cmd = b"BDAT %d%s\r\n" % (len(p), b" LAST" if last else b"")
                    if rst and last:
                        w.append((True, cmd + p[:len(p) // 2], ("msg", t)))
                        w.append(("RST", b"", None))
                        ent["expect"] = "gap"
                        return
                    w.append((True, cmd + p, ("msg", t)))
                    w.append((False, b"250 ok\r\n", None))
            else:
                data = dot_stuff(body)
                if not data.endswith(b"\r\n"):
                    data += b"\r\n"
                if a.pipelining:
                    w.append((True, mail + b"".join(rcpts) + b"DATA\r\n", ("cmd", t)))
                    w.append((False, b"250 ok\r\n" * (1 + len(rcpts)) + b"354 go ahead\r\n", None))
                else:
                    w.append((True, mail, ("cmd", t)))
                    w.append((False, b"250 ok\r\n", None))
                    for r in rcpts:
                        w.append((True, r, None))
                        w.append((False, b"250 ok\r\n", None))
                    w.append((True, b"DATA\r\n", None))
                    w.append((False, b"354 go ahead\r\n", None))
                if rst:
                    w.append((True, data[:len(data) // 2], ("msg", t)))
                    w.append(("RST", b"", None))
                    ent["expect"] = "gap"
                    return
                w.append((True, data + b".\r\n", ("msg", t)))
                w.append((False, b"250 2.0.0 queued as %d\r\n" % t, ("pause",)))
        w.append((True, b"QUIT\r\n", None))
        w.append((False, b"221 bye\r\n", None))
        w.append(("FIN", b"", None))

    def packets(self):
        """[(c2s, flags, seq, ack, payload, tag)] in send order, adversarial ops applied."""
        a, rng = self.args, self.rng
        self.dialogue()
        cisn, sisn = rng.randrange(1 << 32), rng.randrange(1 << 32)
        cseq, sseq = cisn + 1, sisn + 1
        pk = [(True, 0x02, cisn, 0, b"", None), (False, 0x12, sisn, cisn + 1, b"", None),
              (True, 0x10, cisn + 1, sisn + 1, b"", None)]
        self.handshake_len = len(pk)
        self.first_index = {}  # transaction -> index in pk of its first command segment
        for c2s, data, tag in self.writes:
            if c2s == "RST":
                pk.append((True, 0x14, cseq, sseq, b"", None))
                return pk
            if c2s == "FIN":
                pk.append((True, 0x11, cseq, sseq, b"", None))
                pk.append((False, 0x11, sseq, cseq + 1, b"", None))
                pk.append((True, 0x10, cseq + 1, sseq + 1, b"", None))
                return pk
            off = 0
            while off < len(data) or (off == 0 and not data):
                n = a.mss
                if a.random_sizes and c2s:
                    n = rng.randint(1, a.mss)
                piece = data[off:off + n]
                if tag and tag[0] == "cmd" and tag[1] not in self.first_index:
                    self.first_index[tag[1]] = len(pk)
                if c2s:
                    pk.append((True, 0x18, cseq, sseq, piece, tag))
                    cseq += len(piece)
                else:
                    pk.append((False, 0x18, sseq, cseq, piece, tag))
                    sseq += len(piece)
                off += len(piece)
                if not data:
                    break
        return pk

    def adversarial(self, pk):
        a, rng = self.args, self.rng
        start = self.handshake_len
        if a.midstream and len(self.msgs) > 1:
            # the capture begins at the second transaction's first command
            cut = self.first_index.get(2)
            if cut is not None:
                pk = pk[cut:]
                self.manifest[0]["expect"] = "absent"
                start = 0
        out = []
        for i, p in enumerate(pk):
            c2s, flags, seq, ack, payload, tag = p
            data_seg = c2s and payload and i >= start
            if data_seg and tag and tag[0] == "msg" and a.loss and rng.random() < a.loss:
                self.manifest[tag[1] - 1]["expect"] = "gap"
                continue
            out.append(p)
        # reordering: swap neighbouring client data segments
        if a.reorder:
            for i in range(start, len(out) - 1):
                if out[i][0] and out[i + 1][0] and out[i][4] and out[i + 1][4] and rng.random() < a.reorder:
                    out[i], out[i + 1] = out[i + 1], out[i]
        res = []
        sent = []  # client data segments emitted so far: (seq, payload)
        for p in out:
            res.append(p)
            c2s, flags, seq, ack, payload, tag = p
            if not (c2s and payload):
                continue
            sent.append((seq, payload))
            if a.dup and rng.random() < a.dup:
                res.append(p)
            if (a.overlap or a.overlap_differ) and len(sent) >= 2 and rng.random() < (a.overlap or a.overlap_differ):
                # cover the tail of the previous segment and the head of this one
                pseq, ppay = sent[-2]
                if (pseq + len(ppay)) & 0xFFFFFFFF == seq:
                    lo = rng.randint(0, len(ppay) - 1) if ppay else 0
                    hi = rng.randint(1, len(payload))
                    blob = ppay[lo:] + payload[:hi]
                    if a.overlap_differ:
                        blob = bytes((x ^ 0x20) if 65 <= (x | 0x20) - 0 <= 122 else x for x in blob)
                    res.append((True, 0x18, pseq + lo, ack, blob, None))
        return res


class StreamSession(Session):
    """A session of the streaming mode: its own random stream and endpoints
    derived from its number alone."""

    def __init__(self, idx, msgs, args, seed):
        super().__init__(idx, msgs, args, random.Random("%d:%d" % (seed, idx)))
        host, port = divmod(idx, STREAM_PORTS)
        if self.v6:
            self.cip = bytes.fromhex("fd000000000000000000000000000000")[:12] + struct.pack("!I", host + 1)
            self.sip = bytes.fromhex("fd000000000000000000000000000019")
        else:
            if host >= (1 << 24) - 2:
                raise SystemExit("gen_smtp_pcap: more than %d sessions" % ((1 << 24) * STREAM_PORTS))
            self.cip = struct.pack("!I", (10 << 24) | (host + 1))
            self.sip = bytes([192, 0, 2, 25])
        self.cport = 1024 + port
        self.frames = Frames(self.v6, args.vlan, self.cip, self.sip)


# client ports per client address in the streaming mode
STREAM_PORTS = 60000


def corpus_paths(corpus):
    """The corpus's messages in manifest order (bench/gen_corpus.py layout),
    or every msgs/*.eml sorted when there is no manifest."""
    man = os.path.join(corpus, "manifest.tsv")
    if os.path.exists(man):
        with open(man) as f:
            next(f)
            return [os.path.join(corpus, "msgs", line.split("\t", 1)[0]) for line in f if line.strip()]
    return sorted(os.path.join(corpus, "msgs", n) for n in os.listdir(os.path.join(corpus, "msgs"))
                  if n.endswith(".eml"))


class Writer:
    """Classic pcap or pcapng frames with microsecond stamps, 10 us apart."""

    def __init__(self, f, pcapng):
        self.f, self.pcapng = f, pcapng
        self.ts = 1700000000 * 1000000
        self.frames = 0
        if pcapng:
            f.write(struct.pack("<IIIHHqI", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1, 28))
            f.write(struct.pack("<IIHHII", 1, 20, 1, 0, 65535, 20))
        else:
            f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))

    def frame(self, fr):
        ts = self.ts = self.ts + 10
        self.frames += 1
        if self.pcapng:
            pad = b"\0" * (-len(fr) % 4)
            n = 32 + len(fr) + len(pad)
            self.f.write(struct.pack("<IIIIIII", 6, n, 0, ts >> 32, ts & 0xFFFFFFFF, len(fr), len(fr))
                         + fr + pad + struct.pack("<I", n))
        else:
            self.f.write(struct.pack("<IIII", ts // 1000000, ts % 1000000, len(fr), len(fr)) + fr)


def stream(a):
    """The streaming mode (--concurrent): see the module text."""
    paths = list(a.eml)
    if a.corpus:
        paths += corpus_paths(a.corpus)
    if not paths:
        raise SystemExit("gen_smtp_pcap: no messages (give .eml files or --corpus DIR)")
    rng = random.Random(a.seed)
    per = max(1, a.per_session)
    order = itertools.chain.from_iterable(itertools.repeat(paths, a.repeat) if a.repeat > 0
                                          else itertools.repeat(paths))
    state = {"sessions": 0, "messages": 0, "done": False}
    manifest = open(a.manifest, "w") if a.manifest else None
    first_entry = [True]
    if manifest:
        manifest.write("[\n")

    def next_session(w):
        if state["done"] or (a.max_bytes and w.f.tell() >= a.max_bytes):
            return None
        msgs = []
        for path in itertools.islice(order, per):
            with open(path, "rb") as f:
                msgs.append((path, f.read()))
        if not msgs:
            state["done"] = True
            return None
        s = StreamSession(state["sessions"], msgs, a, a.seed)
        state["sessions"] += 1
        state["messages"] += len(msgs)
        return [s, s.adversarial(s.packets()), 0]

    def retire(s):
        if manifest:
            for e in s.manifest:
                manifest.write(("" if first_entry[0] else ",\n") + json.dumps(e))
                first_entry[0] = False

    with open(a.out, "wb", buffering=1 << 20) as f:
        w = Writer(f, a.pcapng)
        live = []
        while True:
            while len(live) < a.concurrent:
                s = next_session(w)
                if s is None:
                    break
                live.append(s)
            if not live:
                break
            i = rng.randrange(len(live)) if a.interleave or a.concurrent > 1 else 0
            ent = live[i]
            s, pk, k = ent
            c2s, flags, seq, ack, payload, tag = pk[k]
            if tag and tag[0] == "pause":
                w.ts += a.pause * 1000000
            sp, dp = (s.cport, a.server_port) if c2s else (a.server_port, s.cport)
            src, dst, seg = s.frames.tcp(c2s, sp, dp, seq, ack, flags, payload)
            for fr in s.frames.ip(src, dst, seg, a.frag if c2s and payload else 0):
                w.frame(fr)
            ent[2] = k + 1
            if ent[2] == len(pk):
                retire(s)
                live[i] = live[-1]
                live.pop()
        size = f.tell()
    if manifest:
        manifest.write("\n]\n")
        manifest.close()
    print("gen_smtp_pcap: %d sessions, %d messages, %d frames, %d bytes -> %s" % (
        state["sessions"], state["messages"], w.frames, size, a.out), file=sys.stderr)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("eml", nargs="*")
    ap.add_argument("--out", required=True)
    ap.add_argument("--manifest")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--sessions", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=1,
                    help="deal the message list this many times (streaming mode: 0 = until --max-bytes)")
    ap.add_argument("--mss", type=int, default=1460)
    ap.add_argument("--ipv6", action="store_true")
    ap.add_argument("--mix-ipv6", action="store_true", help="every second session over IPv6")
    ap.add_argument("--vlan", type=int, action="append", default=[], help="tag (twice: QinQ)")
    ap.add_argument("--pipelining", action="store_true")
    ap.add_argument("--bdat", action="store_true")
    ap.add_argument("--bdat-chunk", type=int, default=300)
    ap.add_argument("--random-sizes", action="store_true")
    ap.add_argument("--reorder", type=float, default=0.0)
    ap.add_argument("--dup", type=float, default=0.0)
    ap.add_argument("--overlap", type=float, default=0.0)
    ap.add_argument("--overlap-differ", type=float, default=0.0)
    ap.add_argument("--loss", type=float, default=0.0)
    ap.add_argument("--frag", type=int, default=0, help="IP fragment payload size (multiple of 8), IPv4 and IPv6")
    ap.add_argument("--interleave", action="store_true")
    ap.add_argument("--rst-mid-data", action="store_true")
    ap.add_argument("--midstream", action="store_true")
    ap.add_argument("--server-port", type=int, default=SMTP_PORT)
    ap.add_argument("--pause", type=int, default=0,
                    help="seconds of capture time after each DATA transaction's 250 reply")
    ap.add_argument("--pcapng", action="store_true", help="write pcapng instead of classic pcap")
    ap.add_argument("--concurrent", type=int, default=0,
                    help="streaming mode: at most this many sessions open at once (see above)")
    ap.add_argument("--per-session", type=int, default=5, help="streaming mode: messages per session")
    ap.add_argument("--corpus", help="streaming mode: a bench/gen_corpus.py folder as the message list")
    ap.add_argument("--max-bytes", type=int, default=0,
                    help="streaming mode: open no new session once the capture has this many bytes")
    a = ap.parse_args()
    if a.frag % 8:
        ap.error("--frag must be a multiple of 8")
    if a.mss < 1 or a.mss > 65000:
        ap.error("--mss out of range")
    if a.concurrent > 0:
        if a.repeat <= 0 and not a.max_bytes:
            ap.error("--repeat 0 (cycle for ever) needs --max-bytes")
        return stream(a)
    if a.corpus or a.max_bytes:
        ap.error("--corpus and --max-bytes need --concurrent (the streaming mode)")
    if not a.eml:
        ap.error("give at least one .eml file")
    rng = random.Random(a.seed)
    bodies = []
    for _ in range(a.repeat):
        for path in a.eml:
            with open(path, "rb") as f:
                bodies.append((path, f.read()))
    n = max(1, a.sessions)
    sessions = [Session(i, bodies[i::n], a, rng) for i in range(n) if bodies[i::n]]
    sessions[-1].last = True
    queues = []
    for s in sessions:
        queues.append([(s, p) for p in s.adversarial(s.packets())])
    order = []
    if a.interleave:
        idx = [0] * len(queues)
        live = [i for i in range(len(queues)) if queues[i]]
        while live:
            q = rng.choice(live)
            order.append(queues[q][idx[q]])
            idx[q] += 1
            if idx[q] == len(queues[q]):
                live.remove(q)
    else:
        for q in queues:
            order.extend(q)
    ts = 1700000000 * 1000000
    with open(a.out, "wb") as f:
        if a.pcapng:
            # section header, one Ethernet interface (microsecond stamps)
            f.write(struct.pack("<IIIHHqI", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1, 28))
            f.write(struct.pack("<IIHHII", 1, 20, 1, 0, 65535, 20))
        else:
            f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for s, (c2s, flags, seq, ack, payload, tag) in order:
            if tag and tag[0] == "pause":
                ts += a.pause * 1000000  # the client waits before its next command
            sp, dp = (s.cport, a.server_port) if c2s else (a.server_port, s.cport)
            src, dst, seg = s.frames.tcp(c2s, sp, dp, seq, ack, flags, payload)
            for fr in s.frames.ip(src, dst, seg, a.frag if c2s and payload else 0):
                ts += 10
                if a.pcapng:
                    pad = b"\0" * (-len(fr) % 4)
                    n = 32 + len(fr) + len(pad)
                    f.write(struct.pack("<IIIIIII", 6, n, 0, ts >> 32, ts & 0xFFFFFFFF, len(fr),
                                        len(fr)) + fr + pad + struct.pack("<I", n))
                else:
                    f.write(struct.pack("<IIII", ts // 1000000, ts % 1000000, len(fr), len(fr)) + fr)
    if a.manifest:
        with open(a.manifest, "w") as f:
            json.dump([e for s in sessions for e in s.manifest], f, indent=1)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
