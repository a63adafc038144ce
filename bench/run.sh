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
# repetitions inside one server start. Then scaling: the in-process verifier
# on 1 and 2 threads; `wireseal replay` with 1 and 2 workers (verify on and
# off) on a capture of the mixed corpus beside the capture's raw read rate;
# replay on captures of the same messages with 10 / 1,000 / 10,000
# concurrent sessions; and bench/replay.sh --json (its own capture, testpmd
# ceiling). Writes bench/results/<date>-<host>.json, .md and PNG plots
# (bench/report.py). A peer or step that cannot run is reported with its
# exact error, never dropped.
#
# Environment: BENCH_REPS (3), BENCH_CPU (1, or 0 on a 1-CPU machine),
# BENCH_BUILD (build), BENCH_QUICK (0), BENCH_PEERS (all: space-separated
# subset of physlimit libopendkim dkimpy mail-dkim rspamd wireseal, plus the
# opt-in rspamd-nofilter: rspamd with no filter), BENCH_REPLAY (1; 0 skips
# the replay and scaling steps), BENCH_SESSIONS ("10 1000 10000").
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
    "mixed|1000|--mix rsa2048=0.6,rsa1024=0.1,rsa3072=0.05,rsa4096=0.05,ed25519=0.2 --double 0.2 --fail 0.05 --arc 0.15 --arc-hops 1-3 --canon relaxed/relaxed=0.8,relaxed/simple=0.15,simple/simple=0.05"
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
            # 2 passes: the msgs/s covers both; the latency percentiles get
            # 2x the samples (per-message clock_gettime inside the driver)
            log "$name rep $rep: wireseal-lib"
            record wireseal-lib "$name" "$rep" "${pin[@]}" "$root/$build/bench/bench-wireseal-lib" --passes 2 "$dir"
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

# ---------------------------------------------------------------- scaling
# The in-process verifier on 1 and 2 threads (wall time; 2 threads get both
# cores, 1 thread the pinned one), reference corpus.
if want wireseal && [ "${BENCH_REPLAY:-1}" = 1 ]; then
    for rep in $(seq 1 "$reps"); do
        for th in 1 2; do
            log "${names[0]} rep $rep: wireseal-lib, $th thread(s)"
            if [ "$th" = 1 ]; then tpin=(taskset -c "$cpu"); else tpin=(taskset -c "0-$(($(nproc) - 1))"); fi
            record wireseal-lib-mt "${names[0]}" "$rep" "${tpin[@]}" "$root/$build/bench/bench-wireseal-lib" \
                --threads "$th" --passes 3 "$here/corpus/${names[0]}"
        done
    done
fi

