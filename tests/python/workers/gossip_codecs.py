"""The gossip custom ops and GossipDataParallel with wire codecs (4 ranks): mass is conserved
with lossy codecs (as tests/multiproc/test_gossip_codec.cc checks in C), the ranks approach
consensus, training still works, and bad codecs are refused clearly."""

import torch
import torch.distributed as dist
from torch import nn

import gccl
from gccl import ops
from gccl.codec import Codec
from harness import raises, registry, run

CHECKS, check = registry()

# Lossy codecs the gossip calls take, by the spellings users write, and the consensus each
# reaches from unit-scale values (deterministic codecs stop within a quantization step or so).
LOSSY = (("q8", 0.05), ("f16", 0.01), ("bf16", 0.05), ("lattice8:0.05", 0.1),
         (Codec("quantize", bits=4, bucket=64, rounding="stochastic", seed=7), 0.5))


def total(t):
    s = t.double().clone()
    dist.all_reduce(s)
    return s


def spread(z):
    """The largest distance of any rank's entries from the mean over ranks."""
    mean = total(z) / dist.get_world_size()
    d = (z.double() - mean).abs().max().reshape(1)
    dist.all_reduce(d, op=dist.ReduceOp.MAX)
    return float(d)


def start_values(ctx, n=300):
    g = torch.Generator().manual_seed(ctx.rank)
    return torch.randn(n, generator=g, dtype=torch.float64)


@check
def push_sum_with_codecs_conserves_mass_and_approaches_consensus(ctx):
    topo = gccl.Topology("exponential", ctx.world)
    for codec, tol in LOSSY:
        x = start_values(ctx)
        w = ops.new_weight()
        mass, d0 = total(x), spread(x)
        for k in range(25):
            ops.push_sum(x, w, topo, k, codec=codec)
        assert torch.allclose(total(x), mass, atol=1e-9), f"{codec}: the sum of x changed"
        assert abs(float(total(w)) - ctx.world) < 1e-12, f"{codec}: the sum of w changed"
        d = spread(ops.push_sum_debias(x, w))
        assert d < tol and d < d0 / 10, f"{codec}: spread {d0} -> {d}"


@check
def neighbor_average_with_codecs_conserves_mass_and_approaches_consensus(ctx):
    topo = gccl.Topology("ring", ctx.world)
    for codec, tol in LOSSY:
        x = start_values(ctx)
        mass, d0 = total(x), spread(x)
        for k in range(40):
            ops.neighbor_average(x, topo, k, codec=codec)
        assert torch.allclose(total(x), mass, atol=1e-9), f"{codec}: the sum of x changed"
        d = spread(x)
        assert d < tol and d < d0 / 10, f"{codec}: spread {d0} -> {d}"


@check
def overlap_gossip_with_a_codec_conserves_mass_and_approaches_consensus(ctx):
    topo = gccl.Topology("exponential", ctx.world)
    for codec in ("q8", "lattice8:0.05"):
        x = start_values(ctx)
        w = ops.new_weight()
        mass, d0 = total(x), spread(x)
        with ops.OverlapGossip(x, w, topo, staleness=1, codec=codec) as g:
            for k in range(25):
                g.start(k)
                g.finish(k)
        assert torch.allclose(total(x), mass, atol=1e-9), f"{codec}: the sum of x changed"
        assert abs(float(total(w)) - ctx.world) < 1e-12, f"{codec}: the sum of w changed"
        d = spread(ops.push_sum_debias(x, w))
        assert d < 0.1 and d < d0 / 10, f"{codec}: spread {d0} -> {d}"


@check
def pairwise_gossip_with_a_codec_conserves_the_sum_and_approaches_consensus(ctx):
    topo = gccl.Topology("ring", ctx.world)
    for codec in ("q8", "f16"):
        x = start_values(ctx)
        mass, d0 = total(x), spread(x)
        with ops.PairwiseGossip(x, topo, seed=3, codec=codec) as p:
            for k in range(20):
                p.exchange(k)
        dist.barrier()
        assert torch.allclose(total(x), mass, atol=1e-9), f"{codec}: the sum of x changed"
        d = spread(x)
        assert d < d0 / 4, f"{codec}: spread {d0} -> {d}"


@check
def gossip_ops_with_a_codec_work_inside_torch_compile(ctx):
    topo = gccl.Topology("ring", ctx.world)
    x = start_values(ctx)

    @torch.compile(backend="eager")
    def step(t, k):
        t.mul_(2)
        ops.neighbor_average(t, topo, k, codec="q8")
        return t.sum()

    mass = total(x)
    for k in range(10):
        step(x, k)
    assert torch.allclose(total(x) / 2 ** 10, mass, atol=1e-9), "the sum of x changed"


@check
def local_sgd_with_a_codec_averages_to_one_model(ctx):
    x = start_values(ctx)
    mean = total(x) / ctx.world
    with ops.LocalSGD(x, interval=2, codec="q8") as local:
        assert not local.step(0), "averaged at step 0 of an interval of 2"
        assert local.step(1), "did not average at step 1 of an interval of 2"
    first = x.clone()
    dist.broadcast(first, 0)
    assert torch.equal(x, first), "the ranks' models differ after a compressed average"
    assert torch.allclose(x, mean, atol=0.05), "not the average within q8's error"


