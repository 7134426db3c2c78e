"""Every backend op on gccl against the same op computed from gloo (4 ranks), and misuse that
each rank detects by itself (unsupported dtype or reduction, wrong sizes, tags)."""

import torch
import torch.distributed as dist

from harness import registry, run

CHECKS, check = registry()

GLOO = None


def gathered(t):
    """Every rank's `t`, through gloo."""
    out = [torch.empty_like(t) for _ in range(dist.get_world_size())]
    dist.all_gather(out, t, group=GLOO)
    return out


def data(ctx, n=10, dtype=torch.float32, salt=0):
    """Integer-valued data that differs per rank: exact sums in any order."""
    g = torch.Generator().manual_seed(1000 * salt + ctx.rank)
    return torch.randint(-8, 9, (n,), generator=g).to(dtype)


def expect_equal(got, want, what):
    assert torch.equal(got, want), f"{what}: got {got.tolist()}, want {want.tolist()}"


def init(ctx):
    global GLOO
    GLOO = dist.new_group(backend="gloo")


@check
def all_reduce_matches_gloo_for_every_op_and_dtype(ctx):
    ops = (dist.ReduceOp.SUM, dist.ReduceOp.PRODUCT, dist.ReduceOp.MIN, dist.ReduceOp.MAX)
    for dtype in (torch.float32, torch.float64, torch.int32, torch.int64, torch.int8,
                  torch.bfloat16, torch.float16):
        for op in ops:
            t = data(ctx, dtype=dtype, salt=3)
            ref = t.clone()
            dist.all_reduce(ref, op=op, group=GLOO)
            dist.all_reduce(t, op=op)
            expect_equal(t, ref, f"all_reduce {op} {dtype}")


@check
def all_reduce_avg_is_the_sum_divided_by_the_world(ctx):
    t = data(ctx, dtype=torch.float64) * 4
    ref = t.clone()
    dist.all_reduce(ref, group=GLOO)
    dist.all_reduce(t, op=dist.ReduceOp.AVG)
    expect_equal(t, ref / ctx.world, "all_reduce AVG")


@check
def all_reduce_writes_back_into_a_non_contiguous_tensor(ctx):
    base = data(ctx, 12).reshape(3, 4)
    t = base.t()
    ref = t.contiguous()
    dist.all_reduce(ref, group=GLOO)
    dist.all_reduce(t)
    expect_equal(base.t(), ref, "all_reduce on a transposed view")


@check
def broadcast_copies_the_roots_tensor(ctx):
    t = data(ctx)
    ref = t.clone()
    dist.broadcast(ref, src=2, group=GLOO)
    dist.broadcast(t, src=2)
    expect_equal(t, ref, "broadcast")


@check
def reduce_writes_the_result_on_the_root(ctx):
    t = data(ctx)
    want = torch.stack(gathered(t)).sum(0)
    dist.reduce(t, dst=1)
    if ctx.rank == 1:
        expect_equal(t, want, "reduce")


@check
def all_gather_fills_the_output_list(ctx):
    t = data(ctx, 6).reshape(2, 3)
    out = [torch.empty_like(t) for _ in range(ctx.world)]
    dist.all_gather(out, t)
    for got, want in zip(out, gathered(t)):
        expect_equal(got, want, "all_gather")


@check
def all_gather_into_tensor_concatenates(ctx):
    t = data(ctx, 5)
    out = torch.empty(ctx.world * 5)
    dist.all_gather_into_tensor(out, t)
    expect_equal(out, torch.cat(gathered(t)), "all_gather_into_tensor")


@check
def reduce_scatter_reduces_each_block_to_its_rank(ctx):
    inputs = [data(ctx, 4, salt=10 + j) for j in range(ctx.world)]
    out = torch.empty(4)
    dist.reduce_scatter(out, inputs)
    mine = torch.stack([everyone[ctx.rank] for everyone in gathered(torch.stack(inputs))]).sum(0)
    expect_equal(out, mine, "reduce_scatter")


@check
def reduce_scatter_tensor_reduces_each_block_to_its_rank(ctx):
    t = data(ctx, 4 * ctx.world)
    out = torch.empty(4)
    dist.reduce_scatter_tensor(out, t, op=dist.ReduceOp.MAX)
    want = torch.stack(gathered(t)).max(0).values[4 * ctx.rank:4 * ctx.rank + 4]
    expect_equal(out, want, "reduce_scatter_tensor MAX")


