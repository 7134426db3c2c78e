"""gccl.tensorflow's ops against NumPy references (run on 4 ranks by test_tensorflow.py)."""

import numpy as np
import tensorflow as tf

import gccl.tensorflow as gtf
from tf_harness import registry, run

CHECKS, check = registry()

DTYPES = [np.float32, np.float64, np.int32, np.int64, np.float16]


def data(rank, shape, dtype, seed=0):
    """Rank r's input: the same on every rank that asks for it (for the references)."""
    rng = np.random.RandomState(1000 * seed + rank)
    if np.issubdtype(dtype, np.integer):
        return rng.randint(-20, 20, size=shape).astype(dtype)
    return rng.uniform(-1, 1, size=shape).astype(dtype)


def everyone(ctx, shape, dtype, seed=0):
    return np.stack([data(r, shape, dtype, seed) for r in range(ctx.world)])


def close(actual, expected, dtype, what):
    actual = np.asarray(actual)
    if np.issubdtype(dtype, np.integer):
        assert np.array_equal(actual, expected), f"{what}: {actual} != {expected}"
    else:
        tol = 5e-3 if dtype == np.float16 else 1e-5
        np.testing.assert_allclose(actual.astype(np.float64), np.asarray(expected, np.float64),
                                   rtol=tol, atol=tol, err_msg=what)


def mass(x, comm=None):
    """The sum over ranks of x, in float64."""
    return gtf.all_reduce(tf.cast(x, tf.float64), "sum", comm).numpy()


# ---- Exact collectives ------------------------------------------------------------------------

@check
def all_reduce_every_reduction_and_dtype(ctx):
    results = []
    for dtype in DTYPES:
        for op in gtf.REDUCTIONS:
            x = _prod_input(data(ctx.rank, (3, 5), dtype, seed=1), op)
            results.append((dtype, op, x, gtf.all_reduce(x, op).numpy()))
    for dtype, op, x, got in results:
        every = np.stack([_prod_input(data(r, (3, 5), dtype, seed=1), op) for r in
                          range(ctx.world)]).astype(np.float64)
        want = {"sum": every.sum(0), "min": every.min(0), "max": every.max(0),
                "prod": every.prod(0)}.get(op)
        if op == "avg":
            want = every.sum(0) / ctx.world
            if np.issubdtype(dtype, np.integer):
                want = np.trunc(want)
        assert got.dtype == dtype and got.shape == (3, 5), f"{op} {dtype}: {got.dtype} {got.shape}"
        close(got, want, dtype, f"all_reduce {op} {np.dtype(dtype).name}")


def _prod_input(x, op):
    """Products of small integers or of values near 1: no overflow, no rounding to 0."""
    if op != "prod":
        return x
    if np.issubdtype(x.dtype, np.integer):
        return np.where(x == 0, 1, np.sign(x)).astype(x.dtype)
    return (1 + x / 4).astype(x.dtype)


@check
def broadcast_from_each_root(ctx):
    got = [gtf.broadcast(data(ctx.rank, (4, 2), np.float32, 2), root).numpy()
           for root in range(ctx.world)]
    for root, g in enumerate(got):
        close(g, data(root, (4, 2), np.float32, 2), np.float32, f"broadcast root {root}")


@check
def all_gather_along_the_first_dimension(ctx):
    got = gtf.all_gather(data(ctx.rank, (2, 3), np.int64, 3)).numpy()
    scalar = gtf.all_gather(tf.constant(float(ctx.rank))).numpy()
    close(got, everyone(ctx, (2, 3), np.int64, 3).reshape(-1, 3), np.int64, "all_gather")
    close(scalar, np.arange(ctx.world), np.float32, "all_gather of scalars")


@check
def reduce_scatter_sum_and_avg(ctx):
    shape = (2 * ctx.world, 3)
    got_sum = gtf.reduce_scatter(data(ctx.rank, shape, np.float64, 4), "sum").numpy()
    got_avg = gtf.reduce_scatter(data(ctx.rank, shape, np.float64, 4), "avg").numpy()
    total = everyone(ctx, shape, np.float64, 4).sum(0)
    block = total[2 * ctx.rank:2 * ctx.rank + 2]
    close(got_sum, block, np.float64, "reduce_scatter sum")
    close(got_avg, block / ctx.world, np.float64, "reduce_scatter avg")


