# Sourced by the capture scripts that run Postfix instances side by side
# (outbound/make-outbound.sh, realmta/make-realmta.sh): the master.cf
# services every instance has, and setup_instance. Needs $d (the scratch
# folder the instances live in).

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
