"""Shared by the Python peer drivers: corpus loading, size buckets, the JSON line.

A corpus is a directory made by bench/gen_corpus.py. Drivers take
`CORPUS_DIR [FILE...]`: with no FILE, every message of the manifest; with
FILEs (names such as 000042.eml, or paths), only those.
"""

import json
import os
import sys

# Message-size buckets (total bytes, header + body) shared with the C and
# Perl drivers and the runner: [lo, hi).
# Messages verified once, untimed, before measuring (as BCORP_WARMUP in C).
WARMUP = 10

BUCKETS = [(0, 8192), (8192, 32768), (32768, 131072), (131072, 1048576), (1048576, 1 << 62)]


def bucket_of(size):
    for i, (lo, hi) in enumerate(BUCKETS):
        if lo <= size < hi:
            return i
    return len(BUCKETS) - 1


def load_manifest(corpus):
    """-> {file name: expected 'pass'|'fail'} (empty when there is no manifest)."""
    out = {}
    path = os.path.join(corpus, 'manifest.tsv')
    if os.path.exists(path):
        with open(path) as f:
            next(f)
            for line in f:
                cols = line.rstrip('\n').split('\t')
                out[cols[0]] = cols[6]
    return out


def message_files(corpus, args):
    """-> list of (name, path) in a stable order."""
    if args:
        names = [os.path.basename(a) for a in args]
    else:
        names = sorted(os.listdir(os.path.join(corpus, 'msgs')))
    return [(n, os.path.join(corpus, 'msgs', n)) for n in names if n.endswith('.eml')]


def load_keys(corpus):
    """-> {b'sel._domainkey.dom': b'v=DKIM1; ...'} from keys.tsv."""
    keys = {}
    with open(os.path.join(corpus, 'keys.tsv'), 'rb') as f:
        for line in f:
            name, _, value = line.rstrip(b'\n').partition(b'\t')
            keys[name.lower()] = value
    return keys


class Tally:
    """Counts results and per-bucket CPU time, then prints the JSON line."""

    def __init__(self, peer, corpus, expected):
        self.peer, self.corpus, self.expected = peer, corpus, expected
        self.counts = {'pass': 0, 'fail': 0, 'other': 0}
        self.mismatch = 0
        self.mismatch_files = []
        self.buckets = [{'lo': lo, 'hi': hi, 'messages': 0, 'bytes': 0, 'cpu_s': 0.0} for lo, hi in BUCKETS]

    def add(self, name, size, result, cpu_s):
        self.counts[result] += 1
        b = self.buckets[bucket_of(size)]
        b['messages'] += 1
        b['bytes'] += size
        b['cpu_s'] += cpu_s
        exp = self.expected.get(name)
        if exp is not None and (result == 'pass') != (exp == 'pass'):
            self.mismatch += 1
            if len(self.mismatch_files) < 5:
                self.mismatch_files.append(name)

    def emit(self, extra=None):
        n = sum(b['messages'] for b in self.buckets)
        nbytes = sum(b['bytes'] for b in self.buckets)
        cpu = sum(b['cpu_s'] for b in self.buckets)
        out = {'peer': self.peer, 'corpus': os.path.basename(os.path.normpath(self.corpus)),
               'messages': n, 'bytes': nbytes, 'cpu_s': round(cpu, 6),
               'msgs_per_cpu_s': round(n / cpu, 2) if cpu > 0 else None,
               'mb_per_cpu_s': round(nbytes / 1e6 / cpu, 3) if cpu > 0 else None,
               'pass': self.counts['pass'], 'fail': self.counts['fail'], 'other': self.counts['other'],
               'mismatch': self.mismatch, 'mismatch_examples': self.mismatch_files,
               'buckets': [dict(b, cpu_s=round(b['cpu_s'], 6)) for b in self.buckets]}
        if extra:
            out.update(extra)
        sys.stdout.write(json.dumps(out) + '\n')
        sys.stdout.flush()