@check
def collectives_inside_tf_function_keep_program_order(ctx):
    @tf.function
    def step(x):
        a = gtf.all_reduce(x, "sum")
        b = gtf.all_gather(x)
        c = gtf.reduce_scatter(tf.tile(x, [ctx.world]), "max")
        d = gtf.broadcast(x * 2, root=ctx.world - 1)
        return a, b, c, d

    x = data(ctx.rank, (4,), np.float32, 5)
    outs = [step(tf.constant(x)) for _ in range(3)]
    every = everyone(ctx, (4,), np.float32, 5)
    for a, b, c, d in outs:
        close(a, every.sum(0), np.float32, "sum in tf.function")
        close(b, every.reshape(-1), np.float32, "all_gather in tf.function")
        close(c, every.max(0), np.float32, "reduce_scatter in tf.function")
        close(d, 2 * every[-1], np.float32, "broadcast in tf.function")
    assert b.shape == (4 * ctx.world,), f"static all_gather shape {b.shape}"


# ---- Gradients --------------------------------------------------------------------------------

@check
def all_reduce_gradient_sums_the_upstream_gradients(ctx):
    # loss_r = sum(c_r * all_reduce(a_r * x_r)); d loss / d x_i (summed over ranks' losses,
    # each rank differentiating its own) = a_i * sum_r c_r.
    a, c = float(ctx.rank + 1), float(2 * ctx.rank + 1)
    x = tf.Variable(data(ctx.rank, (5,), np.float32, 6))
    results = []
    for op in ("sum", "avg"):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(c * gtf.all_reduce(a * x, op))
        results.append((op, tape.gradient(loss, x).numpy()))

    @tf.function
    def graph_grad():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(c * gtf.all_reduce(a * x, "sum"))
        return tape.gradient(loss, x)

    results.append(("sum in tf.function", graph_grad().numpy()))
    csum = sum(2 * r + 1 for r in range(ctx.world))
    for op, g in results:
        want = a * csum / (ctx.world if op == "avg" else 1)
        close(g, np.full(5, want), np.float32, f"gradient of all_reduce {op}")


@check
def all_gather_gradient_is_the_reduce_scatter_of_the_upstream_gradients(ctx):
    x = tf.Variable(data(ctx.rank, (2, 2), np.float64, 7))
    weights = np.arange(ctx.world * 4, dtype=np.float64).reshape(-1, 2) * (ctx.rank + 1)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(weights * gtf.all_gather(x))
    g = tape.gradient(loss, x).numpy()
    every_w = np.arange(ctx.world * 4, dtype=np.float64).reshape(-1, 2)
    want = (every_w * sum(r + 1 for r in range(ctx.world)))[2 * ctx.rank:2 * ctx.rank + 2]
    close(g, want, np.float64, "gradient of all_gather")


@check
def a_reduction_without_a_gradient_says_so(ctx):
    x = tf.Variable(np.ones(3, np.float32))
    try:
        with tf.GradientTape() as tape:
            y = gtf.all_reduce(x, "max")
        tape.gradient(y, x)
    except LookupError as e:
        assert "sum and avg, not max" in str(e), str(e)
    else:
        raise AssertionError("the gradient of all_reduce max did not fail")


# ---- Gossip ----------------------------------------------------------------------------------

def shift_matrix(n):
    """Column-stochastic mixing: every rank keeps 1/2 and gives 1/2 to rank + 1."""
    a = 0.5 * np.eye(n)
    for i in range(n):
        a[(i + 1) % n, i] += 0.5
    return a


@check
def push_sum_mixes_as_the_matrix_says(ctx):
    a = shift_matrix(ctx.world)
    topo = gtf.Topology.from_weights([a])
    x = data(ctx.rank, (6,), np.float64, 8)
    x1, w1 = gtf.push_sum(x, 1.0, topo, 0)
    x2, w2 = gtf.push_sum(x1, w1, topo, 1)
    every = everyone(ctx, (6,), np.float64, 8)
    want = (a @ a @ every)[ctx.rank]
    close(x2, want, np.float64, "push_sum x")
    close(w2, 1.0, np.float64, "push_sum weight")  # a doubly stochastic A keeps w = 1


@check
def push_sum_with_built_in_topology_and_codec_conserves_mass(ctx):
    topo = gtf.Topology("exponential", ctx.world)
    x = tf.constant(data(ctx.rank, (300,), np.float32, 9))
    w = tf.constant(1.0, tf.float64)
    before = mass(x)
    q8 = gtf.Codec("quantize", bits=8, bucket=64)
    for k in range(12):
        x, w = gtf.push_sum(x, w, topo, k, codec=q8)
    after, weights = mass(x), mass(w)
    z = gtf.push_sum_debias(x, w).numpy()
    spread = gtf.all_reduce(z, "max").numpy() - gtf.all_reduce(z, "min").numpy()
    np.testing.assert_allclose(after, before, atol=1e-3, err_msg="mass of x")
    assert abs(weights - ctx.world) < 1e-9, f"mass of w: {weights}"
    assert spread.max() < 0.05, f"no consensus after 12 compressed steps: spread {spread.max()}"


