#!/usr/bin/python3
"""Generate a DKIM-signed benchmark corpus (deterministic from --seed).

Usage: gen_corpus.py DIR [-n N] [--seed S] [--mix rsa2048=0.7,ed25519=0.3]
                         [--double F] [--fail F] [--arc F] [--arc-hops 1-3]
                         [--canon MIX] [--jobs J]

Writes into DIR:
  msgs/NNNNNN.eml   CRLF messages, 1 or 2 DKIM-Signature fields each; a
                    fraction (--arc) also carries an ARC chain of 1-3 hops
                    (forwarders' Authentication-Results + ARC sets)
  zone.db           RFC 1035 master file (zone "example.") with every key record
  opendkim-keys     OpenDKIM file key source: "sel._domainkey.dom<TAB>TXT value"
  keys.tsv          the same as name<TAB>value, for the Python/Perl drivers
  manifest.tsv      file, category, algs, header bytes, body bytes, nsigs,
                    expected (pass|fail, of DKIM), fail kind, ARC hops
  keys/             private keys (PEM, PKCS#8), generated once by
                    `openssl genpkey` and reused on later runs
  params.json       the parameters, so that a caller can reuse a corpus

Message content and signatures are a pure function of (seed, index, keys):
the keys are random, but cached in DIR/keys, so regenerating with the same
parameters in the same DIR gives byte-identical messages. Signing uses dkimpy
(Debian python3-dkim) with its clock pinned, spread over --jobs processes.
ARC sets are sealed by dkimpy's ARC signer (rsa-sha256 with the forwarding
domain's rsa2048 key), one hop at a time, each after an Authentication-Results
field of that hop (arc=none on the first hop, arc=pass after). The ARC draw
uses its own random stream, so messages without ARC are the same bytes as
with --arc 0. Tampering (--fail) happens after the last hop, so a tampered
message breaks its DKIM signatures and its ARC chain alike.
"""

import argparse
import base64
import concurrent.futures
import json
import math
import multiprocessing
import os
import random
import shutil
import subprocess
import sys
import time

import dkim

# Every key size/type the corpus can sign with: name -> (dkimpy a=, k= tag).
ALGS = {
    'rsa1024': (b'rsa-sha256', 'rsa'),
    'rsa2048': (b'rsa-sha256', 'rsa'),
    'rsa3072': (b'rsa-sha256', 'rsa'),
    'rsa4096': (b'rsa-sha256', 'rsa'),
    'ed25519': (b'ed25519-sha256', 'ed25519'),
}

N_DOMAINS = 10
# t= of every signature: fixed so that output is reproducible; in the past so
# that no verifier calls it "in the future".
SIGN_TIME = 1764000000

# Body size classes: (name, share, min bytes, max bytes, attachment?).
# Sizes are log-uniform within a class. "small" is the bulk of real mail;
# the tail carries base64 attachments up to a few MB.
SIZE_CLASSES = [
    ('small', 0.88, 2 * 1024, 50 * 1024, False),
    ('medium', 0.09, 50 * 1024, 256 * 1024, True),
    ('large', 0.03, 256 * 1024, 3 * 1024 * 1024, True),
]

FAIL_KINDS = ['body', 'header', 'revoked']

WORDS = ('the of and to in is you that it he was for on are as with his they at be '
         'this have from or one had by word but not what all were we when your can '
         'said there use an each which she do how their if will up other about out '
         'many then them these so some her would make like him into time has look '
         'two more write go see number no way could people my than first water been '
         'call who oil its now find long down day did get come made may part invoice '
         'meeting schedule report quarterly update please review attached account '
         'payment shipment delivery password security newsletter offer discount '
         'subscription unsubscribe conference agenda project deadline budget').split()

FIRST = 'alice bob carol dave erin frank grace heidi ivan judy mallory oscar peggy trent victor walter'.split()
MAILERS = ['Microsoft Outlook 16.0', 'Apple Mail (2.3774)', 'Mozilla Thunderbird 115.5',
           'PHPMailer 6.8.1', 'Postfix-mailer 3.7', 'SendGrid', 'Amazon SES']


