#!/usr/bin/env bash
# Times `botnest analyze` on a capture of 10 million flow records, the figure BENCHMARKS.md
# reports. The capture is IPFIX export traffic written by flowblast (../shared/bench/flowblast),
# so reading it exercises the whole offline path: capture parsing, decoding, normalisation,
# the property graph and every detector.
#
# Usage: scripts/bench-analyze.sh [RECORDS]     (default 10000000; needs ../shared/bench)
#
# RATE=N spreads the flows over RECORDS / N seconds of event time (flowblast's paced clock), so
# the detectors run once per minute of it: RATE=1000 gives 10 M flows over 2.8 hours and about
# 170 detector passes. Without it the flows span about two minutes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

records=${1:-10000000}
shared=${BOTNEST_SHARED:-../shared}
work=${WORKDIR:-/tmp/botnest-bench-analyze}
mkdir -p "$work"

if [[ ! -d "$shared/bench/flowblast" ]]; then
    echo "bench-analyze: $shared/bench/flowblast not found" >&2
    exit 1
fi
cargo build --release -p botnest
cargo build --release --manifest-path "$shared/bench/flowblast/Cargo.toml" \
    --target-dir "$work/flowblast-target"
flowblast="$work/flowblast-target/release/flowblast"

rate=${RATE:-0}
if [[ "$rate" == 0 ]]; then
    capture="$work/flows-$records.pcap"
else
    capture="$work/flows-$records-rate-$rate.pcap"
fi
if [[ ! -f "$capture" ]]; then
    # --pcap writes the export packets to a file instead of sending them; with --rate their
    # timestamps follow the paced schedule.
    "$flowblast" --proto ipfix -n "$records" --hosts 20000 --rate "$rate" --pcap "$capture"
fi
ls -l "$capture"
echo "nproc: $(nproc); $(grep -m1 'model name' /proc/cpuinfo)"
/usr/bin/time -v target/release/botnest analyze --quiet --format json "$capture" \
    > "$work/report.json" 2> "$work/time.txt" || { cat "$work/time.txt"; exit 1; }
grep -E "Elapsed|Maximum resident|User time|System time" "$work/time.txt"
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print('flows', d['stats']['flows'], 'windows', d['stats']['windows'], 'botnests', len(d['botnests']), 'hosts', len(d['hosts']))" "$work/report.json"
