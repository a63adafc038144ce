#!/usr/bin/python3
"""Control-plane record throughput: a Python dataplane stand-in sends N
MESSAGE_RECORDs (batched, every DNS answer from an embedded zone, so after the
first record all come from the cache) and times them until the last ACK,
i.e. evaluated (SPF + DMARC), written and fdatasync'ed.

  bench/cp_records.py [N]       (build/wireseal-cp must be built; any user)

Prints records/s and the number of fdatasync calls (group commit). Never
part of a test run.
"""
import os
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "lib"))
import cpm  # noqa: E402

BUILD = os.environ.get("WS_BUILD_ROOT", os.path.join(HERE, "..", "build"))
ZONE = """$ORIGIN org.
$TTL 300
@ IN SOA ns1 hostmaster ( 1 3600 600 86400 60 )
example TXT "v=spf1 ip4:192.0.2.0/24 -all"
_dmarc.example TXT "v=DMARC1; p=reject"
_dmarc TXT "v=DMARC1; p=none"
"""


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    d = tempfile.mkdtemp(prefix="ws-cpbench-")
    with open(os.path.join(d, "org.zone"), "w") as f:
        f.write(ZONE)
    conf = os.path.join(d, "c.yaml")
    with open(conf, "w") as f:
        f.write("cpm_socket: {d}/cpm.sock\ncontrol_socket: {d}/ctl.sock\n"
                "dns:\n  zone_file: {d}/org.zone\nsinks:\n  json_file: {d}/eve.json\n"
                "metrics:\n  port: 0\n".format(d=d))
    p = subprocess.Popen([os.path.join(BUILD, "wireseal-cp"), "-c", conf], stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if os.path.exists(os.path.join(d, "cpm.sock")):
                break
            time.sleep(0.05)
        c = cpm.Client(os.path.join(d, "cpm.sock"))
        dk = [("example.org", "sel", "rsa-sha256", "pass", "")]
        recs = [cpm.message(i, flow=i, dkim=dk) for i in range(1, n + 1)]
        t0 = time.time()
        batch, size = [], 0
        for r in recs:
            if size + len(r) > cpm.MAX_DATAGRAM:
                c.send(*batch)
                batch, size = [], 0
                c.sock.setblocking(False)
                try:  # keep ACKs flowing so neither side stalls
                    while c.pump(timeout=0):
                        pass
                except (BlockingIOError, OSError):
                    pass
                c.sock.setblocking(True)
            batch.append(r)
            size += len(r)
        c.send(*batch)
        c.wait(lambda: c.acked >= n, 120)
        dt = time.time() - t0
        out = subprocess.run([os.path.join(BUILD, "wiresealctl"), "-s", os.path.join(d, "ctl.sock"), "stats"],
                             capture_output=True, text=True).stdout
        syncs = [l.split()[-1] for l in out.splitlines() if l.startswith("wireseal_cp_sink_syncs_total")]
        print("%d records acknowledged in %.2f s: %.0f records/s, %s fdatasync calls"
              % (c.acked, dt, c.acked / dt, syncs[0] if syncs else "?"))
    finally:
        p.terminate()
        p.wait()


if __name__ == "__main__":
    main()
