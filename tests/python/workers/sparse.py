"""Sparse AllReduce and top-k gradient compression from PyTorch (3 ranks): the ops against dense
torch references, top-k's error feedback, GossipDataParallel("allreduce", codec="topk:F")
training and saving its residual, and clear errors for bad indices and dtypes."""

import math

import torch
import torch.distributed as dist
from torch import nn

import gccl
from gccl import ops
from harness import raises, registry, run

CHECKS, check = registry()


def sparse_vector(rank, count, nnz, dtype=torch.float32):
    """Rank `rank`'s sparse vector: `nnz` distinct ascending int64 indices and their values."""
    g = torch.Generator().manual_seed(100 + rank)
    indices = torch.randperm(count, generator=g)[:nnz].sort().values
    values = torch.randn(nnz, generator=g, dtype=torch.float64).to(dtype)
    return indices, values


def dense_reference(world, count, nnz, dtype, op):
    """The sum (or average) over every rank's sparse vector, in float64."""
    ref = torch.zeros(count, dtype=torch.float64)
    for r in range(world):
        i, v = sparse_vector(r, count, nnz, dtype)
        ref.index_add_(0, i, v.double())
    return ref / world if op == "avg" else ref


@check
def sparse_all_reduce_matches_a_dense_reference(ctx):
    count = 200
    # nnz 5: the sparse all-gather; nnz 150: scattered into a dense AllReduce.
    for nnz in (5, 150):
        for op in ("sum", "avg", dist.ReduceOp.SUM, dist.ReduceOp.AVG):
            name = op if isinstance(op, str) else ("sum" if op == dist.ReduceOp.SUM else "avg")
            ref = dense_reference(ctx.world, count, nnz, torch.float32, name)
            i, v = sparse_vector(ctx.rank, count, nnz)
            for idx in (i, i.int(), i.to(torch.uint32)):
                out = ops.sparse_all_reduce(idx, v, count, op)
                assert out.dtype == torch.float32 and out.shape == (count,)
                assert torch.allclose(out.double(), ref, atol=1e-5), \
                    f"nnz {nnz} {name} {idx.dtype}: off by {(out.double() - ref).abs().max()}"
                first = out.clone()
                dist.broadcast(first, 0)
                assert torch.equal(out, first), "the ranks' results differ"
    # Other value dtypes, and a rank with nothing to send.
    i, v = sparse_vector(ctx.rank, count, 7, torch.float64)
    out = ops.sparse_all_reduce(i, v, count, "sum")
    assert out.dtype == torch.float64
    assert torch.allclose(out, dense_reference(ctx.world, count, 7, torch.float64, "sum"))
    empty = torch.zeros(0, dtype=torch.int32)
    i = i.int() if ctx.rank else empty
    v = v[:len(i)]
    out = ops.sparse_all_reduce(i, v, count)
    ref = dense_reference(ctx.world, count, 7, torch.float64, "sum")
    ref -= dense_reference(1, count, 7, torch.float64, "sum")  # rank 0's part
    assert torch.allclose(out, ref)


@check
def sparse_all_reduce_to_sparse_gives_the_nonzero_entries(ctx):
    count, nnz = 200, 6
    i, v = sparse_vector(ctx.rank, count, nnz)
    # Index 199 cancels out: +1 from rank 0, -1 from rank 1; the sparse result omits it.
    keep = i != count - 1
    i, v = i[keep], v[keep]
    if ctx.rank < 2:
        i = torch.cat([i, torch.tensor([count - 1])])
        v = torch.cat([v, torch.tensor([1.0 if ctx.rank == 0 else -1.0])])
    dense = ops.sparse_all_reduce(i, v, count, "sum")
    want = dense.nonzero().flatten()
    for op in ("sum", "avg"):
        # capacity 2: the first try does not fit, gccl names the need and the op tries again.
        for capacity in (0, 2, 1000):
            oi, ov = ops.sparse_all_reduce_to_sparse(i.int(), v, count, op, capacity=capacity)
            assert oi.dtype == torch.uint32 and ov.dtype == torch.float32
            assert torch.equal(oi.long(), want), f"{op} capacity {capacity}: indices {oi}"
            expect = dense[want] / (ctx.world if op == "avg" else 1)
            assert torch.allclose(ov, expect, atol=1e-6), f"{op} capacity {capacity}: values"
            assert count - 1 not in oi.long().tolist()
    # Nothing anywhere: an empty result.
    oi, ov = ops.sparse_all_reduce_to_sparse(torch.zeros(0, dtype=torch.int32), torch.zeros(0),
                                             count)
    assert oi.numel() == 0 and ov.numel() == 0


