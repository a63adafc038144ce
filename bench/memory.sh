#!/usr/bin/env bash
# Peak memory of `wireseal verify` on a 5 KB and on a 50 MB signed message:
# the body streams through the canonicaliser, so the two should differ by
# less than 2 MB (issue target). Prints one JSON line; gates nothing.
# Usage: bench/memory.sh [BUILD_DIR]
set -euo pipefail
build=${1:-build}
ws="$build/wireseal"
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
sample=tests/data/sample
mk() { # mk FILE BODY_BYTES
    { printf 'From: big@sample.example\r\nTo: r@example.org\r\nSubject: size test\r\n\r\n'
      head -c "$2" /dev/urandom | base64 -w 76 | sed 's/$/\r/'; } > "$1"
}
mk "$d/small.eml" 3500
mk "$d/big.eml" 37000000     # base64 of 37 MB is ~50 MB
for m in small big; do
    "$ws" sign --key "$sample/rsa2048.pem" --domain sample.example --selector mail2026 \
        "$d/$m.eml" > "$d/$m.signed"
done
peak() { /usr/bin/time -f '%M' "$ws" verify --zone "$sample/zone.db" "$d/$1.signed" 2>&1 >/dev/null | tail -1; }
small_kb=$(peak small); big_kb=$(peak big)
ok_small=$("$ws" verify --zone "$sample/zone.db" "$d/small.signed" | grep -c 'dkim=pass' || true)
ok_big=$("$ws" verify --zone "$sample/zone.db" "$d/big.signed" | grep -c 'dkim=pass' || true)
printf '{"what": "verify peak RSS", "small_bytes": %d, "big_bytes": %d, "small_kb": %d, "big_kb": %d, "delta_kb": %d, "both_pass": %s}\n' \
    "$(stat -c %s "$d/small.signed")" "$(stat -c %s "$d/big.signed")" "$small_kb" "$big_kb" \
    "$((big_kb - small_kb))" "$([ "$ok_small$ok_big" = 11 ] && echo true || echo false)"
