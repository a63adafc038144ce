#!/usr/bin/env bash
# Monitor mode in one command, both halves:
#   deploy/monitor.sh IFACE [CONFIG]       (as root; CONFIG defaults to deploy/wireseal.yaml)
# starts build/wireseal-cp with CONFIG, waits until it answers on its control
# socket, then runs build/wireseal-dp on IFACE (af_packet vdev, RX only)
# connected to the control plane's cpm socket. Ctrl-C stops both. Without a
# built dataplane the control plane runs alone (for a dataplane started by hand).
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
trap 'kill "$cp_pid" 2>/dev/null; wait "$cp_pid" 2>/dev/null || true' EXIT INT TERM
for _ in $(seq 100); do
    "$build/wiresealctl" -s "$ctl" status >/dev/null 2>&1 && break
    kill -0 "$cp_pid" 2>/dev/null || { echo "monitor.sh: wireseal-cp did not start" >&2; exit 1; }
    sleep 0.1
done
echo "monitor.sh: control plane up (verdicts: $json; metrics: curl -s http://127.0.0.1:9187/metrics)"

if [ -x "$build/wireseal-dp" ]; then
    "$build/wireseal-dp" --vdev="net_af_packet0,iface=$iface" --cp "$cpm"
else
    echo "monitor.sh: $build/wireseal-dp is not built; the control plane waits on $cpm (Ctrl-C stops it)"
    wait "$cp_pid"
fi
