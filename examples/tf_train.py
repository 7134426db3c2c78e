"""TensorFlow demo: a small Keras model on scikit-learn's digits, data-parallel over gccl.

    GCCL_DEMO=tf scripts/demo.sh         # or: .venv/bin/python examples/tf_train.py

Run as a plain script, it launches itself on 4 local ranks under the build's gcclrun
(build/perf/gcclrun; GCCL_BUILD_DIR names another build folder). Every rank trains the same
initial model (rank 0's, broadcast) on its shard of the training set with Keras' model.fit,
once per algorithm:
  allreduce  AllReduce SGD: gccl.tensorflow.DistributedOptimizer averages the gradients of
             every step with one all_reduce (inside Keras' tf.function train step);
  sgp        Stochastic Gradient Push: SGPCallback runs one PushSum step on the one-peer
             exponential graph after every batch;
  local_sgd  local SGD: LocalSGDCallback averages the models every 4 batches.
It prints, per algorithm, the test accuracy of each rank's own model (mean over ranks) and of
the ranks' average model, the time per iteration and how far apart the ranks' weights are, and
fails when an accuracy is below 80%. Options: --ranks N --epochs N --batch N --lr LR
--algorithms a,b --delay-us US (emulated one-way latency, GCCL_BENCH_DELAY_US).
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ALGORITHMS = ["allreduce", "sgp", "local_sgd"]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ranks", type=int, default=4)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--algorithms", default=",".join(ALGORITHMS))
    p.add_argument("--delay-us", type=int, default=0, help="emulated one-way latency")
    p.add_argument("--out", default="build/tf_train", help="results folder")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


# ---- Every rank ---------------------------------------------------------------------------------

def digits(rank, world, seed):
    import numpy as np
    from sklearn.datasets import load_digits
    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    perm = np.random.RandomState(seed).permutation(len(y))
    x, y = x[perm], y[perm]
    n_test = len(y) // 5
    train_x, train_y = x[n_test:], y[n_test:]
    per_rank = len(train_y) // world  # equal shards: every rank runs the same number of steps
    shard = slice(rank * per_rank, (rank + 1) * per_rank)
    return (train_x[shard], train_y[shard]), (x[:n_test], y[:n_test])


def train(algorithm, args, comm, data):
    import keras
    import tensorflow as tf
    import gccl.tensorflow as gtf

    (tx, ty), (vx, vy) = data
    keras.utils.set_random_seed(args.seed + comm.rank)  # rank 0's model is broadcast below
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(64, activation="relu"),
                              keras.layers.Dense(10)])
    optimizer = keras.optimizers.SGD(args.lr, momentum=0.9)
    callbacks = []
    if algorithm == "allreduce":
        optimizer = gtf.DistributedOptimizer(optimizer, comm)
        gtf.broadcast_variables(model.trainable_variables, 0, comm)
    elif algorithm == "sgp":
        callbacks.append(gtf.SGPCallback(comm=comm))
    elif algorithm == "local_sgd":
        callbacks.append(gtf.LocalSGDCallback(interval=4, comm=comm))
    else:
        raise SystemExit(f"tf_train: unknown algorithm {algorithm!r} (one of {ALGORITHMS})")

    class Timer(keras.callbacks.Callback):
        """Wall time of the batches after the first (which traces the train step)."""

        def on_train_batch_begin(self, batch, logs=None):
            self.t0 = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            if getattr(self, "seen", False):
                self.total += time.perf_counter() - self.t0
                self.count += 1
            else:
                self.seen, self.total, self.count = True, 0.0, 0

    timer = Timer()
    model.compile(optimizer=optimizer, jit_compile=False, metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    # The timer last: it measures the step and the communication the callbacks add.
    model.fit(tx, ty, batch_size=args.batch, epochs=args.epochs, shuffle=False, verbose=0,
              callbacks=callbacks + [timer])
    _, own = model.evaluate(vx, vy, verbose=0)

    flat = tf.concat([tf.reshape(v, [-1]) for v in model.trainable_variables], 0)
    spread = float(tf.reduce_max(gtf.all_reduce(flat, "max", comm) -
                                 gtf.all_reduce(flat, "min", comm)))
    mean_own = float(gtf.all_reduce(tf.constant([own], tf.float64), "avg", comm)[0])
    ms = float(gtf.all_reduce(tf.constant([1000 * timer.total / max(timer.count, 1)],
                                          tf.float64), "max", comm)[0])
    average = gtf.all_reduce(flat, "avg", comm)  # the ranks' average model
    offset = 0
    for v in model.trainable_variables:
        n = int(tf.size(v))
        v.assign(tf.reshape(average[offset:offset + n], v.shape))
        offset += n
    _, avg = model.evaluate(vx, vy, verbose=0)
    return {"algorithm": algorithm, "own": 100 * mean_own, "average": 100 * avg,
            "ms_per_iter": ms, "iters": timer.count + 1, "spread": spread}


def worker(args):
    import gccl.tensorflow as gtf
    comm = gtf.init()
    data = digits(comm.rank, comm.size, args.seed)
    results = [train(a, args, comm, data) for a in args.algorithms.split(",")]
    if comm.rank == 0:
        (Path(args.out) / "results.json").write_text(json.dumps(results))
    comm.destroy()


# ---- The driver ---------------------------------------------------------------------------------

def main():
    args = parse_args()
    if "RANK" in os.environ:
        worker(args)
        return
    repo = Path(__file__).resolve().parents[1]
    gcclrun = Path(os.environ.get("GCCL_BUILD_DIR", repo / "build")) / "perf" / "gcclrun"
    if not gcclrun.exists():
        raise SystemExit(f"tf_train: {gcclrun} is missing: build it (cmake --build --preset "
                         "default --target gcclrun)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").unlink(missing_ok=True)
    env = dict(os.environ, GCCL_SOCKET_IFNAME="lo", GCCL_BENCH_DELAY_US=str(args.delay_us),
               OMP_NUM_THREADS="1", TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="2")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    print(f"== {args.ranks} ranks (gcclrun), one-way latency {args.delay_us} us, "
          f"{args.epochs} epochs", flush=True)
    start = time.time()
    subprocess.run([str(gcclrun), "-n", str(args.ranks), "-t", "900", sys.executable,
                    __file__] + sys.argv[1:], env=env, check=True)
    results = json.loads((out / "results.json").read_text())
    print(f"\n  {'algorithm':10s} {'own':>8s} {'average':>8s} {'ms/iter':>8s} {'iters':>6s} "
          f"{'spread':>9s}")
    ok = True
    for r in results:
        print(f"  {r['algorithm']:10s} {r['own']:7.2f}% {r['average']:7.2f}% "
              f"{r['ms_per_iter']:8.2f} {r['iters']:6d} {r['spread']:9.2e}")
        ok = ok and r["own"] >= 80 and r["average"] >= 80
    print(f"\n(own: mean test accuracy of the ranks' own models; average: of their average "
          f"model; spread: largest weight difference between ranks) {time.time() - start:.0f} s")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
