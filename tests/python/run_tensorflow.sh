#!/usr/bin/env bash
# Runs gccl.tensorflow's tests (ctest label python) with the project's .venv, against this
# checkout's Python sources (plugins/torch on PYTHONPATH) and the op library in the build folder
# ($GCCL_TEST_BINARY_DIR/tensorflow/libgccl_tf.so, which scripts/python-install.sh builds when
# tensorflow is installed; scripts/test.sh runs it before ctest). Ranks start under the build's
# gcclrun. Fails, saying so, when tensorflow or the library is missing: CI must never skip these
# tests.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
python="$repo/.venv/bin/python"
build="${GCCL_TEST_BINARY_DIR:-$repo/build}"
if [ ! -x "$python" ] || ! "$python" -c "import tensorflow" >/dev/null 2>&1; then
  echo "tests/python: no tensorflow in .venv: run scripts/python-env.sh" \
       "(scripts/test.sh does)" >&2
  exit 1
fi
if [ ! -f "$build/tensorflow/libgccl_tf.so" ]; then
  echo "tests/python: $build/tensorflow/libgccl_tf.so is missing: run" \
       "scripts/python-install.sh (scripts/test.sh does)" >&2
  exit 1
fi
export GCCL_TEST_BINARY_DIR="$build"
export GCCL_TF_LIBRARY="$build/tensorflow/libgccl_tf.so"
export PYTHONPATH="$repo/plugins/torch${PYTHONPATH:+:$PYTHONPATH}"
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
exec "$python" -m pytest -q -p no:cacheprovider "$here/test_tensorflow.py"
