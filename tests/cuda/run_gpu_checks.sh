#!/usr/bin/env bash
# On a machine with a CUDA GPU: builds the default preset and runs every
# cuda-labelled test (device kernels against the CPU kernels, the NCCL
# plugin job). Without a GPU those tests skip and pass, so this script first
# insists that a device is visible and then that nothing was skipped.
# Extra arguments go to ctest (e.g. -R Codec).
set -euo pipefail
cd "$(dirname "$0")/../.."
nvidia-smi -L || { echo "run_gpu_checks: no GPU visible (nvidia-smi -L failed)" >&2; exit 1; }
cmake --preset default
cmake --build --preset default -j "$(nproc)"
log=$(mktemp)
ctest --preset default -L cuda --output-on-failure "$@" | tee "$log"
if grep -q "Skipped" "$log"; then
  echo "run_gpu_checks: some cuda tests were skipped; the GPU was not usable" >&2
  exit 1
fi
