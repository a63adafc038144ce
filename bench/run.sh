#!/usr/bin/env bash
# wireseal benchmark runner (`make bench`). A measurement: it gates nothing.
#
#   bench/run.sh            the default run: ~5-10 min on 2 cores
#   BENCH_QUICK=1 bench/run.sh   small corpora, 1 repetition (smoke test)
#
# Steps: build; generate (or reuse) the corpora under bench/corpus/; OpenSSL
# primitive rates (openssl speed); then, per repetition and per corpus, the
# physical limit, every peer and wireseal (when `build/wireseal verify`
# exists), each pinned with taskset to $BENCH_CPU; rspamd runs its
# repetitions inside one server start. Writes bench/results/<date>-<host>.json,
# .md and two PNG plots (bench/report.py). A peer that cannot run is
# reported with its exact error, never dropped.
#
# Environment: BENCH_REPS (3), BENCH_CPU (1, or 0 on a 1-CPU machine),
# BENCH_BUILD (build), BENCH_QUICK (0), BENCH_PEERS (all: space-separated
# subset of physlimit libopendkim dkimpy mail-dkim rspamd wireseal, plus the
# opt-in rspamd-nofilter: rspamd with no filter).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
py=/usr/bin/python3
build=${BENCH_BUILD:-build}
reps=${BENCH_REPS:-3}
quick=${BENCH_QUICK:-0}
peers=${BENCH_PEERS:-physlimit libopendkim dkimpy mail-dkim rspamd wireseal}
if [ "$(nproc)" -gt 1 ]; then cpu=${BENCH_CPU:-1}; client_cpu=0; else cpu=${BENCH_CPU:-0}; client_cpu=0; fi
[ "$quick" = 1 ] && reps=${BENCH_REPS:-1}

# name | messages | generator options. rsa2048 is the reference corpus
# (the shape of shared/research/perf-anchors.md); mixed is a realistic blend
# of key sizes and types, double signatures, failures and canonicalisations.
corpora=(
    "rsa2048|2000|--mix rsa2048=1.0 --canon relaxed/relaxed=1.0"
    "mixed|1000|--mix rsa2048=0.6,rsa1024=0.1,rsa3072=0.05,rsa4096=0.05,ed25519=0.2 --double 0.2 --fail 0.05 --canon relaxed/relaxed=0.8,relaxed/simple=0.15,simple/simple=0.05"
)
seed=20261129

stamp_day=$(date -u +%Y-%m-%d)
host=$(hostname -s 2>/dev/null || hostname)
scratch="$here/results/scratch/$stamp_day-$host"
raw="$scratch/raw.jsonl"
mkdir -p "$scratch" "$here/corpus"
: >"$raw"
t_start=$(date +%s)

log() { printf '[bench %4ds] %s\n' $(($(date +%s) - t_start)) "$*" >&2; }

# Appends one record to raw.jsonl: the driver's JSON lines, or, when it failed
# or printed nothing, an error record with its exit status and stderr tail.
record() {
    local peer=$1 corpus=$2 rep=$3
    shift 3
    local out err rc
    out="$scratch/out.$$" err="$scratch/err.$$"
    "$@" >"$out" 2>"$err"
    rc=$?
    if grep -q '^{' "$out"; then
        grep '^{' "$out" | REP=$rep RC=$rc $py -c '
import json, os, sys
for line in sys.stdin:
    o = json.loads(line)
    o.setdefault("rep", int(os.environ["REP"])); o["exit"] = int(os.environ["RC"])
    print(json.dumps(o))' >>"$raw"
    fi
    if ! grep -q '^{' "$out" || { [ $rc -ne 0 ] && ! grep -q '"error"' "$out"; }; then
        PEER=$peer CORPUS=$corpus REP=$rep RC=$rc ERR="$(tail -c 600 "$err")" $py -c '
import json, os
print(json.dumps({"peer": os.environ["PEER"], "corpus": os.environ["CORPUS"], "rep": int(os.environ["REP"]),
                  "exit": int(os.environ["RC"]), "error": "exit %s: %s" % (os.environ["RC"], os.environ["ERR"].strip())}))' >>"$raw"
    fi
    tail -n 1 "$out" | cut -c1-160 >&2
    rm -f "$out" "$err"
}

want() { case " $peers " in *" $1 "*) return 0 ;; esac; return 1; }

# ---------------------------------------------------------------- build
log "build ($build)"
if [ ! -f "$root/$build/build.ninja" ]; then
    meson setup "$root/$build" --werror >"$scratch/meson.log" 2>&1 || { cat "$scratch/meson.log" >&2; exit 1; }
fi
ninja -C "$root/$build" >"$scratch/ninja.log" 2>&1 || { tail -30 "$scratch/ninja.log" >&2; exit 1; }

