#!/usr/bin/env bash
# `meson setup` must stop with the Debian package to install when a library
# is missing. Hides one pkg-config file at a time (a private copy of the
# pkg-config search path without it) and checks the message names the package.
set -u
root=${WS_SOURCE_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
fails=0
mkdir -p "$t/pc"
for d in $(pkg-config --variable pc_path pkg-config | tr ':' ' '); do
    [ -d "$d" ] && cp -n "$d"/*.pc "$t/pc/" 2>/dev/null
done
check() { # check <pc file to hide> <package expected in the message>
    rm -rf "$t/pc-hidden" "$t/b"
    cp -r "$t/pc" "$t/pc-hidden"
    rm -f "$t/pc-hidden/$1"
    out=$(PKG_CONFIG_LIBDIR="$t/pc-hidden" PKG_CONFIG_PATH= meson setup "$t/b" "$root" 2>&1)
    rc=$?
    if [ $rc -ne 0 ] && grep -q "install the Debian package $2" <<<"$out"; then
        echo "ok: without $1 meson setup names $2"
    else
        echo "FAIL: without $1 (rc=$rc):"; tail -5 <<<"$out"; fails=$((fails+1))
    fi
}
check libhs.pc libhyperscan-dev
check libunbound.pc libunbound-dev
check libdpdk.pc libdpdk-dev
# and with everything present it configures
rm -rf "$t/b"
if PKG_CONFIG_LIBDIR="$t/pc" PKG_CONFIG_PATH= meson setup "$t/b" "$root" >/dev/null 2>&1; then
    echo "ok: with every .pc present meson setup succeeds"
else
    echo "FAIL: meson setup fails with every .pc present"; fails=$((fails+1))
fi
[ $fails -eq 0 ]
