#!/usr/bin/python3
"""The dataplane's named limits at and past each, through the processes
(tests/e2e/limits.py has workers, captures and flows per worker):

 - DPE_MAX_SMTP_PORTS: --smtp-ports / --tls-ports with 8 ports run, 9 refused
 - DPE_MAX_EAL_ARGS: wireseal-dp with 62 EAL arguments runs, 63 refused
 - DPE_MAX_PORTS: wireseal-dp with 32 net_pcap ports reads them all (the
   telemetry /wireseal/stats reports 32 ports and every packet), 33 refused
 - DPE_BURST: a capture of exactly one burst and of one burst plus a frame
 - DPE_QUIET_S: a session quiet exactly DPE_QUIET_S s of capture time keeps
   its buffers, 1 us longer it is trimmed (quiet-trimmed)
 - REPLAY_IDLE_S: a session quiet exactly the default idle timeout goes on,
   1 us longer it ends "idle" (and the rest is picked up mid-stream)
 - DPE_EXPIRE_PER_BURST: idle flows are ended at most this many per pass;
   64, 65 and 200 flows idle at once all end "idle", none is left over
 - FLOW_MAX_CAPACITY: --flows one past it refused with the reason
 - DPE_FRAG_FLOWS: the first fragments of exactly that many datagrams, then
   every second fragment: all rebuilt; one datagram more: it is refused
   (frag-drops 1) and all but it rebuilt
 - DPE_FRAG_TTL_MS: a datagram's last fragment exactly the TTL after its
   first (capture time) is rebuilt, 1 us later it is not (the stale first
   fragment dropped)
 - the software port kinds: net_null and net_ring ports come up and are read

Limits are read from the headers, so a changed constant moves the test.

usage: dp_limits.py BUILD_DIR SOURCE_ROOT
"""
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

NOW = "1800000000"


def define(root, header, name):
    text = open(os.path.join(root, header)).read()
    m = re.search(r"#define %s \(?(\d+)u?( \* 1024 \* 1024)?\)?" % name, text)
    v = int(m.group(1))
    return v * 1024 * 1024 if m.group(2) else v


def read_pcap(path):
    d = open(path, "rb").read()
    if struct.unpack("<I", d[:4])[0] != 0xA1B2C3D4:
        raise SystemExit("%s: only little-endian classic microsecond pcap" % path)
    out, off = [], 24
    while off + 16 <= len(d):
        sec, usec, cl, _ = struct.unpack("<IIII", d[off:off + 16])
        out.append((sec * 1000000 + usec, d[off + 16:off + 16 + cl]))
        off += 16 + cl
    return d[:24], out


