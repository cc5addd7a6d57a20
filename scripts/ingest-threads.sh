#!/usr/bin/env bash
# ingest-threads.sh - where botnest collect spends its CPU at one sending rate, thread by thread.
#
# Starts `botnest collect` as scripts/bench-ingest.sh does (UDP on 127.0.0.1, --format none),
# sends RECORDS records at RATE records/s with flowblast, and prints for each thread the CPU time
# the scheduler charged it (/proc/PID/task/TID/schedstat, nanoseconds, unlike the 10 ms ticks of
# /proc/PID/stat), its time slices and its voluntary and involuntary context switches. Raise
# net.core.rmem_max to 8 MiB first (as peer-ingest.sh does) to get the same receive buffer.
#
# usage: scripts/ingest-threads.sh BOTNEST PROTO RATE RECORDS [flowblast options...]
#   e.g. scripts/ingest-threads.sh target/release/botnest ipfix 100000 1000000
set -euo pipefail

BOTNEST="$1"; PROTO="$2"; RATE="$3"; RECORDS="$4"; shift 4
FLOWBLAST="${FLOWBLAST:-/tmp/flowblast-target/release/flowblast}"
PORT="${PORT:-19995}"
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT

"$BOTNEST" collect --listen "udp://127.0.0.1:$PORT" --receive-buffer 8388608 --format none \
  --state-dir "$OUT/state" --summary-file "$OUT/summary.json" > "$OUT/log" 2>&1 &
PID=$!
sleep 0.7

# tid name cpu_ns slices voluntary involuntary
snapshot() {
  for t in /proc/"$PID"/task/*; do
    read -r cpu _ slices < "$t/schedstat"
    echo "$(basename "$t") $(tr ' ' _ < "$t/comm") $cpu $slices" \
      "$(awk '/^voluntary_ctxt_switches/ {v=$2} /^nonvoluntary_ctxt_switches/ {n=$2} END {print v, n}' "$t/status")"
  done
}

snapshot > "$OUT/before"
start=$(date +%s.%N)
"$FLOWBLAST" --proto "$PROTO" -n "$RECORDS" --rate "$RATE" --sources 4 -d "127.0.0.1:$PORT" "$@" \
  | tail -1 > "$OUT/flowblast"
sleep 0.5
snapshot > "$OUT/after"
end=$(date +%s.%N)
load=$(cut -d' ' -f1-3 /proc/loadavg)
kill -TERM "$PID"
wait "$PID" || true

python3 - "$OUT" "$start" "$end" "$load" <<'PY'
import json, sys
out, start, end, load = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
def read(name):
    rows = {}
    for line in open(f"{out}/{name}"):
        tid, comm, *nums = line.split()
        rows[tid] = (comm, *map(int, nums))
    return rows
before, after = read("before"), read("after")
total = 0
for tid, (comm, cpu, slices, vol, invol) in after.items():
    _, cpu0, slices0, vol0, invol0 = before.get(tid, (comm, 0, 0, 0, 0))
    total += cpu - cpu0
    print(f"{comm:24s} cpu {(cpu - cpu0) / 1e9:7.3f} s  slices {slices - slices0:7d}  "
          f"voluntary {vol - vol0:6d}  involuntary {invol - invol0:6d}")
s = json.load(open(f"{out}/summary.json"))["summary"]
print(f"all threads: {total / 1e9:.3f} s over {end - start:.1f} s; handed on {s['handed_on']}, "
      f"kernel drops {s['kernel_drops']}; load average {load}")
print(open(f"{out}/flowblast").read().strip())
PY
