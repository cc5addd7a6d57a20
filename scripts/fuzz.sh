#!/usr/bin/env bash
# Coverage-guided fuzzing of every decoder entry point for a bounded time.
#
#   scripts/fuzz.sh [TARGET...]      all targets when none is named
#
# Environment:
#   FUZZ_SECONDS    time per target (default 30)
#   FUZZ_ASAN=1     also build with AddressSanitizer (needs RUSTC_BOOTSTRAP, see below)
#   BOTNEST_SHARED  the shared data directory (default: ../shared beside the repository)
#
# How this fuzzes on a stable toolchain: the fuzz targets use libfuzzer-sys, which compiles
# libFuzzer from its C++ sources with the system compiler, and the coverage instrumentation
# libFuzzer needs comes from LLVM's SanitizerCoverage pass, which stable rustc runs when asked
# through the stable `-C passes` and `-C llvm-args` flags below. That is the instrumentation
# `cargo fuzz` itself asks for, so no nightly toolchain and no extra tool is needed. `cargo fuzz
# run` also works here when cargo-fuzz is installed and RUSTC_BOOTSTRAP=1 is set (its default
# AddressSanitizer flag is nightly-only), but installing cargo-fuzz costs minutes, and the
# decoders are `forbid(unsafe_code)`, so this script leaves the sanitizer to FUZZ_ASAN=1.
#
# Seeds: the UDP payloads of every capture in $BOTNEST_SHARED/fixtures, listed by tshark (not by
# botnest, which is what is under test) and written per target by fuzz/seeds.pl, plus the raw
# captures for the capture target and a few messages and captures built in fuzz/seeds.pl. New
# inputs libFuzzer finds go to fuzz/corpus/TARGET and are reused by the next run.
#
# Exit status: non-zero when any target crashed; the crashing input is left in fuzz/artifacts
# and printed as hex.

set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
fuzz="$root/fuzz"
seconds=${FUZZ_SECONDS:-30}
all_targets=(ipfix_message netflow9_packet netflow5_packet decoder capture framing)
targets=("$@")
((${#targets[@]})) || targets=("${all_targets[@]}")
triple=$(rustc -vV | sed -n 's/^host: //p')

flags=(
    -Cpasses=sancov-module
    -Cllvm-args=-sanitizer-coverage-level=4
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters
    -Cllvm-args=-sanitizer-coverage-pc-table
    -Cllvm-args=-sanitizer-coverage-trace-compares
    --cfg fuzzing
)
target_dir="$fuzz/target"
if [[ ${FUZZ_ASAN:-0} == 1 ]]; then
    # -Zsanitizer is unstable; RUSTC_BOOTSTRAP lets a stable rustc accept it.
    export RUSTC_BOOTSTRAP=1
    flags+=(-Zsanitizer=address -Cforce-frame-pointers)
    target_dir="$fuzz/target/asan"
fi

for t in "${targets[@]}"; do
    if [[ ! " ${all_targets[*]} " == *" $t "* ]]; then
        echo "unknown fuzz target: $t (known: ${all_targets[*]})" >&2
        exit 2
    fi
done

# --target keeps the instrumentation flags off build scripts and proc macros, which are not
# linked with libFuzzer.
echo "building fuzz targets for $triple"
build_start=$SECONDS
(cd "$fuzz" && RUSTFLAGS="${flags[*]}" cargo build --release --bins \
    --target "$triple" --target-dir "$target_dir")
echo "built in $((SECONDS - build_start)) s"
bin="$target_dir/$triple/release"

seeds=$(mktemp -d)
trap 'rm -rf "$seeds"' EXIT
perl "$fuzz/seeds.pl" --builtin "$seeds"
fixtures="${BOTNEST_SHARED:-$root/../shared}/fixtures"
if [[ ! -d $fixtures ]]; then
    echo "no shared fixtures at $fixtures: seeding from built-in messages only"
elif ! command -v tshark >/dev/null || ! command -v mergecap >/dev/null; then
    echo "tshark not installed: seeding from built-in messages only"
elif mapfile -t captures < <(find "$fixtures" -name '*.pcap' -o -name '*.pcapng' | sort) &&
    ((${#captures[@]} == 0)); then
    echo "no captures under $fixtures: seeding from built-in messages only"
else
    # Numbered, since captures in different directories may share a name.
    for i in "${!captures[@]}"; do
        cp "${captures[$i]}" "$seeds/capture/$i-$(basename "${captures[$i]}")"
    done
    # One tshark run over all captures (starting tshark per file takes longer than the
    # fuzzing); kept apart, each capture's interfaces get their own ids in the merged file.
    mergecap -I none -w "$seeds/all.pcapng" "${captures[@]}"
    tshark -n -r "$seeds/all.pcapng" -T fields -e frame.interface_id -e frame.time_epoch \
        -e ip.src -e ipv6.src -e udp.srcport -e udp.payload 2>/dev/null |
        perl "$fuzz/seeds.pl" "$seeds"
    rm "$seeds/all.pcapng"
fi

mkdir -p "$fuzz/artifacts"
failed=()
for t in "${targets[@]}"; do
    corpus="$fuzz/corpus/$t"
    mkdir -p "$corpus"
    log="$fuzz/artifacts/$t.log"
    count() { find "$1" -type f | wc -l; }
    echo "fuzzing $t for $seconds s ($(count "$seeds/$t") seeds, $(count "$corpus") kept inputs)"
    started=$(date +%s)
    # -timeout: one input running this long is a hang; libFuzzer reports it as a crash.
    if "$bin/$t" -max_total_time="$seconds" -max_len=65536 -timeout=10 \
        -print_final_stats=1 -artifact_prefix="$fuzz/artifacts/$t-" \
        "$corpus" "$seeds/$t" >"$log" 2>&1; then
        grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true
    else
        failed+=("$t")
        echo "FAILED: $t (log: $log)"
        grep -E -A 12 '^==[0-9]+==|panicked|^SUMMARY|ERROR:' "$log" | head -n 40 || true
        find "$fuzz/artifacts" -name "$t-*" -newermt "@$started" -type f | while read -r crash; do
            echo "input $crash:"
            od -An -tx1 -v "$crash" | head -n 64
        done
    fi
done

if ((${#failed[@]})); then
    echo "fuzzing found failures in: ${failed[*]} ($SECONDS s in all)"
    exit 1
fi
echo "fuzzing passed: ${targets[*]} ($seconds s each, $SECONDS s in all)"
