#!/usr/bin/env bash
# bench-ingest.sh - lossless UDP ingest of botnest side by side with nfcapd and nfacctd.
#
# Builds botnest (release) and the flowblast sender, then runs the shared peer-ingest benchmark
# (../shared/bench/peer-ingest.sh) with botnest plugged in as a custom collector. botnest counts
# the records it decoded and handed on to its output thread ("handed_on" in the summary file it
# writes when stopped with SIGTERM). Takes long: it is not part of the test suite.
#
# usage: scripts/bench-ingest.sh [--botnest PATH] [--no-build] [peer-ingest.sh options...]
#   e.g. scripts/bench-ingest.sh --protos ipfix,v9 --rates "500000 1000000 0" --records 3000000
#        scripts/bench-ingest.sh --rates 0 --records 4000000 --flowblast-args '--mtu 9000 --per-packet 180'
# Environment: SHARED (default: ../shared beside the repository), WORKDIR (default /tmp/bench-ingest).
# The load average is logged every 10 s to WORKDIR/load.log.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SHARED="${SHARED:-$ROOT/../shared}"
[[ -d "$SHARED/bench" ]] || SHARED=/work/shared
BENCH="$SHARED/bench"
BOTNEST="$ROOT/target/release/botnest"
BUILD=1
ARGS=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --botnest) BOTNEST="$2"; BUILD=0; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    *) ARGS+=("$1"); shift ;;
  esac
done

[[ -x "$BENCH/peer-ingest.sh" ]] || { echo "no peer-ingest.sh under $BENCH" >&2; exit 2; }
for tool in nfcapd nfdump nfacctd; do
  if ! command -v "$tool" >/dev/null; then
    echo "installing nfdump and pmacct (for $tool)" >&2
    apt-get install -y nfdump pmacct >/dev/null || { apt-get update >/dev/null && apt-get install -y nfdump pmacct >/dev/null; }
    break
  fi
done

if (( BUILD )); then
  (cd "$ROOT" && cargo build --release -p botnest)
fi
# shared/ is read-only: flowblast is built into /tmp, where peer-ingest.sh looks for it.
FLOWBLAST=/tmp/flowblast-target/release/flowblast
if [[ ! -x "$FLOWBLAST" ]]; then
  cargo build --release --manifest-path "$BENCH/flowblast/Cargo.toml" --target-dir /tmp/flowblast-target
fi

WORKDIR="${WORKDIR:-/tmp/bench-ingest}"
mkdir -p "$WORKDIR"
# The machine may be shared: the load average, every 10 s, goes beside the results.
LOADLOG="$WORKDIR/load.log"
: > "$LOADLOG"
( while true; do echo "$(date -u +%H:%M:%S) $(cut -d' ' -f1-3 /proc/loadavg)" >> "$LOADLOG"; sleep 10; done ) &
LOADER=$!
trap 'kill $LOADER 2>/dev/null' EXIT
# botnest writes its summary on SIGTERM; the count is the records handed on to the output thread.
COUNT='python3 -c '\''import json;print(json.load(open("{outdir}/summary.json"))["summary"]["handed_on"])'\'''
"$BENCH/peer-ingest.sh" --workdir "$WORKDIR" --flowblast "$FLOWBLAST" \
  --name botnest \
  --cmd "$BOTNEST collect --listen udp://127.0.0.1:{port} --receive-buffer {bufsize} --format none --state-dir {outdir}/state --summary-file {outdir}/summary.json" \
  --count-cmd "$COUNT" \
  "${ARGS[@]}"
