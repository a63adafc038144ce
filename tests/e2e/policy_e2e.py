"""SPF and DMARC end to end: `wireseal verify --client-ip/--helo/--mail-from`
against a real nsd on loopback serving SPF, DMARC and DKIM key records.

Stage one (no argument) makes an Ed25519 key, signs the messages with
`wireseal sign`, writes a root zone (so every name outside the test data is
an authoritative NXDOMAIN, which the tree walk and np need) and runs stage
two (`--inner`) inside tests/harness/dnsd.py. Stage two runs the table of
cases through the CLI and checks the JSON and the Authentication-Results.

Also: a server that never answers (dnsd.py's blackhole) gives temperror for
SPF, DKIM and DMARC within the --dns-timeout bound, and the embedded --zone
path gives the same DMARC results as nsd for a few cases. The ARC override
cases wait for the ARC merge and are reported as skipped.
"""
import base64
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wstest  # noqa: E402

IP_OK = "192.0.2.10"
IP_BAD = "198.51.100.99"
DNS_TIMEOUT_MS = 400

# (name, type, rdata) in the root zone; TXT rdata is text, quoted on output
RECORDS = [
    # SPF
    ("example.net", "TXT", "v=spf1 ip4:192.0.2.10 -all"),
    ("bounce.example.net", "TXT", "v=spf1 ip4:192.0.2.10 -all"),
    ("mx.example.net", "TXT", "v=spf1 a -all"),
    ("mx.example.net", "A", "192.0.2.10"),
    ("strict.example", "TXT", "v=spf1 ip4:192.0.2.10 -all"),
    ("bounce.strict.example", "TXT", "v=spf1 ip4:192.0.2.10 -all"),
    ("soft.example", "TXT", "v=spf1 ~all"),
    # DMARC
    ("_dmarc.example.net", "TXT", "v=DMARC1; p=reject; sp=quarantine; np=none"),
    ("_dmarc.strict.example", "TXT", "v=DMARC1; p=reject; adkim=s; aspf=s"),
    ("_dmarc.pct.example", "TXT", "v=DMARC1; p=reject; pct=50"),
    ("_dmarc.blogspot.com", "TXT", "v=DMARC1; p=reject"),
    ("_dmarc.soft.example", "TXT", "v=DMARC1; p=quarantine"),
    ("sub.example.net", "A", "192.0.2.20"),  # exists: sp applies
    ("pct.example", "A", "192.0.2.30"),
    ("norecord.example", "A", "192.0.2.40"),
]
DKIM_DOMAINS = ["example.net", "mail.example.net", "strict.example", "mail.strict.example",
                "blogspot.com", "forwarder.example"]


def msg(frm, body="Hello.\r\n", extra=b""):
    froms = frm if isinstance(frm, list) else [frm]
    h = b"".join(b"From: " + f.encode() + b"\r\n" for f in froms)
    return (h + b"To: bob@example.org\r\nSubject: policy e2e\r\n"
            b"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <p@e2e>\r\n" + extra +
            b"\r\n" + body.encode())


