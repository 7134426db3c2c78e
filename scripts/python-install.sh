#!/usr/bin/env bash
# Builds and installs the gccl Python package (plugins/torch: the torch.distributed backend
# "gccl", the gossip custom ops, GossipDataParallel) into the project's .venv, made by
# scripts/python-env.sh when missing. The package bundles build/libgccl.so (built first when
# missing; GCCL_BUILD_DIR names another build folder). The extension compiles with MAX_JOBS
# jobs (default 2) and incrementally: a second run only relinks what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/python-env.sh
export MAX_JOBS=${MAX_JOBS:-2}
start=$(date +%s)
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-build-isolation \
  --no-deps plugins/torch
echo "python-install: gccl package installed into .venv in $(( $(date +%s) - start )) s"
