#!/usr/bin/python3
"""DKIM conformance from ../shared/conformance/dkim, read in place.

Each set's DNS data becomes a zone file for `wireseal verify --zone`; the
expectations are the sets' own, translated for a verifier that follows RFC
6376 + RFC 8301 as the conformance README (section 3, notes 11-13) explains:
  - RFC 6376 Appendix A: the published signature must not pass;
  - RFC 8463 A.3: both signatures pass;
  - dkimpy: MANIFEST.tsv's pre-signed messages;
  - Mail::DKIM: expected.tsv, with each modern_note turned into what RFC 8301
    says instead (DomainKeys-only -> no DKIM signature; pre-RFC v= -> permerror;
    rsa-sha1 or a key under 1024 bits -> policy; never pass).
"""
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wstest  # noqa: E402

D = os.path.join(wstest.SHARED, "conformance", "dkim")
T = wstest.Tally("dkim-conformance")
# Every set's signatures are years old; x= is checked separately (unit tests).
NOW = "1500000000"


def verify(files, records):
    with tempfile.NamedTemporaryFile("w", suffix=".zone", delete=False) as z:
        z.write(wstest.zone_text(records))
    try:
        objs, p = wstest.run_json(["verify", "--json", "--zone", z.name, "--now", NOW] + files)
    finally:
        os.unlink(z.name)
    by_file = {o["file"]: o for o in objs}
    for f in files:
        if f not in by_file:
            T.check(False, "%s: no output (stderr: %s)" % (f, p.stderr.strip()))
    return by_file


def results(o):
    return [s["result"] for s in o.get("dkim", [])]


# --- RFC 6376 Appendix A and RFC 8463 Appendix A ---------------------------
rfc6376 = os.path.join(D, "rfc6376")
r = verify([os.path.join(rfc6376, f) for f in ("A2-signed.eml", "A3-verified.eml")],
           wstest.read_dns_txt(os.path.join(rfc6376, "dns.txt")))
for f, o in r.items():
    res = results(o)
    T.check(res and "pass" not in res, "%s must not pass: %s" % (f, res))

rfc8463 = os.path.join(D, "rfc8463")
f = os.path.join(rfc8463, "A3-signed.eml")
r = verify([f], wstest.read_dns_txt(os.path.join(rfc8463, "dns.txt")))
if f in r:
    T.check(results(r[f]) == ["pass", "pass"], "RFC 8463 A.3: %s" % r[f].get("dkim"))
    T.check([s["a"] for s in r[f]["dkim"]] == ["ed25519-sha256", "rsa-sha256"], "RFC 8463 algorithms")

# --- dkimpy pre-signed messages --------------------------------------------
dp = os.path.join(D, "dkimpy")
dkimpy_expect = {
    "test2.message": ["pass"],
    "ed25519test2.msg": ["pass"],
    "rfc6376.signed.msg": ["pass", "pass"],
    "rfc6376.signed.rsa.msg": ["pass"],
    "test.message.baddomain": "not pass",
}
files = [os.path.join(dp, k) for k in dkimpy_expect]
recs = wstest.read_dns_txt(os.path.join(dp, "dns.txt"))
r = verify(files, recs)
for k, want in dkimpy_expect.items():
    o = r.get(os.path.join(dp, k))
    if o is None:
        continue
    res = results(o)
    if want == "not pass":
        T.check(res and "pass" not in res, "dkimpy %s must not pass: %s" % (k, o.get("dkim")))
    else:
        T.check(res == want, "dkimpy %s: %s" % (k, o.get("dkim")))

# --- Mail::DKIM corpus ------------------------------------------------------
md = os.path.join(D, "mail-dkim")
rows = []
with open(os.path.join(md, "expected.tsv")) as fh:
    header = None
    for line in fh:
        if line.startswith("#"):
            continue
        cols = line.rstrip("\n").split("\t")
        if header is None:
            header = cols
            continue
        rows.append(dict(zip(header, cols + [""] * (len(header) - len(cols)))))


def modern(row):
    """What an RFC 6376 + 8301 verifier must say, as (kind, detail)."""
    note, exp = row.get("modern_note", ""), row["expected"]
    if "DomainKeys(RFC4870) only" in note:
        return ("results", [])
    if not note:
        return {"pass": ("has", "pass"), "fail": ("no-pass-has", "fail"),
                "invalid": ("none-of", {"pass", "fail"})}[exp]
    if "no v= tag" in note or "v=0.5" in note or "v=5" in note:
        return ("all", "permerror")
    if "rsa-sha1" in note or "-bit key" in note:
        return ("all-in", {"policy", "permerror"})
    return ("none-of", {"pass"})


corpus = os.path.join(md, "corpus")
files = [os.path.join(corpus, row["file"]) for row in rows]
r = verify(files, wstest.read_dns_txt(os.path.join(md, "FAKE_DNS.dat")))
for row in rows:
    o = r.get(os.path.join(corpus, row["file"]))
    if o is None:
        continue
    res = results(o)
    kind, want = modern(row)
    if kind == "results":
        ok = res == want
    elif kind == "has":
        ok = want in res
    elif kind == "no-pass-has":
        ok = "pass" not in res and want in res
    elif kind == "none-of":
        ok = bool(res) and not (set(res) & want)
    elif kind == "all":
        ok = bool(res) and all(x == want for x in res)
    else:  # all-in
        ok = bool(res) and all(x in want for x in res)
    T.check(ok, "mail-dkim %s: want %s %s, got %s" % (
        row["file"], kind, sorted(want) if isinstance(want, set) else want,
        [(s["result"], s["reason"]) for s in o.get("dkim", [])]))

T.finish()
