"""Helpers shared by the Python-driven suites (run with /usr/bin/python3).

- paths: the source, build and shared folders as tests/meson.build passes them;
- zone_text: an RFC 1035 master file from (name, TXT text) pairs, strings
  split at 255 octets and escaped, the format `wireseal --zone` and nsd read;
- run_json: run a wireseal sub-command and parse its JSON lines;
- dnsd_start: tests/harness/dnsd.py (real nsd) started, its settings read;
- Tally: counts checks and prints the closing summary.
"""
import json
import os
import re
import subprocess
import sys

SOURCE = os.environ.get("WS_SOURCE_ROOT", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BUILD = os.environ.get("WS_BUILD_ROOT", os.path.join(SOURCE, "build"))
SHARED = os.environ.get("WS_SHARED_DIR", os.path.join(SOURCE, "..", "shared"))
WIRESEAL = os.path.join(BUILD, "wireseal")
DNSD = os.path.join(SOURCE, "tests", "harness", "dnsd.py")

_NAME_OK = re.compile(r"^[A-Za-z0-9_.-]+$")


def quote_strings(text):
    """TXT text as one or more <=255-octet quoted character-strings."""
    data = text.encode("utf-8", "surrogateescape")
    parts = [data[i:i + 255] for i in range(0, len(data), 255)] or [b""]
    out = []
    for p in parts:
        s = "".join(
            "\\" + chr(b) if b in (0x22, 0x5C) else chr(b) if 0x20 <= b < 0x7F else "\\%03d" % b
            for b in p)
        out.append('"' + s + '"')
    return " ".join(out)


def zone_text(records, ttl=300):
    """records: iterable of (name, txt). Names DNS cannot hold are skipped."""
    lines = ["$TTL %d" % ttl]
    for name, txt in records:
        name = name.rstrip(".")
        if not _NAME_OK.match(name) or any(len(l) == 0 or len(l) > 63 for l in name.split(".")):
            continue
        lines.append("%s. IN TXT ( %s )" % (name, quote_strings(txt)))
    return "\n".join(lines) + "\n"


def read_dns_txt(path):
    """`name TXT-text` lines (# comments); values NXDOMAIN / ~~...~~ are not records."""
    out = []
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            line = line.rstrip("\r\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            parts = line.split(None, 1)
            if len(parts) < 2:
                continue
            name, value = parts
            value = value.strip()
            if value == "NXDOMAIN" or value.startswith("~~"):
                continue
            if value == '""':
                value = ""
            out.append((name, value))
    return out


def run_json(args, check_rc=None):
    p = subprocess.run([WIRESEAL] + args, capture_output=True, text=True)
    if check_rc is not None and p.returncode != check_rc:
        raise RuntimeError("wireseal %s: exit %d\n%s" % (" ".join(args), p.returncode, p.stderr))
    objs = [json.loads(l) for l in p.stdout.splitlines() if l.strip()]
    return objs, p


class Tally:
    def __init__(self, name):
        self.name, self.passed, self.failed = name, 0, 0

    def check(self, ok, what):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            print("FAIL %s: %s" % (self.name, what))
        return ok

    def finish(self):
        print("%s: %d passed, %d failed" % (self.name, self.passed, self.failed))
        sys.exit(0 if self.failed == 0 and self.passed > 0 else 1)


def dnsd_start(args):
    """Start tests/harness/dnsd.py with args (--zone NAME=FILE, --blackhole
    NAME ...) -> (process, settings): the NAME=VALUE lines it prints before
    "ready" (WS_DNSD_PORT, WS_DNSD_UNBOUND_CONF, ...). settings is None when
    it did not start; the process has then exited (its returncode says how).
    The caller stops it by closing its stdin."""
    p = subprocess.Popen([DNSD] + args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    env = {}
    for line in p.stdout:
        line = line.strip()
        if line == "ready":
            break
        k, _, v = line.partition("=")
        env[k] = v
    if "WS_DNSD_UNBOUND_CONF" not in env:
        p.wait()
        return p, None
    return p, env
