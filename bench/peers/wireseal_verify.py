#!/usr/bin/python3
"""wireseal peer: `build/wireseal verify --zone CORPUS/zone.db --json FILE...`.

The CLI is run per message-size bucket with that bucket's files; CPU time
is the child's rusage (ru_utime + ru_stime from os.wait4). A bucket's cost
is its steady state: one run over the files given once and one over the
same list given STEADY_PASSES times; the extra passes' CPU over their
messages is the figure, so process start, zone loading and first key
lookups cancel out (as bench/replay.sh does for the dataplane, and as the
in-process peers leave their first messages untimed). The old method
subtracted a one-file run's start-up (~60-90 ms of CPU here) from each
bucket's run, so every one-time cost a run over many files has and a
one-file run has not (the lane group's arena and the streams' state first
touched, ~15 us per fresh 4 KiB page in this VM; each run's own first key
lookups; its start-up's spread) stayed in the figure: 7-17 ms per bucket,
measured. That figure is still reported beside it
(msgs_per_cpu_s_startup_subtracted, startup_cpu_s). Each output line
is {"file":..., "dkim":[{"d","s","a","result","reason"}], ...}: a message
passes when any signature's result is "pass", fails when there is a
signature and none passes with a definite result (fail, permerror,
neutral, policy), and is "other" otherwise (temperror, none, no line).

When the binary has no `verify` command yet, prints one JSON line with
"status": "not built yet" and the exact reason, and exits 0.

Usage: wireseal_verify.py [--bin PATH] CORPUS_DIR [FILE...]
"""

import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import corpus as cp  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FAIL_RESULTS = {'fail', 'permerror', 'neutral', 'policy'}
# the files of a bucket given this many times for the steady-state run
STEADY_PASSES = 4


def available(binary):
    """-> (True, '') or (False, exact reason)."""
    if not os.access(binary, os.X_OK):
        return False, '%s: no such executable (run `ninja -C build`)' % binary
    try:
        r = subprocess.run([binary, 'verify', '--help'], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, '%s verify --help: %s' % (binary, e)
    if r.returncode != 0:
        msg = (r.stderr.strip() or r.stdout.strip()).splitlines()
        return False, '`%s verify --help` exited %d: %s' % (binary, r.returncode, ' / '.join(msg[:3]))
    return True, ''


def run_bucket(binary, zone, paths):
    """-> (cpu seconds, {basename: parsed line}, stderr text, status)."""
    out_path = '/tmp/bench-wireseal-%d.out' % os.getpid()
    err_path = out_path + '.err'
    with open(out_path, 'wb') as out, open(err_path, 'wb') as err:
        p = subprocess.Popen([binary, 'verify', '--zone', zone, '--json'] + paths, stdout=out, stderr=err)
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
    lines = {}
    with open(out_path, 'rb') as f:
        for raw in f:
            raw = raw.strip()
            if not raw:
                continue
            try:
                obj = json.loads(raw)
            except ValueError:
                continue
            if isinstance(obj, dict) and 'file' in obj:
                lines[os.path.basename(str(obj['file']))] = obj
    with open(err_path, 'rb') as f:
        errtext = f.read().decode(errors='replace')
    os.unlink(out_path)
    os.unlink(err_path)
    return ru.ru_utime + ru.ru_stime, lines, errtext, p.returncode


def classify(obj):
    if obj is None:
        return 'other'
    results = [str(s.get('result', '')).lower() for s in obj.get('dkim') or [] if isinstance(s, dict)]
    if 'pass' in results:
        return 'pass'
    if any(r in FAIL_RESULTS for r in results):
        return 'fail'
    return 'other'


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--bin', default=os.path.join(ROOT, 'build', 'wireseal'))
    ap.add_argument('corpus')
    ap.add_argument('files', nargs='*')
    a = ap.parse_args()
    corpus = os.path.abspath(a.corpus)
    ok, why = available(a.bin)
    if not ok:
        print(json.dumps({'peer': 'wireseal', 'corpus': os.path.basename(corpus),
                          'status': 'not built yet', 'error': why}))
        return 0
    files = cp.message_files(corpus, a.files)
    by_bucket = {}
    for name, path in files:
        by_bucket.setdefault(cp.bucket_of(os.path.getsize(path)), []).append((name, path))
    tally = cp.Tally('wireseal', corpus, cp.load_manifest(corpus))
    exits, missing, errtail = [], 0, ''
    zone = os.path.join(corpus, 'zone.db')
    smallest = min((os.path.getsize(p), p) for _, p in files)[1]
    startup = min(run_bucket(a.bin, zone, [smallest])[0] for _ in range(3))
    old_total = 0.0
    for b in sorted(by_bucket):
        group = by_bucket[b]
        paths = [p for _, p in group]
        cpu1, lines, errtext, rc = run_bucket(a.bin, zone, paths)
        cpuk, _, _, rck = run_bucket(a.bin, zone, paths * STEADY_PASSES)
        old_total += max(cpu1 - startup, 0.0)
        cpu = max((cpuk - cpu1) / (STEADY_PASSES - 1), 0.0)
        exits.append(rc if rc != 0 else rck)
        if errtext.strip():
            errtail = errtext.strip().splitlines()[-1][:300]
        for name, path in group:
            obj = lines.get(name)
            missing += obj is None
            tally.add(name, os.path.getsize(path), classify(obj), cpu / len(group))
    extra = {'exit_status': exits, 'missing_lines': missing, 'startup_cpu_s': round(startup, 6),
             'method': 'steady state: (cpu of the list x%d - cpu of the list x1) / %d' % (
                 STEADY_PASSES, STEADY_PASSES - 1),
             'msgs_per_cpu_s_startup_subtracted': round(len(files) / old_total, 2) if old_total else None}
    if errtail:
        extra['stderr_tail'] = errtail
    try:
        v = subprocess.run([a.bin, 'version'], capture_output=True, text=True, timeout=10).stdout.strip()
        extra['version'] = v.splitlines()[0] if v else ''
    except (OSError, subprocess.TimeoutExpired):
        pass
    tally.emit(extra)
    return 0


if __name__ == '__main__':
    sys.exit(main())