# ---------------------------------------------------------------- corpora
names=()
for spec in "${corpora[@]}"; do
    IFS='|' read -r name n opts <<<"$spec"
    [ "$quick" = 1 ] && n=$((n / 10)) && name="$name-quick"
    dir="$here/corpus/$name"
    # shellcheck disable=SC2086
    wanted=$($py "$here/gen_corpus.py" --print-params "$dir" -n "$n" --seed $seed $opts)
    if [ -f "$dir/params.json" ] && [ "$(cat "$dir/params.json")" = "$wanted" ]; then
        log "corpus $name: reusing $dir"
    else
        log "corpus $name: generating $n messages"
        # shellcheck disable=SC2086
        $py "$here/gen_corpus.py" "$dir" -n "$n" --seed $seed $opts --key-cache "$here/corpus/keycache" || exit 1
    fi
    names+=("$name")
done

# ---------------------------------------------------------------- primitives
# wireseal's own backends (bench-crypto measures 3 runs itself), then
# openssl speed on the same core, so the two sit side by side in one run
log "bench-crypto (wireseal's hash and signature backends)"
taskset -c "$cpu" "$root/$build/bench/bench-crypto" >"$scratch/crypto.jsonl" 2>"$scratch/crypto.err" ||
    echo '{"what": "bench-crypto failed", "unit": "", "error": "see crypto.err"}' >"$scratch/crypto.jsonl"
for rep in $(seq 1 "$reps"); do
    log "openssl speed, repetition $rep"
    {
        echo "== rep $rep"
        taskset -c "$cpu" openssl speed -mr -seconds 1 rsa2048 ed25519 2>/dev/null | grep '^+F'
        taskset -c "$cpu" openssl speed -mr -seconds 1 -evp sha256 2>/dev/null | grep '^+'
    } >>"$scratch/openssl-speed.txt"
done

# ---------------------------------------------------------------- peers
have_ed25519() { grep -q 'ed25519' "$1/manifest.tsv"; }
for rep in $(seq 1 "$reps"); do
    for name in "${names[@]}"; do
        dir="$here/corpus/$name"
        pin=(taskset -c "$cpu")
        if want physlimit; then
            log "$name rep $rep: physlimit"
            record physlimit "$name" "$rep" "${pin[@]}" "$root/$build/bench/bench-physlimit" "$dir"
            if have_ed25519 "$dir"; then
                record physlimit-ossl-ed25519 "$name" "$rep" "${pin[@]}" \
                    "$root/$build/bench/bench-physlimit" --ed25519=openssl "$dir"
            fi
        fi
        if want libopendkim; then
            log "$name rep $rep: libopendkim"
            if [ -x "$root/$build/bench/bench-opendkim" ]; then
                record libopendkim "$name" "$rep" "${pin[@]}" "$root/$build/bench/bench-opendkim" "$dir"
            else
                record libopendkim "$name" "$rep" sh -c 'echo "bench-opendkim not built: libopendkim not found by meson (install libopendkim-dev)" >&2; exit 127'
            fi
        fi
        if want wireseal; then
            log "$name rep $rep: wireseal-lib"
            record wireseal-lib "$name" "$rep" "${pin[@]}" "$root/$build/bench/bench-wireseal-lib" "$dir"
            log "$name rep $rep: wireseal"
            record wireseal "$name" "$rep" "${pin[@]}" $py "$here/peers/wireseal_verify.py" \
                --bin "$root/$build/wireseal" "$dir"
        fi
        if want mail-dkim; then
            log "$name rep $rep: Mail::DKIM"
            record mail-dkim "$name" "$rep" "${pin[@]}" perl "$here/peers/maildkim_verify.pl" "$dir"
        fi
        if want dkimpy; then
            log "$name rep $rep: dkimpy"
            record dkimpy "$name" "$rep" "${pin[@]}" $py "$here/peers/dkimpy_verify.py" "$dir"
        fi
    done
done
if want rspamd; then
    for name in "${names[@]}"; do
        log "$name: rspamd x$reps (one server start)"
        record rspamd "$name" 0 taskset -c "$client_cpu" $py "$here/peers/rspamd_verify.py" \
            --reps "$reps" --cpu "$cpu" "$here/corpus/$name"
    done
fi

if want rspamd-nofilter; then
    # Opt-in: rspamd with no filter at all, to see what its DKIM part costs.
    for name in "${names[@]}"; do
        log "$name: rspamd without filters x$reps"
        record rspamd-nofilter "$name" 0 taskset -c "$client_cpu" $py "$here/peers/rspamd_verify.py" \
            --filters '' --reps "$reps" --cpu "$cpu" "$here/corpus/$name"
    done
fi

# ---------------------------------------------------------------- report
log "report"
# A quick run is a smoke test: its report stays in the (ignored) scratch folder.
out="$here/results/$stamp_day-$host"
[ "$quick" = 1 ] && out="$scratch/quick"
$py "$here/report.py" --raw "$raw" --speed "$scratch/openssl-speed.txt" --crypto "$scratch/crypto.jsonl" \
    --corpus-root "$here/corpus" \
    --corpora "${names[*]}" --out "$out" \
    --command "${BENCH_COMMAND:-make bench}" --cpu "$cpu" --reps "$reps" || exit 1
log "done"
