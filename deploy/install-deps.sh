#!/usr/bin/env bash
# Installs every Debian 12 package that wireseal's build, tests and benchmarks
# need. Idempotent; run as root. Debian's archive is the only network source.
#   install-deps.sh              apt-get update, then install the whole list
#   install-deps.sh --if-missing do nothing when every package is already there
set -euo pipefail

packages=(
    # build
    build-essential meson ninja-build pkg-config clang
    # libraries (DESIGN.md, "Dependencies")
    dpdk dpdk-dev libdpdk-dev libipsec-mb-dev libssl-dev openssl libsodium-dev
    libhyperscan-dev libjemalloc-dev libunbound-dev libcurl4-openssl-dev libpsl-dev
    publicsuffix libmicrohttpd-dev libevent-dev libyaml-dev libpcap-dev libcmocka-dev
    zlib1g-dev libsqlite3-dev
    # tests: real peers and real servers
    python3 python3-dkim python3-spf python3-yaml python3-dnspython
    libmail-dkim-perl opendkim-tools libopendkim-dev nsd ldnsutils tcpdump
    # control-plane tests: scrape the metrics endpoint, check the exposition format
    curl prometheus
    nginx-light
    # e2e real-MTA capture (tests/e2e/postfix_capture.py runs its own instance)
    postfix swaks
    # ...and the Exim that sends it BDAT, unpacked from its package (it conflicts with postfix)
    libidn12
    # monitor mode on a veth (tests/e2e/monitor_live.py turns offloads off)
    ethtool iproute2
    # STARTTLS/TLS capture generator (tests/tools/gen_sts_pcap.py: test certificates)
    python3-cryptography
    # benchmarks
    gnuplot-nox rspamd python3-nacl util-linux
    # dkimpy's ARC signer (bench/gen_corpus.py --arc); python3-dkim only Suggests it
    python3-authres
)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if [ "${1:-}" = "--if-missing" ] && [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps.sh: missing packages (${missing[*]}); run me as root" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${packages[@]}"
