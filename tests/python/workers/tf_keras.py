"""Short Keras runs on scikit-learn's digits with gccl.tensorflow (2 ranks, test_tensorflow.py):
AllReduce SGD (DistributedOptimizer), SGP and local SGD (callbacks) each beat chance (10%) by
a wide margin."""

import numpy as np
import tensorflow as tf
import keras

import gccl.tensorflow as gtf
from tf_harness import registry, run

CHECKS, check = registry()

EPOCHS = 4
BATCH = 32


def digits(ctx):
    from sklearn.datasets import load_digits
    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    perm = np.random.RandomState(0).permutation(len(y))
    x, y = x[perm], y[perm]
    n_test = len(y) // 5
    train_x, train_y = x[n_test:], y[n_test:]
    per_rank = len(train_y) // ctx.world  # the same number of batches on every rank
    sl = slice(ctx.rank * per_rank, (ctx.rank + 1) * per_rank)
    return (train_x[sl], train_y[sl]), (x[:n_test], y[:n_test])


def model(seed):
    keras.utils.set_random_seed(seed)  # ranks start apart: the callbacks' broadcast aligns them
    m = keras.Sequential([keras.Input((64,)), keras.layers.Dense(32, activation="relu"),
                          keras.layers.Dense(10)])
    return m


def compile_and_fit(ctx, m, optimizer, callbacks):
    (tx, ty), (vx, vy) = digits(ctx)
    m.compile(optimizer=optimizer, jit_compile=False,
              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
              metrics=["accuracy"])
    m.fit(tx, ty, batch_size=BATCH, epochs=EPOCHS, shuffle=False, verbose=0,
          callbacks=callbacks)
    _, accuracy = m.evaluate(vx, vy, verbose=0)
    return accuracy


def spread(m, comm):
    """The largest difference between two ranks' weights."""
    flat = tf.concat([tf.reshape(v, [-1]) for v in m.trainable_variables], 0)
    return float(tf.reduce_max(gtf.all_reduce(flat, "max", comm) -
                               gtf.all_reduce(flat, "min", comm)))


@check
def allreduce_sgd_with_distributed_optimizer(ctx):
    m = model(ctx.rank)
    gtf.broadcast_variables(m.trainable_variables, 0, ctx.comm)
    optimizer = gtf.DistributedOptimizer(keras.optimizers.SGD(0.1, momentum=0.9))
    accuracy = compile_and_fit(ctx, m, optimizer, [])
    s = spread(m, ctx.comm)
    assert accuracy > 0.8, f"accuracy {accuracy:.3f}"
    assert s < 1e-6, f"ranks' weights differ by {s}"


@check
def sgp_callback(ctx):
    m = model(ctx.rank)
    sgp = gtf.SGPCallback(comm=ctx.comm)
    accuracy = compile_and_fit(ctx, m, keras.optimizers.SGD(0.1, momentum=0.9), [sgp])
    s = spread(m, ctx.comm)
    assert accuracy > 0.8, f"accuracy {accuracy:.3f}"
    assert s < 0.5, f"no consensus: weights differ by {s}"
    assert sgp.step > 0 and sgp.ps_weight > 0, (sgp.step, sgp.ps_weight)


@check
def local_sgd_callback(ctx):
    m = model(ctx.rank)
    accuracy = compile_and_fit(ctx, m, keras.optimizers.SGD(0.1, momentum=0.9),
                               [gtf.LocalSGDCallback(interval=4, comm=ctx.comm)])
    s = spread(m, ctx.comm)
    assert accuracy > 0.8, f"accuracy {accuracy:.3f}"
    assert s < 1e-6, f"the final average left the weights {s} apart"


if __name__ == "__main__":
    run(CHECKS)