# name, From, signing domain (None: unsigned), tamper, CLI args, expected dmarc
# fields, expected spf result (None: SPF not run)
CASES = [
    ("spf relaxed aligned", "a@example.net", None, False,
     ["--client-ip", IP_OK, "--mail-from", "x@bounce.example.net"],
     {"result": "pass", "aligned": {"spf": True, "dkim": False}}, "pass"),
    ("spf fail", "a@example.net", None, False,
     ["--client-ip", IP_BAD, "--mail-from", "x@bounce.example.net"],
     {"result": "fail", "policy": "reject", "disposition": "reject",
      "aligned": {"spf": False, "dkim": False}}, "fail"),
    ("spf strict not aligned", "a@strict.example", None, False,
     ["--client-ip", IP_OK, "--mail-from", "x@bounce.strict.example"],
     {"result": "fail", "policy": "reject", "aligned": {"spf": False, "dkim": False}}, "pass"),
    ("spf strict aligned", "a@strict.example", None, False,
     ["--client-ip", IP_OK, "--mail-from", "x@strict.example"],
     {"result": "pass", "aligned": {"spf": True, "dkim": False}}, "pass"),
    ("spf softfail does not align", "a@soft.example", None, False,
     ["--client-ip", IP_OK, "--mail-from", "x@soft.example"],
     {"result": "fail", "policy": "quarantine"}, "softfail"),
    ("dkim relaxed aligned", "a@example.net", "mail.example.net", False, [],
     {"result": "pass", "aligned": {"spf": False, "dkim": True}}, None),
    ("dkim strict not aligned", "a@strict.example", "mail.strict.example", False, [],
     {"result": "fail", "aligned": {"spf": False, "dkim": False}}, None),
    ("dkim strict aligned", "a@strict.example", "strict.example", False, [],
     {"result": "pass", "aligned": {"spf": False, "dkim": True}}, None),
    ("dkim tampered", "a@example.net", "example.net", True, [],
     {"result": "fail", "policy": "reject", "disposition": "reject"}, None),
    ("sp for an existing subdomain", "a@sub.example.net", None, False, [],
     {"result": "fail", "policy": "quarantine", "record_domain": "example.net",
      "org_domain": "example.net"}, None),
    ("np for a non-existent subdomain", "a@ghost.example.net", None, False, [],
     {"result": "fail", "policy": "none", "record_domain": "example.net"}, None),
    ("p at the org domain", "a@example.net", None, False, [],
     {"result": "fail", "policy": "reject", "disposition": "reject"}, None),
    ("tree walk: blogspot.com is the org domain", "a@alice.blogspot.com", "blogspot.com", False,
     ["--dmarc-method", "treewalk"],
     {"result": "pass", "org_method": "treewalk", "org_domain": "blogspot.com",
      "org_disagree": True, "psl_org_domain": "alice.blogspot.com",
      "aligned": {"spf": False, "dkim": True}}, None),
    ("psl: alice.blogspot.com is its own org domain", "a@alice.blogspot.com", "blogspot.com",
     False, ["--dmarc-method", "psl"],
     {"result": "none", "org_method": "psl", "org_domain": "alice.blogspot.com",
      "org_disagree": True, "walk_org_domain": "blogspot.com"}, None),
    ("psl and tree walk agree", "a@sub.example.net", None, False, ["--dmarc-method", "psl"],
     {"result": "fail", "policy": "quarantine", "org_method": "psl",
      "org_domain": "example.net", "org_disagree": False}, None),
    ("multiple From", ["a@example.net", "b@example.net"], "example.net", False, [],
     {"result": "permerror"}, None),
    ("pct sampled in", "a@pct.example", None, False, ["--random-pct", "49"],
     {"result": "fail", "policy": "reject", "disposition": "reject", "sampled_out": False,
      "pct": 50}, None),
    ("pct sampled out", "a@pct.example", None, False, ["--random-pct", "50"],
     {"result": "fail", "policy": "reject", "disposition": "quarantine", "sampled_out": True},
     None),
    ("no record", "a@norecord.example", None, False, [], {"result": "none"}, None),
    ("null sender: HELO identity", "a@mx.example.net", None, False,
     ["--client-ip", IP_OK, "--helo", "mx.example.net", "--mail-from", ""],
     {"result": "pass", "aligned": {"spf": True, "dkim": False}}, "pass"),
]

# Written now, run once ARC lands: a message from example.net (p=reject) that
# fails DMARC after forwarding (no DKIM, SPF from the forwarder's IP), sealed
# by forwarder.example with an AAR saying dmarc=pass header.from=example.net.
# (name, --trusted-sealers, expected override: None or its sealer)
ARC_CASES = [
    ("ARC override by a trusted sealer", "forwarder.example,other.example", "forwarder.example"),
    ("no ARC override by an untrusted sealer", "other.example", None),
]
# What the forwarder's own verifier stamped on arrival; arc-seal turns the
# Authentication-Results of its authserv-id into the AAR of the new set.
ARC_AR = ("Authentication-Results: forwarder.example; dmarc=pass header.from=example.net;"
          " spf=pass smtp.mailfrom=example.net; arc=none\r\n")


def arc_ready():
    """The ARC sealer sub-command exists (it does since the ARC merge)."""
    p = subprocess.run([wstest.WIRESEAL, "arc-seal", "--help"], capture_output=True)
    return p.returncode == 0


def zone_text(pub):
    lines = ["$TTL 300",
             ". IN SOA ns.e2e-root. admin.e2e-root. 1 3600 600 86400 60",
             ". IN NS ns.e2e-root.", "ns.e2e-root. IN A 127.0.0.1"]
    for name, typ, data in RECORDS:
        if typ == "TXT":
            data = wstest.quote_strings(data)
        lines.append("%s. IN %s %s" % (name, typ, data))
    for d in DKIM_DOMAINS:
        lines.append("sel._domainkey.%s. IN TXT %s" % (
            d, wstest.quote_strings("v=DKIM1; k=ed25519; p=" + pub)))
    return "\n".join(lines) + "\n"


