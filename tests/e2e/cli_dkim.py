#!/usr/bin/python3
"""`wireseal verify` / `wireseal sign` as a user meets them.

- bad input: an unreadable file, a malformed message, an empty file and a bad
  key file each give one clear line on stderr naming the file and a non-zero
  exit, and the other files are still processed (JSON: one object per file);
- DNS: keys through a real nsd (--dns-server); a key name sent to a server
  that never answers gives temperror within the timeout, never a hang;
- the bundled sample verifies as its README says.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wstest  # noqa: E402

T = wstest.Tally("cli-dkim")
SAMPLE = os.path.join(wstest.SOURCE, "tests", "data", "sample")
ZONE = os.path.join(SAMPLE, "zone.db")


def run(args, **kw):
    return subprocess.run([wstest.WIRESEAL] + args, capture_output=True, text=True, **kw)


def outer():
    d = tempfile.mkdtemp(prefix="ws-cli-")
    good = os.path.join(SAMPLE, "01-rsa-dkimpy.eml")
    bad = os.path.join(d, "bad.eml")
    with open(bad, "w") as f:
        f.write("From: a@b\r\nthis line has no colon\r\n\r\nbody\r\n")
    empty = os.path.join(d, "empty.eml")
    open(empty, "w").close()
    missing = os.path.join(d, "missing.eml")

    p = run(["verify", "--json", "--zone", ZONE, good, missing, bad, empty, good])
    T.check(p.returncode == 1, "exit status with bad files: %d" % p.returncode)
    lines = [json.loads(l) for l in p.stdout.splitlines()]
    T.check([o["file"] for o in lines] == [good, missing, bad, empty, good], "one object per file, in order")
    T.check(lines[0]["dkim"][0]["result"] == "pass" and lines[4]["dkim"][0]["result"] == "pass",
            "good files still verified around the bad ones")
    errs = p.stderr.splitlines()
    T.check(len(errs) == 3, "three error lines: %r" % errs)
    T.check(any(missing in e and "No such file" in e for e in errs), "missing file named: %r" % errs)
    T.check(any(bad in e and "malformed message" in e and "colon" in e for e in errs), "malformed named")
    T.check(any(empty in e and "empty" in e for e in errs), "empty file named")
    T.check("error" in lines[2] and "malformed" in lines[2]["error"], "JSON error object")

    p = run(["verify", "--zone", ZONE, good])
    T.check(p.returncode == 0 and p.stdout.startswith("Authentication-Results: ") and "dkim=pass" in p.stdout,
            "default output is one Authentication-Results header: %r" % p.stdout)

    p = run(["verify", "--zone", os.path.join(d, "nozone"), good])
    T.check(p.returncode != 0 and "nozone" in p.stderr, "unreadable zone file named: %r" % p.stderr)

    keyf = os.path.join(d, "bad.pem")
    with open(keyf, "w") as f:
        f.write("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    p = run(["sign", "--key", keyf, "--domain", "x.example", "--selector", "s", good])
    T.check(p.returncode == 1 and keyf in p.stderr and "bad key file" in p.stderr and not p.stdout,
            "bad key file: %r" % p.stderr)
    p = run(["sign", "--key", os.path.join(SAMPLE, "rsa2048.pem"), "--domain", "x.example",
             "--selector", "s", missing])
    T.check(p.returncode == 1 and missing in p.stderr, "sign: missing message named")
    nofrom = os.path.join(d, "nofrom.eml")
    with open(nofrom, "w") as f:
        f.write("To: a@b\r\nSubject: s\r\n\r\nx\r\n")
    p = run(["sign", "--key", os.path.join(SAMPLE, "rsa2048.pem"), "--domain", "x.example",
             "--selector", "s", nofrom])
    T.check(p.returncode == 1 and "From" in p.stderr, "sign refuses a message without From: %r" % p.stderr)

    # the bundled sample: what `make run` shows
    files = sorted(f for f in os.listdir(SAMPLE) if f.endswith(".eml"))
    p = run(["verify", "--json", "--zone", ZONE] + [os.path.join(SAMPLE, f) for f in files])
    got = {os.path.basename(json.loads(l)["file"]): [s["result"] for s in json.loads(l)["dkim"]]
           for l in p.stdout.splitlines()}
    want = {"01-rsa-dkimpy.eml": ["pass"], "02-ed25519-and-rsa.eml": ["pass", "pass"],
            "03-tampered.eml": ["fail"], "04-revoked-key.eml": ["permerror"],
            "05-wireseal-ed25519.eml": ["pass"], "06-arc-mailing-list.eml": ["fail"]}
    T.check(got == want, "sample verdicts: %r" % got)

    # --streams N (several files at once, bodies hashed on SHA-256 lanes):
    # the same bytes on stdout and stderr, in argument order, for any N and
    # for the default (16 streams where AVX-512 is); the list is longer than
    # the output window (VERIFY_WINDOW = 2048 files) so a second window
    # starts; 1 and VERIFY_STREAMS_MAX (64) accepted, 0 and 65 not. A 300 KB
    # signed message (several read rounds, started first as a large file)
    # first in each group, so the small files after it finish first and the
    # ring must hold them back
    big_src = os.path.join(d, "big-src.eml")
    with open(big_src, "w") as f:
        f.write("From: a@sample.example\r\nTo: b@example.org\r\nSubject: big\r\n\r\n")
        f.write("".join("line %06d of a long body, with  some   spaces \r\n" % i for i in range(6000)))
    p = run(["sign", "--key", os.path.join(SAMPLE, "rsa2048.pem"), "--domain", "sample.example",
             "--selector", "mail2026", big_src])
    big = os.path.join(d, "big.eml")
    with open(big, "w") as f:
        f.write(p.stdout)
    # large files that fail on the streams: a malformed header before a
    # 100 KB body, a header field past its size limit (64 KiB)
    bigbad = os.path.join(d, "big-bad.eml")
    with open(bigbad, "w") as f:
        f.write("From: a@b\r\nthis line has no colon\r\n\r\n" + "x" * 100 + "\r\n" * 1000 + "y" * 100000)
    bighdr = os.path.join(d, "big-header.eml")
    with open(bighdr, "w") as f:
        f.write("From: a@b\r\nX-Pad: " + "p" * 70000 + "\r\nTo: c@d\r\n\r\n" + "z" * 40000)
    many = ([big] + [os.path.join(SAMPLE, f) for f in files] + [missing, bad, empty]) * 35
    many += [good] * (2100 - len(many)) + [big, bigbad, missing, bighdr, good]
    for fmt in (["--json"], []):
        base = run(["verify", "--streams", "1", "--zone", ZONE, "--now", "1800000000", "--authserv-id", "x"]
                   + fmt + many)
        T.check(base.returncode == 1 and len(base.stderr.splitlines()) == 3 * 35 + 3,
                "--streams 1 reference run (%s): exit %d" % (fmt, base.returncode))
        if fmt:
            T.check(json.loads(base.stdout.splitlines()[0])["dkim"][0]["result"] == "pass",
                    "the 300 KB message verifies")
        for n in ("2", "7", "64", None):
            p = run(["verify"] + (["--streams", n] if n else []) + ["--zone", ZONE, "--now", "1800000000",
                     "--authserv-id", "x"] + fmt + many)
            T.check(p.returncode == base.returncode and p.stdout == base.stdout and p.stderr == base.stderr,
                    "--streams %s %s: output identical to one stream" % (n, fmt))
    p = run(["verify", "--json", "--streams", "3", "--zone", ZONE] + [good, missing, good])
    merged = subprocess.run([wstest.WIRESEAL, "verify", "--json", "--streams", "3", "--zone", ZONE,
                             good, missing, good], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    order = [("error" if l.startswith("wireseal verify:") else json.loads(l).get("error", "ok"))
             for l in merged.stdout.splitlines()]
    T.check(order[0] == "ok" and order[1] == "error" and order[3] == "ok",
            "2>&1: the error line comes after the file before it: %r" % order)
    # files wait in groups for their signature batch (VERIFY_SIG_BATCH):
    # an error line still follows exactly the files before it
    for n in (["--streams", "1"], []):
        merged = subprocess.run([wstest.WIRESEAL, "verify", "--json", "--zone", ZONE] + n +
                                [good] * 5 + [missing] + [good] * 3 + [bad] + [good] * 20,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        order = ["E" if l.startswith("wireseal verify:") else
                 ("e" if "error" in json.loads(l) else "o") for l in merged.stdout.splitlines()]
        T.check("".join(order) == "o" * 5 + "Ee" + "o" * 3 + "Ee" + "o" * 20,
                "2>&1 %s: error lines in place among batched files: %s" % (n, "".join(order)))
    for n in ("0", "65", "x", ""):
        p = run(["verify", "--streams", n, "--zone", ZONE, good])
        T.check(p.returncode == 2 and "--streams" in p.stderr, "--streams %r refused: %r" % (n, p.stderr))

    # real DNS: keys from nsd; one name goes to a server that never answers
    zone = os.path.join(d, "sample.zone")
    with open(ZONE) as src, open(zone, "w") as dst:
        dst.write("$ORIGIN sample.example.\n@ 300 IN SOA ns.sample.example. admin.sample.example. 1 3600 600 86400 300\n"
                  "@ 300 IN NS ns.sample.example.\nns 300 IN A 127.0.0.1\n")
        dst.write(src.read())
    env = dict(os.environ, WS_CLI_DIR=d)
    p = subprocess.run(["/usr/bin/python3", os.path.join(wstest.SOURCE, "tests", "harness", "dnsd.py"),
                        "--zone", "sample.example=" + zone, "--blackhole", "slow.example", "--",
                        "/usr/bin/python3", os.path.abspath(__file__), "--inner"], env=env,
                       capture_output=True, text=True)
    sys.stdout.write(p.stdout)
    T.check(p.returncode == 0, "inner (real DNS) checks: exit %d %s" % (p.returncode, p.stderr[-2000:]))
    T.finish()


def inner():
    d = os.environ["WS_CLI_DIR"]
    port = os.environ["WS_DNSD_PORT"]
    bh = os.environ["WS_DNSD_BLACKHOLE_PORT"]
    t = wstest.Tally("cli-dkim-dns")
    good = os.path.join(SAMPLE, "01-rsa-dkimpy.eml")
    objs, p = wstest.run_json(["verify", "--json", "--dns-server", "127.0.0.1@" + port, good])
    t.check(objs and objs[0]["dkim"][0]["result"] == "pass", "key from nsd: %r %s" % (objs, p.stderr))
    # every query to the blackhole: the key lookup must end as temperror in time
    start = time.monotonic()
    objs, p = wstest.run_json(["verify", "--json", "--dns-timeout", "700", "--dns-server",
                               "127.0.0.1@" + bh, good])
    took = time.monotonic() - start
    t.check(objs and objs[0]["dkim"][0]["result"] == "temperror", "no answer -> temperror: %r" % objs)
    t.check(took < 5, "bounded by the timeout: %.1fs" % took)
    t.finish()


if __name__ == "__main__":
    inner() if "--inner" in sys.argv else outer()
