#!/usr/bin/env bash
# Source rules that a compiler does not enforce.
#  - never: strcpy, strcat, sprintf, vsprintf, strtok, gets (anywhere in C)
#  - in dataplane hot-path files (those carrying the marker line
#    "wireseal: hot-path"): no malloc/calloc/realloc/free and no printf family.
# Comments and string literals are blanked first, so prose may name them.
# Usage: check-source.sh [ROOT]   (default: the repository root)
# Exit 0 when clean; 1 with one line per violation.
set -u
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root" || exit 2
find . \( -path ./build -o -path './build-*' -o -path ./.git \) -prune -o \
    \( -name '*.c' -o -name '*.h' \) -print | sort | xargs -r awk '
FNR == 1 { c = 0; hot = 0 }
/wireseal: hot-path/ { hot = 1 }
{
    line = $0; out = ""
    # blank string and character literals (escapes included)
    gsub(/"([^"\\]|\\.)*"/, "\"\"", line)
    gsub(/\047([^\047\\]|\\.)*\047/, "\047\047", line)
    while (length(line)) {
        if (c) { i = index(line, "*/"); if (!i) { line = ""; break } line = substr(line, i + 2); c = 0 }
        else {
            i = index(line, "/*"); j = index(line, "//")
            if (j && (!i || j < i)) { out = out substr(line, 1, j - 1); line = ""; break }
            if (!i) { out = out line; line = ""; break }
            out = out substr(line, 1, i - 1); line = substr(line, i + 2); c = 1
        }
    }
    if (out ~ /(^|[^A-Za-z0-9_])(strcpy|strcat|sprintf|vsprintf|strtok|gets)[[:space:]]*\(/) {
        print FILENAME ":" FNR ": banned function: " $0; bad = 1
    }
    if (hot && FILENAME ~ /^\.\/dataplane\// &&
        out ~ /(^|[^A-Za-z0-9_])(malloc|calloc|realloc|free|printf|fprintf|puts)[[:space:]]*\(/) {
        print FILENAME ":" FNR ": not in a hot-path file: " $0; bad = 1
    }
}
END { exit bad ? 1 : 0 }'
# xargs says 123 when the checker found something
[ "${PIPESTATUS[2]}" -eq 0 ] || exit 1