def outer():
    d = tempfile.mkdtemp(prefix="ws-policy-e2e-")
    pem = os.path.join(d, "ed.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "ED25519", "-out", pem], check=True,
                   capture_output=True)
    der = subprocess.run(["openssl", "pkey", "-in", pem, "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    pub = base64.b64encode(der[-32:]).decode()
    zone = os.path.join(d, "root.zone")
    with open(zone, "w") as f:
        f.write(zone_text(pub))
    env = dict(os.environ, WS_E2E_DIR=d)
    p = subprocess.run(["/usr/bin/python3", os.path.join(wstest.SOURCE, "tests", "harness", "dnsd.py"),
                        "--zone", ".=" + zone, "--",
                        "/usr/bin/python3", os.path.abspath(__file__), "--inner"], env=env)
    sys.exit(p.returncode)


def sign(d, m, domain):
    path = os.path.join(d, "unsigned.eml")
    with open(path, "wb") as f:
        f.write(m)
    p = subprocess.run([wstest.WIRESEAL, "sign", "--key", os.path.join(d, "ed.pem"), "--domain",
                        domain, "--selector", "sel", path], capture_output=True)
    if p.returncode != 0:
        raise RuntimeError("wireseal sign: " + p.stderr.decode())
    return p.stdout


def subset(want, got, path=""):
    """The keys of want that got does not match, as text."""
    bad = []
    for k, v in want.items():
        if isinstance(v, dict):
            bad += subset(v, got.get(k) or {}, path + k + ".")
        elif got.get(k) != v:
            bad.append("%s%s=%r (want %r)" % (path, k, got.get(k), v))
    return bad


def inner():
    d = os.environ["WS_E2E_DIR"]
    port = os.environ["WS_DNSD_PORT"]
    bh_port = os.environ["WS_DNSD_BLACKHOLE_PORT"]
    zone = os.path.join(d, "root.zone")
    T = wstest.Tally("policy-e2e")
    server = ["--dns-server", "127.0.0.1@" + port]

    def run(m, args, dns=server, tag=""):
        path = os.path.join(d, "m.eml")
        with open(path, "wb") as f:
            f.write(m)
        objs, p = wstest.run_json(["verify", "--json", "--authserv-id", "mx.test"] + dns + args +
                                  [path])
        if len(objs) != 1 or "dmarc" not in objs[0]:
            T.check(False, "%s: output %r %s" % (tag, p.stdout, p.stderr))
            return None
        return objs[0]

    for name, frm, signer, tamper, args, want, want_spf in CASES:
        m = msg(frm)
        if signer:
            m = sign(d, m, signer)
            if tamper:
                m = m.replace(b"Hello.", b"Hullo.")
        o = run(m, args, tag=name)
        if not o:
            continue
        bad = subset(want, o["dmarc"])
        T.check(not bad, "%s: dmarc %s" % (name, ", ".join(bad)))
        ar = o["authres"]
        T.check(("dmarc=%s " % o["dmarc"]["result"]) in ar, "%s: authres %s" % (name, ar))
        if isinstance(frm, str):
            T.check("header.from=" + frm.split("@")[1] in ar, "%s: header.from in %s" % (name, ar))
        if want_spf is None:
            T.check("spf" not in o and "spf=" not in ar, "%s: SPF reported without --client-ip" % name)
        else:
            got = (o.get("spf") or {}).get("result")
            T.check(got == want_spf, "%s: spf %r, want %r" % (name, got, want_spf))
            T.check(("spf=%s " % want_spf) in ar, "%s: authres %s" % (name, ar))
            if "--mail-from" in args and args[args.index("--mail-from") + 1]:
                T.check("smtp.mailfrom=" + args[args.index("--mail-from") + 1] in ar,
                        "%s: smtp.mailfrom in %s" % (name, ar))
        T.check(o["dmarc"]["override"] is None, "%s: override without ARC" % name)

    # the null sender: the MAIL FROM identity is postmaster@HELO (RFC 7208 2.4)
    o = run(msg("a@mx.example.net"), ["--client-ip", IP_OK, "--helo", "mx.example.net",
                                      "--mail-from", ""], tag="null sender")
    if o:
        s = o.get("spf") or {}
        T.check(s.get("identity") == "helo" and s.get("domain") == "mx.example.net",
                "null sender: spf %r" % s)
        T.check((s.get("helo") or {}).get("result") == "pass", "null sender: helo %r" % s)
        T.check("smtp.helo=mx.example.net" in o["authres"] and "smtp.mailfrom" not in o["authres"],
                "null sender: authres %s" % o["authres"])
    # HELO identity checked separately, reported beside the MAIL FROM result
    o = run(msg("a@example.net"), ["--client-ip", IP_BAD, "--helo", "mx.example.net",
                                   "--mail-from", "x@example.net"], tag="helo")
    if o:
        s = o.get("spf") or {}
        T.check(s.get("result") == "fail" and (s.get("helo") or {}).get("result") == "fail",
                "helo: spf %r" % s)

    # the same DMARC answers from the embedded zone (--zone) as from nsd
    for name, frm, signer, tamper, args, want, _ in CASES:
        if name not in ("sp for an existing subdomain", "np for a non-existent subdomain",
                        "tree walk: blogspot.com is the org domain", "spf strict aligned"):
            continue
        m = msg(frm)
        if signer:
            m = sign(d, m, signer)
        o = run(m, args, dns=["--zone", zone], tag="embedded " + name)
        if o:
            bad = subset(want, o["dmarc"])
            T.check(not bad, "embedded %s: dmarc %s" % (name, ", ".join(bad)))

    # a server that never answers: temperror everywhere, bounded by --dns-timeout
    m = sign(d, msg("a@example.net"), "example.net")
    t0 = time.monotonic()
    o = run(m, ["--client-ip", IP_OK, "--helo", "mx.example.net", "--mail-from", "x@example.net",
                "--dns-timeout", str(DNS_TIMEOUT_MS)],
            dns=["--dns-server", "127.0.0.1@" + bh_port], tag="blackhole")
    took = time.monotonic() - t0
    if o:
        T.check(o["dmarc"]["result"] == "temperror", "blackhole: dmarc %r" % o["dmarc"])
        T.check(o["spf"]["result"] == "temperror", "blackhole: spf %r" % o["spf"])
        T.check(o["dkim"][0]["result"] == "temperror", "blackhole: dkim %r" % o["dkim"])
        T.check("dmarc=temperror" in o["authres"], "blackhole: authres %s" % o["authres"])
    # one DKIM key, MAIL FROM, HELO and the first DMARC query: each waits once
    T.check(took < 6 * DNS_TIMEOUT_MS / 1000.0 + 2.0, "blackhole: took %.1f s" % took)

    if not arc_ready():
        for name, trusted, _ in ARC_CASES:
            print("SKIP policy-e2e %s (--trusted-sealers %s): needs the ARC merge: "
                  "`wireseal arc-seal`" % (name, trusted))
    else:
        # After the merge: seal with the ARC signer (adjust these options to
        # its final command line) and check the override.
        key = os.path.join(d, "ed.pem")
        unsigned = os.path.join(d, "arc-in.eml")
        with open(unsigned, "wb") as f:
            f.write(ARC_AR.encode() + msg("a@example.net"))
        p = subprocess.run([wstest.WIRESEAL, "arc-seal", "--key", key, "--domain",
                            "forwarder.example", "--selector", "sel", "--authserv-id",
                            "forwarder.example", "--timestamp", "1700000000", unsigned],
                           capture_output=True)
        T.check(p.returncode == 0, "arc-seal: %s" % p.stderr.decode(errors="replace"))
        for name, trusted, want in ARC_CASES:
            o = run(p.stdout, ["--client-ip", IP_BAD, "--mail-from", "x@example.net",
                               "--trusted-sealers", trusted], tag=name)
            if not o:
                continue
            ov = o["dmarc"]["override"]
            T.check(o["dmarc"]["result"] == "fail", "%s: dmarc %r" % (name, o["dmarc"]))
            T.check("dmarc=pass" not in o["authres"], "%s: disguised %s" % (name, o["authres"]))
            if want:
                T.check(ov and ov["by"] == "arc" and ov["sealer"] == want,
                        "%s: override %r" % (name, ov))
                T.check("policy.override=arc" in o["authres"], "%s: %s" % (name, o["authres"]))
            else:
                T.check(ov is None, "%s: override %r" % (name, ov))
    T.finish()


if __name__ == "__main__":
    inner() if "--inner" in sys.argv else outer()
