#!/usr/bin/python3
"""ARC interop with real peers from Debian, through a real DNS server (nsd).

Like dkim_interop.py: the keys are made at test time, the zone is written,
then tests/harness/dnsd.py serves it around the second stage (`--inner`).

Sealers: dkimpy (`dkim.arc_sign`), Mail::DKIM (`Mail::DKIM::ARC::Signer`,
arcpeer.pl) and `wireseal arc-seal`. Each hop first validates the chain
with its own implementation, stamps "Authentication-Results: <hop>;
arc=<result>" and seals (every sealer takes cv= from that stamp).
Validators: wireseal verify --json, dkimpy `arc_verify`, Mail::DKIM
`ARC::Verifier`. Checked:
  - one hop by each sealer: pass everywhere;
  - two hops, every ordered pair of sealers, and three-hop chains mixing all
    three: pass everywhere;
  - the body changed after the last seal: fail everywhere;
  - the mailing-list case: a DKIM-signed message gets a subject tag and a
    footer at the list, which seals, then a forwarder seals again: DKIM
    fails, ARC passes everywhere, wireseal reports oldest-pass 1 and the
    list's AAR with its dkim=pass.
"""
import base64
import itertools
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wstest  # noqa: E402

DOMAIN = "interop.example"
SEALERS = ("dkimpy", "maildkim", "wireseal")
MSG = (b"From: Alice <alice@interop.example>\r\nTo: list@lists.interop.example\r\n"
       b"Subject: arc interop\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
       b"Message-ID: <arc1@interop.example>\r\nMIME-Version: 1.0\r\n\r\n"
       b"Hello list,\r\n\r\nline with trailing space  \r\n\ttabbed  line\r\n\r\n")


def sh(args, **kw):
    return subprocess.run(args, capture_output=True, **kw)


def make_keys(d):
    keys = {}
    for sel in ("py", "pl", "ws", "origin"):
        pem = os.path.join(d, sel + ".pem")
        sh(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", pem],
           check=True)
        der = sh(["openssl", "pkey", "-in", pem, "-pubout", "-outform", "DER"], check=True).stdout
        keys[sel] = (pem, base64.b64encode(der).decode())
    return keys


def write_zone(d, keys):
    recs = [(sel + "._domainkey." + DOMAIN, "v=DKIM1; k=rsa; p=" + pub) for sel, (_, pub) in keys.items()]
    z = wstest.zone_text(recs).replace("$TTL 300\n", "$TTL 300\n@ IN SOA ns.%s. admin.%s. 1 3600 600 86400 300\n"
                                       "@ IN NS ns.%s.\nns IN A 127.0.0.1\n" % (DOMAIN, DOMAIN, DOMAIN))
    path = os.path.join(d, "zone")
    with open(path, "w") as f:
        f.write("$ORIGIN %s.\n" % DOMAIN + z)
    return path


def outer():
    d = tempfile.mkdtemp(prefix="ws-arc-interop-")
    keys = make_keys(d)
    zone = write_zone(d, keys)
    env = dict(os.environ, WS_INTEROP_DIR=d)
    p = subprocess.run(["/usr/bin/python3", os.path.join(wstest.SOURCE, "tests", "harness", "dnsd.py"),
                        "--zone", "%s=%s" % (DOMAIN, zone), "--",
                        "/usr/bin/python3", os.path.abspath(__file__), "--inner"], env=env)
    sys.exit(p.returncode)


