#!/usr/bin/python3
"""rspamd peer: a real rspamd (Debian package) with only its DKIM filter,
resolving keys from a real nsd serving the corpus's zone.db on loopback.

Starts nsd (127.0.0.1:DNSPORT) and `rspamd -f -i` pinned to --cpu, POSTs every
message to the normal worker's /checkv2 (HTTP, CLIENTS requests in flight,
from this process), and counts the worker's CPU time (/proc/PID/task/*/schedstat
in ns, or /proc/PID/stat utime + stime) around each size bucket. A warm-up pass (not
counted) fills rspamd's key cache first, as on a long-running server.
R_DKIM_ALLOW is a pass; R_DKIM_REJECT / R_DKIM_PERMFAIL a fail; anything
else (R_DKIM_TEMPFAIL, R_DKIM_NA, no symbol) is "other".

Usage: rspamd_verify.py [--reps N] [--cpu C] [--filters dkim|''] [--workdir D]
                        CORPUS_DIR [FILE...]
Prints one JSON line per repetition. On any failure it prints one JSON line
with "error" (the exact reason, with the tail of rspamd's log) and exits 1.
"""

import argparse
import concurrent.futures
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import corpus as cp  # noqa: E402

HTTP_PORT = 11333
DNS_PORT = 5353
START_TIMEOUT_S = 180  # first start compiles hyperscan databases (~30 s here)
TICK = os.sysconf('SC_CLK_TCK')
CLIENTS = 8  # requests in flight


class PeerError(Exception):
    pass


def free_port(preferred):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(('127.0.0.1', preferred))
        return preferred
    except OSError:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]
    finally:
        s.close()


def dns_query_ok(port, name):
    """True when nsd answers a TXT query for name (hand-made packet: no
    dependency on dnspython for one probe)."""
    q = b'\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00'
    for label in name.rstrip('.').split('.'):
        q += bytes([len(label)]) + label.encode()
    q += b'\x00\x00\x10\x00\x01'
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.5)
    try:
        s.sendto(q, ('127.0.0.1', port))
        data = s.recv(4096)
        return len(data) > 12 and data[:2] == b'\x12\x34' and (data[3] & 0x0f) == 0 and data[7] > 0
    except OSError:
        return False
    finally:
        s.close()


def proc_cpu(pid):
    """CPU seconds of every thread of pid: the scheduler's ns-resolution
    run time (/proc/PID/task/*/schedstat, first field) when the kernel has
    it, else utime + stime from /proc/PID/stat (10 ms ticks)."""
    try:
        total = 0
        for tid in os.listdir('/proc/%d/task' % pid):
            with open('/proc/%d/task/%s/schedstat' % (pid, tid)) as f:
                total += int(f.read().split()[0])
        return total / 1e9
    except (OSError, ValueError, IndexError):
        with open('/proc/%d/stat' % pid) as f:
            fields = f.read().rsplit(')', 1)[1].split()
        # fields[0] is state (field 3); utime, stime are fields 14, 15.
        return (int(fields[11]) + int(fields[12])) / TICK


def children(pid):
    out = []
    for d in os.listdir('/proc'):
        if not d.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % d) as f:
                st = f.read()
            with open('/proc/%s/cmdline' % d, 'rb') as f:
                cmd = f.read().replace(b'\0', b' ').decode(errors='replace')
        except OSError:
            continue
        if int(st.rsplit(')', 1)[1].split()[1]) == pid:
            out.append((int(d), cmd))
    return out


def tail(path, n=15):
    try:
        with open(path, errors='replace') as f:
            return ' | '.join(line.rstrip() for line in f.readlines()[-n:])
    except OSError as e:
        return '(no log: %s)' % e


def check(port, data):
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=120)
    try:
        conn.request('POST', '/checkv2', body=data, headers={'Content-Length': str(len(data))})
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            raise PeerError('rspamd /checkv2 answered HTTP %d: %s' % (resp.status, body[:300]))
        return json.loads(body)
    finally:
        conn.close()


