#!/usr/bin/env bash
# Builds and installs the gccl Python package (plugins/torch: the torch.distributed backend
# "gccl", the gossip custom ops, GossipDataParallel; gccl.tensorflow with its op library
# libgccl_tf.so when tensorflow is installed) into the project's .venv, made by
# scripts/python-env.sh when missing. The package bundles build/libgccl.so (built first when
# missing; GCCL_BUILD_DIR names another build folder). The extensions compile with MAX_JOBS
# jobs (default 2) and incrementally: a second run only relinks what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/python-env.sh
export MAX_JOBS=${MAX_JOBS:-2}
start=$(date +%s)
build_dir=${GCCL_BUILD_DIR:-build}
if [ -z "${GCCL_BUILD_DIR:-}" ] && [ ! -e build/libgccl.so ]; then
  cmake --preset default
  cmake --build --preset default --target gccl -j "$MAX_JOBS"
fi
if .venv/bin/python -c "import tensorflow" >/dev/null 2>&1; then
  # TensorFlow's op library, which setup.py bundles from $build_dir/tensorflow/.
  TF_CPP_MIN_LOG_LEVEL=2 .venv/bin/python plugins/tensorflow/build.py --build-dir "$build_dir" \
    >/dev/null
else
  rm -f "$build_dir/tensorflow/libgccl_tf.so"  # no tensorflow: no gccl.tensorflow
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-build-isolation \
  --no-deps plugins/torch
echo "python-install: gccl package installed into .venv in $(( $(date +%s) - start )) s"
