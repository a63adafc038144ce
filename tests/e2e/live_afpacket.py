#!/usr/bin/python3
"""Live e2e: wireseal-dp on net_af_packet attached to a veth in a private
network namespace while this script sends a capture's frames into the
peer; then the telemetry command /wireseal/stats is read, wireseal-dp is
stopped with SIGINT and each message it printed is compared with
`wireseal verify` on the .eml the capture carried.

Needs root (network namespaces, AF_PACKET): exits 77 (skip) with the reason
when a namespace cannot be created.

usage: live_afpacket.py BUILD_DIR SOURCE_ROOT [CAPTURE_NAME]
"""
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time

NOW = "1800000000"


def frames(path):
    d = open(path, "rb").read()
    magic = struct.unpack("<I", d[:4])[0]
    if magic != 0xA1B2C3D4:
        raise SystemExit("%s: only little-endian classic pcap" % path)
    off = 24
    while off + 16 <= len(d):
        _, _, cl, _ = struct.unpack("<IIII", d[off:off + 16])
        yield d[off + 16:off + 16 + cl]
        off += 16 + cl


def send(iface, pcap):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    n = 0
    for f in frames(pcap):
        s.send(f)
        n += 1
        if n % 16 == 0:
            time.sleep(0.002)  # the PMD's socket ring is finite; stay below it
    print(n)
    return 0


def skip(why):
    print("SKIP: " + why)
    return 77


def telemetry(path, cmd):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(path)
    s.recv(4096)  # greeting
    s.send(cmd.encode())
    return json.loads(s.recv(65536).decode())


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--send":
        return send(sys.argv[2], sys.argv[3])
    build, root = sys.argv[1:3]
    name = sys.argv[3] if len(sys.argv) > 3 else "sample"
    if os.geteuid() != 0:
        return skip("not root: network namespaces and AF_PACKET need CAP_SYS_ADMIN/CAP_NET_RAW")
    ns = "wsdp%d" % os.getpid()
    r = subprocess.run(["ip", "netns", "add", ns], capture_output=True, text=True)
    if r.returncode != 0:
        return skip("cannot create a network namespace: " + r.stderr.strip())
    dp = None
    rundir = "/var/run/dpdk/wsdp-live-%d" % os.getpid()
    try:
        for cmd in (["link", "add", "name", "wsa", "type", "veth", "peer", "name", "wsb"],
                    ["link", "set", "wsa", "up"], ["link", "set", "wsb", "up"]):
            subprocess.run(["ip", "-n", ns] + cmd, check=True)
        cap = os.path.join(root, "tests", "data", "captures", name + ".pcap")
        manifest = json.load(open(os.path.join(root, "tests", "data", "captures", name + ".json")))
        zone = os.path.join(root, "tests", "data", "sample", "zone.db")
        prefix = os.path.basename(rundir)
        dp = subprocess.Popen(
            ["ip", "netns", "exec", ns, os.path.join(build, "wireseal-dp"), "--json", "--zone", zone,
             "--now", NOW, "--", "-l", "0-1", "--no-huge", "-m", "512", "--no-pci",
             "--file-prefix=" + prefix, "--log-level=*:error", "--vdev=net_af_packet0,iface=wsa"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        sock = os.path.join(rundir, "dpdk_telemetry.v2")
        for _ in range(200):
            if os.path.exists(sock) or dp.poll() is not None:
                break
            time.sleep(0.05)
        if dp.poll() is not None:
            print(dp.communicate()[1])
            print("FAIL: wireseal-dp exited %d before the capture was sent" % dp.returncode)
            return 1
        time.sleep(0.5)  # ports start after the telemetry socket
        sent = subprocess.run(["ip", "netns", "exec", ns, "/usr/bin/python3", __file__, "--send",
                               "wsb", cap], capture_output=True, text=True, check=True)
        nsent = int(sent.stdout.strip())
        stats = {}
        for _ in range(100):
            time.sleep(0.05)
            stats = telemetry(sock, "/wireseal/stats")["/wireseal/stats"]
            if stats["tcp"] >= nsent and stats["workers_total"]["messages"] >= len(manifest):
                break
        port0 = telemetry(sock, "/wireseal/port,0")["/wireseal/port"]
        worker0 = telemetry(sock, "/wireseal/worker,0")["/wireseal/worker"]
        dp.send_signal(signal.SIGINT)
        bad = 0
        out, err = dp.communicate(timeout=30)
        dp = None
        sys.stderr.write(err)
        print("telemetry /wireseal/stats: %s" % json.dumps(stats))
        print("telemetry /wireseal/port,0: %s" % json.dumps(port0))
        print("telemetry /wireseal/worker,0: %s" % json.dumps(worker0))
        if port0.get("name") != "net_af_packet0" or port0.get("tcp") != stats.get("tcp"):
            print("FAIL: port 0 telemetry %s" % port0)
            bad += 1
        if worker0.get("messages") != len(manifest) or worker0.get("dkim_pass", 0) < 1:
            print("FAIL: worker 0 telemetry %s" % worker0)
            bad += 1
        # the worker's CPU seconds (telemetry: whole microseconds) and its
        # highest number of concurrent flows, published while it runs
        wt = stats.get("workers_total", {})
        for what, d in (("worker 0", worker0), ("workers_total", wt)):
            if not d.get("cpu_us", 0) > 0 or d.get("peak_flows") != 1:
                print("FAIL: %s telemetry cpu_us %s peak_flows %s (want > 0 and 1: one session)" %
                      (what, d.get("cpu_us"), d.get("peak_flows")))
                bad += 1
        if stats.get("tcp", 0) < nsent:
            print("FAIL: sent %d frames, telemetry counted %d TCP" % (nsent, stats.get("tcp", 0)))
            bad += 1
        paths = [os.path.join(root, m["eml"]) for m in manifest]
        v = subprocess.run([os.path.join(build, "wireseal"), "verify", "--json", "--zone", zone,
                            "--now", NOW] + paths, capture_output=True, text=True, check=True)
        want = [[(d["d"], d["s"], d["result"]) for d in json.loads(l)["dkim"]]
                for l in v.stdout.splitlines()]
        got = sorted((json.loads(l) for l in out.splitlines() if '"session_record"' not in l), key=lambda o: o["session"]["transaction"])
        gotr = [[(d["d"], d["s"], d["result"]) for d in o["dkim"]] for o in got]
        if len(gotr) != len(want):
            print("FAIL: %d messages on the wire, wireseal-dp reported %d" % (len(want), len(gotr)))
            bad += 1
        for i, (g, w) in enumerate(zip(gotr, want)):
            if sorted(g) != sorted(w):
                print("FAIL: message %d: live %s, verify %s" % (i + 1, g, w))
                bad += 1
        print("live af_packet: %d frames sent, %d messages compared, %d failures" %
              (nsent, len(want), bad))
        return 1 if bad else 0
    finally:
        if dp is not None:
            dp.kill()
            dp.wait()
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        shutil.rmtree(rundir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