@check
def topk_all_reduce_keeps_the_error_and_sums_the_selections(ctx):
    n, fraction = 300, 0.1
    k = math.ceil(fraction * n)
    g = torch.Generator().manual_seed(ctx.rank)
    residual = torch.zeros(n)
    for step, (topk, op) in enumerate((("topk:0.1", "sum"), (fraction, "avg"),
                                       (gccl.Codec("topk", topk_fraction=fraction), "sum"))):
        grad = torch.randn(n, generator=g)
        want = grad + residual  # what this rank has to send, now or later
        old = residual.clone()
        sent = ops.topk_all_reduce(grad, residual, topk, op=op)
        assert sent == k, f"step {step}: sent {sent}, k {k}"
        picked = residual == 0
        # Error feedback: each entry is either sent whole or kept whole in the residual.
        assert int(picked.sum()) == k, f"step {step}: {int(picked.sum())} entries left the residual"
        assert torch.equal(residual[~picked], want[~picked])
        assert want[picked].abs().min() >= want[~picked].abs().max(), "not the largest entries"
        selection = torch.where(picked, want, torch.zeros(n))
        assert torch.allclose(selection + residual, want) and not torch.equal(old, residual)
        total = selection.clone()
        dist.all_reduce(total)
        if op == "avg":
            total /= ctx.world
        assert torch.allclose(grad, total, atol=1e-6), f"step {step}: not the ranks' selections"
    # k as a count.
    grad, residual = torch.randn(n, generator=g), torch.zeros(n)
    assert ops.topk_all_reduce(grad, residual, 5) == 5
    assert int((residual == 0).sum()) == 5


@check
def gossip_data_parallel_allreduce_with_topk_trains_and_saves_its_residual(ctx):
    torch.manual_seed(0)
    model = gccl.GossipDataParallel(nn.Linear(8, 2), "allreduce", codec="topk:0.1")
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model.attach(opt)
    g = torch.Generator().manual_seed(10 + ctx.rank)
    w_true = torch.randn(2, 8, generator=torch.Generator().manual_seed(3))
    test_x = torch.randn(128, 8, generator=g)
    test_y = test_x @ w_true.t()

    def loss():
        with torch.no_grad():
            value = nn.functional.mse_loss(model(test_x), test_y).reshape(1)
        dist.all_reduce(value, op=dist.ReduceOp.AVG)
        return float(value)

    first = loss()
    for _ in range(80):
        x = torch.randn(16, 8, generator=g)
        opt.zero_grad()
        nn.functional.mse_loss(model(x), x @ w_true.t()).backward()
        opt.step()
    last = loss()
    assert last < first / 10, f"loss {first} -> {last}"
    assert model.last_sent == math.ceil(0.1 * 18)
    # Exact top-k of averaged selections: every rank applies the same update.
    assert model.consensus_distance() == 0.0
    state = model.state_dict()
    assert "topk_residual" in state and state["topk_residual"].abs().sum() > 0
    model.close()
    other = gccl.GossipDataParallel(nn.Linear(8, 2), "allreduce", codec="topk:0.1",
                                    broadcast_initial=False)
    other.load_state_dict(state)
    assert torch.equal(other.topk_residual, model.topk_residual)
    assert torch.equal(other.flat_parameters, model.flat_parameters)
    other.close()


