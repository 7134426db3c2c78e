#!/usr/bin/env bash
# The main job: builds gccl and runs the local 4-rank demo of the collectives
# (each checked for exact results and timed). Arguments after the script name
# go to the demo (the largest message size in bytes, default 16 MiB);
# GCCL_DEMO_RANKS sets the rank count.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset default >/dev/null
cmake --build --preset default --target gcclrun collectives_demo
exec build/perf/gcclrun -n "${GCCL_DEMO_RANKS:-4}" -t 600 build/examples/collectives_demo "$@"