# ---------------------------------------------------------------- replay
# Captures (tests/tools/gen_smtp_pcap.py streaming mode, written to disk as
# generated): the last corpus (mixed: ARC, 2 signatures, failures) over 100
# concurrent sessions of 5 pipelined messages, every second session IPv6,
# 1 % of client segments reordered; and the bundled sample messages over
# 10 / 1,000 / 10,000 concurrent sessions (one message each, same messages,
# same order), for the cost against concurrent sessions.
replay_json="$scratch/replay-sh.json"
rm -f "$replay_json" "$scratch/replay-sh.note"
if [ "${BENCH_REPLAY:-1}" = 1 ] && [ -x "$root/$build/wireseal" ]; then
    caps="$here/corpus/captures"
    mkdir -p "$caps"
    gen_pcap() { # name, then generator options; reused while the options match
        local cname=$1
        shift
        local want_opts="$* gen=$(md5sum "$root/tests/tools/gen_smtp_pcap.py" | cut -c1-12)"
        if [ -f "$caps/$cname.pcap" ] && [ "$(cat "$caps/$cname.opts" 2>/dev/null)" = "$want_opts" ]; then
            log "capture $cname: reusing"
            return 0
        fi
        log "capture $cname: generating"
        rm -f "$caps/$cname.opts"
        $py "$root/tests/tools/gen_smtp_pcap.py" --out "$caps/$cname.pcap" "$@" || return 1
        echo "$want_opts" >"$caps/$cname.opts"
    }
    rname=${names[$((${#names[@]} - 1))]}
    rdir="$here/corpus/$rname"
    sessions=${BENCH_SESSIONS:-10 1000 10000}
    srepeat=1500
    [ "$quick" = 1 ] && srepeat=150
    gen_pcap "corpus-$rname" --corpus "$rdir" --concurrent 100 --per-session 5 --pipelining --mix-ipv6 \
        --reorder 0.01 --seed 1
    for k in $sessions; do
        gen_pcap "sessions-$k" --concurrent "$k" --per-session 1 --pipelining --seed 1 --repeat "$srepeat" \
            "$root"/tests/data/sample/0*.eml "$root/tests/data/captures/dots.eml"
    done
    for rep in $(seq 1 "$reps"); do
        cap="$caps/corpus-$rname.pcap"
        log "replay rep $rep: raw read rate of corpus-$rname"
        record pcap-read "corpus-$rname" "$rep" taskset -c "$cpu" $py "$here/peers/replay_drv.py" read \
            --bin "$root/$build/bench/bench-pcap-read" --label "corpus-$rname" "$cap"
        for w in 1 2; do
            for mode in verify --no-verify; do
                log "replay rep $rep: corpus-$rname, $w worker(s), $mode"
                # shellcheck disable=SC2046
                record replay "corpus-$rname" "$rep" $py "$here/peers/replay_drv.py" replay \
                    --bin "$root/$build/wireseal" --zone "$rdir/zone.db" --workers "$w" \
                    $([ "$mode" = --no-verify ] && echo --no-verify) --label "corpus-$rname" "$cap"
            done
        done
        # The sessions slope: the dataplane's own cost (flow table,
        # reassembly, SMTP parse, message streaming) every repetition;
        # with verification once, since it is dominated by a per-session
        # cost of milliseconds (BENCHMARKS.md) and would take minutes.
        for k in $sessions; do
            for mode in --no-verify verify; do
                [ "$mode" = verify ] && [ "$rep" != 1 ] && continue
                log "replay rep $rep: sessions-$k, 1 worker, $mode"
                # shellcheck disable=SC2046
                record replay "sessions-$k" "$rep" $py "$here/peers/replay_drv.py" replay \
                    --bin "$root/$build/wireseal" --zone "$root/tests/data/sample/zone.db" --workers 1 \
                    $([ "$mode" = --no-verify ] && echo --no-verify) --label "sessions-$k" "$caps/sessions-$k.pcap"
            done
        done
    done
    # bench/replay.sh's own figures (its capture, testpmd's net_pcap
    # ceiling), when it has --json; else the report says why not.
    if grep -q -- '--json' "$here/replay.sh"; then
        log "bench/replay.sh --json"
        # replay.sh defaults to build/; a BENCH_BUILD elsewhere goes after --json FILE
        rargs=(--json "$replay_json")
        [ "$build" != build ] && rargs+=("$root/$build")
        if ! bash "$here/replay.sh" "${rargs[@]}" >"$scratch/replay-sh.log" 2>&1; then
            echo "bench/replay.sh --json failed: $(tail -c 400 "$scratch/replay-sh.log")" >"$scratch/replay-sh.note"
        elif [ ! -s "$replay_json" ]; then
            echo "bench/replay.sh --json wrote no JSON: $(tail -c 400 "$scratch/replay-sh.log")" >"$scratch/replay-sh.note"
        fi
    else
        echo "bench/replay.sh has no --json option in this tree" >"$scratch/replay-sh.note"
    fi
elif [ "${BENCH_REPLAY:-1}" = 1 ]; then
    echo "$root/$build/wireseal not built" >"$scratch/replay-sh.note"
    record replay "-" 0 sh -c "echo \"$root/$build/wireseal not built\" >&2; exit 127"
else
    echo "skipped (BENCH_REPLAY=0)" >"$scratch/replay-sh.note"
fi

# ---------------------------------------------------------------- report
log "report"
# A quick run is a smoke test: its report stays in the (ignored) scratch folder.
out="$here/results/$stamp_day-$host"
[ "$quick" = 1 ] && out="$scratch/quick"
$py "$here/report.py" --raw "$raw" --speed "$scratch/openssl-speed.txt" --crypto "$scratch/crypto.jsonl" \
    --corpus-root "$here/corpus" \
    --corpora "${names[*]}" --out "$out" \
    --replay-json "$replay_json" --replay-note "$scratch/replay-sh.note" \
    --command "${BENCH_COMMAND:-make bench}" --cpu "$cpu" --reps "$reps" || exit 1
log "done"
