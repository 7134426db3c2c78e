#!/usr/bin/env bash
# The main job: builds gccl and runs the local 4-rank training demo (examples/sgp_demo.cc): the
# same small MLP trained with AllReduce SGD, SGP (PushSum) and D-PSGD, with each method's loss,
# accuracy, consensus distance and time per iteration. It exits non-zero when SGP's accuracy is
# more than 1 point from AllReduce SGD's. Arguments after the script name go to the demo
# (--iters N, --batch N, --seed N); GCCL_DEMO_RANKS sets the rank count. The demo of the exact
# collectives is built too:
#   build/perf/gcclrun -n 4 build/examples/collectives_demo [max-bytes]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset default >/dev/null
cmake --build --preset default --target gcclrun sgp_demo collectives_demo
exec build/perf/gcclrun -n "${GCCL_DEMO_RANKS:-4}" -t 600 build/examples/sgp_demo "$@"