@check
def all_to_all_single_exchanges_equal_blocks(ctx):
    t = torch.arange(ctx.world * 2, dtype=torch.float32) + 100 * ctx.rank
    out = torch.empty_like(t)
    dist.all_to_all_single(out, t)
    want = torch.cat([torch.arange(2 * ctx.rank, 2 * ctx.rank + 2, dtype=torch.float32) + 100 * r
                      for r in range(ctx.world)])
    expect_equal(out, want, "all_to_all_single")


@check
def all_to_all_single_exchanges_uneven_splits(ctx):
    # Rank r sends r + d + 1 rows to rank d (rows of 3), every element naming (from, to).
    send = [ctx.rank + d + 1 for d in range(ctx.world)]
    recv = [s + ctx.rank + 1 for s in range(ctx.world)]
    t = torch.cat([torch.full((send[d], 3), 10.0 * ctx.rank + d) for d in range(ctx.world)])
    out = torch.empty(sum(recv), 3)
    dist.all_to_all_single(out, t, output_split_sizes=recv, input_split_sizes=send)
    want = torch.cat([torch.full((recv[s], 3), 10.0 * s + ctx.rank) for s in range(ctx.world)])
    expect_equal(out, want, "all_to_all_single with splits")


@check
def all_to_all_exchanges_a_list(ctx):
    inputs = [torch.full((2,), float(10 * ctx.rank + d)) for d in range(ctx.world)]
    outputs = [torch.empty(2) for _ in range(ctx.world)]
    dist.all_to_all(outputs, inputs)
    for s in range(ctx.world):
        expect_equal(outputs[s], torch.full((2,), float(10 * s + ctx.rank)), "all_to_all")


@check
def barrier_returns_on_every_rank(ctx):
    dist.barrier()


@check
def send_and_recv_pass_a_tensor_around_the_ring(ctx):
    right, left = (ctx.rank + 1) % ctx.world, (ctx.rank - 1) % ctx.world
    out = torch.full((3,), float(ctx.rank))
    inbox = torch.empty(3)
    reqs = [dist.isend(out, right), dist.irecv(inbox, left)]
    for r in reqs:
        r.wait()
    expect_equal(inbox, torch.full((3,), float(left)), "send/recv")


@check
def async_work_completes_its_future_without_a_wait(ctx):
    t = torch.ones(1000)
    work = dist.all_reduce(t, async_op=True)
    doubled = work.get_future().then(lambda fut: fut.value()[0] * 2)
    expect_equal(doubled.wait(), torch.full((1000,), 2.0 * ctx.world), "future.then")
    assert work.is_completed()
    works = [dist.all_reduce(torch.full((8,), float(i)), async_op=True) for i in range(5)]
    for i, w in enumerate(works):
        w.wait()
        expect_equal(w.result()[0], torch.full((8,), float(i * ctx.world)), "async order")


@check
def unsupported_dtype_is_a_type_error(ctx):
    try:
        dist.all_reduce(torch.ones(3, dtype=torch.bool))
    except TypeError as e:
        assert "dtype" in str(e) and "Bool" in str(e), str(e)
    else:
        raise AssertionError("bool all_reduce was accepted")


@check
def unsupported_reduction_is_a_value_error(ctx):
    try:
        dist.all_reduce(torch.ones(3, dtype=torch.int32), op=dist.ReduceOp.BAND)
    except ValueError as e:
        assert "BAND" in str(e), str(e)
    else:
        raise AssertionError("BAND all_reduce was accepted")


@check
def all_gather_with_a_wrong_output_list_is_a_value_error(ctx):
    try:
        dist.all_gather([torch.empty(3)] * (ctx.world - 1), torch.ones(3))
    except ValueError as e:
        assert "output list" in str(e), str(e)
    else:
        raise AssertionError("a short output list was accepted")


@check
def send_with_a_tag_is_refused(ctx):
    try:
        dist.send(torch.ones(1), (ctx.rank + 1) % ctx.world, tag=7)
    except ValueError as e:
        assert "tag" in str(e), str(e)
    else:
        raise AssertionError("a tagged send was accepted")


@check
def gccl_still_works_after_refused_calls(ctx):
    t = torch.ones(4)
    dist.all_reduce(t)
    expect_equal(t, torch.full((4,), float(ctx.world)), "all_reduce after misuse")


if __name__ == "__main__":
    run(CHECKS, init)
