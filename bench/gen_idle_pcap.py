#!/usr/bin/python3
"""Write a pcap of N SMTP sessions that open and then stay idle: handshake,
220 greeting, EHLO, MAIL FROM, RCPT TO and their replies, and nothing more
(no DATA, no QUIT, no FIN), so that all N are open at once when the capture
ends. With --close every session also says QUIT and closes both ways right
after its RCPT, so that at most one is open at a time: the baseline of the
same packets without the concurrent state (bench/replay.sh subtracts it).

usage: gen_idle_pcap.py --sessions N --out FILE [--close]

Frames: Ethernet, IPv4, TCP with correct checksums; clients 10.a.b.c,
server 192.0.2.25:25, 10 us of capture time between packets.
"""
import argparse
import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tests', 'tools'))
from gen_smtp_pcap import csum  # noqa: E402  (one Internet checksum for every capture tool)


ETH = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00"
SERVER = bytes([192, 0, 2, 25])


def frame(src, dst, sport, dport, seq, ack, flags, payload):
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                      5 << 4, flags, 65535, 0, 0) + payload
    pseudo = src + dst + struct.pack("!BBH", 0, 6, len(tcp))
    c = csum(pseudo + tcp)
    tcp = tcp[:16] + struct.pack("!H", c) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 1, 0, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return ETH + ip + tcp


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--close", action="store_true")
    a = ap.parse_args()
    t = 1_700_000_000 * 1_000_000
    with open(a.out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))

        def put(fr):
            nonlocal t
            t += 10
            f.write(struct.pack("<IIII", t // 1_000_000, t % 1_000_000, len(fr), len(fr)) + fr)

        for i in range(a.sessions):
            cl = bytes([10, (i >> 16) & 0xFF, (i >> 8) & 0xFF, i & 0xFF])
            cp = 1024 + i % 60000
            c, s = 1000, 5000  # next sequence numbers
            put(frame(cl, SERVER, cp, 25, c, 0, 0x02, b""))
            put(frame(SERVER, cl, 25, cp, s, c + 1, 0x12, b""))
            c, s = c + 1, s + 1
            put(frame(cl, SERVER, cp, 25, c, s, 0x10, b""))
            talk = [(False, b"220 mx.example ESMTP\r\n"),
                    (True, b"EHLO client%d.example\r\n" % i),
                    (False, b"250-mx.example\r\n250 PIPELINING\r\n"),
                    (True, b"MAIL FROM:<a%d@example.org>\r\n" % i),
                    (False, b"250 ok\r\n"),
                    (True, b"RCPT TO:<b@example.net>\r\n"),
                    (False, b"250 ok\r\n")]
            if a.close:
                talk += [(True, b"QUIT\r\n"), (False, b"221 bye\r\n")]
            for c2s, p in talk:
                if c2s:
                    put(frame(cl, SERVER, cp, 25, c, s, 0x18, p))
                    c += len(p)
                else:
                    put(frame(SERVER, cl, 25, cp, s, c, 0x18, p))
                    s += len(p)
            if a.close:
                put(frame(cl, SERVER, cp, 25, c, s, 0x11, b""))
                put(frame(SERVER, cl, 25, cp, s, c + 1, 0x11, b""))


if __name__ == "__main__":
    main()
