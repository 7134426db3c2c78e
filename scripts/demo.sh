#!/usr/bin/env bash
# The main job: builds gccl and its Python package (into the project's .venv, made with torch
# from PyPI when missing: scripts/python-env.sh, scripts/python-install.sh), then trains real
# models on 4 local ranks under torchrun with gccl's torch.distributed backend and
# GossipDataParallel (examples/torch_train.py): a small CNN on scikit-learn's digits and a
# character-level language model on the Python standard library's sources, with AllReduce SGD,
# SGP, overlap SGP, D-PSGD, SwarmSGD and local SGD, once on loopback and once with 5 ms of
# emulated one-way latency. It prints accuracy or loss, time and bytes per iteration and
# consensus distance per algorithm and writes build/torch_train/torch_train.png. Arguments go
# to the demo (--iters N --lm-iters N --ranks N --delay-us US --algorithms a,b).
#
# The torch-free C demo (examples/sgp_demo.cc: an MLP with AllReduce SGD, SGP and D-PSGD) is
# the second example: GCCL_DEMO=c scripts/demo.sh [--iters N --batch N --seed N]
# (GCCL_DEMO_RANKS sets its rank count). The TensorFlow demo (examples/tf_train.py: a Keras
# model on the digits on 4 ranks under gcclrun with AllReduce SGD, SGP and local SGD):
# GCCL_DEMO=tf scripts/demo.sh [--epochs N --ranks N --algorithms a,b]. The demo of the exact
# collectives is built too:
#   build/perf/gcclrun -n 4 build/examples/collectives_demo [max-bytes]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset default >/dev/null
cmake --build --preset default --target gccl gcclrun sgp_demo collectives_demo
if [ "${GCCL_DEMO:-torch}" = "c" ]; then
  exec build/perf/gcclrun -n "${GCCL_DEMO_RANKS:-4}" -t 600 build/examples/sgp_demo "$@"
fi
scripts/python-install.sh
if [ "${GCCL_DEMO:-torch}" = "tf" ]; then
  exec .venv/bin/python examples/tf_train.py "$@"
fi
exec .venv/bin/python examples/torch_train.py "$@"
