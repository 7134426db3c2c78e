#!/usr/bin/env bash
# Long chaos run of fault-tolerant gossip (tests/chaos/test_chaos.cc): TRIALS
# randomized trials (default 200) in which 4 to 6 ranks gossip while up to half
# of them less one are killed or stopped at random moments, and some of the
# killed ones are restarted and rejoin. Prints the table (trials, kills, stops,
# rejoins, hangs, failed trials, worst time from a failure to a survivor's
# first step after it knew, time from a restart to the rejoined rank holding
# the model) and fails if any trial failed.
#
#   scripts/chaos.sh [TRIALS] [SEED]     SEED defaults to a random one (printed)
#
# GCCL_CHAOS_ONLY=I reruns trial I of a seed alone.
#
# Builds the default preset first (build/), as scripts/test.sh does.
set -euo pipefail
cd "$(dirname "$0")/.."
trials=${1:-200}
seed=${2:-$(( (RANDOM << 15) | RANDOM ))}
cmake --preset default >/dev/null
cmake --build build --target test_chaos
echo "chaos: $trials trials, seed $seed"
set +e
GCCL_SOCKET_IFNAME=lo GCCL_CHAOS_TRIALS=$trials GCCL_CHAOS_SEED=$seed GCCL_CHAOS_ONLY=${GCCL_CHAOS_ONLY:--1} \
  build/tests/test_chaos --gtest_filter='Chaos.*' >build/chaos.out 2>build/chaos.log
status=$?
set -e
grep -E '^chaos:|FAILED|Failure' build/chaos.out || true
echo "chaos: the ranks' own messages are in build/chaos.log"
exit "$status"
