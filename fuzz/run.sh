#!/usr/bin/env bash
# Runs the fuzz targets one after another for a set time each and reports what they did.
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]
#
# SECONDS_PER_TARGET defaults to 60; with no TARGET every target of `cargo fuzz list` runs.
# Each target starts from, and adds what it finds to, its corpus in fuzz/corpus/<target>/;
# a crash leaves its input in fuzz/artifacts/<target>/ and libFuzzer's log in
# fuzz/target/fuzz-logs/<target>.log. Prints per target the executions (libFuzzer's final
# `stat::number_of_executed_units`) and whether it crashed, then a table; exits 1 when any
# target crashed, 2 when something could not be built or run.
#
# Needs the nightly toolchain and cargo-fuzz; installs nothing.
set -uo pipefail

usage() {
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
}

seconds=60
if [[ $# -gt 0 ]]; then
    case "$1" in
        -h | --help)
            usage
            exit 0
            ;;
    esac
    if [[ "$1" =~ ^[0-9]+$ ]]; then
        seconds=$1
        shift
    fi
fi
if [[ "$seconds" -lt 1 ]]; then
    echo "run.sh: SECONDS_PER_TARGET must be at least 1" >&2
    exit 2
fi

cd "$(dirname "$0")" || exit 2

if ! command -v cargo >/dev/null 2>&1; then
    echo "run.sh: cargo is not installed; see https://rustup.rs" >&2
    exit 2
fi
if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "run.sh: the nightly toolchain is missing; install it with: rustup toolchain install nightly" >&2
    exit 2
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "run.sh: cargo-fuzz is missing; install it with: cargo install cargo-fuzz" >&2
    exit 2
fi

mapfile -t all < <(cargo +nightly fuzz list)
if [[ $# -gt 0 ]]; then
    targets=("$@")
    for t in "${targets[@]}"; do
        if ! printf '%s\n' "${all[@]}" | grep -qx -- "$t"; then
            echo "run.sh: no fuzz target $t; there are: ${all[*]}" >&2
            exit 2
        fi
    done
else
    targets=("${all[@]}")
fi

echo "== building ${#targets[@]} target(s)"
if [[ $# -eq 0 ]]; then
    cargo +nightly fuzz build || exit 2
else
    for t in "${targets[@]}"; do
        cargo +nightly fuzz build "$t" || exit 2
    done
fi

logs=target/fuzz-logs
mkdir -p "$logs"
declare -a rows
failed=0
broken=0
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    log="$logs/$t.log"
    echo "== $t: ${seconds}s"
    start=$(date +%s)
    cargo +nightly fuzz run "$t" "corpus/$t" -- \
        -max_total_time="$seconds" \
        -rss_limit_mb=2048 \
        -timeout=30 \
        -print_final_stats=1 >"$log" 2>&1
    rc=$?
    # libFuzzer's own clock: a rebuild before the run does not count.
    took=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | tail -n 1 | awk '{print $5}')
    # No "Done" line after a crash: the wall clock, build included.
    took=${took:-$(($(date +%s) - start))}
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -n 1 | grep -o '[0-9]*$')
    if [[ -z "$execs" ]]; then
        # No final stats (killed?): the last status line's count.
        execs=$(grep -o '^#[0-9]*' "$log" | tail -n 1 | tr -d '#')
    fi
    execs=${execs:-0}
    artifact=$(grep -o 'Test unit written to [^ ]*' "$log" | tail -n 1 | sed 's/Test unit written to //')
    if [[ $rc -eq 0 ]]; then
        result="ok"
    elif [[ -n "$artifact" ]]; then
        result="CRASH $artifact"
        failed=$((failed + 1))
    else
        result="ERROR (exit $rc, see fuzz/$log)"
        broken=$((broken + 1))
    fi
    corpus=$(find "corpus/$t" -type f | wc -l)
    echo "   $t: $execs executions in ${took}s, corpus $corpus files: $result"
    if [[ $rc -ne 0 ]]; then
        grep -m 5 -E 'panicked at|ERROR: (libFuzzer|AddressSanitizer)|SUMMARY' "$log" | sed 's/^/   | /'
    fi
    rows+=("$(printf '%-18s %8s %14s %8s  %s' "$t" "$took" "$execs" "$corpus" "$result")")
done

echo
printf '%-18s %8s %14s %8s  %s\n' target seconds executions corpus result
for r in "${rows[@]}"; do
    echo "$r"
done

if [[ $failed -gt 0 ]]; then
    echo "run.sh: $failed target(s) crashed; reproduce with: cargo +nightly fuzz run <target> <artifact>" >&2
    exit 1
fi
if [[ $broken -gt 0 ]]; then
    exit 2
fi