def write_pcap(path, head, frames):
    with open(path, "wb") as f:
        f.write(head)
        for ts, fr in frames:
            f.write(struct.pack("<IIII", ts // 1000000, ts % 1000000, len(fr), len(fr)) + fr)


def with_gap(frames, k, gap_us):
    """frames with the quiet before frame k set to gap_us microseconds."""
    shift = gap_us - (frames[k][0] - frames[k - 1][0])
    return frames[:k] + [(ts + shift, fr) for ts, fr in frames[k:]]


def syn_frames(root, n, gap_us):
    """n SYNs to port 25 from distinct client ports, quiet gap_us, one more SYN."""
    sys.path.insert(0, os.path.join(root, "tests", "tools"))
    import gen_smtp_pcap
    fr = gen_smtp_pcap.Frames(False, [], bytes([10, 9, 0, 1]), bytes([10, 9, 0, 2]))
    out, ts = [], 1700000000 * 1000000
    for i in range(n + 1):
        if i == n:
            ts += gap_us
        src, dst, seg = fr.tcp(True, 20000 + i, 25, 1000, 0, 0x02, b"")
        for f in fr.ip(src, dst, seg):
            ts += 10
            out.append((ts, f))
    return out


def frag_frames(root, starts, gap_us):
    """Two-fragment IPv4 datagrams (a TCP segment to port 9, not SMTP), one
    per entry of starts (its first fragment's time in us): every first
    fragment, then every second one gap_us after its first."""
    sys.path.insert(0, os.path.join(root, "tests", "tools"))
    import gen_smtp_pcap
    fr = gen_smtp_pcap.Frames(False, [], bytes([10, 9, 1, 1]), bytes([10, 9, 1, 2]))
    firsts, seconds = [], []
    for i, t in enumerate(starts):
        src, dst, seg = fr.tcp(True, 30000 + i % 30000, 9, 1000, 0, 0x18, b"fragment")
        a, b = fr.ip(src, dst, seg, 16)  # 28 bytes: 16 + 12
        firsts.append((t, a))
        seconds.append((t + gap_us, b))
    return sorted(firsts + seconds, key=lambda x: x[0])


def rundir(prefix):
    if os.geteuid() == 0:
        base = "/var/run/dpdk"
    else:
        base = os.path.join(os.environ.get("XDG_RUNTIME_DIR", "/tmp"), "dpdk")
    return os.path.join(base, prefix)


def telemetry(path, cmd):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(path)
    s.recv(4096)  # greeting
    s.send(cmd.encode())
    r = json.loads(s.recv(65536).decode())
    s.close()
    return r[cmd.split(",")[0]]


def main():
    build, root = sys.argv[1:3]
    ws = os.path.join(build, "wireseal")
    dp = os.path.join(build, "wireseal-dp")
    cap = os.path.join(root, "tests", "data", "captures")
    zone = os.path.join(root, "tests", "data", "sample", "zone.db")
    sample = os.path.join(cap, "sample.pcap")
    nmsg = len(json.load(open(os.path.join(cap, "sample.json"))))
    tmp = tempfile.mkdtemp(prefix="ws-dp-limits-")
    bad = 0

    def fail(msg):
        nonlocal bad
        print("FAIL " + msg)
        bad += 1

    def replay(args, want_rc, what):
        r = subprocess.run([ws, "replay", "--zone", zone, "--now", NOW, "--json"] + args,
                           capture_output=True, text=True, timeout=120)
        if r.returncode != want_rc:
            fail("%s: exit %d, want %d\n%s" % (what, r.returncode, want_rc, r.stderr))
        return r

    def messages(r):
        return [l for l in r.stdout.splitlines() if "session_record" not in json.loads(l)]

    def counter(r, name):
        m = re.search(r"\b%s[ =](\d+)" % re.escape(name), r.stderr)
        return int(m.group(1)) if m else -1

    # ---- DPE_MAX_SMTP_PORTS
    nports = define(root, "dataplane/dpe.h", "DPE_MAX_SMTP_PORTS")
    ports = [25] + [2525 + i for i in range(nports - 1)]
    r = replay(["--smtp-ports", ",".join(map(str, ports)), sample], 0,
               "%d SMTP ports (the limit)" % nports)
    if len(messages(r)) != nmsg:
        fail("%d SMTP ports: %d messages, want %d" % (nports, len(messages(r)), nmsg))
    replay(["--smtp-ports", ",".join(map(str, ports + [9999])), sample], 2,
           "%d SMTP ports (past the limit)" % (nports + 1))
    tls = [465 + i for i in range(nports)]
    replay(["--tls-ports", ",".join(map(str, tls)), sample], 0, "%d TLS ports (the limit)" % nports)
    replay(["--tls-ports", ",".join(map(str, tls + [9999])), sample], 2,
           "%d TLS ports (past the limit)" % (nports + 1))

    # ---- DPE_BURST: one burst, and one burst and a frame
    burst = define(root, "dataplane/dpe.h", "DPE_BURST")
    head, frames = read_pcap(sample)
    for n in (burst, burst + 1):
        p = os.path.join(tmp, "burst%d.pcap" % n)
        write_pcap(p, head, frames[:n])
        r = replay([p], 0, "%d frames" % n)
        if not re.search(r" %d packets," % n, r.stderr) or counter(r, "tcp") != n:
            fail("%d frames (DPE_BURST %d): %s" % (n, burst, r.stderr.splitlines()[:4]))

    # ---- DPE_QUIET_S and REPLAY_IDLE_S: one quiet stretch in the sample
    # session, before its second client command after the greeting
    quiet = define(root, "dataplane/dpe.h", "DPE_QUIET_S")
    idle = define(root, "cli/replay.c", "REPLAY_IDLE_S")
    k = len(frames) // 2
    for limit, what in ((quiet, "quiet"), (idle, "idle")):
        for past in (0, 1):
            p = os.path.join(tmp, "%s%d.pcap" % (what, past))
            write_pcap(p, head, with_gap(frames, k, limit * 1000000 + past))
            r = replay([p], 0, "%s %d s%s" % (what, limit, " + 1 us" if past else ""))
            trimmed, idled = counter(r, "quiet-trimmed"), counter(r, "idle")
            if what == "quiet" and (trimmed != past or idled != 0):
                fail("quiet %d s + %d us: quiet-trimmed=%d idle=%d, want %d and 0" %
                     (limit, past, trimmed, idled, past))
            if what == "quiet" and len(messages(r)) != nmsg:
                fail("quiet %d s + %d us: %d messages, want %d" % (limit, past, len(messages(r)),
                                                                 nmsg))
            if what == "idle" and idled != past:
                fail("idle %d s + %d us: idle=%d, want %d" % (limit, past, idled, past))
            if what == "idle" and past:
                mid = [json.loads(l) for l in r.stdout.splitlines()
                       if json.loads(l).get("session", {}).get("midstream")]
                if not mid and not any('"midstream"' in l for l in r.stdout.splitlines()):
                    fail("idle past the limit: nothing after the gap says midstream: %s" %
                         r.stdout[:400])

    # ---- DPE_EXPIRE_PER_BURST: flows idle at once
    per = define(root, "dataplane/dpe.c", "DPE_EXPIRE_PER_BURST")
    for n in (per, per + 1, 200):
        p = os.path.join(tmp, "syn%d.pcap" % n)
        write_pcap(p, head, syn_frames(root, n, 2 * 1000000))
        r = replay(["--idle-timeout", "1", p], 0, "%d idle flows" % n)
        if counter(r, "idle") != n or counter(r, "capture-end") != 1:
            fail("%d flows idle at once (DPE_EXPIRE_PER_BURST %d): %s" %
                 (n, per, [l for l in r.stderr.splitlines() if "flows=" in l]))

    # ---- FLOW_MAX_CAPACITY (the table at the limit is test_flow's and too big here)
    fmax = define(root, "dataplane/flow.h", "FLOW_MAX_CAPACITY")
    r = replay(["--flows", str(fmax + 1), sample], 1, "--flows %d (past the limit)" % (fmax + 1))
    if "out of range" not in r.stderr:
        fail("--flows past FLOW_MAX_CAPACITY: no reason: %s" % r.stderr)

    # ---- DPE_FRAG_FLOWS: n datagrams in reassembly at once (first fragments
    # 1 us apart, the second fragments after all of them)
    fflows = define(root, "dataplane/dpe.h", "DPE_FRAG_FLOWS")
    t0 = 1700000000 * 1000000
    for n in (fflows, fflows + 1):
        p = os.path.join(tmp, "frag%d.pcap" % n)
        write_pcap(p, head, frag_frames(root, [t0 + i for i in range(n)], n + 10))
        r = replay([p], 0, "%d datagrams in reassembly" % n)
        want = (min(n, fflows), n - min(n, fflows))
        got = (counter(r, "reassembled"), counter(r, "frag-drops"))
        if got != want or counter(r, "fragments") != 2 * n:
            fail("%d datagrams in reassembly (DPE_FRAG_FLOWS %d): reassembled, frag-drops %s, "
                 "want %s: %s" % (n, fflows, got, want,
                                  [l for l in r.stderr.splitlines() if "fragments=" in l]))

    # ---- DPE_FRAG_TTL_MS: the second fragment exactly the TTL after the
    # first, and 1 us later
    ttl = define(root, "dataplane/dpe.h", "DPE_FRAG_TTL_MS")
    for past in (0, 1):
        p = os.path.join(tmp, "fragttl%d.pcap" % past)
        write_pcap(p, head, frag_frames(root, [t0], ttl * 1000 + past))
        r = replay([p], 0, "fragment %d ms%s after the first" % (ttl, " + 1 us" if past else ""))
        got = (counter(r, "reassembled"), counter(r, "frag-drops"))
        if got != (1 - past, past):
            fail("second fragment %d ms + %d us after the first: reassembled, frag-drops %s, "
                 "want %s: %s" % (ttl, past, got, (1 - past, past),
                                  [l for l in r.stderr.splitlines() if "fragments=" in l]))

    # ---- wireseal-dp: DPE_MAX_EAL_ARGS and DPE_MAX_PORTS
    eal_max = define(root, "dataplane/dpe.h", "DPE_MAX_EAL_ARGS")
    max_ports = define(root, "dataplane/dpe.h", "DPE_MAX_PORTS")

    def live(eal_extra, nvdev, want_rc, what, want_packets=None, vdevs=None, lcores="0-1",
             dp_args=(), cmd="/wireseal/stats"):
        prefix = "wsdplim%d" % os.getpid()
        eal = ["-l", lcores, "--no-huge", "-m", "1024", "--no-pci", "--file-prefix=" + prefix,
               "--log-level=*:error"]
        eal += vdevs or ["--vdev=net_pcap%d,rx_pcap=%s" % (i, sample) for i in range(nvdev)]
        eal += eal_extra
        proc = subprocess.Popen([dp, "--zone", zone, "--now", NOW, "--json"] + list(dp_args) +
                                ["--"] + eal,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        stats = None
        if want_rc == 0:
            sock = os.path.join(rundir(prefix), "dpdk_telemetry.v2")
            deadline = time.time() + 30
            while time.time() < deadline and proc.poll() is None:
                time.sleep(0.1)
                try:
                    stats = telemetry(sock, cmd)
                except (OSError, ValueError, KeyError):
                    continue
                if not stats:
                    continue  # null until the engine is up
                if want_packets is None or stats.get("packets") == want_packets:
                    break
                if want_packets < 0 and stats.get("packets", 0) >= -want_packets:
                    break
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        if proc.returncode != want_rc:
            fail("%s: wireseal-dp exit %d, want %d\n%s" % (what, proc.returncode, want_rc, err))
        return stats, err

    npkt = len(frames)
    filler = ["--log-level=*:error"]
    base = 9  # the EAL arguments live() always gives, one vdev included
    stats, err = live(filler * (eal_max - 2 - base), 1, 0,
                      "%d EAL arguments (the limit)" % (eal_max - 2), npkt)
    if not stats or stats.get("packets") != npkt:
        fail("%d EAL arguments: telemetry %s" % (eal_max - 2, stats))
    stats, err = live(filler * (eal_max - 1 - base), 1, 2,
                      "%d EAL arguments (past the limit)" % (eal_max - 1))
    if "more than %d EAL arguments" % (eal_max - 2) not in err:
        fail("%d EAL arguments: no reason given: %s" % (eal_max - 1, err))
    stats, err = live([], max_ports, 0, "%d ports (the limit)" % max_ports, max_ports * npkt)
    if not stats or stats.get("ports") != max_ports or stats.get("packets") != max_ports * npkt:
        fail("%d ports: telemetry %s" % (max_ports, stats))
    if not re.search(r"%d ports, 1 workers: %d packets" % (max_ports, max_ports * npkt), err):
        fail("%d ports: summary %s" % (max_ports, err.splitlines()[:1]))
    # one more: the EAL cannot make it (RTE_MAX_ETHPORTS), and wireseal-dp
    # refuses to run without a port it was given
    stats, err = live([], max_ports + 1, 1, "%d ports (past the limit)" % (max_ports + 1))
    if "port net_pcap%d did not come up" % max_ports not in err:
        fail("%d ports: no reason given: %s" % (max_ports + 1, err))

    # ---- the test and benchmark port kinds: net_null (an endless source:
    # its frames are whatever the reused mbufs hold, so only counted here)
    # and net_ring (a port with nothing to read)
    # (want_packets < 0: at least that many)
    stats, err = live([], 0, 0, "net_null and net_ring ports", -1000,
                      vdevs=["--vdev=net_null0,size=64", "--vdev=net_ring0"])
    if not stats or stats.get("ports") != 2 or stats.get("packets", 0) < 1000:
        fail("net_null/net_ring: telemetry %s" % stats)
    if not re.search(r"wireseal-dp: 2 ports, 1 workers: [1-9]\d* packets", err):
        fail("net_null/net_ring: summary %s" % err.splitlines()[:1])

    # ---- --inline: one lcore in all; the worker's CPU time is published by
    # the main lcore while it runs
    stats, err = live([], 1, 0, "--inline on one lcore", npkt, lcores="0", dp_args=["--inline"],
                      cmd="/wireseal/worker,0")
    if not stats or stats.get("packets") != npkt or not stats.get("cpu_us", 0) > 0 or \
            stats.get("peak_flows") != 1:
        fail("--inline: worker telemetry %s" % stats)

    print("dp limits: %d failures" % bad)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
