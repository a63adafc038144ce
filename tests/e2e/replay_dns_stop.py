#!/usr/bin/python3
"""The DNS server stops in the middle of a replay (issue 7, "DNS server
stopped mid-run: temperror verdicts, no hang"), with `wireseal replay` as the
control plane's client.

nsd (tests/harness/dnsd.py) serves sample.example: the sample's DKIM keys,
an SPF record and a DMARC record. wireseal-cp resolves through it (libunbound,
a short timeout); the replay has no zone: keys and SPF/DMARC come from the
control plane (KEY_REQUEST, VERDICT). The capture is fed to the replay
through a FIFO: the first message (key mail2026), then, once its line is
printed, nsd is stopped and the rest of the session follows.

- the first message's results are those of an in-process replay with the
  zone (--no-cp): nothing was lost before the stop;
- afterwards, a key already fetched (mail2026) still verifies (the
  dataplane's and the control plane's caches), and so do SPF and DMARC
  (their answers are cached); a key not fetched before the stop (ed2026,
  revoked) is temperror, never pass, fail or permerror;
- no hang: the replay ends within a bound set by the DNS timeout, exit 0,
  every record acknowledged and every message with a VERDICT;
- counters move: the daemon's DNS temporary failures, the replay's key
  requests.

Skips (77) without nsd or as a user who cannot make a FIFO.
"""
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wstest  # noqa: E402

T = wstest.Tally("replay-dns-stop")
CP = os.path.join(wstest.BUILD, "wireseal-cp")
CTL = os.path.join(wstest.BUILD, "wiresealctl")
SAMPLE_ZONE = os.path.join(wstest.SOURCE, "tests", "data", "sample", "zone.db")
PCAP = os.path.join(wstest.SOURCE, "tests", "data", "captures", "sample.pcap")
NOW = "1800000000"
DNS_TIMEOUT_MS = 1000
# the zone "example." (so that every name the sample asks for, HELO names
# included, has an authoritative answer), with sample.example's records
HEAD = """$ORIGIN example.
$TTL 300
@ IN SOA ns1.example. hostmaster.example. ( 1 3600 600 86400 60 )
  NS ns1.example.
ns1 A 127.0.0.1
sample TXT "v=spf1 ip4:198.51.100.1 -all"
_dmarc.sample TXT "v=DMARC1; p=quarantine"
"""


def packets(path):
    """(global header, [(record header + data, tcp payload)]) of a classic pcap."""
    with open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack("<I", data[:4])[0]
    end = "<" if magic in (0xa1b2c3d4, 0xa1b23c4d) else ">"
    link = struct.unpack(end + "I", data[20:24])[0]
    off, out = 24, []
    while off + 16 <= len(data):
        incl = struct.unpack(end + "I", data[off + 8:off + 12])[0]
        frame = data[off + 16:off + 16 + incl]
        payload = b""
        if link == 1 and len(frame) > 34 and frame[12:14] == b"\x08\x00":
            ihl = (frame[14] & 15) * 4
            tcp = 14 + ihl
            if frame[23] == 6 and len(frame) >= tcp + 20:
                payload = frame[tcp + (frame[tcp + 12] >> 4) * 4:]
        out.append((data[off:off + 16 + incl], payload))
        off += 16 + incl
    return data[:24], out


def filler(last, n):
    """Frames the dataplane drops (ethertype 0x88b5, "not-ip") that make n
    packets a whole number of bursts of 32: net_pcap fills a burst before it
    hands it on, and would wait on the FIFO for the rest of the last one."""
    rec_hdr = last[:8]  # the last packet's time
    frame = b"\x02" * 12 + b"\x88\xb5" + b"\x00" * 46
    one = rec_hdr + struct.pack("<II", len(frame), len(frame)) + frame
    return one * ((-n) % 32)


def sample_zone():
    """The keys of the sample zone below our own SOA/NS/SPF/DMARC."""
    lines = [l for l in open(SAMPLE_ZONE).read().splitlines() if not l.startswith(("$TTL", ";"))]
    return HEAD + "\n".join(lines) + "\n"


def start_dnsd(d):
    zf = os.path.join(d, "example.zone")
    with open(zf, "w") as f:
        f.write(sample_zone())
    p, env = wstest.dnsd_start(["--zone", "example=" + zf])
    return (p, env) if env is not None else (None, None)


def metric(d, name):
    r = subprocess.run([CTL, "-s", os.path.join(d, "ctl.sock"), "stats"], capture_output=True,
                       text=True, timeout=20)
    for l in r.stdout.splitlines():
        if l.startswith(name + " "):
            return float(l.split()[1])
    return -1


