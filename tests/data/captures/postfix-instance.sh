# Sourced by the capture scripts that run Postfix instances side by side
# (outbound/make-outbound.sh, realmta/make-realmta.sh): the two network
# namespaces and their veth pair (netns_pair_up, with the cleanup it traps
# on exit), the master.cf services every instance has, and setup_instance.
# Needs $d (the scratch folder the instances live in), NS_S/NS_R (sender's
# and receiver's namespace), VA/VB (their veth ends), SND/RCV (addresses).

master_common='pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
smtp      unix  -       -       n       -       -       smtp
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd'

# instance: name, extra main.cf lines, extra master.cf lines
setup_instance() {
  local inst=$1 extra=$2 mextra=$3
  mkdir -p "$d/$inst/etc" "$d/$inst/spool" "$d/$inst/data"
  chown postfix: "$d/$inst/data"
  cat > "$d/$inst/etc/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $d/$inst/spool
data_directory = $d/$inst/data
mail_owner = postfix
setgid_group = postdrop
inet_protocols = ipv4
alias_maps =
alias_database =
biff = no
smtputf8_enable = no
smtp_dns_support_level = disabled
smtp_host_lookup = native
maillog_file = $d/$inst/maillog
maillog_file_prefixes = $d
$extra
EOF
  printf '%s\n%s\n' "$mextra" "$master_common" > "$d/$inst/etc/master.cf"
  postfix -c "$d/$inst/etc" post-install create-missing >/dev/null 2>&1 || true
}

# On exit: the instances stopped, tcpdump ($tcpdump_pid) killed, the
# namespaces and the scratch folder removed (WS_KEEP=1 keeps the folder).
netns_pair_cleanup() {
  for inst in snd rcv; do
    [ -f "$d/$inst/etc/main.cf" ] && postfix -c "$d/$inst/etc" stop >/dev/null 2>&1 || true
  done
  sleep 1
  [ -n "${tcpdump_pid:-}" ] && kill "$tcpdump_pid" 2>/dev/null || true
  ip netns del $NS_S 2>/dev/null || true
  ip netns del $NS_R 2>/dev/null || true
  rm -rf /etc/netns/$NS_S /etc/netns/$NS_R
  [ -n "${WS_KEEP:-}" ] || rm -rf "$d"
}

# The sender's and receiver's namespaces joined by a veth pair; the sender
# finds the MX (mx.rcv.example) through its hosts file (ip netns exec
# mounts it).
netns_pair_up() {
  trap netns_pair_cleanup EXIT
  ip netns add $NS_S
  ip netns add $NS_R
  ip link add $VA netns $NS_S type veth peer name $VB netns $NS_R
  ip -n $NS_S addr add $SND/24 dev $VA
  ip -n $NS_R addr add $RCV/24 dev $VB
  for ns in $NS_S $NS_R; do ip -n $ns link set lo up; done
  ip -n $NS_S link set $VA up
  ip -n $NS_R link set $VB up
  mkdir -p /etc/netns/$NS_S
  printf '127.0.0.1 localhost\n%s mx.rcv.example\n' $RCV > /etc/netns/$NS_S/hosts
}
