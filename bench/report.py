#!/usr/bin/python3
"""Turns a bench/run.sh run into OUT.json, OUT.md, OUT-peers.png, OUT-sizes.png.

Inputs: the drivers' JSON lines (raw.jsonl, one per peer, corpus and
repetition, or an error record), the `openssl speed -mr` output, and the
corpora's manifests. Every figure is per CPU-second; each peer is reported
as min / median / max over repetitions, and as ratios to wireseal and to the
physical limit computed within the same repetition (back-to-back ratios are
far steadier than absolute rates on a shared VM).
"""

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time

PEER_ORDER = ['physlimit', 'physlimit-ossl-ed25519', 'wireseal-lib', 'wireseal', 'libopendkim', 'mail-dkim', 'dkimpy',
              'rspamd', 'rspamd-nofilter']
BUCKET_LABELS = ['<8K', '8-32K', '32-128K', '128K-1M', '>=1M']


def mmm(values):
    v = sorted(x for x in values if x is not None)
    if not v:
        return None
    return [v[0], statistics.median(v), v[-1]]


def machine():
    model, flags = '?', []
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name') and model == '?':
                    model = line.split(':', 1)[1].strip()
                if line.startswith('flags') and not flags:
                    flags = line.split(':', 1)[1].split()
    except OSError:
        pass
    keep = ['sha_ni', 'avx2', 'avx512f', 'avx512ifma', 'vaes', 'adx', 'bmi2']
    return {'nproc': os.cpu_count(), 'cpu_model': model, 'kernel': platform.release(),
            'cpu_flags': [f for f in keep if f in flags],
            'openssl': subprocess.run(['openssl', 'version'], capture_output=True, text=True).stdout.strip()}


def parse_speed(path):
    """-> {'rsa2048_verify': [..], 'rsa2048_sign', 'ed25519_verify', 'ed25519_sign',
    'sha256_<bytes>': [bytes/s ...]} lists over repetitions."""
    out = {}
    sizes = []
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith('+F2:'):
                p = line.split(':')
                out.setdefault('rsa%s_sign' % p[2], []).append(float(p[3]))
                out.setdefault('rsa%s_verify' % p[2], []).append(float(p[4]))
            elif line.startswith('+F6:'):
                p = line.split(':')
                out.setdefault('%s_sign' % p[3].lower(), []).append(float(p[4]))
                out.setdefault('%s_verify' % p[3].lower(), []).append(float(p[5]))
            elif line.startswith('+H:'):
                sizes = [int(x) for x in line.split(':')[1:]]
            elif line.startswith('+F:'):
                p = line.split(':')
                for size, val in zip(sizes, p[3:]):
                    out.setdefault('%s_%d' % (p[2], size), []).append(float(val))
    return out


def corpus_stats(root, name):
    path = os.path.join(root, name, 'manifest.tsv')
    st = {'messages': 0, 'header_bytes': 0, 'body_bytes': 0, 'signatures': {}, 'expected_fail': 0,
          'categories': {}}
    if not os.path.exists(path):
        return st
    with open(path) as f:
        next(f)
        for line in f:
            c = line.rstrip('\n').split('\t')
            st['messages'] += 1
            st['header_bytes'] += int(c[3])
            st['body_bytes'] += int(c[4])
            for alg in c[2].split('+'):
                st['signatures'][alg] = st['signatures'].get(alg, 0) + 1
            st['expected_fail'] += c[6] == 'fail'
            st['categories'][c[1]] = st['categories'].get(c[1], 0) + 1
    try:
        with open(os.path.join(root, name, 'params.json')) as f:
            st['params'] = json.load(f)
    except OSError:
        pass
    n = max(st['messages'], 1)
    st['mean_header_bytes'] = round(st['header_bytes'] / n)
    st['mean_body_bytes'] = round(st['body_bytes'] / n)
    st['total_mb'] = round((st['header_bytes'] + st['body_bytes']) / 1e6, 1)
    return st


def formula_limit(st, speed):
    """1 / (bytes/SHA-256 rate + sum over signatures of 1/verify rate), with
    the medians of openssl speed; only for algorithms openssl speed ran."""
    sha = mmm(speed.get('sha256_16384', []))
    if not sha or not st['messages']:
        return None
    per_msg = (st['header_bytes'] + st['body_bytes']) / st['messages'] / sha[1]
    for alg, count in st['signatures'].items():
        rate = mmm(speed.get('%s_verify' % alg, []))
        if rate is None:
            return None
        per_msg += count / st['messages'] / rate[1]
    return round(1 / per_msg, 1)


