#!/usr/bin/env bash
# The communication-reduction targets on the shaped network: N ranks as N
# hosts (netem.sh) on --rate links, each measurement repeated --repeats times
# with the variants interleaved, medians reported with their ratio:
#   push_sum_perf, float32 messages against 8-bit ones (--codec q8);
#   all_reduce_perf, the dense AllReduce against top-k 1% with error feedback
#   over the sparse AllReduce (--codec topk:0.01), with the bytes each rank
#   sent per call (the tools' wire column).
# Every call blocks and is followed by a barrier (-z 1); the check is on.
#
#   perf/netem/codec_targets.sh [-n 8] [--rate 1gbit] [--size 4M] [--repeats 3] [--build build]
set -euo pipefail
cd "$(dirname "$0")/../.."

nranks=8
rate=1gbit
size=4M
repeats=3
build=build
while [ $# -gt 0 ]; do
  case "$1" in
    -n) nranks="$2"; shift 2 ;;
    --rate) rate="$2"; shift 2 ;;
    --size) size="$2"; shift 2 ;;
    --repeats) repeats="$2"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    *) echo "codec_targets.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
for tool in push_sum_perf all_reduce_perf; do
  [ -x "$build/perf/$tool" ] || { echo "codec_targets.sh: $build/perf/$tool is not built" >&2; exit 2; }
done

results="$(mktemp)"
trap 'rm -f "$results"' EXIT

# One run: prints "<label> <out-of-place us> <wire bytes>" into $results.
run() {
  local label="$1" tool="$2" codec="$3" line
  line="$(perf/netem/netem.sh -n "$nranks" --rate "$rate" --timeout 600 -- \
    "$build/perf/$tool" -b "$size" -e "$size" -n 10 -w 2 -c 1 -z 1 --codec "$codec" |
    awk '/^ +[0-9]/ { print $6, $9, $NF } /Out of bounds/ { if ($NF != "OK") bad = 1 }
         END { if (bad) print "CHECK-FAILED" }')"
  case "$line" in
    *CHECK-FAILED*) echo "codec_targets.sh: $label: wrong results" >&2; exit 1 ;;
  esac
  set -- $line
  echo "$label $1 $3" >> "$results"
  echo "  $label: $1 us, wire $3 B/call (wrong: $2)"
}

for ((rep = 1; rep <= repeats; rep++)); do
  echo "== repeat $rep of $repeats"
  run pushsum-f32 push_sum_perf none
  run pushsum-q8 push_sum_perf q8
  run allreduce-dense all_reduce_perf none
  run allreduce-topk1 all_reduce_perf topk:0.01
done

median() {
  awk -v l="$1" '$1 == l { print $2 }' "$results" | sort -g | awk '{ v[NR] = $1 } END {
    print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}
wire() { awk -v l="$1" '$1 == l { print $3; exit }' "$results"; }

echo "== medians of $repeats interleaved repeats, $nranks ranks, $rate links, $size per rank"
for pair in "pushsum-f32 pushsum-q8" "allreduce-dense allreduce-topk1"; do
  set -- $pair
  a="$(median "$1")"; b="$(median "$2")"
  awk -v a="$a" -v b="$b" -v la="$1" -v lb="$2" -v wa="$(wire "$1")" -v wb="$(wire "$2")" 'BEGIN {
    printf "%-16s %10.0f us  %10.0f B/call\n%-16s %10.0f us  %10.0f B/call\n", la, a, wa, lb, b, wb
    printf "  speed-up %.2fx, %.1fx fewer bytes\n", a / b, wa / wb }'
done
