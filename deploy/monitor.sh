#!/usr/bin/env bash
# Monitor mode in one command, both halves:
#   deploy/monitor.sh IFACE [CONFIG]       (as root; CONFIG defaults to deploy/wireseal.yaml)
# starts build/wireseal-cp with CONFIG (it drops to CONFIG's `user` once its
# sockets and files are open), waits until it answers on its control socket,
# then runs build/wireseal-dp on IFACE (DPDK net_af_packet vdev: the NIC
# stays the kernel's, wireseal only reads a copy of its traffic) connected
# to the control plane's cpm socket: keys come from the control plane
# (asynchronously, messages parked meanwhile), verdicts go to its sinks.
# Ctrl-C (or SIGTERM) stops both. Without a built dataplane the control
# plane runs alone (for a dataplane started by hand).
#
# Environment: BUILD (default ./build), DP_OPTS (more wireseal-dp options,
# e.g. "--workers 2 --smtp-ports 25,587,2525"), DP_LCORES (default 0-1),
# DP_MEM_MB (default 512, no hugepages needed).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$root/build}
iface=${1:?usage: deploy/monitor.sh IFACE [CONFIG]}
conf=${2:-$root/deploy/wireseal.yaml}

"$build/wireseal-cp" -c "$conf" --check-config >/dev/null
# the paths the daemon needs, read back from the configuration it will use
get() { sed -n -E "s/^[[:space:]]*$1:[[:space:]]*\"?([^\"#]*)\"?.*$/\1/p" "$conf" | head -1 | sed 's/[[:space:]]*$//'; }
user=$(get user)
cpm=$(get cpm_socket); cpm=${cpm:-/run/wireseal/cpm.sock}
ctl=$(get control_socket); ctl=${ctl:-/run/wireseal/ctl.sock}
json=$(get json_file); json=${json:-/var/log/wireseal/eve.json}
for d in "$(dirname "$cpm")" "$(dirname "$ctl")" "$(dirname "$json")"; do
    mkdir -p "$d"
    [ -n "$user" ] && chown "$user:" "$d"
done

"$build/wireseal-cp" -c "$conf" &
cp_pid=$!
dp_pid=
stop() {
    [ -n "$dp_pid" ] && kill -INT "$dp_pid" 2>/dev/null && wait "$dp_pid" 2>/dev/null || true
    kill "$cp_pid" 2>/dev/null; wait "$cp_pid" 2>/dev/null || true
}
trap stop EXIT
trap 'exit 130' INT TERM
for _ in $(seq 100); do
    "$build/wiresealctl" -s "$ctl" status >/dev/null 2>&1 && break
    kill -0 "$cp_pid" 2>/dev/null || { echo "monitor.sh: wireseal-cp did not start" >&2; exit 1; }
    sleep 0.1
done
echo "monitor.sh: control plane up (verdicts: $json; status: $build/wiresealctl -s $ctl status)"

if [ -x "$build/wireseal-dp" ]; then
    # shellcheck disable=SC2086
    "$build/wireseal-dp" --cp "$cpm" ${DP_OPTS:-} -- -l "${DP_LCORES:-0-1}" --no-huge \
        -m "${DP_MEM_MB:-512}" --no-pci --file-prefix="wireseal-mon-$iface" \
        --log-level='*:error' --vdev="net_af_packet0,iface=$iface" &
    dp_pid=$!
    wait "$dp_pid"
else
    echo "monitor.sh: $build/wireseal-dp is not built; the control plane waits on $cpm (Ctrl-C stops it)"
    wait "$cp_pid"
fi
