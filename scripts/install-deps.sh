#!/usr/bin/env bash
# Installs what gccl's build, tests and demo need from Debian's packages,
# only when it is missing. Safe to run again; needs root (or sudo) only
# when something is missing.
set -euo pipefail

packages=(
  cmake          # >= 3.25 (Debian 12 has 3.25)
  ninja-build
  g++
  libgtest-dev   # unit and multi-process tests
  libbenchmark-dev  # Google Benchmark, for the microbenchmarks in perf/micro (optional)
  openmpi-bin    # the real mpirun launch test
  libopenmpi-dev # MPI headers, for perf/peers/mpi_allreduce_bench (perf/compare's Open MPI column)
  libgloo-dev    # Gloo, for perf/peers/gloo_allreduce_bench (perf/compare's Gloo column)
  libucx-dev     # UCX headers for the ucx transport (libucp itself is loaded at run time)
  ucx-utils      # ucx_info, to see which UCX transports and devices a host has
  iproute2       # network namespaces for multi-host tests
  clang          # the libFuzzer targets (scripts/fuzz.sh) ...
  libclang-rt-dev  # ... whose runtime (libFuzzer, the sanitizers) clang only recommends
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
