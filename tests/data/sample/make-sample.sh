#!/usr/bin/env bash
# Regenerates the bundled sample that `make run` verifies: keys, zone and
# messages signed by dkimpy (a real, independent signer) and by wireseal.
# Usage: tests/data/sample/make-sample.sh BUILD_DIR   (needs /usr/bin/python3 + python3-dkim)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build}
cd "$here"
[ -f rsa2048.pem ] || openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa2048.pem
[ -f ed25519.pem ] || openssl genpkey -algorithm ED25519 -out ed25519.pem
/usr/bin/python3 - "$here" "$build" <<'PY'
import base64, subprocess, sys, os
here, build = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.join(here, "..", "..", "lib"))
import wstest, dkim
def der(args):
    return subprocess.run(["openssl", "pkey"] + args, capture_output=True, check=True).stdout
rsa_pub = base64.b64encode(der(["-in", "rsa2048.pem", "-pubout", "-outform", "DER"])).decode()
ed_pub = base64.b64encode(der(["-in", "ed25519.pem", "-pubout", "-outform", "DER"])[-32:]).decode()
ed_seed = base64.b64encode(der(["-in", "ed25519.pem", "-outform", "DER"])[-32:])
zone = wstest.zone_text([
    ("mail2026._domainkey.sample.example", "v=DKIM1; k=rsa; p=" + rsa_pub),
    ("ed2026._domainkey.sample.example", "v=DKIM1; k=ed25519; p=" + ed_pub),
    ("revoked._domainkey.sample.example", "v=DKIM1; k=rsa; p="),
])
open("zone.db", "w").write("; keys for the bundled sample (make-sample.sh)\n" + zone)
body = (b"Hello,\r\n\r\nthis message is part of wireseal's bundled sample.  \r\n"
        b"It is signed once or twice; one copy was altered after signing.\r\n\r\n")
def msg(subject, mid):
    return (b"From: Sample Sender <sender@sample.example>\r\nTo: reader@example.org\r\n"
            b"Subject: " + subject + b"\r\nDate: Sun, 29 Nov 2026 08:00:00 +0000\r\n"
            b"Message-ID: <" + mid + b"@sample.example>\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + body)
rsa = open("rsa2048.pem", "rb").read()
hdrs = [b"from", b"to", b"subject", b"date", b"message-id"]
m1 = msg(b"RSA-2048 signed by dkimpy", b"1")
s1 = dkim.sign(m1, b"mail2026", b"sample.example", rsa, include_headers=hdrs) + m1
open("01-rsa-dkimpy.eml", "wb").write(s1)
m2 = msg(b"Ed25519 and RSA signed by dkimpy", b"2")
s2 = dkim.sign(m2, b"ed2026", b"sample.example", ed_seed, signature_algorithm=b"ed25519-sha256",
               include_headers=hdrs) + m2
s2 = dkim.sign(s2, b"mail2026", b"sample.example", rsa, include_headers=hdrs) + s2
open("02-ed25519-and-rsa.eml", "wb").write(s2)
open("03-tampered.eml", "wb").write(s1.replace(b"bundled sample", b"bundled SAMPLE"))
m4 = msg(b"signed with a revoked key", b"4")
open("04-revoked-key.eml", "wb").write(
    dkim.sign(m4, b"revoked", b"sample.example", rsa, include_headers=hdrs) + m4)
m5 = msg(b"signed by wireseal", b"5")
open("05-unsigned.eml", "wb").write(m5)
out = subprocess.run([os.path.join(build, "wireseal"), "sign", "--key", "ed25519.pem", "--domain",
                      "sample.example", "--selector", "ed2026", "--timestamp", "1795939200",
                      "05-unsigned.eml"], capture_output=True, check=True).stdout
open("05-wireseal-ed25519.eml", "wb").write(out)
os.unlink("05-unsigned.eml")
PY
# 06: the mailing-list case for ARC. dkimpy DKIM-signs; the list stamps its
# arrival results, tags the subject, adds a footer and seals with dkimpy;
# a forwarder seals again with wireseal. DKIM now fails, ARC passes.
/usr/bin/python3 - "$here" "$build" <<'PY'
import subprocess, sys, os
here, build = sys.argv[1], sys.argv[2]
import dkim
rsa = open("rsa2048.pem", "rb").read()
m = (b"From: Sample Sender <sender@sample.example>\r\nTo: list@lists.sample.example\r\n"
     b"Subject: through a mailing list\r\nDate: Sun, 29 Nov 2026 08:00:00 +0000\r\n"
     b"Message-ID: <6@sample.example>\r\nMIME-Version: 1.0\r\n"
     b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
     b"Hello list,\r\n\r\nthis message went through a list that changed it.\r\n")
hdrs = [b"from", b"to", b"subject", b"date", b"message-id"]
signed = dkim.sign(m, b"mail2026", b"sample.example", rsa, include_headers=hdrs) + m
at_list = (b"Authentication-Results: lists.sample.example; arc=none;\r\n"
           b"  dkim=pass header.d=sample.example header.s=mail2026\r\n") + signed
changed = at_list.replace(b"Subject: through", b"Subject: [sample-list] through") + \
    b"-- \r\nsample-list footer\r\n"
listed = b"".join(dkim.arc_sign(changed, b"mail2026", b"sample.example", rsa,
                                b"lists.sample.example", include_headers=hdrs)) + changed
fwd = b"Authentication-Results: fwd.sample.example; arc=pass\r\n" + listed
open("06-unsealed.eml", "wb").write(fwd)
out = subprocess.run([os.path.join(build, "wireseal"), "arc-seal", "--key", "rsa2048.pem",
                      "--domain", "sample.example", "--selector", "mail2026", "--authserv-id",
                      "fwd.sample.example", "--timestamp", "1795939200", "--zone", "zone.db",
                      "06-unsealed.eml"], capture_output=True, check=True).stdout
open("06-arc-mailing-list.eml", "wb").write(out)
os.unlink("06-unsealed.eml")
PY