def inner():
    import dkim
    import dns.resolver

    d = os.environ["WS_INTEROP_DIR"]
    port = int(os.environ["WS_DNSD_PORT"])
    res = dns.resolver.Resolver(configure=False)
    res.nameservers = ["127.0.0.1"]
    res.port = port

    def dnsfunc(name, timeout=5):
        try:
            ans = res.resolve(name.decode().rstrip("."), "TXT", lifetime=timeout)
        except Exception:
            return None
        return b"".join(b"".join(r.strings) for r in ans)

    T = wstest.Tally("arc-interop")
    pem = {sel: os.path.join(d, sel + ".pem") for sel in ("py", "pl", "ws", "origin")}
    perl_script = os.path.join(wstest.SOURCE, "tests", "interop", "arcpeer.pl")

    def ws_json(msg):
        path = os.path.join(d, "v.eml")
        with open(path, "wb") as f:
            f.write(msg)
        objs, p = wstest.run_json(["verify", "--json", "--dns-server", "127.0.0.1@%d" % port, path])
        if not objs or "arc" not in objs[0]:
            raise RuntimeError("wireseal verify: %r %s" % (p.stdout, p.stderr))
        return objs[0]

    def verify(impl, msg):
        if impl == "wireseal":
            return ws_json(msg)["arc"]["result"]
        if impl == "dkimpy":
            cv, _, _ = dkim.arc_verify(msg, dnsfunc=dnsfunc)
            return (cv or b"fail").decode().lower()
        p = sh(["perl", perl_script, "verify", str(port)], input=msg)
        if p.returncode != 0:
            raise RuntimeError("arcpeer.pl verify: " + p.stderr.decode())
        return p.stdout.decode().strip().lower()

    def seal(impl, msg, srvid):
        """One hop: validate with impl, stamp arc=, seal with impl."""
        cv = verify(impl, msg)
        msg = ("Authentication-Results: %s; arc=%s\r\n" % (srvid, cv)).encode() + msg
        if impl == "dkimpy":
            sel = b"py"
            priv = open(pem["py"], "rb").read()
            hdrs = dkim.arc_sign(msg, sel, DOMAIN.encode(), priv, srvid.encode(),
                                 include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
            if not hdrs:
                raise RuntimeError("dkimpy added no ARC set")
            return b"".join(hdrs) + msg
        if impl == "maildkim":
            p = sh(["perl", perl_script, "seal", str(port), pem["pl"], DOMAIN, "pl", srvid], input=msg)
            if p.returncode != 0:
                raise RuntimeError("arcpeer.pl seal: " + p.stderr.decode())
            return p.stdout
        path = os.path.join(d, "s.eml")
        with open(path, "wb") as f:
            f.write(msg)
        p = sh([wstest.WIRESEAL, "arc-seal", "--key", pem["ws"], "--domain", DOMAIN, "--selector", "ws",
                "--authserv-id", srvid, "--dns-server", "127.0.0.1@%d" % port, path])
        if p.returncode != 0:
            raise RuntimeError("wireseal arc-seal: " + p.stderr.decode())
        return p.stdout

    def tamper(msg):
        return msg.replace(b"Hello list,", b"Hello List,")

    def everywhere(msg, want, what):
        got = {v: verify(v, msg) for v in SEALERS}
        T.check(all(g == want for g in got.values()), "%s: want %s everywhere, got %s" % (what, want, got))
        return got

    chains = [(s,) for s in SEALERS] + list(itertools.product(SEALERS, repeat=2)) + \
        [("dkimpy", "maildkim", "wireseal"), ("wireseal", "dkimpy", "maildkim"),
         ("maildkim", "wireseal", "dkimpy")]
    for chain in chains:
        msg = MSG
        what = "->".join(chain)
        try:
            for hop, impl in enumerate(chain):
                msg = seal(impl, msg, "hop%d.%s" % (hop + 1, DOMAIN))
        except RuntimeError as e:
            T.check(False, "%s: %s" % (what, e))
            continue
        everywhere(msg, "pass", what)
        T.check(ws_json(msg)["arc"]["instances"] == len(chain), "%s: instances" % what)
        everywhere(tamper(msg), "fail", what + " tampered")

    # --- the mailing list --------------------------------------------------
    for list_impl, fwd_impl in (("wireseal", "dkimpy"), ("maildkim", "wireseal"), ("dkimpy", "maildkim")):
        what = "list %s, forwarder %s" % (list_impl, fwd_impl)
        path = os.path.join(d, "o.eml")
        with open(path, "wb") as f:
            f.write(MSG)
        signed = sh([wstest.WIRESEAL, "sign", "--key", pem["origin"], "--domain", DOMAIN, "--selector",
                     "origin", "--headers", "from:to:subject:date:message-id", path], check=True).stdout
        # the list's MX checks DKIM on arrival and records it ...
        at_list = ws_json(signed)
        T.check([s["result"] for s in at_list["dkim"]] == ["pass"], what + ": DKIM passes at the list")
        srv = "lists.%s" % DOMAIN
        arrived = ("Authentication-Results: %s; dkim=pass header.d=%s header.s=origin\r\n"
                   % (srv, DOMAIN)).encode() + signed
        # ... then the list tags the subject and adds a footer, and seals
        changed = arrived.replace(b"Subject: arc interop", b"Subject: [list] arc interop") + \
            b"-- \r\nlist footer\r\n"
        try:
            listed = seal(list_impl, changed, srv)
            forwarded = seal(fwd_impl, listed, "fwd.%s" % DOMAIN)
        except RuntimeError as e:
            T.check(False, "%s: %s" % (what, e))
            continue
        o = ws_json(forwarded)
        T.check([s["result"] for s in o["dkim"]] == ["fail"], what + ": DKIM fails after the list: %s" % o["dkim"])
        T.check(o["arc"]["result"] == "pass" and o["arc"]["instances"] == 2, what + ": %s" % o["arc"])
        T.check(o["arc"]["oldest_pass"] == 1, what + ": oldest-pass %s" % o["arc"]["oldest_pass"])
        aar1 = (o["arc"]["sets"] or [{}])[0].get("aar_parsed") or {}
        T.check(aar1.get("authserv_id") == srv and
                {"method": "dkim", "result": "pass", "props": {"header.d": DOMAIN, "header.s": "origin"}}
                in aar1.get("results", []), what + ": list AAR %r" % aar1)
        T.check("arc=pass header.oldest-pass=1" in o["authres"], what + ": A-R %r" % o["authres"])
        everywhere(forwarded, "pass", what)
        everywhere(tamper(forwarded), "fail", what + " tampered")
    T.finish()


if __name__ == "__main__":
    inner() if "--inner" in sys.argv else outer()
