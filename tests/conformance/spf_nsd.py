"""SPF conformance through a real authoritative server: one nsd per YAML
file, each scenario its own zone sNN.wsspf (every name suffixed), and the
suite's TIMEOUT names sent to dnsd.py's blackhole, which never answers.

  spf_nsd.py SPF_SUITE FILE [spf_suite options: --expect N --expect-in-memory N ...]

Stage one: `spf_suite FILE --emit-nsd DIR` writes the zones, DIR/zones and
DIR/blackholes; stage two: `spf_suite FILE --nsd ...` runs inside
tests/harness/dnsd.py, resolving through ws_dns with dnsd.py's unbound.conf.
Tests the DNS path cannot express are decided in memory and listed by
spf_suite (IN-MEMORY lines); --expect-in-memory pins how many.
Run with /usr/bin/python3. Exit status: spf_suite's (77 when nsd is missing).
"""
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
DNSD = os.path.join(HERE, "..", "harness", "dnsd.py")


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    suite, yml, extra = sys.argv[1], sys.argv[2], sys.argv[3:]
    d = tempfile.mkdtemp(prefix="ws-spf-nsd-")
    try:
        p = subprocess.run([suite, yml, "--emit-nsd", d], capture_output=True, text=True)
        if p.returncode != 0:
            print("spf_nsd.py: emit failed: %s%s" % (p.stdout, p.stderr), file=sys.stderr)
            return 1
        args = []
        with open(os.path.join(d, "zones")) as f:
            for line in f:
                if line.strip():
                    args += ["--zone", line.strip()]
        for fname, opt in (("blackholes", "--blackhole"), ("via-nsd", "--via-nsd")):
            with open(os.path.join(d, fname)) as f:
                for line in f:
                    if line.strip():
                        args += [opt, line.strip()]
        cmd = ["/usr/bin/python3", DNSD, "--dir", os.path.join(d, "dnsd")] + args + \
              ["--", suite, yml, "--nsd"] + extra
        return subprocess.run(cmd).returncode
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