@check
def bad_indices_and_dtypes_are_refused_clearly(ctx):
    v = torch.ones(3)
    # gccl's own checks, before anything is sent: they name the position.
    raises(RuntimeError, "indices[2] = 5 follows indices[1] = 7",
           lambda: ops.sparse_all_reduce(torch.tensor([1, 7, 5]), v, 16))
    raises(RuntimeError, "indices[2] = 4 follows indices[1] = 4",
           lambda: ops.sparse_all_reduce(torch.tensor([1, 4, 4], dtype=torch.int32), v, 16))
    raises(RuntimeError, "indices[2] = 16 is out of range (count 16)",
           lambda: ops.sparse_all_reduce_to_sparse(torch.tensor([1, 4, 16]), v, 16))
    # The plugin's: negative and too-wide indices, shapes, dtypes, reductions.
    raises(ValueError, "indices[1] = -3 is negative",
           lambda: ops.sparse_all_reduce(torch.tensor([1, -3, 5], dtype=torch.int32), v, 16))
    raises(ValueError, "indices[0] = 4294967296 is outside",
           lambda: ops.sparse_all_reduce(torch.tensor([1 << 32, 1, 2]), v, 1 << 32))
    raises(TypeError, "indices must be uint32, int32 or int64",
           lambda: ops.sparse_all_reduce(torch.tensor([1.0, 2.0, 3.0]), v, 16))
    raises(TypeError, "is not supported",
           lambda: ops.sparse_all_reduce(torch.tensor([1, 2, 3]), torch.ones(3, dtype=torch.bool),
                                         16))
    raises(ValueError, "the same length",
           lambda: ops.sparse_all_reduce(torch.tensor([1, 2]), v, 16))
    raises(ValueError, "op must be", lambda: ops.sparse_all_reduce(torch.tensor([1, 2, 3]), v,
                                                                    16, "max"))
    raises(ValueError, "count must be", lambda: ops.sparse_all_reduce(torch.tensor([1]), v[:1],
                                                                       -1))
    # Top-k: float32 only, a residual of the gradient's size, a top-k codec.
    grad, res = torch.ones(10), torch.zeros(10)
    raises(TypeError, "grad must be float32",
           lambda: ops.topk_all_reduce(grad.double(), res, 0.5))
    raises(TypeError, "residual must be float32",
           lambda: ops.topk_all_reduce(grad, res.half(), 0.5))
    raises(ValueError, "the residual has 9 elements",
           lambda: ops.topk_all_reduce(grad, res[:9], 0.5))
    raises(ValueError, "must be contiguous",
           lambda: ops.topk_all_reduce(torch.ones(10, 2).t()[0], res, 0.5))
    raises(ValueError, "the codec must be topk", lambda: ops.topk_all_reduce(grad, res, "q8"))
    raises(ValueError, "(0, 1]", lambda: ops.topk_all_reduce(grad, res, 1.5))
    raises(ValueError, "k must be >= 1", lambda: ops.topk_all_reduce(grad, res, 0))
    raises(RuntimeError, "residual overlaps grad", lambda: ops.topk_all_reduce(grad, grad, 0.5))
    # GossipDataParallel: allreduce takes top-k only, on float32 parameters.
    raises(ValueError, "allreduce averages gradients", lambda: gccl.GossipDataParallel(
        nn.Linear(2, 2), "allreduce", codec="q8"))
    raises(ValueError, "float32 parameters", lambda: gccl.GossipDataParallel(
        nn.Linear(2, 2).double(), "allreduce", codec="topk:0.5"))
    # The communicator still works after the refusals.
    out = ops.sparse_all_reduce(torch.tensor([ctx.rank]), torch.ones(1), ctx.world)
    assert torch.equal(out, torch.ones(ctx.world))


if __name__ == "__main__":
    run(CHECKS)