@check
def push_sum_in_tf_function_with_a_step_variable(ctx):
    step = tf.Variable(0, dtype=tf.int64)

    @tf.function
    def gossip(x, w):
        x, w = gtf.push_sum(x, w, "exponential", step)  # a topology named by its kind
        step.assign_add(1)
        return x, w

    x = tf.constant(data(ctx.rank, (16,), np.float64, 10))
    w = tf.constant(1.0, tf.float64)
    for _ in range(8):
        x, w = gossip(x, w)
    z = gtf.push_sum_debias(x, w).numpy()
    mean = everyone(ctx, (16,), np.float64, 10).mean(0)
    assert int(step.numpy()) == 8
    np.testing.assert_allclose(z, mean, atol=1e-2, err_msg="push_sum consensus")


@check
def neighbor_average_on_the_ring(ctx):
    ring = gtf.Topology("ring", ctx.world)
    x = data(ctx.rank, (5,), np.float32, 11)
    got = gtf.neighbor_average(x, ring, 0).numpy()
    f16 = gtf.neighbor_average(x, ring, 1, codec="float16").numpy()
    every = everyone(ctx, (5,), np.float32, 11)
    n, r = ctx.world, ctx.rank
    peers = sorted({(r - 1) % n, (r + 1) % n} - {r})
    want = (every[r] + sum(every[p] for p in peers)) / (len(peers) + 1)
    close(got, want, np.float32, "neighbor_average")
    np.testing.assert_allclose(f16, want, atol=2e-3, err_msg="neighbor_average float16")


@check
def pairwise_exchange_conserves_the_sum(ctx):
    ring = gtf.Topology("ring", ctx.world)
    x = tf.constant(data(ctx.rank, (32,), np.float64, 12))
    before = mass(x)
    partners = []
    with gtf.PairwiseGossip(x, ring, seed=3) as pw:
        for k in range(3):
            x = x + 1.0  # a local update, folded in at the next exchange
            x, partner = pw.exchange(x, k)
            partners.append(int(partner))
        gtf.all_reduce(tf.zeros([1]))  # every rank is done exchanging
        # Neighbours may have mixed into this rank's model after its last exchange: the
        # registered model has it, x not yet.
        after = mass(pw.read())
    n = ctx.world
    assert all(p in ((ctx.rank - 1) % n, (ctx.rank + 1) % n) for p in partners), partners
    np.testing.assert_allclose(after, before + 3 * n, atol=1e-9, err_msg="pairwise sum")


# ---- Sparse and codecs -------------------------------------------------------------------------

@check
def sparse_all_reduce_against_dense(ctx):
    count = 50
    results = []
    for op in ("sum", "avg"):
        rng = np.random.RandomState(ctx.rank + 13)
        idx = np.sort(rng.choice(count, size=7, replace=False))
        vals = rng.uniform(-1, 1, 7).astype(np.float32)
        results.append((op, gtf.sparse_all_reduce(idx, vals, count, op).numpy()))
    dense = np.zeros((ctx.world, count))
    for r in range(ctx.world):
        rng = np.random.RandomState(r + 13)
        idx = np.sort(rng.choice(count, size=7, replace=False))
        dense[r, idx] = rng.uniform(-1, 1, 7).astype(np.float32)
    for op, got in results:
        want = dense.sum(0) / (ctx.world if op == "avg" else 1)
        close(got, want, np.float32, f"sparse_all_reduce {op}")


@check
def top_k_all_reduce_with_error_feedback(ctx):
    g = data(ctx.rank, (20,), np.float32, 15)
    topk = gtf.Codec("topk", topk_count=3)
    out, residual, sent = gtf.top_k_all_reduce(g, None, topk, "sum")
    out2, residual2, _ = gtf.top_k_all_reduce(g, residual, topk, "sum")
    want = np.zeros(20)
    for r in range(ctx.world):
        x = data(r, (20,), np.float32, 15)
        top = np.argsort(-np.abs(x), kind="stable")[:3]
        want[top] += x[top]
    assert int(sent) == 3, int(sent)
    close(out, want, np.float32, "top_k_all_reduce")
    # What a rank sent plus what it kept is what it had: grad + old residual.
    mine = g.copy()
    mine[np.argsort(-np.abs(g), kind="stable")[:3]] = 0
    close(residual, mine, np.float32, "top_k_all_reduce residual")
    assert np.count_nonzero(residual2.numpy()) <= 17


