#!/bin/bash
# Regenerates the STARTTLS/TLS wire-signal captures, ca.pem and expected.json
# (tests/tools/gen_sts_pcap.py says what each holds). Not byte-deterministic:
# TLS randoms, keys and certificates are new on every run; expected.json
# depends only on the script.
#   tests/data/captures/sts/make-captures.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../../.." && pwd)
rm -f "$here"/*.pcap
/usr/bin/python3 "$root/tests/tools/gen_sts_pcap.py" "$here"