def fmt(x, digits=0):
    if x is None:
        return 'n/a'
    if digits == 0:
        return '{:,.0f}'.format(x)
    return '{:,.{d}f}'.format(x, d=digits)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--raw', required=True)
    ap.add_argument('--speed', required=True)
    ap.add_argument('--crypto', default=None, help='bench-crypto JSON lines')
    ap.add_argument('--corpus-root', required=True)
    ap.add_argument('--corpora', required=True)
    ap.add_argument('--out', required=True, help='output path prefix (no extension)')
    ap.add_argument('--command', default='make bench')
    ap.add_argument('--cpu', default='1')
    ap.add_argument('--reps', type=int, default=3)
    a = ap.parse_args()

    raw = []
    with open(a.raw) as f:
        for line in f:
            if line.strip():
                raw.append(json.loads(line))
    speed = parse_speed(a.speed)
    corpora = a.corpora.split()
    stats = {c: corpus_stats(a.corpus_root, c) for c in corpora}
    for c in corpora:
        stats[c]['formula_limit_msgs_per_s'] = formula_limit(stats[c], speed)

    ok = [r for r in raw if 'error' not in r and r.get('msgs_per_cpu_s')]
    problems = [r for r in raw if 'error' in r]
    peers = sorted({r['peer'] for r in raw}, key=lambda p: (PEER_ORDER.index(p) if p in PEER_ORDER else 99, p))

    def runs(peer, corpus):
        return [r for r in ok if r['peer'] == peer and r['corpus'] == corpus]

    def rate_in_rep(peer, corpus, rep):
        for r in runs(peer, corpus):
            if r.get('rep') == rep:
                return r['msgs_per_cpu_s']
        return None

    summary = []
    for c in corpora:
        for p in peers:
            rs = runs(p, c)
            errs = [r for r in problems if r['peer'] == p and r['corpus'] == c]
            row = {'corpus': c, 'peer': p, 'runs': len(rs)}
            if not rs and not errs:
                continue
            if not rs:
                row['error'] = errs[0]['error'] if errs else 'no result'
                if errs and errs[0].get('status'):
                    row['status'] = errs[0]['status']
                summary.append(row)
                continue
            row['msgs_per_cpu_s'] = mmm([r['msgs_per_cpu_s'] for r in rs])
            row['mb_per_cpu_s'] = mmm([r['mb_per_cpu_s'] for r in rs])
            last = rs[-1]
            for k in ('messages', 'pass', 'fail', 'other', 'mismatch', 'version'):
                row[k] = last.get(k)
            row['mismatch_examples'] = last.get('mismatch_examples', [])
            for ref, key in (('physlimit', 'ratio_to_physlimit'), ('wireseal', 'ratio_to_wireseal')):
                ratios = []
                for r in rs:
                    base = rate_in_rep(ref, c, r.get('rep'))
                    if base:
                        ratios.append(r['msgs_per_cpu_s'] / base)
                row[key] = mmm(ratios)
            buckets = []
            for i in range(len(BUCKET_LABELS)):
                vals = []
                for r in rs:
                    b = r['buckets'][i]
                    if b['messages'] and b['cpu_s'] > 0:
                        vals.append(b['messages'] / b['cpu_s'])
                buckets.append({'label': BUCKET_LABELS[i], 'messages': last['buckets'][i]['messages'],
                                'msgs_per_cpu_s': mmm(vals)})
            row['buckets'] = buckets
            summary.append(row)

    mach = machine()
    date = time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())
    prims = {k: mmm(v) for k, v in sorted(speed.items())}
    crypto = []
    if a.crypto and os.path.exists(a.crypto):
        with open(a.crypto) as f:
            crypto = [json.loads(l) for l in f if l.strip()]
    doc = {'date': date, 'host': platform.node(), 'machine': mach, 'command': a.command,
           'pinned_cpu': a.cpu, 'repetitions': a.reps, 'openssl_speed': prims,
           'wireseal_crypto': crypto, 'corpora': stats,
           'summary': summary, 'raw': raw}
    with open(a.out + '.json', 'w') as f:
        json.dump(doc, f, indent=1, sort_keys=False)
        f.write('\n')

    # ------------------------------------------------------------ Markdown
    md = []
    md.append('# DKIM verification benchmark, %s' % date)
    md.append('')
    md.append('Command: `%s` (bench/run.sh). Machine: `%s`, %s CPUs (`nproc`), kernel %s, %s; '
              'every measured process pinned with `taskset -c %s`; %d repetitions.' % (
                  a.command, mach['cpu_model'], mach['nproc'], mach['kernel'], mach['openssl'], a.cpu, a.reps))
    md.append('')
    md.append('Rates are **per CPU-second** of the verifying process (min / median / max over repetitions). '
              'Ratios are computed within each repetition against the physical limit and wireseal measured '
              'in the same repetition, then the median is shown; they are steadier than the absolute rates. '
              '"x physical limit" = peer msgs/s / physlimit msgs/s; "x wireseal" = peer msgs/s / wireseal msgs/s.')
    md.append('')
    md.append('## OpenSSL primitives (`openssl speed`, per user-CPU-second)')
    md.append('')
    md.append('| figure | min | median | max |')
    md.append('|---|---|---|---|')
    for k, label, scale, d in (('rsa2048_verify', 'RSA-2048 verify /s', 1, 0),
                               ('rsa2048_sign', 'RSA-2048 sign /s', 1, 0),
                               ('ed25519_verify', 'Ed25519 verify /s', 1, 0),
                               ('ed25519_sign', 'Ed25519 sign /s', 1, 0),
                               ('sha256_1024', 'SHA-256 (EVP), 1 KiB blocks, GB/s', 1e9, 3),
                               ('sha256_16384', 'SHA-256 (EVP), 16 KiB blocks, GB/s', 1e9, 3)):
        v = prims.get(k)
        if v:
            md.append('| %s | %s | %s | %s |' % (label, fmt(v[0] / scale, d), fmt(v[1] / scale, d),
                                                fmt(v[2] / scale, d)))
    md.append('')
    if crypto:
        md.append("## wireseal's crypto backends (`bench/bench-crypto`, per CPU-second, same core, same run)")
        md.append('')
        md.append('| figure | unit | min | median | max |')
        md.append('|---|---|---|---|---|')
        for r in crypto:
            if 'median' in r:
                dg = 0 if r['median'] >= 100 else 3
                md.append('| %s | %s | %s | %s | %s |' % (r['what'], r['unit'], fmt(r['min'], dg),
                                                        fmt(r['median'], dg), fmt(r['max'], dg)))
            else:
                md.append('| %s | %s | %s | | |' % (r.get('what'), r.get('unit', ''), r.get('error', '')))
        md.append('')
    for c in corpora:
        st = stats[c]
        md.append('## Corpus `%s`' % c)
        md.append('')
        sigs = ', '.join('%s %d' % (k, v) for k, v in sorted(st['signatures'].items()))
        md.append('%d messages, %.1f MB; mean header %s B, mean body %s B; signatures: %s; expected to fail: %d; '
                  'generator options: `%s`.' % (
                      st['messages'], st.get('total_mb', 0), fmt(st.get('mean_header_bytes')),
                      fmt(st.get('mean_body_bytes')), sigs, st['expected_fail'],
                      json.dumps(st.get('params', {}), sort_keys=True)))
        if st.get('formula_limit_msgs_per_s'):
            md.append('Physical limit by formula (bytes / SHA-256 rate + 1 / verify rate per signature, '
                      'openssl speed medians): **%s msgs/s**.' % fmt(st['formula_limit_msgs_per_s']))
        md.append('')
        md.append('| peer | msgs/s median (min-max) | MB/s median | pass / fail / other | mismatches | '
                  'x physical limit | x wireseal |')
        md.append('|---|---|---|---|---|---|---|')
        for row in summary:
            if row['corpus'] != c:
                continue
            if 'msgs_per_cpu_s' not in row:
                md.append('| %s | %s | | | | | |' % (row['peer'], row.get('status') or 'error: see below'))
                continue
            m = row['msgs_per_cpu_s']
            rp, rw = row['ratio_to_physlimit'], row['ratio_to_wireseal']
            md.append('| %s | **%s** (%s-%s) | %s | %s / %s / %s | %s | %s | %s |' % (
                row['peer'], fmt(m[1]), fmt(m[0]), fmt(m[2]), fmt(row['mb_per_cpu_s'][1], 1),
                row['pass'], row['fail'], row['other'], row['mismatch'],
                fmt(rp[1], 3) if rp else 'n/a', fmt(rw[1], 3) if rw else 'n/a'))
        md.append('')
        md.append('Per message-size bucket (total message bytes), msgs/s median:')
        md.append('')
        md.append('| peer | ' + ' | '.join(BUCKET_LABELS) + ' |')
        md.append('|---|' + '---|' * len(BUCKET_LABELS))
        for row in summary:
            if row['corpus'] == c and 'buckets' in row:
                md.append('| %s | %s |' % (row['peer'], ' | '.join(
                    '%s (n=%d)' % (fmt(b['msgs_per_cpu_s'][1]) if b['msgs_per_cpu_s'] else '-', b['messages'])
                    for b in row['buckets'])))
        md.append('')
    notes = [row for row in summary if 'msgs_per_cpu_s' not in row]
    odd = [row for row in summary if row.get('mismatch')]
    if notes or odd:
        md.append('## Peers that did not run, and disagreements with the manifest')
        md.append('')
        for row in notes:
            md.append('* `%s` on `%s`: %s' % (row['peer'], row['corpus'],
                                             (row.get('status') + ': ' if row.get('status') else '') + row['error']))
        for row in odd:
            md.append('* `%s` on `%s`: %d messages disagree with the expected result, e.g. %s' % (
                row['peer'], row['corpus'], row['mismatch'], '; '.join(row['mismatch_examples'][:3])))
        md.append('')
    md.append('Plots: `%s-peers.png` (median msgs/s per peer and corpus), `%s-sizes.png` (msgs/s per size '
              'bucket, corpus `%s`).' % (os.path.basename(a.out), os.path.basename(a.out), corpora[0]))
    md.append('')
    with open(a.out + '.md', 'w') as f:
        f.write('\n'.join(md))

    plot(a.out, corpora, peers, summary)
    print('report: %s.{json,md}, %s-peers.png, %s-sizes.png' % (a.out, a.out, a.out), file=sys.stderr)