def classify(reply):
    syms = reply.get('symbols', {})
    if 'R_DKIM_ALLOW' in syms:
        return 'pass'
    if 'R_DKIM_REJECT' in syms or 'R_DKIM_PERMFAIL' in syms:
        return 'fail'
    return 'other'


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--reps', type=int, default=1)
    ap.add_argument('--cpu', default='1', help='taskset CPU list for rspamd and nsd')
    ap.add_argument('--filters', default='dkim', help="rspamd options.filters ('' = no-filter baseline)")
    ap.add_argument('--workdir', default=None)
    ap.add_argument('corpus')
    ap.add_argument('files', nargs='*')
    a = ap.parse_args()
    peer = 'rspamd' if a.filters == 'dkim' else ('rspamd-nofilter' if not a.filters else 'rspamd-filters=' + a.filters)
    corpus = os.path.abspath(a.corpus)
    work = a.workdir or tempfile.mkdtemp(prefix='bench-rspamd-')
    os.makedirs(work, exist_ok=True)
    procs = []
    try:
        for tool in ('rspamd', 'nsd', 'taskset'):
            if shutil.which(tool) is None:
                raise PeerError('%s not found in PATH (Debian package: %s)' % (
                    tool, {'rspamd': 'rspamd', 'nsd': 'nsd', 'taskset': 'util-linux'}[tool]))
        dns_port = free_port(DNS_PORT)
        http_port = free_port(HTTP_PORT)
        with open(os.path.join(work, 'nsd.conf'), 'w') as f:
            f.write('server:\n  ip-address: 127.0.0.1@%d\n  port: %d\n  username: ""\n  chroot: ""\n'
                    '  zonesdir: "%s"\n  pidfile: "%s/nsd.pid"\n  database: ""\n  logfile: "%s/nsd.log"\n'
                    '  xfrdfile: "%s/xfrd.state"\n  zonelistfile: "%s/zone.list"\n  do-ip6: no\n'
                    '  server-count: 1\nremote-control:\n  control-enable: no\n'
                    'zone:\n  name: "example"\n  zonefile: "%s/zone.db"\n'
                    % (dns_port, dns_port, work, work, work, work, work, corpus))
        nsd = subprocess.Popen(['taskset', '-c', a.cpu, 'nsd', '-d', '-c', os.path.join(work, 'nsd.conf')],
                               stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, 'nsd.err'), 'w'))
        procs.append(nsd)
        probe = None
        with open(os.path.join(corpus, 'keys.tsv')) as f:
            probe = f.readline().split('\t')[0]
        deadline = time.time() + 20
        while not dns_query_ok(dns_port, probe):
            if nsd.poll() is not None or time.time() > deadline:
                raise PeerError('nsd did not serve %s/zone.db on 127.0.0.1:%d: %s %s' % (
                    corpus, dns_port, tail(os.path.join(work, 'nsd.err')), tail(os.path.join(work, 'nsd.log'))))
            time.sleep(0.2)
        conf = os.path.join(work, 'rspamd.conf')
        with open(conf, 'w') as f:
            f.write('options {\n  pidfile = "%s/rspamd.pid";\n  filters = "%s";\n'
                    '  dns {\n    nameserver = ["127.0.0.1:%d"];\n    timeout = 2s;\n    retransmits = 2;\n  }\n}\n'
                    'logging {\n  type = "file";\n  filename = "%s/rspamd.log";\n  level = "notice";\n}\n'
                    'worker "normal" {\n  bind_socket = "127.0.0.1:%d";\n  count = 1;\n  task_timeout = 60s;\n}\n'
                    'dkim {\n  dkim_cache_size = 2k;\n}\n' % (work, a.filters, dns_port, work, http_port))
        log = os.path.join(work, 'rspamd.log')
        rsp = subprocess.Popen(['taskset', '-c', a.cpu, 'rspamd', '-f', '-i', '-c', conf],
                               stdout=open(os.path.join(work, 'rspamd.out'), 'w'), stderr=subprocess.STDOUT,
                               cwd=work)
        procs.append(rsp)
        deadline = time.time() + START_TIMEOUT_S
        worker = None
        while worker is None:
            if rsp.poll() is not None:
                raise PeerError('rspamd exited with status %s during start: %s %s' % (
                    rsp.returncode, tail(os.path.join(work, 'rspamd.out')), tail(log)))
            if time.time() > deadline:
                raise PeerError('rspamd normal worker not up after %d s: %s' % (START_TIMEOUT_S, tail(log)))
            for pid, cmd in children(rsp.pid):
                if 'normal process' in cmd:
                    worker = pid
            time.sleep(0.5)
        deadline = time.time() + 60
        while True:
            try:
                c = http.client.HTTPConnection('127.0.0.1', http_port, timeout=5)
                c.request('GET', '/ping')
                if c.getresponse().read().strip() == b'pong':
                    break
            except OSError:
                pass
            if time.time() > deadline:
                raise PeerError('rspamd worker %d does not answer /ping on 127.0.0.1:%d: %s' % (
                    worker, http_port, tail(log)))
            time.sleep(0.5)

        files = cp.message_files(corpus, a.files)
        msgs = []
        for name, path in files:
            with open(path, 'rb') as f:
                msgs.append((name, f.read()))
        expected = cp.load_manifest(corpus)
        # Warm-up: every distinct key once, and rspamd's lazy initialisation.
        for name, data in msgs[:50]:
            check(http_port, data)
        version = subprocess.run(['rspamd', '--version'], capture_output=True, text=True).stdout.strip()
        for rep in range(1, a.reps + 1):
            tally = cp.Tally(peer, corpus, expected)
            by_bucket = {}
            for name, data in msgs:
                by_bucket.setdefault(cp.bucket_of(len(data)), []).append((name, data))
            for b in sorted(by_bucket):
                c0 = proc_cpu(worker)
                # A few requests in flight keep the single worker busy (the
                # wall time of one request is ~3x its CPU time); the CPU
                # figure does not depend on it.
                with concurrent.futures.ThreadPoolExecutor(CLIENTS) as ex:
                    replies = list(ex.map(lambda m: check(http_port, m[1]), by_bucket[b]))
                cpu = proc_cpu(worker) - c0
                results = [(name, len(data), classify(r)) for (name, data), r in zip(by_bucket[b], replies)]
                # Spread the bucket's CPU over its messages: the worker's
                # CPU is read per bucket, not per request.
                for name, size, r in results:
                    tally.add(name, size, r, cpu / len(results))
            tally.emit({'rep': rep, 'version': version, 'filters': a.filters,
                        'cpu_source': 'rspamd normal worker pid %d, /proc schedstat' % worker})
        return 0
    except (PeerError, OSError, ValueError) as e:
        sys.stdout.write(json.dumps({'peer': peer, 'corpus': os.path.basename(corpus), 'error': str(e)}) + '\n')
        return 1
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        if a.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