def main():
    if not os.path.exists("/usr/sbin/nsd"):
        print("replay-dns-stop: no nsd: skipped")
        return 77
    d = tempfile.mkdtemp(prefix="ws-dns-stop-")
    dnsd, env = start_dnsd(d)
    if dnsd is None:
        print("replay-dns-stop: dnsd.py did not start: skipped")
        shutil.rmtree(d, ignore_errors=True)
        return 77
    sock = os.path.join(d, "cpm.sock")
    conf = os.path.join(d, "cp.yaml")
    with open(conf, "w") as f:
        f.write("""user: ""
cpm_socket: {d}/cpm.sock
control_socket: {d}/ctl.sock
dns:
  unbound_conf: {u}
  timeout_ms: {t}
policy:
  authserv_id: e2e.mx
  fixed_pct: 42
sinks:
  json_file: ""
metrics:
  port: 0
sts:
  enabled: false
""".format(d=d, u=env["WS_DNSD_UNBOUND_CONF"], t=DNS_TIMEOUT_MS))
    log = open(os.path.join(d, "cp.log"), "w")
    cp = subprocess.Popen([CP, "-c", conf], stdout=log, stderr=log)
    end = time.time() + 15
    while not os.path.exists(sock) and time.time() < end and cp.poll() is None:
        time.sleep(0.02)
    fifo = os.path.join(d, "capture.pcap")
    os.mkfifo(fifo)
    header, pkts = packets(PCAP)
    # the first message ends with the client's "." line
    cut = next(i for i, (_, pl) in enumerate(pkts) if b"\r\n.\r\n" in pl) + 1
    rp = None
    try:
        t0 = time.time()
        rp = subprocess.Popen([wstest.WIRESEAL, "replay", "--json", "--now", NOW, "--authserv-id",
                               "e2e.mx", "--random-pct", "42", "--cp", sock, "--end-idle", "500",
                               fifo], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # replay opens the capture once to check it, then net_pcap reads it
        with open(fifo, "wb"):
            pass
        w = open(fifo, "wb")
        w.write(header + b"".join(p for p, _ in pkts[:cut]) + filler(pkts[cut - 1][0], cut))
        w.flush()
        first = rp.stdout.readline()
        T.check(first.strip() != "", "the first message's line came before the stop")
        dnsd.stdin.close()  # dnsd.py stops nsd when its stdin closes
        dnsd.wait(15)
        fails0 = metric(d, "wireseal_cp_dns_answers_total{kind=\"tempfail\"}")
        w.write(b"".join(p for p, _ in pkts[cut:]))
        w.close()
        err_box = []
        t = threading.Thread(target=lambda: err_box.append(rp.stderr.read()))
        t.start()
        rest = rp.stdout.read()
        rp.wait(120)
        t.join()
        took = time.time() - t0
        err = err_box[0] if err_box else ""
        lines = [json.loads(l) for l in ([first] + rest.splitlines()) if l.strip()]
        msgs = [o for o in lines if "dkim" in o]
        T.check(rp.returncode == 0, "replay exit 0: %d %s" % (rp.returncode, err[-600:]))
        T.check(took < 30, "no hang: the replay ended in %.1f s" % took)
        T.check(len(msgs) == 7 and all("dmarc" in o and "spf" in o for o in msgs),
                "7 message lines, each with the control plane's SPF and DMARC: %d" % len(msgs))
        T.check(re.search(r"control plane policy: 7 verdicts, 0 refused, 0 not answered", err) and
                re.search(r"8 records sent, 8 acknowledged", err),
                "every record (7 messages, 1 session) acknowledged, every message a VERDICT: %r" %
                [l for l in err.splitlines() if "control plane" in l])
        # before the stop: as an in-process replay over the same records
        zf = os.path.join(d, "zone.db")
        with open(zf, "w") as f:
            f.write(sample_zone())
        ref = subprocess.run([wstest.WIRESEAL, "replay", "--json", "--now", NOW, "--authserv-id", "e2e.mx",
                              "--random-pct", "42", "--no-cp", "--zone", zf, PCAP],
                             capture_output=True, text=True, timeout=120)
        want = [json.loads(l) for l in ref.stdout.splitlines() if l.strip()]
        T.check(msgs and want and msgs[0] == want[0],
                "message 1 (before the stop) as in-process with the zone:\n  %s\n  %s" %
                (json.dumps(msgs[0]) if msgs else None, json.dumps(want[0]) if want else None))
        seen_tf = 0
        for got, ref_o in zip(msgs[1:], want[1:]):
            for g, r in zip(got["dkim"], ref_o["dkim"]):
                if g["s"] == "mail2026":
                    T.check(g["result"] == r["result"],
                            "after the stop, the cached key mail2026 still decides: %s (%s)" %
                            (g["result"], r["result"]))
                else:
                    seen_tf += 1
                    T.check(g["result"] == "temperror",
                            "after the stop, key %s (not fetched before) is temperror: %s %r" %
                            (g["s"], g["result"], g.get("reason")))
            T.check(got["spf"] == ref_o["spf"] and got["dmarc"]["result"] in (ref_o["dmarc"]["result"],
                                                                               "temperror"),
                    "after the stop, SPF from the cache; DMARC %s (in-process %s)" %
                    (got["dmarc"]["result"], ref_o["dmarc"]["result"]))
        T.check(seen_tf >= 3, "keys ed2026 and revoked were asked after the stop: %d signatures" % seen_tf)
        fails1 = metric(d, "wireseal_cp_dns_answers_total{kind=\"tempfail\"}")
        T.check(fails1 > max(fails0, 0), "the daemon's DNS tempfail counter moved: %r -> %r" % (fails0, fails1))
        kr = re.search(r"(\d+) key requests", err)
        T.check(kr and int(kr.group(1)) >= 3, "the replay asked the control plane for keys: %r" %
                (kr.group(0) if kr else err[-300:]))
    finally:
        if rp and rp.poll() is None:
            rp.kill()
        if dnsd.poll() is None:
            dnsd.terminate()
        cp.terminate()
        try:
            cp.wait(10)
        except subprocess.TimeoutExpired:
            cp.kill()
        log.close()
        shutil.rmtree(d, ignore_errors=True)
    return T.finish()


if __name__ == "__main__":
    sys.exit(main())
