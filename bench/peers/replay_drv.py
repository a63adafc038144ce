#!/usr/bin/python3
"""One `wireseal replay` measurement (or the raw read rate of a capture) as a
JSON line for bench/run.sh.

  replay_drv.py replay --bin build/wireseal --zone ZONE --workers N [--no-verify]
                       --label L CAPTURE
  replay_drv.py read --bin build/bench/bench-pcap-read --label L CAPTURE

replay: runs the command, reads its first stderr line ("...: P packets, B
bytes in S s: R packets/s, G Gbit/s, M messages/s ...", the span from the
first to the last packet, without EAL start) and the summary line
("sessions=.. messages=.. gaps=.."), and prints {"peer": "replay", "capture",
"workers", "verify", "packets", "bytes", "seconds", "packets_per_s",
"gbit_per_s", "msgs_per_s", "messages", "gaps", the same per worker, and
"cpu_s" (user+system of the process, from wait4)}. replay's figures are wall
time: DPDK lcores busy-poll, so CPU time says nothing about the work.
read: bench-pcap-read over the capture 3 times -> {"peer": "pcap-read", ...}.
Anything else than a parsed line is an {"error": "<exact reason>"} line, exit 1.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time

RATE = re.compile(r'(\d+) packets, (\d+) bytes in ([0-9.]+) s: (\d+) packets/s, ([0-9.]+) Gbit/s'
                  r'(?:, (\d+) messages/s)?')
SUMMARY = re.compile(r'sessions=(\d+) messages=(\d+) gaps=(\d+)')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('what', choices=['replay', 'read'])
    ap.add_argument('capture')
    ap.add_argument('--bin', required=True)
    ap.add_argument('--zone')
    ap.add_argument('--workers', type=int, default=1)
    ap.add_argument('--no-verify', action='store_true')
    ap.add_argument('--label', required=True)
    a = ap.parse_args()
    base = {'peer': 'replay' if a.what == 'replay' else 'pcap-read', 'capture': a.label,
            'corpus': a.label, 'capture_bytes': os.path.getsize(a.capture) if os.path.exists(a.capture) else None}
    if a.what == 'replay':
        base.update({'workers': a.workers, 'verify': not a.no_verify})
        # --no-cp: the dataplane's in-process policy, as measured before
        # replay asked wireseal-cp by default
        cmd = [a.bin, 'replay', '--workers', str(a.workers), '--zone', a.zone, '--now', '1800000000',
               '--no-cp']
        if a.no_verify:
            cmd.append('--no-verify')
        cmd.append(a.capture)
    else:
        cmd = [a.bin, a.capture, '3']
    t0 = time.monotonic()
    r0 = os.times()
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL if a.what == 'replay' else subprocess.PIPE,
                       stderr=subprocess.PIPE)
    r1 = os.times()
    wall = time.monotonic() - t0
    text = (p.stderr or b'').decode(errors='replace') + ((p.stdout or b'').decode(errors='replace'))
    m = RATE.search(text)
    if p.returncode != 0 or not m:
        base['error'] = 'exit %d: %s' % (p.returncode, text.strip()[-600:] or '(no output)')
        print(json.dumps(base))
        return 1
    pk, by, secs, pps, gbit = int(m.group(1)), int(m.group(2)), float(m.group(3)), int(m.group(4)), float(m.group(5))
    base.update({'packets': pk, 'bytes': by, 'seconds': secs, 'packets_per_s': pps, 'gbit_per_s': gbit,
                 'run_wall_s': round(wall, 3),
                 'cpu_s': round((r1.children_user - r0.children_user) + (r1.children_system - r0.children_system), 3)})
    if a.what == 'replay':
        s = SUMMARY.search(text)
        mps = int(m.group(6)) if m.group(6) else None
        base.update({'msgs_per_s': mps, 'sessions': int(s.group(1)) if s else None,
                     'messages': int(s.group(2)) if s else None, 'gaps': int(s.group(3)) if s else None,
                     'packets_per_s_per_worker': round(pps / a.workers),
                     'gbit_per_s_per_worker': round(gbit / a.workers, 4),
                     'msgs_per_s_per_worker': round(mps / a.workers) if mps is not None else None,
                     'us_per_msg_core': round(1e6 * a.workers / mps, 2) if mps else None})
    print(json.dumps(base))
    return 0


if __name__ == '__main__':
    sys.exit(main())