@check
def codecs_encode_and_decode(ctx):
    x = data(ctx.rank, (40, 3), np.float32, 14)
    enc, _ = gtf.encode(x, "float16")
    close(gtf.decode(enc, "float16", x.shape), x.astype(np.float16), np.float16, "float16")
    assert enc.shape == (x.size * 2,), enc.shape

    q4 = gtf.Codec("quantize", bits=4, bucket=32)
    enc, _ = gtf.encode(x, q4)
    back = gtf.decode(enc, q4, x.shape).numpy()
    flat = x.reshape(-1)
    scale = max((flat[i:i + 32].max() - flat[i:i + 32].min()) / 15 for i in range(0, 120, 32))
    assert np.abs(back - x).max() <= scale / 2 + 1e-6, np.abs(back - x).max()
    assert enc.shape[0] < x.size, enc.shape

    topk = gtf.Codec("topk", topk_count=10)
    enc, residual = gtf.encode(x, topk)
    back = gtf.decode(enc, topk, x.shape).numpy()
    np.testing.assert_allclose(back.reshape(-1) + residual.numpy(), flat, atol=1e-7)
    assert np.count_nonzero(back) == 10

    lattice = gtf.Codec("lattice", bits=8, lattice_step=1e-3)
    reference = x + 0.01
    enc, _ = gtf.encode(x, lattice)
    back = gtf.decode(enc, lattice, x.shape, reference=reference).numpy()
    assert np.abs(back - x).max() <= 0.5e-3 + 1e-6, np.abs(back - x).max()


# ---- Bad input ----------------------------------------------------------------------------------

def raises(exc, fragment, fn):
    try:
        fn()
    except exc as e:
        assert fragment in str(e), f"{type(e).__name__} without {fragment!r}: {e}"
        return
    raise AssertionError(f"no {exc.__name__} ({fragment!r})")


@check
def bad_input_gets_a_clear_error(ctx):
    raises(TypeError, "unsupported dtype string", lambda: gtf.all_reduce(tf.constant(["a"])))
    raises(TypeError, "unsupported dtype complex64",
           lambda: gtf.broadcast(tf.constant([1j], tf.complex64)))
    raises(TypeError, "push_sum: unsupported dtype int32",
           lambda: gtf.push_sum(tf.constant([1]), 1.0, "exponential", 0))
    raises(ValueError, "unknown reduction 'mean'", lambda: gtf.all_reduce([1.0], "mean"))
    raises(ValueError, "must be a multiple of the", lambda: gtf.reduce_scatter(
        tf.zeros([ctx.world + 1])))
    raises(ValueError, "root 99 is not a rank", lambda: gtf.broadcast([1.0], 99))
    raises(ValueError, "the topology has", lambda: gtf.push_sum(
        [1.0], 1.0, gtf.Topology("ring", ctx.world + 1), 0))
    # The kernels check what reaches them directly, too.
    raises(tf.errors.InvalidArgumentError, "indices and values must be vectors of the same "
           "length", lambda: gtf.sparse_all_reduce([0, 1], [1.0], 4))
    raises(tf.errors.InvalidArgumentError, "indices[0] = 9 is outside 0..3",
           lambda: gtf.sparse_all_reduce([9], [1.0], 4))
    raises(tf.errors.InvalidArgumentError, "ps_weight must be a scalar",
           lambda: gtf._ops.gccl_push_sum(tf.zeros([2]), tf.zeros([2], tf.float64),
                                          tf.constant(0, tf.int64), comm=ctx.comm.id,
                                          topology=gtf.Topology("ring", ctx.world).id))
    raises(tf.errors.InvalidArgumentError, "top-k needs a residual of 4",
           lambda: gtf.encode(tf.zeros([4]), "topk", residual=tf.zeros([3])))
    raises(tf.errors.InvalidArgumentError, "no communicator with id 12345",
           lambda: gtf._ops.gccl_all_reduce(tf.zeros([1]), reduction="sum", comm=12345))
    raises(ValueError, "unknown topology kind 'star'", lambda: gtf.Topology("star", 4))
    raises(ValueError, "unknown codec 'zip'", lambda: gtf.Codec("zip"))
    # Everything above failed before any traffic: the communicator still works.
    close(gtf.all_reduce([1.0], "sum"), [ctx.world], np.float32, "after the bad input")


@check
def mismatched_shapes_across_ranks_are_named(ctx):
    """Last: a mismatch breaks the communicator on every rank. The first call is matched: once
    it completes anywhere, every rank has finished the checks before (a rank still inside it when
    the mismatch breaks the communicator gets the error there); a rank whose own peers agreed
    learns of the mismatch at its next call."""
    ctx.broken = True
    errors = []
    for shape in ([1], [4 + ctx.rank], [1]):
        try:
            gtf.all_reduce(tf.zeros(shape), "sum")
        except tf.errors.OpError as e:
            errors.append(str(e))
            break
    assert errors, "all_reduce of different shapes did not fail"
    assert "gccl: all_reduce failed" in errors[0] and "AllReduce(count=" in errors[0], errors[0]


if __name__ == "__main__":
    run(CHECKS)
