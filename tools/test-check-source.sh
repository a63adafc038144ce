#!/usr/bin/env bash
# The source check passes on the tree and fails on planted violations.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=${WS_SOURCE_ROOT:-$(cd "$here/.." && pwd)}
fails=0
expect() { # expect <0|1> <what> <dir>
    out=$(bash "$here/check-source.sh" "$3"); rc=$?
    if [ "$rc" -ne "$1" ]; then echo "FAIL: $2 (rc=$rc, want $1)"; echo "$out"; fails=$((fails+1)); else echo "ok: $2"; fi
}
expect 0 "repository is clean" "$root"

t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
mkdir -p "$t/auth" "$t/dataplane"
printf 'void f(char *d){ /* strcpy( in a comment is fine */ const char *s = "sprintf("; (void)s; d[0]=0; }\n' > "$t/auth/ok.c"
expect 0 "names inside comments and strings are allowed" "$t"
printf 'void f(char *d, const char *s){ strcpy(d, s); }\n' > "$t/auth/bad.c"
expect 1 "strcpy is rejected" "$t"
rm "$t/auth/bad.c"
printf '#include <string.h>\nvoid f(char *s){ (void)strtok (s, ","); }\n' > "$t/auth/bad2.c"
expect 1 "strtok with a space before ( is rejected" "$t"
rm "$t/auth/bad2.c"
printf '/* wireseal: hot-path */\n#include <stdlib.h>\nvoid *f(void){ return malloc(4); }\n' > "$t/dataplane/hot.c"
expect 1 "malloc in a hot-path dataplane file is rejected" "$t"
printf '#include <stdlib.h>\nvoid *f(void){ return malloc(4); }\n' > "$t/dataplane/hot.c"
expect 0 "malloc in a cold dataplane file is allowed" "$t"
[ "$fails" -eq 0 ]