def plot(out, corpora, peers, summary):
    """Two PNGs through gnuplot; a missing gnuplot is reported, not fatal."""
    scratch = out + '.plotdata'
    measured = [p for p in peers if any(r['peer'] == p and 'msgs_per_cpu_s' in r for r in summary)]
    with open(scratch + '.peers', 'w') as f:
        f.write('peer ' + ' '.join(corpora) + '\n')
        for p in measured:
            vals = []
            for c in corpora:
                r = next((r for r in summary if r['peer'] == p and r['corpus'] == c and 'msgs_per_cpu_s' in r), None)
                vals.append('%.2f' % r['msgs_per_cpu_s'][1] if r else 'NaN')
            f.write('%s %s\n' % (p, ' '.join(vals)))
    with open(scratch + '.sizes', 'w') as f:
        f.write('bucket ' + ' '.join(measured) + '\n')
        for i, label in enumerate(BUCKET_LABELS):
            vals = []
            for p in measured:
                r = next((r for r in summary if r['peer'] == p and r['corpus'] == corpora[0] and 'buckets' in r),
                         None)
                v = r['buckets'][i]['msgs_per_cpu_s'] if r else None
                vals.append('%.2f' % v[1] if v else 'NaN')
            f.write('"%s" %s\n' % (label, ' '.join(vals)))
    gp = """
set terminal pngcairo size 1000,560 noenhanced font ",10"
set datafile missing "NaN"
set output "{o}-peers.png"
set title "DKIM verification throughput per CPU-second (median of repetitions)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set logscale y
set yrange [10:*]
set ylabel "messages / CPU-second (log)"
set grid ytics
set key top right
set xtics rotate by -20
plot for [i=2:{nc}] "{s}.peers" using i:xtic(1) title columnheader(i)
set output "{o}-sizes.png"
set title "Throughput per message-size bucket, corpus {c0} (median)"
unset style
set style data linespoints
set xlabel "total message size"
set key outside right
set xtics norotate
plot for [i=2:{np}] "{s}.sizes" using i:xtic(1) title columnheader(i) lw 2 pt 7
""".format(o=out, s=scratch, nc=len(corpora) + 1, np=len(measured) + 1, c0=corpora[0])
    try:
        r = subprocess.run(['gnuplot'], input=gp, capture_output=True, text=True)
        if r.returncode != 0:
            print('report: gnuplot failed: %s' % r.stderr.strip(), file=sys.stderr)
    except OSError as e:
        print('report: gnuplot not run (%s); install gnuplot-nox' % e, file=sys.stderr)
    for ext in ('.peers', '.sizes'):
        try:
            os.unlink(scratch + ext)
        except OSError:
            pass


if __name__ == '__main__':
    main()
