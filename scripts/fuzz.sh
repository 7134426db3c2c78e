#!/usr/bin/env bash
# Fuzzes the TCP transport's input paths with libFuzzer (tests/fuzz: the frame
# header decoder, the connection handshake, the receive path of a connection),
# built with clang under AddressSanitizer + UndefinedBehaviorSanitizer (the
# fuzz preset, build-fuzz/).
#
#   scripts/fuzz.sh [SECONDS]                  bounded run, as in CI: each target for SECONDS
#                                              (default 20) from the corpus in the repository
#                                              and the generated seeds; nothing is written
#                                              into the repository
#   scripts/fuzz.sh --long SECONDS [TARGET...]  long run: each target (default: all) for
#                                              SECONDS, then what it found is merged with
#                                              the corpus, minimized, and written back to
#                                              tests/fuzz/corpus/<target>/ (commit it);
#                                              --long 0 only re-minimizes
#
# A crash, a leak, a timeout or an input over the memory limit fails the run;
# the input that did it is kept in build-fuzz/artifacts/ and the script says
# how to replay it. Without clang the script says so and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."

all_targets=(fuzz_frame fuzz_handshake fuzz_tcp_recv)
long=0
seconds=20
targets=()
if [ "${1:-}" = "--long" ]; then
  if [ $# -lt 2 ]; then
    echo "usage: scripts/fuzz.sh --long SECONDS [TARGET...]" >&2
    exit 2
  fi
  long=1
  seconds=$2
  shift 2
  targets=("$@")
elif [ $# -gt 0 ]; then
  seconds=$1
fi
if [ ${#targets[@]} -eq 0 ]; then
  targets=("${all_targets[@]}")
fi
case "$seconds" in
  '' | *[!0-9]*) echo "fuzz: SECONDS must be a whole number, not '$seconds'" >&2; exit 2 ;;
esac

# The longest input worth trying, per target: a frame header and its fields
# (130 bytes), a handshake stream, a script of receive-path operations.
max_len() {
  case "$1" in
    fuzz_frame) echo 256 ;;
    fuzz_handshake) echo 512 ;;
    fuzz_tcp_recv) echo 4096 ;;
    *) echo "fuzz: unknown target $1 (targets: ${all_targets[*]})" >&2; exit 2 ;;
  esac
}
for t in "${targets[@]}"; do max_len "$t" >/dev/null; done

corpus_size() {
  echo "$(find "$1" -type f | wc -l) inputs, $(find "$1" -type f -printf '%s\n' |
    awk '{ s += $1 } END { print s + 0 }') bytes"
}

if ! command -v clang++ >/dev/null 2>&1; then
  echo "fuzz: SKIPPED, clang++ is not installed (scripts/install-deps.sh installs it)"
  exit 0
fi
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' \
  >"$probe/probe.cc"
if ! clang++ -fsanitize=fuzzer "$probe/probe.cc" -o "$probe/probe" >/dev/null 2>&1; then
  echo "fuzz: SKIPPED, clang++ cannot link libFuzzer (Debian: apt-get install libclang-rt-dev)"
  exit 0
fi

echo "fuzz: building the fuzz preset (build-fuzz/)"
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "$(nproc)"

work=$(mktemp -d)
trap 'rm -rf "$probe" "$work"' EXIT
build-fuzz/tests/fuzz/fuzz_seeds "$work/seeds"
artifacts=build-fuzz/artifacts
mkdir -p "$artifacts"

failed=()
for t in "${targets[@]}"; do
  bin=build-fuzz/tests/fuzz/$t
  committed=tests/fuzz/corpus/$t
  mkdir -p "$work/$t"
  if [ -d "$committed" ]; then
    cp -R "$committed/." "$work/$t/"
  fi
  # New inputs go to the first directory, the temporary copy; the seeds are read only.
  flags=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len="$(max_len "$t")"
         -print_final_stats=1 -artifact_prefix="$artifacts/$t-")
  log=$work/$t.log
  echo "== $t: ${seconds}s from $(find "$work/$t" -type f | wc -l) corpus inputs and the seeds"
  start=$(date +%s)
  rc=0
  if [ "$seconds" -gt 0 ]; then
    "$bin" "${flags[@]}" "$work/$t" "$work/seeds/$t" >"$log" 2>&1 || rc=$?
  fi
  if [ "$rc" -ne 0 ]; then
    tail -n 60 "$log"
    echo "fuzz: $t FAILED (exit $rc) after $(( $(date +%s) - start ))s; the input is in $artifacts/:"
    { ls -t "$artifacts" | grep "^$t-" | head -n 3 | sed "s|^|  $bin $artifacts/|"; } || true
    failed+=("$t")
    continue
  fi
  if [ "$seconds" -gt 0 ]; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log")
    cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -n 1)
    echo "   ok: $runs executions ($rate/s), $cov, peak RSS ${rss} MB"
  fi
  if [ "$long" -eq 1 ]; then
    # Whatever adds coverage, from the old corpus, the new finds and the
    # seeds, into a fresh directory that replaces the committed one.
    merged=$work/$t.merged
    mkdir -p "$merged" "$committed"
    "$bin" -merge=1 -max_len="$(max_len "$t")" -rss_limit_mb=2048 -timeout=10 \
      "$merged" "$committed" "$work/$t" "$work/seeds/$t" >"$work/$t.merge.log" 2>&1 || {
      tail -n 30 "$work/$t.merge.log"
      echo "fuzz: merging the corpus of $t FAILED"
      failed+=("$t")
      continue
    }
    before=$(corpus_size "$committed")
    find "$committed" -type f -delete
    cp "$merged"/* "$committed/" 2>/dev/null || true
    after=$(corpus_size "$committed")
    echo "   corpus $committed: $before -> $after"
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]}"
  exit 1
fi
echo "fuzz: all targets passed"