def parse_mix(text, names):
    """'a=0.7,b=0.3' -> [(a, 0.7), (b, 0.3)], checked against names."""
    out = []
    for part in text.split(','):
        name, _, val = part.partition('=')
        name = name.strip()
        if name not in names:
            raise SystemExit('gen_corpus: unknown mix entry %r (known: %s)' % (name, ', '.join(names)))
        w = float(val) if val else 1.0
        if w < 0:
            raise SystemExit('gen_corpus: negative weight for %s' % name)
        out.append((name, w))
    if sum(w for _, w in out) <= 0:
        raise SystemExit('gen_corpus: mix %r has no weight' % text)
    return out


def pick(rng, mix):
    total = sum(w for _, w in mix)
    x = rng.random() * total
    for name, w in mix:
        x -= w
        if x < 0:
            return name
    return mix[-1][0]


def log_uniform(rng, lo, hi):
    return int(math.exp(rng.uniform(math.log(lo), math.log(hi))))


# ---------------------------------------------------------------- keys

def openssl(args, data=None):
    r = subprocess.run(['openssl'] + args, input=data, capture_output=True)
    if r.returncode != 0:
        raise SystemExit('gen_corpus: openssl %s failed: %s' % (' '.join(args), r.stderr.decode(errors='replace')))
    return r.stdout


def ensure_key(keydir, name, cache=None):
    """keys/NAME.pem (PKCS#8): copied from the cache folder when it has it,
    else generated by openssl genpkey (and then stored in the cache too)."""
    path = os.path.join(keydir, name + '.pem')
    cached = os.path.join(cache, name + '.pem') if cache else None
    if not os.path.exists(path) and cached and os.path.exists(cached):
        shutil.copyfile(cached, path + '.tmp')
        os.replace(path + '.tmp', path)
    if not os.path.exists(path):
        alg = name.rsplit('.', 1)[1]
        if alg == 'ed25519':
            args = ['genpkey', '-algorithm', 'ED25519']
        else:
            args = ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:' + alg[3:]]
        pem = openssl(args)
        tmp = path + '.tmp'
        with open(tmp, 'wb') as f:
            f.write(pem)
        os.replace(tmp, path)
    if cached and not os.path.exists(cached):
        shutil.copyfile(path, cached + '.tmp')
        os.replace(cached + '.tmp', cached)
    return path


def load_key(path, alg):
    """-> (signing key for dkimpy, p= value)."""
    der_pub = openssl(['pkey', '-in', path, '-pubout', '-outform', 'DER'])
    if alg == 'ed25519':
        der_priv = openssl(['pkey', '-in', path, '-outform', 'DER'])
        # PKCS#8 Ed25519: the 32-byte seed is the tail of the DER; the SPKI
        # ends with the 32-byte raw public key, which is what RFC 8463 publishes.
        return base64.b64encode(der_priv[-32:]), base64.b64encode(der_pub[-32:]).decode()
    # dkimpy wants PKCS#1 ("BEGIN RSA PRIVATE KEY"); DKIM publishes the SPKI.
    return openssl(['pkey', '-in', path, '-traditional']), base64.b64encode(der_pub).decode()


def selector_for(alg, revoked):
    return ('revoked-' if revoked else '') + alg


def build_keys(outdir, algs, jobs, cache=None):
    """Every (domain, alg) key and its revoked twin; returns the signing table
    {(dom, sel): (privkey, alg)} and the published records [(name, value)].
    Missing keys are generated by `jobs` openssl processes at a time (RSA-4096
    takes seconds each)."""
    keydir = os.path.join(outdir, 'keys')
    os.makedirs(keydir, exist_ok=True)
    needed = []
    for d in range(N_DOMAINS):
        dom = 'dom%d.example' % d
        for alg in algs:
            for revoked in (False, True):
                needed.append((dom, alg, revoked, '%s.%s.%s' % (dom, 'revoked' if revoked else 'live', alg)))
    with concurrent.futures.ThreadPoolExecutor(max(1, jobs)) as ex:
        paths = list(ex.map(lambda t: ensure_key(keydir, t[3], cache), needed))
        loaded = list(ex.map(lambda tp: load_key(tp[1], tp[0][1]), zip(needed, paths)))
    table, records = {}, []
    for (dom, alg, revoked, _), (priv, pub) in zip(needed, loaded):
        sel = selector_for(alg, revoked)
        table[(dom, sel)] = (priv, alg)
        # A revoked key is published with an empty p= (RFC 6376 3.6.1).
        value = 'v=DKIM1; k=%s; p=%s' % (ALGS[alg][1], '' if revoked else pub)
        records.append(('%s._domainkey.%s' % (sel, dom), value))
    return table, records


