#!/usr/bin/env bash
# Source rules that a compiler does not enforce.
#  - never: strcpy, strcat, sprintf, vsprintf, strtok, gets (anywhere in C)
#  - in dataplane hot-path files (those carrying the marker line
#    "wireseal: hot-path"): no malloc/calloc/realloc/free and no printf family.
# Usage: check-source.sh [ROOT]   (default: the repository root)
# Exit 0 when clean; 1 with one line per violation.
set -u
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
status=0

mapfile -t cfiles < <(cd "$root" && find . -path ./build -prune -o -path './build-*' -prune \
    -o \( -name '*.c' -o -name '*.h' \) -print | sort)

# Comments and string literals are blanked first so that prose may name them.
strip() {
    sed -E -e 's#//.*$##' -e 's#"([^"\\]|\\.)*"#""#g' "$1" \
        | awk 'BEGIN{c=0} { out=""; s=$0;
            while (length(s)) {
              if (c) { i=index(s,"*/"); if (!i) { s=""; break } s=substr(s,i+2); c=0 }
              else { i=index(s,"/*"); if (!i) { out=out s; s=""; break }
                     out=out substr(s,1,i-1); s=substr(s,i+2); c=1 } }
            print out }'
}

for f in "${cfiles[@]}"; do
    body=$(strip "$root/$f")
    hits=$(printf '%s\n' "$body" | grep -nE '(^|[^A-Za-z0-9_])(strcpy|strcat|sprintf|vsprintf|strtok|gets)[[:space:]]*\(' || true)
    if [ -n "$hits" ]; then
        while IFS= read -r h; do echo "$f:${h%%:*}: banned function: ${h#*:}"; done <<<"$hits"
        status=1
    fi
    case "$f" in
    ./dataplane/*)
        if grep -q 'wireseal: hot-path' "$root/$f"; then
            hits=$(printf '%s\n' "$body" | grep -nE '(^|[^A-Za-z0-9_])(malloc|calloc|realloc|free|printf|fprintf|puts)[[:space:]]*\(' || true)
            if [ -n "$hits" ]; then
                while IFS= read -r h; do echo "$f:${h%%:*}: not in a hot-path file: ${h#*:}"; done <<<"$hits"
                status=1
            fi
        fi
        ;;
    esac
done
exit $status