def train(ctx, algorithm, codec, steps=60, **kw):
    """Fits y = 3x - 1 style regression; returns (loss at the start, loss at the end, the
    consensus distance at the end), the losses averaged over ranks."""
    torch.manual_seed(0)
    model = gccl.GossipDataParallel(nn.Linear(4, 1), algorithm, codec=codec, **kw)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.5)
    model.attach(opt)
    g = torch.Generator().manual_seed(10 + ctx.rank)
    w_true = torch.tensor([[3.0, -1.0, 0.5, 2.0]])
    test_x = torch.randn(256, 4, generator=g)
    test_y = test_x @ w_true.t() - 1

    def loss():
        with torch.no_grad():
            l = nn.functional.mse_loss(model(test_x), test_y).reshape(1)
        return float(total(l)) / ctx.world

    first = loss()
    for _ in range(steps):
        x = torch.randn(16, 4, generator=g)
        y = x @ w_true.t() - 1 + 0.1 * ctx.rank
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        opt.step()
    last = loss()
    distance = model.consensus_distance()
    model.close()
    return first, last, distance


def make_training_check(algorithm, codec, **kw):
    def fn(ctx):
        first, last, distance = train(ctx, algorithm, codec, **kw)
        assert last < 0.1 and last < first / 20, f"{algorithm} {codec}: loss {first} -> {last}"
        if algorithm == "local_sgd":  # the last step averaged: one model on every rank
            assert distance == 0.0, f"{algorithm} {codec}: consensus distance {distance}"
    fn.__name__ = f"gossip_data_parallel_{algorithm}_with_{codec}_trains"
    return check(fn)


for _alg, _kw in (("sgp", {}), ("osgp", {"staleness": 1}), ("dpsgd", {}),
                  ("swarm", {"local_steps": 2}), ("local_sgd", {"local_steps": 4})):
    make_training_check(_alg, "q8", **_kw)


@check
def bad_codecs_are_refused_clearly(ctx):
    topo = gccl.Topology("ring", ctx.world)
    x = torch.ones(8)
    raises(ValueError, "unknown codec 'zip'", lambda: ops.neighbor_average(x, topo, 0, codec="zip"))
    raises(ValueError, "unknown codec 'q3'", lambda: ops.push_sum(x, ops.new_weight(), topo, 0,
                                                                  codec="q3"))
    raises(ValueError, "lattice8:STEP", lambda: ops.neighbor_average(x, topo, 0,
                                                                     codec="lattice8:zero"))
    raises(TypeError, "codec must be", lambda: ops.neighbor_average(x, topo, 0, codec=8))
    raises(ValueError, "gradient codec", lambda: ops.push_sum(x, ops.new_weight(), topo, 0,
                                                              codec="topk:0.1"))
    raises(ValueError, "gradient codec", lambda: ops.PairwiseGossip(x, topo, codec="topk"))
    # What gccl's codecs refuse (gcclCodecEncodedBytes), before anything is sent: the casts of
    # a tensor that is already of the cast's type, settings out of range.
    for dtype, spelling in ((torch.float16, "f16"), (torch.bfloat16, "bf16")):
        raises(ValueError, "float32 or float64", lambda: ops.neighbor_average(
            torch.ones(8, dtype=dtype), topo, 0, codec=spelling))
    raises(ValueError, "latticeStep", lambda: ops.push_sum(x, ops.new_weight(), topo, 0,
                                                            codec="lattice"))
    raises(ValueError, "bits", lambda: ops.OverlapGossip(x, ops.new_weight(), topo,
                                                         codec=Codec("quantize", bits=5)))
    # The ops still work after the refusals (nothing was left half-sent).
    y = torch.full((8,), float(ctx.rank), dtype=torch.float64)
    for k in range(40):
        ops.neighbor_average(y, topo, k, codec="q8")
    assert torch.allclose(y, torch.full_like(y, (ctx.world - 1) / 2), atol=0.05)
    raises(ValueError, "allreduce averages gradients", lambda: gccl.GossipDataParallel(
        nn.Linear(2, 2), "allreduce", codec="q8"))
    raises(ValueError, "gradient codec", lambda: gccl.GossipDataParallel(
        nn.Linear(2, 2), "local_sgd", codec="topk:0.1"))
    raises(ValueError, "unknown codec", lambda: gccl.GossipDataParallel(
        nn.Linear(2, 2), "sgp", codec="fp12"))
    raises(ValueError, "float32 or float64", lambda: gccl.GossipDataParallel(
        nn.Linear(2, 2).half(), "sgp", codec="f16"))
    # Codec "none" is no compression, accepted everywhere.
    gccl.GossipDataParallel(nn.Linear(2, 2), "allreduce", codec="none").close()


if __name__ == "__main__":
    run(CHECKS)
