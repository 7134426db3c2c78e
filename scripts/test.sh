#!/usr/bin/env bash
# Builds gccl and runs every test: the default build (warnings are errors;
# CUDA sources are compiled with nvcc when it is installed) with the Python
# package's tests (label python: the project's .venv with torch and
# tensorflow-cpu is made when missing and the package, with the TensorFlow op
# library, installed into it, scripts/python-install.sh), then
# the whole suite again under AddressSanitizer + UndefinedBehaviorSanitizer
# (without the Python tests: the interpreter cannot load an instrumented
# libgccl).
# GCCL_TEST_SKIP_ASAN=1 skips the sanitizer pass; extra arguments go to ctest
# (e.g. -L unit). Last, a bounded libFuzzer run over the TCP transport's input
# paths (scripts/fuzz.sh, 20 s per target; needs clang);
# GCCL_TEST_SKIP_FUZZ=1 skips it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

jobs=$(nproc)
echo "== build (default preset)"
cmake --preset default
cmake --build --preset default -j "$jobs"
echo "== Python package (.venv, plugins/torch, plugins/tensorflow)"
MAX_JOBS="$jobs" scripts/python-install.sh
echo "== tests (default preset)"
ctest --preset default --output-on-failure "$@"

if [ "${GCCL_TEST_SKIP_ASAN:-0}" != "1" ]; then
  echo "== build (asan preset: AddressSanitizer + UndefinedBehaviorSanitizer)"
  cmake --preset asan
  cmake --build --preset asan -j "$jobs"
  echo "== tests (asan preset)"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --preset asan --output-on-failure "$@"
fi

if [ "${GCCL_TEST_SKIP_FUZZ:-0}" != "1" ]; then
  echo "== fuzz (libFuzzer, bounded)"
  scripts/fuzz.sh 20
fi
