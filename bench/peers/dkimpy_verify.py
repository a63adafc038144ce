#!/usr/bin/python3
"""dkimpy peer: dkim.DKIM(msg).verify(idx) for every signature, keys from the
corpus's keys.tsv through dnsfunc (no DNS). CPU time is time.process_time()
around each message, files are read beforehand.

Usage: dkimpy_verify.py CORPUS_DIR [FILE...]
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import corpus as cp  # noqa: E402
import dkim  # noqa: E402


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__.strip())
    corpus = sys.argv[1]
    keys = cp.load_keys(corpus)

    def dnsfunc(name, timeout=5):
        # dkimpy asks with a bytes name that ends in a dot.
        return keys.get(name.rstrip(b'.').lower())

    files = cp.message_files(corpus, sys.argv[2:])
    msgs = []
    for name, path in files:
        with open(path, 'rb') as f:
            msgs.append((name, f.read()))
    tally = cp.Tally('dkimpy', corpus, cp.load_manifest(corpus))
    # Warm-up, untimed: lazy imports and first-use initialisation.
    for _, msg in msgs[:cp.WARMUP]:
        try:
            dkim.DKIM(msg).verify(dnsfunc=dnsfunc)
        except dkim.DKIMException:
            pass
    for name, msg in msgs:
        t0 = time.process_time()
        passed = False
        failed = False
        try:
            d = dkim.DKIM(msg, minkey=1024)
            nsig = sum(1 for k, _ in d.headers if k.lower() == b'dkim-signature')
            for i in range(nsig):
                try:
                    if d.verify(idx=i, dnsfunc=dnsfunc):
                        passed = True
                        break
                    failed = True
                except dkim.DKIMException:
                    failed = True
        except dkim.DKIMException:
            failed = True
        cpu = time.process_time() - t0
        tally.add(name, len(msg), 'pass' if passed else ('fail' if failed else 'other'), cpu)
    tally.emit({'version': 'dkimpy ' + getattr(dkim, '__version__', '?')})


if __name__ == '__main__':
    main()