def write_key_files(outdir, records):
    with open(os.path.join(outdir, 'zone.db'), 'w') as z:
        z.write('; DKIM key records of the benchmark corpus (generated by bench/gen_corpus.py)\n')
        z.write('$ORIGIN example.\n$TTL 3600\n')
        z.write('@ IN SOA ns.example. hostmaster.example. ( 1 3600 600 86400 3600 )\n')
        z.write('@ IN NS ns.example.\nns IN A 127.0.0.1\n')
        for name, value in records:
            # RFC 1035 character-strings hold at most 255 bytes: split the
            # value and let the verifier concatenate (RFC 6376 3.6.2.2).
            chunks = [value[i:i + 255] for i in range(0, len(value), 255)] or ['']
            z.write('%s. 3600 IN TXT ( %s )\n' % (name, ' '.join('"%s"' % c for c in chunks)))
    with open(os.path.join(outdir, 'opendkim-keys'), 'w') as f:
        for name, value in records:
            f.write('%s %s\n' % (name, value))
    with open(os.path.join(outdir, 'keys.tsv'), 'w') as f:
        for name, value in records:
            f.write('%s\t%s\n' % (name, value))


# ---------------------------------------------------------------- content

def words(rng, n):
    return ' '.join(rng.choices(WORDS, k=n))


def text_lines(rng, nbytes):
    """Plain text of about nbytes, wrapped below 78 columns; 3 % of lines
    carry trailing whitespace and a few double spaces (relaxed canon work)."""
    out, size = [], 0
    while size < nbytes:
        line = words(rng, rng.randint(4, 12))
        r = rng.random()
        if r < 0.03:
            line += ' ' * rng.randint(1, 3) + ('\t' if rng.random() < 0.3 else '')
        elif r < 0.06:
            line = line.replace(' ', '  ', 1)
        elif r < 0.10:
            line = ''
        out.append(line)
        size += len(line) + 2
    return out


def html_lines(rng, nbytes):
    out, size = ['<html><head><meta charset="utf-8"></head><body>'], 60
    while size < nbytes:
        line = '<p style="margin:0 0 8px 0;font-family:Arial">%s <a href="https://www.example.com/%s">%s</a></p>' % (
            words(rng, rng.randint(6, 14)), rng.choice(WORDS), rng.choice(WORDS))
        out.append(line)
        size += len(line) + 2
    out.append('</body></html>')
    return out


