#!/usr/bin/python3
"""Turns a bench/run.sh run into OUT.json, OUT.md and PNG plots: OUT-peers.png,
OUT-sizes.png (throughput vs message size), OUT-cores.png (1 vs 2 cores),
OUT-latency.png (per-message verify time percentiles), OUT-sessions.png
(replay cost vs concurrent sessions).

Inputs: the drivers' JSON lines (raw.jsonl, one per peer, corpus and
repetition, or an error record), the `openssl speed -mr` output, and the
corpora's manifests. Every figure is per CPU-second; each peer is reported
as min / median / max over repetitions, and as ratios to wireseal and to the
physical limit computed within the same repetition (back-to-back ratios are
far steadier than absolute rates on a shared VM).

Records of the scaling steps (peer "wireseal-lib-mt", "replay", "pcap-read")
are not peers: they get their own sections. --replay-json is what
`bench/replay.sh --json` wrote, shown as it is; --replay-note the reason it
was not measured.
"""

import math

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
# records of the scaling steps, not peers
SCALING = {'wireseal-lib-mt', 'replay', 'pcap-read'}
PCTS = ['p50', 'p90', 'p99', 'p999']


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
    try:
        # 1/5/15-minute load when the report is written: the 15-minute
        # figure covers most of a run and says how shared the CPUs were
        with open('/proc/loadavg') as f:
            load = ' '.join(f.read().split()[:3])
    except OSError:
        load = '?'
    return {'nproc': os.cpu_count(), 'cpu_model': model, 'kernel': platform.release(), 'loadavg_at_end': load,
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
    ap.add_argument('--replay-json', default=None, help='what bench/replay.sh --json wrote')
    ap.add_argument('--replay-note', default=None, help='file with the reason replay.sh was not measured')
    a = ap.parse_args()

    all_raw = []
    with open(a.raw) as f:
        for line in f:
            if line.strip():
                all_raw.append(json.loads(line))
    raw = [r for r in all_raw if r.get('peer') not in SCALING]
    scal = [r for r in all_raw if r.get('peer') in SCALING]
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
            # the CLI: its figure is the steady state; the per-run one (a
            # one-file run's start-up subtracted) is kept beside it
            old = []
            for r in rs:
                base = rate_in_rep('physlimit', c, r.get('rep'))
                if base and r.get('msgs_per_cpu_s_startup_subtracted'):
                    old.append(r['msgs_per_cpu_s_startup_subtracted'] / base)
            if old:
                row['startup_subtracted_ratio_to_physlimit'] = mmm(old)
                row['method'] = last.get('method')
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
    scaling = scaling_summary(summary, raw, scal, corpora)
    scaling['replay_sh'] = replay_sh(a.replay_json, a.replay_note)
    doc = {'date': date, 'host': platform.node(), 'machine': mach, 'command': a.command,
           'pinned_cpu': a.cpu, 'repetitions': a.reps, 'openssl_speed': prims,
           'wireseal_crypto': crypto, 'corpora': stats,
           'summary': summary, 'scaling': scaling, 'raw': all_raw}
    with open(a.out + '.json', 'w') as f:
        json.dump(doc, f, indent=1, sort_keys=False)
        f.write('\n')

    # ------------------------------------------------------------ Markdown
    md = []
    md.append('# DKIM verification benchmark, %s' % date)
    md.append('')
    md.append('Command: `%s` (bench/run.sh). Machine: `%s`, %s CPUs (`nproc`), kernel %s, %s; '
              'every measured process pinned with `taskset -c %s`; %d repetitions. Load average (1/5/15 min) '
              'when the report was written: %s.' % (
                  a.command, mach['cpu_model'], mach['nproc'], mach['kernel'], mach['openssl'], a.cpu, a.reps,
                  mach['loadavg_at_end']))
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
        for row in summary:
            if row['corpus'] == c and row.get('startup_subtracted_ratio_to_physlimit'):
                md.append('')
                md.append('`%s` is measured in its steady state (%s: start-up, first touches and first key '
                          'lookups cancel out); a run\'s start-up subtracted instead (the method before '
                          '2026-11-29 16:00), it is %s of the physical limit.' % (
                              row['peer'], row.get('method'),
                              fmt(row['startup_subtracted_ratio_to_physlimit'][1], 3)))
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
    md += scaling_md(scaling, corpora)
    b = os.path.basename(a.out)
    md.append('Plots: `%s-peers.png` (median msgs/s per peer and corpus), `%s-sizes.png` (msgs/s per size '
              'bucket, corpus `%s`), `%s-latency.png` (per-message verify time percentiles), `%s-cores.png` '
              '(1 vs 2 cores), `%s-sessions.png` (replay cost vs concurrent sessions).' % (
                  b, b, corpora[0], b, b, b))
    md.append('')
    with open(a.out + '.md', 'w') as f:
        f.write('\n'.join(md))

    plot(a.out, corpora, peers, summary)
    plot_scaling(a.out, scaling, corpora)
    print('report: %s.{json,md}, %s-{peers,sizes,latency,cores,sessions}.png' % (a.out, a.out), file=sys.stderr)


def fit(xs, ys):
    """Least squares y = a + b x -> (a, b), or None with under 2 distinct x."""
    n = len(xs)
    if n < 2:
        return None
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return None
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    return my - b * mx, b


def scaling_summary(summary, raw, scal, corpora):
    """Latency percentiles and size slope (wireseal-lib), 1 vs 2 cores
    (wireseal-lib-mt, replay), replay beside the raw read rate, and replay
    cost against concurrent sessions. Each figure: [min, median, max] over
    repetitions; ratios are taken within a repetition."""
    out = {'latency': {}, 'size_fit': {}, 'cores': {}, 'replay': [], 'sessions': [], 'errors': []}
    for r in scal:
        if 'error' in r:
            out['errors'].append({k: r.get(k) for k in ('peer', 'corpus', 'workers', 'verify', 'threads', 'error')})
    good = [r for r in scal if 'error' not in r]
    for c in corpora:
        lib = [r for r in raw if r.get('peer') == 'wireseal-lib' and r.get('corpus') == c and 'error' not in r]
        if lib and all('latency_us' in r for r in lib):
            out['latency'][c] = {kind: {p: mmm([r[kind][p] for r in lib]) for p in PCTS + ['max']}
                                 for kind in ('latency_us', 'cpu_us')}
            out['latency'][c]['samples'] = lib[-1]['latency_us']['samples']
        if lib and all('size_fit' in r for r in lib):
            out['size_fit'][c] = {k: mmm([r['size_fit'][k] for r in lib]) for k in ('intercept_us', 'ns_per_byte', 'r2')}
    # in-process verifier, 1 and 2 threads
    mt = [r for r in good if r['peer'] == 'wireseal-lib-mt']
    if mt:
        row = {'corpus': mt[0].get('corpus', corpora[0])}
        for th in (1, 2):
            row['threads_%d_msgs_per_s' % th] = mmm([r['msgs_per_wall_s'] for r in mt if r['threads'] == th])
        sp = []
        for rep in sorted({r['rep'] for r in mt}):
            one = [r for r in mt if r['rep'] == rep and r['threads'] == 1]
            two = [r for r in mt if r['rep'] == rep and r['threads'] == 2]
            if one and two and one[0]['msgs_per_wall_s']:
                sp.append(two[0]['msgs_per_wall_s'] / one[0]['msgs_per_wall_s'])
        row['speedup_2_over_1'] = mmm(sp)
        out['cores']['wireseal-lib'] = row
    # replay on the corpus capture, with the raw read rate of the same file
    reads = [r for r in good if r['peer'] == 'pcap-read']
    for cap in sorted({r['capture'] for r in good if r['peer'] == 'replay' and r['capture'].startswith('corpus-')}):
        rd = [r for r in reads if r['capture'] == cap]
        for w in (1, 2):
            for verify in (True, False):
                rs = [r for r in good if r['peer'] == 'replay' and r['capture'] == cap and r['workers'] == w
                      and r['verify'] == verify]
                if not rs:
                    continue
                ratio = []
                for r in rs:
                    base = [x for x in rd if x.get('rep') == r.get('rep')]
                    if base and base[0]['packets_per_s']:
                        ratio.append(r['packets_per_s'] / base[0]['packets_per_s'])
                row = {'capture': cap, 'workers': w, 'verify': verify, 'messages': rs[-1].get('messages'),
                       'packets': rs[-1].get('packets'), 'gaps': rs[-1].get('gaps'),
                       'capture_bytes': rs[-1].get('capture_bytes')}
                for k in ('packets_per_s', 'gbit_per_s', 'msgs_per_s', 'packets_per_s_per_worker',
                          'gbit_per_s_per_worker', 'msgs_per_s_per_worker'):
                    row[k] = mmm([r.get(k) for r in rs])
                row['ratio_to_raw_read'] = mmm(ratio)
                out['replay'].append(row)
        if rd:
            out['raw_read'] = {'capture': cap, 'packets_per_s': mmm([r['packets_per_s'] for r in rd]),
                               'gbit_per_s': mmm([r['gbit_per_s'] for r in rd])}
        for verify in (True, False):
            sp = []
            for rep in sorted({r['rep'] for r in good if r['peer'] == 'replay'}):
                one = [r for r in good if r['peer'] == 'replay' and r['capture'] == cap and r['rep'] == rep
                       and r['workers'] == 1 and r['verify'] == verify]
                two = [r for r in good if r['peer'] == 'replay' and r['capture'] == cap and r['rep'] == rep
                       and r['workers'] == 2 and r['verify'] == verify]
                if one and two and one[0].get('msgs_per_s'):
                    sp.append(two[0]['msgs_per_s'] / one[0]['msgs_per_s'])
            if sp:
                out['cores']['replay-%s' % ('verify' if verify else 'no-verify')] = {
                    'capture': cap, 'speedup_2_over_1': mmm(sp),
                    'workers_1_msgs_per_s': mmm([r['msgs_per_s'] for r in good if r['peer'] == 'replay'
                                                 and r['capture'] == cap and r['workers'] == 1
                                                 and r['verify'] == verify]),
                    'workers_2_msgs_per_s': mmm([r['msgs_per_s'] for r in good if r['peer'] == 'replay'
                                                 and r['capture'] == cap and r['workers'] == 2
                                                 and r['verify'] == verify])}
    # cost against concurrent sessions: same messages, 1 worker
    ks = sorted({int(r['capture'].split('-', 1)[1]) for r in good
                 if r['peer'] == 'replay' and r['capture'].startswith('sessions-')})
    for verify in (False, True):
        for k in ks:
            rs = [r for r in good if r['peer'] == 'replay' and r['capture'] == 'sessions-%d' % k
                  and r['verify'] == verify]
            if not rs:
                continue
            out['sessions'].append({'sessions': k, 'verify': verify, 'runs': len(rs),
                                    'messages': rs[-1].get('messages'),
                                    'msgs_per_s': mmm([r['msgs_per_s'] for r in rs]),
                                    'us_per_msg': mmm([r['us_per_msg_core'] for r in rs]),
                                    'packets_per_s': mmm([r['packets_per_s'] for r in rs])})
        pts = [(math.log10(x['sessions']), x['us_per_msg'][1]) for x in out['sessions']
               if x['us_per_msg'] and x['verify'] == verify]
        f = fit([p[0] for p in pts], [p[1] for p in pts])
        if f:
            out['sessions_fit_%s' % ('verify' if verify else 'no_verify')] = {
                'us_per_msg_at_1_session': round(f[0], 2), 'us_per_msg_per_10x_sessions': round(f[1], 2)}
    return out


def replay_sh(path, note):
    if path and os.path.exists(path) and os.path.getsize(path) > 0:
        try:
            with open(path) as f:
                return {'measured': True, 'data': json.load(f)}
        except ValueError as e:
            return {'measured': False, 'reason': 'bench/replay.sh --json wrote invalid JSON: %s' % e}
    reason = 'no reason recorded'
    if note and os.path.exists(note):
        with open(note) as f:
            reason = f.read().strip() or reason
    return {'measured': False, 'reason': reason}


def flatten(d, prefix=''):
    """{'a': {'b': 1}} -> {'a.b': 1}; lists stay as they are."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, prefix + k + '.'))
        else:
            out[prefix + k] = v
    return out


def flat_rows(data):
    """replay.sh's JSON as table rows: a list of objects, or the lists of
    objects inside an object (nested objects flattened to a.b keys), or the
    object itself."""
    if isinstance(data, list):
        return [flatten(d) for d in data if isinstance(d, dict)]
    if isinstance(data, dict):
        rows = []
        for k, v in data.items():
            if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
                rows += [dict({'section': k}, **flatten(x)) for x in v]
        scalars = {k: v for k, v in flatten(data).items() if not isinstance(v, list)}
        return ([scalars] if scalars else []) + rows
    return []


def cell(v):
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int):
        return fmt(v)
    if isinstance(v, float):
        return fmt(v, 0 if abs(v) >= 100 else 3)
    if isinstance(v, (dict, list)):
        return '`%s`' % json.dumps(v)[:80]
    return str(v)


def m3(v, d=0):
    return '%s (%s-%s)' % (fmt(v[1], d), fmt(v[0], d), fmt(v[2], d)) if v else 'n/a'


def scaling_md(sc, corpora):
    nproc = os.cpu_count() or 1
    md = []
    if sc['latency'] or sc['size_fit']:
        md.append('## Per-message verify time (bench-wireseal-lib, clock_gettime around each message)')
        md.append('')
        md.append('Wall (CLOCK_MONOTONIC) and thread CPU time per message, in microseconds; median over '
                  'repetitions of each percentile. The timed loop runs the corpus twice.')
        md.append('')
        md.append('| corpus | clock | p50 | p90 | p99 | p99.9 | max | samples |')
        md.append('|---|---|---|---|---|---|---|---|')
        for c in corpora:
            lat = sc['latency'].get(c)
            if not lat:
                continue
            for kind, label in (('latency_us', 'wall'), ('cpu_us', 'CPU')):
                md.append('| %s | %s | %s | %s |' % (c, label, ' | '.join(
                    fmt(lat[kind][p][1], 1) if lat[kind][p] else 'n/a' for p in PCTS + ['max']), lat['samples']))
        md.append('')
        md.append('Cost against message size (least squares of per-message CPU time on message bytes):')
        md.append('')
        md.append('| corpus | fixed cost per message, us | slope, ns per byte | r^2 |')
        md.append('|---|---|---|---|')
        for c in corpora:
            f = sc['size_fit'].get(c)
            if f:
                md.append('| %s | %s | %s | %s |' % (c, m3(f['intercept_us'], 1), m3(f['ns_per_byte'], 3),
                                                    fmt(f['r2'][1], 3) if f['r2'] else 'n/a'))
        md.append('')
    md.append('## Cores: 1 vs 2')
    md.append('')
    if sc['cores']:
        md.append('Wall-clock rates (2 cores cannot be CPU-time figures); speed-up = 2-core rate / 1-core rate '
                  'within a repetition. Other work on the same 2 vCPUs hits a 2-core run hardest. '
                  '`wireseal replay` runs its reader on lcore 0 (CPU 0) and worker i on CPU i mod nproc: on a '
                  'machine with %s CPUs, %s' % (nproc, 'its 2-worker run puts the second worker on the reader\'s CPU '
                                                '(3 busy-polling lcores on 2 CPUs), so that row measures '
                                                'oversubscription, not scaling.' if nproc <= 2 else
                                                'every lcore has a CPU of its own.'))
        md.append('')
        md.append('| what | 1 core msgs/s | 2 cores msgs/s | speed-up |')
        md.append('|---|---|---|---|')
        lib = sc['cores'].get('wireseal-lib')
        if lib:
            md.append('| in-process verifier, threads (`%s`) | %s | %s | %s |' % (
                lib['corpus'], m3(lib['threads_1_msgs_per_s']), m3(lib['threads_2_msgs_per_s']),
                m3(lib['speedup_2_over_1'], 2)))
        for k in ('replay-verify', 'replay-no-verify'):
            r = sc['cores'].get(k)
            if r:
                md.append('| `wireseal replay` %s, workers (`%s`) | %s | %s | %s |' % (
                    k.split('-', 1)[1], r['capture'], m3(r['workers_1_msgs_per_s']), m3(r['workers_2_msgs_per_s']),
                    m3(r['speedup_2_over_1'], 2)))
    else:
        md.append('Not measured (no scaling records; BENCH_REPLAY=0, or see the errors below).')
    md.append('')
    md.append('## `wireseal replay` on a capture of the corpus')
    md.append('')
    if sc['replay']:
        rr = sc.get('raw_read')
        r0 = sc['replay'][0]
        md.append('Capture `%s`: %s bytes, %s packets, %s messages (tests/tools/gen_smtp_pcap.py streaming mode: '
                  '100 concurrent sessions of 5 pipelined messages, every second one IPv6, 1 %% of client '
                  'segments reordered). Rates are wall time over the span from the first to the last packet '
                  '(EAL start excluded), as replay prints them; "per worker" divides by the worker count.' % (
                      r0['capture'], fmt(r0.get('capture_bytes')), fmt(r0.get('packets')), fmt(r0.get('messages'))))
        if rr:
            md.append('')
            md.append('Raw read rate of the same file (libpcap, `bench-pcap-read`, pinned): **%s packets/s, %s '
                      'Gbit/s**.' % (m3(rr['packets_per_s']), m3(rr['gbit_per_s'], 3)))
        md.append('')
        md.append('| workers | verify | packets/s | Gbit/s | messages/s | per worker: packets/s | Gbit/s | '
                  'messages/s | x raw read | gaps |')
        md.append('|---|---|---|---|---|---|---|---|---|---|')
        for r in sc['replay']:
            md.append('| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |' % (
                r['workers'], 'on' if r['verify'] else 'off', m3(r['packets_per_s']), m3(r['gbit_per_s'], 3),
                m3(r['msgs_per_s']), fmt(r['packets_per_s_per_worker'][1]),
                fmt(r['gbit_per_s_per_worker'][1], 3), fmt(r['msgs_per_s_per_worker'][1]),
                fmt(r['ratio_to_raw_read'][1], 3) if r['ratio_to_raw_read'] else 'n/a', r.get('gaps')))
    else:
        md.append('Not measured (see the errors below).')
    md.append('')
    if sc['sessions']:
        md.append('## Replay cost against concurrent sessions')
        md.append('')
        md.append('The bundled sample messages (RSA-2048 and Ed25519, a few KB each), one message per pipelined '
                  'session, the same messages in the same order, with at most K sessions open at once and their '
                  'packets interleaved at random; 1 worker. Verification off: the dataplane\'s own cost (flow '
                  'table, reassembly, SMTP, message streaming), every repetition; on: one run.')
        md.append('')
        md.append('| concurrent sessions | verify | runs | messages | messages/s | us per message | packets/s |')
        md.append('|---|---|---|---|---|---|---|')
        for r in sc['sessions']:
            md.append('| %s | %s | %d | %s | %s | %s | %s |' % (
                fmt(r['sessions']), 'on' if r['verify'] else 'off', r['runs'], fmt(r['messages']),
                m3(r['msgs_per_s']), m3(r['us_per_msg'], 1), m3(r['packets_per_s'])))
        md.append('')
        for key, label in (('sessions_fit_no_verify', 'verification off'), ('sessions_fit_verify', 'verification on')):
            f = sc.get(key)
            if f:
                md.append('* Slope, %s (least squares on the medians): **%s us per message per 10x concurrent '
                          'sessions** (%s us per message extrapolated to 1 session).' % (
                              label, fmt(f['us_per_msg_per_10x_sessions'], 2), fmt(f['us_per_msg_at_1_session'], 1)))
        md.append('')
    md.append('## bench/replay.sh')
    md.append('')
    rs = sc['replay_sh']
    if rs.get('measured') and isinstance(rs['data'], dict) and 'targets' in rs['data']:
        # the dataplane targets first, then the per-mode rates
        d = rs['data']
        md.append('`bench/replay.sh --json` (its own capture: corpus `%s` x %s, 1 worker core; '
                  'the raw JSON is kept in the results JSON):' % (d.get('corpus'), d.get('capture_repeat')))
        md.append('')
        md.append('| target | want | got | met | how |')
        md.append('|---|---|---|---|---|')
        for name, t in d['targets'].items():
            md.append('| %s | %s | %s | %s | %s |' % (name, cell(t.get('want')), cell(t.get('got')),
                                                     'yes' if t.get('met') else '**no**', t.get('what', '')))
        md.append('')
        if isinstance(d.get('summary'), list):
            md.append('| workers | verify | mode | per worker core: packets/s | Gbit/s | messages/s |')
            md.append('|---|---|---|---|---|---|')
            for r in d['summary']:
                pw = r.get('per_worker_core', {})
                md.append('| %s | %s | %s | %s | %s | %s |' % (
                    r.get('workers'), 'on' if r.get('verify') else 'off', r.get('mode'),
                    cell(pw.get('packets_per_s')), cell(pw.get('gbit_per_s')), cell(pw.get('messages_per_s'))))
            md.append('')
        pr = d.get('pcap_read') or {}
        if pr:
            md.append('Raw read rate of that capture: %s packets/s, %s Gbit/s; in-process library %s of the '
                      'physical limit in the same run.' % (cell(pr.get('packets_per_s')), cell(pr.get('gbit_per_s')),
                                                           cell(d.get('wireseal_lib_vs_physlimit'))))
    elif rs.get('measured'):
        rows = flat_rows(rs['data'])
        keys = []
        for r in rows:
            keys += [k for k in r if k not in keys]
        if rows and keys:
            md.append('`bench/replay.sh --json` (its own capture of the sample messages; figures as it reports them):')
            md.append('')
            md.append('| ' + ' | '.join(keys) + ' |')
            md.append('|' + '---|' * len(keys))
            for r in rows:
                md.append('| ' + ' | '.join(cell(r.get(k, '')) for k in keys) + ' |')
        else:
            md.append('`bench/replay.sh --json`: `%s`' % json.dumps(rs['data'])[:400])
    else:
        md.append('Not measured: %s' % rs.get('reason'))
    md.append('')
    if sc['errors']:
        md.append('## Scaling steps that failed')
        md.append('')
        for e in sc['errors']:
            md.append('* `%s` on `%s`%s: %s' % (e['peer'], e['corpus'],
                                               ' (workers %s)' % e['workers'] if e.get('workers') else '',
                                               e['error']))
        md.append('')
    return md


def plot_scaling(out, sc, corpora):
    """-latency.png, -cores.png, -sessions.png through gnuplot."""
    scratch = out + '.plotdata'
    parts = []
    files = []
    if sc['latency']:
        with open(scratch + '.lat', 'w') as f:
            cs = [c for c in corpora if c in sc['latency']]
            f.write('pct ' + ' '.join('%s-wall %s-cpu' % (c, c) for c in cs) + '\n')
            for p in PCTS + ['max']:
                vals = []
                for c in cs:
                    for kind in ('latency_us', 'cpu_us'):
                        v = sc['latency'][c][kind][p]
                        vals.append('%.3f' % v[1] if v else 'NaN')
                f.write('%s %s\n' % (p.replace('p999', 'p99.9'), ' '.join(vals)))
        files.append(scratch + '.lat')
        parts.append("""
set output "{o}-latency.png"
set title "Per-message verify time, bench-wireseal-lib (median of repetitions)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set logscale y
set ylabel "microseconds (log)"
set grid ytics
set key top left
plot for [i=2:{n}] "{s}.lat" using i:xtic(1) title columnheader(i)
""".format(o=out, s=scratch, n=2 * len(cs) + 1))
    if sc['cores']:
        with open(scratch + '.cores', 'w') as f:
            f.write('# what speedup\n')
            for k, r in sorted(sc['cores'].items()):
                v = r.get('speedup_2_over_1')
                f.write('"%s" %s\n' % (k, '%.3f' % v[1] if v else 'NaN'))
        files.append(scratch + '.cores')
        parts.append("""
set output "{o}-cores.png"
set title "2 cores vs 1: throughput ratio (median of repetitions; 2.0 = linear)"
set style data histograms
set style fill solid 0.85 border -1
unset logscale y
set yrange [0:2.2]
set ylabel "rate with 2 cores / rate with 1"
set grid ytics
set key off
plot "{s}.cores" using 2:xtic(1), 2 with lines lw 2 dt 2 notitle
""".format(o=out, s=scratch))
    if sc['sessions']:
        # two data blocks: verification off (index 0), on (index 1)
        with open(scratch + '.sess', 'w') as f:
            for verify in (False, True):
                f.write('# verify %s\n' % verify)
                rows = [r for r in sc['sessions'] if r['verify'] == verify and r['us_per_msg']]
                for r in rows:
                    f.write('%d %.3f %.3f %.3f\n' % (r['sessions'], r['us_per_msg'][1], r['us_per_msg'][0],
                                                    r['us_per_msg'][2]))
                if not rows:
                    f.write('NaN NaN NaN NaN\n')
                f.write('\n\n')
        files.append(scratch + '.sess')
        parts.append("""
set output "{o}-sessions.png"
set title "wireseal replay: cost per message vs concurrent sessions (1 worker, median, min-max)"
unset style
set style data linespoints
set logscale x
unset logscale y
set yrange [0:*]
set xlabel "concurrent sessions (log)"
set ylabel "microseconds per message (wall, log)"
set logscale y
set yrange [*:*]
set grid
set key top left
plot "{s}.sess" index 0 using 1:2:3:4 with yerrorlines lw 2 pt 7 title "verification off", \
     "{s}.sess" index 1 using 1:2:3:4 with yerrorlines lw 2 pt 5 title "verification on"
""".format(o=out, s=scratch))
    if parts:
        gp = 'set terminal pngcairo size 1000,560 noenhanced font ",10"\nset datafile missing "NaN"\n' + ''.join(parts)
        try:
            r = subprocess.run(['gnuplot'], input=gp, capture_output=True, text=True)
            if r.returncode != 0:
                print('report: gnuplot failed: %s' % r.stderr.strip(), file=sys.stderr)
        except OSError as e:
            print('report: gnuplot not run (%s); install gnuplot-nox' % e, file=sys.stderr)
    for fn in files:
        try:
            os.unlink(fn)
        except OSError:
            pass


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