def b64_lines(rng, nbytes):
    raw = rng.randbytes(nbytes * 3 // 4)
    enc = base64.b64encode(raw).decode()
    return [enc[i:i + 76] for i in range(0, len(enc), 76)]


def make_body(rng, target, attach):
    """-> (Content-Type value, body lines)."""
    b1 = '----=_Part_%d_%d' % (rng.randrange(10**6), rng.randrange(10**9))
    b2 = '----=_Alt_%d_%d' % (rng.randrange(10**6), rng.randrange(10**9))
    if attach:
        text_size = min(target // 20, 12 * 1024)
    else:
        text_size = target
    plain = text_lines(rng, max(200, text_size * 2 // 5))
    html = html_lines(rng, max(200, text_size * 3 // 5))
    alt = ['--' + b2, 'Content-Type: text/plain; charset="utf-8"', 'Content-Transfer-Encoding: 7bit', '']
    alt += plain
    alt += ['', '--' + b2, 'Content-Type: text/html; charset="utf-8"', 'Content-Transfer-Encoding: 7bit', '']
    alt += html
    alt += ['', '--' + b2 + '--', '']
    if not attach:
        return 'multipart/alternative; boundary="%s"' % b2, alt
    name = '%s-%d.%s' % (rng.choice(WORDS), rng.randrange(1000), rng.choice(['pdf', 'zip', 'png', 'xlsx']))
    lines = ['This is a multi-part message in MIME format.', '', '--' + b1,
             'Content-Type: multipart/alternative; boundary="%s"' % b2, '']
    lines += alt
    lines += ['--' + b1, 'Content-Type: application/octet-stream; name="%s"' % name,
              'Content-Transfer-Encoding: base64',
              'Content-Disposition: attachment; filename="%s"' % name, '']
    lines += b64_lines(rng, max(1024, target - text_size))
    lines += ['', '--' + b1 + '--', '']
    return 'multipart/mixed; boundary="%s"' % b1, lines


def ip(rng):
    return '%d.%d.%d.%d' % (rng.choice([192, 198, 203]), rng.randrange(256), rng.randrange(256), rng.randrange(1, 255))


def rfc_date(rng, t):
    return time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime(t))


def received(rng, frm, by, t, tls):
    s = 'Received: from %s (%s [%s])\r\n\tby %s (Postfix) with ESMTPS id %X' % (
        frm, frm, ip(rng), by, rng.getrandbits(40))
    if tls:
        s += '\r\n\t(version=TLS1_3 cipher=TLS_AES_256_GCM_SHA384 bits=256/256)'
    s += '\r\n\tfor <%s@example.net>; %s' % (rng.choice(FIRST), rfc_date(rng, t))
    return s


# The ARC signer's key type: RFC 8617 defines rsa-sha256 only.
ARC_ALG = 'rsa2048'


def arc_plan(seed, idx, arc, hops_lo, hops_hi, dom):
    """-> [forwarding domain] per ARC hop (oldest first); [] for no ARC.
    A stream of its own, so the --arc draw leaves every other byte alone."""
    rng = random.Random('%d:%d:arc' % (seed, idx))
    if arc <= 0 or rng.random() >= arc:
        return []
    start = int(dom[3:-8])
    # Distinct forwarders: a sealer's own earlier Authentication-Results
    # would be merged into its new AAR (two arc= results: cv=fail).
    others = ['dom%d.example' % ((start + k) % N_DOMAINS) for k in range(1, N_DOMAINS)]
    return rng.sample(others, min(rng.randint(hops_lo, hops_hi), len(others)))


def make_message(seed, idx, mix, double, fail, canon_mix):
    """-> plan: everything about message idx except the signatures."""
    rng = random.Random('%d:%d' % (seed, idx))
    cls = pick(rng, [(c[0], c[1]) for c in SIZE_CLASSES])
    _, _, lo, hi, attach = next(c for c in SIZE_CLASSES if c[0] == cls)
    target = log_uniform(rng, lo, hi)
    ctype, body_lines = make_body(rng, target, attach)
    t = SIGN_TIME - rng.randrange(86400 * 30)
    dom = 'dom%d.example' % rng.randrange(N_DOMAINS)
    sender = rng.choice(FIRST)
    rcpts = ['%s@example.net' % rng.choice(FIRST) for _ in range(rng.randint(1, 6))]
    subj = words(rng, rng.randint(3, 9)).capitalize()
    if rng.random() < 0.2:
        subj = '=?UTF-8?B?%s?=' % base64.b64encode(subj.encode()).decode()
    h = []
    h.append('From: "%s" <%s@%s>' % (sender.capitalize(), sender, dom))
    h.append('To: ' + ',\r\n '.join(rcpts))
    if rng.random() < 0.3:
        h.append('Cc: %s@example.org' % rng.choice(FIRST))
    h.append('Subject: ' + subj)
    h.append('Date: ' + rfc_date(rng, t))
    h.append('Message-ID: <%x.%x@mail.%s>' % (rng.getrandbits(64), rng.getrandbits(32), dom))
    h.append('MIME-Version: 1.0')
    h.append('Content-Type: ' + ctype)
    h.append('X-Mailer: ' + rng.choice(MAILERS))
    if rng.random() < 0.5:
        h.append('Reply-To: <reply-%s@%s>' % (sender, dom))
        h.append('List-Unsubscribe: <https://lists.%s/u/%x>, <mailto:unsub-%x@%s>' % (
            dom, rng.getrandbits(64), rng.getrandbits(32), dom))
        h.append('List-Unsubscribe-Post: List-Unsubscribe=One-Click')
        h.append('List-Id: <news.%s>' % dom)
        h.append('Feedback-ID: %d:%d:campaign:%s' % (rng.randrange(10**5), rng.randrange(10**5), dom))
    # Vendor headers pad the whole header block to a 2-6 KB target.
    pad_target = rng.randint(2048, 6144) - 1500
    pads, size, k = [], sum(len(x) + 2 for x in h), 0
    while size < pad_target:
        v = 'X-Vendor-%s-%d: %s' % (rng.choice(['Spam', 'Track', 'Campaign', 'MS-Exchange', 'Env']), k,
                                   base64.b64encode(rng.randbytes(rng.randint(20, 120))).decode())
        pads.append(v)
        size += len(v) + 2
        k += 1
    sender_rcv = [received(rng, 'app%d.int.%s' % (rng.randrange(9), dom), 'mail.%s' % dom, t, False)
                  for _ in range(rng.randint(1, 2))]
    signed_part = sender_rcv + h + pads
    sigs = [(dom, pick(rng, mix))]
    if rng.random() < double:
        # Second signer: an ESP-like other domain, its own algorithm draw.
        other = 'dom%d.example' % ((int(dom[3:-8]) + 1 + rng.randrange(N_DOMAINS - 1)) % N_DOMAINS)
        sigs.append((other, pick(rng, mix)))
    fail_kind = rng.choice(FAIL_KINDS) if rng.random() < fail else ''
    canon = pick(rng, canon_mix).encode()
    c_h, c_b = canon.split(b'/')
    outer = ['Return-Path: <bounce-%x@%s>' % (rng.getrandbits(32), dom),
             'Delivered-To: %s' % rcpts[0]]
    outer += [received(rng, 'mx%d.example.net' % rng.randrange(4), 'store%d.example.net' % rng.randrange(4), t + 5, False)
              for _ in range(rng.randint(1, 2))]
    outer.append('Authentication-Results: mx.example.net; spf=pass smtp.mailfrom=%s; dkim=pass header.d=%s' % (dom, dom))
    outer.append('Received-SPF: pass (mx.example.net: domain of %s designates %s as permitted sender) client-ip=%s;'
                 % (dom, ip(rng), ip(rng)))
    outer.append(received(rng, 'out%d.%s' % (rng.randrange(9), dom), 'mx%d.example.net' % rng.randrange(4), t + 2, True))
    return {
        'idx': idx, 'cls': cls, 'outer': outer, 'signed': signed_part,
        'body': '\r\n'.join(body_lines) + '\r\n', 'sigs': sigs, 'fail': fail_kind,
        'canon': (c_h, c_b), 'tamper_pos': rng.random(),
    }


SIGNED_HEADERS = [b'from', b'to', b'cc', b'subject', b'date', b'message-id', b'reply-to',
                  b'mime-version', b'content-type', b'list-unsubscribe', b'list-unsubscribe-post',
                  b'list-id', b'feedback-id', b'x-mailer']


class _FixedClock:
    """Stands in for the time module inside dkimpy while signing (t= tag)."""
    def __getattr__(self, name):
        return getattr(time, name)

    @staticmethod
    def time():
        return float(SIGN_TIME)


_KEYS = None
_CFG = None


def _init_worker(keys, cfg):
    global _KEYS, _CFG
    _KEYS, _CFG = keys, cfg
    dkim.time = _FixedClock()


def render(idx):
    cfg = _CFG
    p = make_message(cfg['seed'], idx, cfg['mix'], cfg['double'], cfg['fail'], cfg['canon'])
    head = ''.join(x + '\r\n' for x in p['signed']).encode()
    body = p['body'].encode()
    msg = head + b'\r\n' + body
    sig_fields = []
    revoked = p['fail'] == 'revoked'
    for dom, alg in p['sigs']:
        sel = selector_for(alg, revoked)
        priv, _ = _KEYS[(dom, sel)]
        present = [x for x in SIGNED_HEADERS if ('\n' + x.decode() + ':').encode() in b'\n' + head.lower()]
        sig = dkim.sign(msg, sel.encode(), dom.encode(), priv, canonicalize=p['canon'],
                        signature_algorithm=ALGS[alg][0], include_headers=present)
        sig_fields.append(sig)
        # A second signer signs the message with the first signature on it.
        msg = sig + msg
        head = sig + head
    outer = ''.join(x + '\r\n' for x in p['outer']).encode()
    signed_head = b''.join(reversed(sig_fields)) + ''.join(x + '\r\n' for x in p['signed']).encode()
    hops = arc_plan(cfg['seed'], idx, cfg['arc'], cfg['arc_hops'][0], cfg['arc_hops'][1], p['sigs'][0][0])
    for k, fwd in enumerate(hops, 1):
        # Each forwarder records what it saw, then seals (RFC 8617 5.1).
        ar = ('Authentication-Results: %s; dkim=pass header.d=%s header.s=%s; arc=%s\r\n' % (
            fwd, p['sigs'][0][0], selector_for(p['sigs'][0][1], False), 'none' if k == 1 else 'pass')).encode()
        signed_head = ar + signed_head
        priv, _ = _KEYS[(fwd, ARC_ALG)]
        present = [x for x in SIGNED_HEADERS if ('\n' + x.decode() + ':').encode() in b'\n' + signed_head.lower()]
        arc_set = dkim.arc_sign(signed_head + b'\r\n' + body, ARC_ALG.encode(), fwd.encode(), priv,
                                fwd.encode(), include_headers=present,
                                timestamp=SIGN_TIME + 60 * k)
        if len(arc_set) != 3:
            raise SystemExit('gen_corpus: ARC sealing of message %d hop %d by %s produced no set' % (idx, k, fwd))
        signed_head = b''.join(arc_set) + signed_head
    if p['fail'] == 'body':
        # Change one letter in the text part, so every canonicalisation sees it.
        pos = body.find(b' the ', int(len(body) * p['tamper_pos'] * 0.3))
        if pos < 0:
            pos = body.find(b'<p')
        body = body[:pos + 1] + (b'T' if body[pos + 1:pos + 2] != b'T' else b't') + body[pos + 2:]
    elif p['fail'] == 'header':
        signed_head = signed_head.replace(b'\r\nSubject: ', b'\r\nSubject: Re: ', 1)
    full = outer + signed_head + b'\r\n' + body
    hdr_bytes = len(outer) + len(signed_head) + 2
    name = '%06d.eml' % idx
    with open(os.path.join(cfg['out'], 'msgs', name), 'wb') as f:
        f.write(full)
    algs = '+'.join(a for _, a in p['sigs'])
    return '\t'.join([name, p['cls'], algs, str(hdr_bytes), str(len(body)), str(len(p['sigs'])),
                      'fail' if p['fail'] else 'pass', p['fail'] or '-', str(len(hops))])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('dir')
    ap.add_argument('-n', type=int, default=2000, help='number of messages (default 2000)')
    ap.add_argument('--seed', type=int, default=20261129)
    ap.add_argument('--mix', default='rsa2048=1.0', help='signing algorithms, e.g. rsa2048=0.7,ed25519=0.3')
    ap.add_argument('--double', type=float, default=0.0, help='fraction with two signatures')
    ap.add_argument('--fail', type=float, default=0.0, help='fraction that must fail (body/header/revoked)')
    ap.add_argument('--arc', type=float, default=0.0, help='fraction with an ARC chain (sealed by forwarders)')
    ap.add_argument('--arc-hops', default='1-3', help='ARC chain length range, e.g. 1-3 (uniform)')
    ap.add_argument('--canon', default='relaxed/relaxed=1.0',
                    help='canonicalisation mix, e.g. relaxed/relaxed=0.8,relaxed/simple=0.15,simple/simple=0.05')
    ap.add_argument('--jobs', type=int, default=os.cpu_count() or 1)
    ap.add_argument('--key-cache', default=None,
                    help='folder of keys shared between corpora (RSA-4096 generation is slow)')
    ap.add_argument('--print-params', action='store_true',
                    help='print the params.json these options would write, and exit')
    a = ap.parse_args()
    params = {'n': a.n, 'seed': a.seed, 'mix': a.mix, 'double': a.double, 'fail': a.fail,
              'canon': a.canon, 'generator': 2}
    if a.arc > 0:
        # only then: corpora without ARC keep their params (and are reused)
        params['arc'] = a.arc
        params['arc_hops'] = a.arc_hops
    if a.print_params:
        print(json.dumps(params, sort_keys=True))
        return
    mix = parse_mix(a.mix, list(ALGS))
    canon = parse_mix(a.canon, ['relaxed/relaxed', 'relaxed/simple', 'simple/simple', 'simple/relaxed'])
    try:
        hops_lo, _, hops_hi = a.arc_hops.partition('-')
        arc_hops = (int(hops_lo), int(hops_hi or hops_lo))
    except ValueError:
        raise SystemExit('gen_corpus: --arc-hops must be N or N-M')
    if not 1 <= arc_hops[0] <= arc_hops[1] <= 50:
        raise SystemExit('gen_corpus: --arc-hops must lie within 1-50 (RFC 8617 instance limit)')
    for v, what in ((a.double, '--double'), (a.fail, '--fail'), (a.arc, '--arc')):
        if not 0.0 <= v <= 1.0:
            raise SystemExit('gen_corpus: %s must be within [0, 1]' % what)
    if a.n < 1:
        raise SystemExit('gen_corpus: -n must be at least 1')
    if a.arc > 0:
        try:
            import authres  # noqa: F401  (dkimpy's ARC signer needs it, and only Suggests it)
        except ImportError:
            raise SystemExit('gen_corpus: --arc needs python3-authres (dkimpy seals ARC with it): '
                             'apt-get install python3-authres')
    t0 = time.time()
    os.makedirs(os.path.join(a.dir, 'msgs'), exist_ok=True)
    for old in os.listdir(os.path.join(a.dir, 'msgs')):
        os.unlink(os.path.join(a.dir, 'msgs', old))
    algs = sorted({name for name, w in mix if w > 0} | ({ARC_ALG} if a.arc > 0 else set()))
    if a.key_cache:
        os.makedirs(a.key_cache, exist_ok=True)
    keys, records = build_keys(a.dir, algs, a.jobs, a.key_cache)
    write_key_files(a.dir, records)
    cfg = {'seed': a.seed, 'mix': mix, 'double': a.double, 'fail': a.fail, 'canon': canon, 'out': a.dir,
           'arc': a.arc, 'arc_hops': arc_hops}
    if a.jobs > 1:
        with multiprocessing.Pool(a.jobs, initializer=_init_worker, initargs=(keys, cfg)) as pool:
            rows = pool.map(render, range(a.n), chunksize=8)
    else:
        _init_worker(keys, cfg)
        rows = [render(i) for i in range(a.n)]
    with open(os.path.join(a.dir, 'manifest.tsv'), 'w') as f:
        f.write('file\tcategory\talgs\theader_bytes\tbody_bytes\tnsigs\texpected\tfail_kind\tarc_hops\n')
        for r in rows:
            f.write(r + '\n')
    with open(os.path.join(a.dir, 'params.json'), 'w') as f:
        json.dump(params, f, sort_keys=True)
        f.write('\n')
    total = sum(int(r.split('\t')[3]) + int(r.split('\t')[4]) for r in rows)
    print('gen_corpus: %d messages, %.1f MB, in %.1f s -> %s' % (a.n, total / 1e6, time.time() - t0, a.dir),
          file=sys.stderr)


if __name__ == '__main__':
    main()
