"""The gossip custom ops and GossipDataParallel (4 ranks)."""

import io

import torch
import torch.distributed as dist
from torch import nn

import gccl
from gccl import ops
from harness import registry, run

CHECKS, check = registry()


def total(t):
    """Sum over ranks (float64, exact enough for the checks)."""
    s = t.double().clone()
    dist.all_reduce(s)
    return s


def start_values(ctx, n=64):
    g = torch.Generator().manual_seed(ctx.rank)
    return torch.randn(n, generator=g)


@check
def push_sum_conserves_mass_and_converges_to_the_mean(ctx):
    topo = gccl.Topology("exponential", ctx.world)
    x = start_values(ctx).double()
    w = ops.new_weight()
    mass = total(x)
    mean = mass / ctx.world
    for k in range(20):
        ops.push_sum(x, w, topo, k)
    assert torch.allclose(total(x), mass, atol=1e-9), "PushSum changed the sum of x"
    assert abs(float(total(w)) - ctx.world) < 1e-12, "PushSum changed the sum of weights"
    assert torch.allclose(ops.push_sum_debias(x, w), mean, atol=1e-6), "no consensus"


@check
def neighbor_average_converges_to_the_mean(ctx):
    topo = gccl.Topology("ring", ctx.world)
    x = start_values(ctx).double()
    mean = total(x) / ctx.world
    for k in range(60):
        ops.neighbor_average(x, topo, k)
    assert torch.allclose(x, mean, atol=1e-6)


@check
def overlap_gossip_conserves_mass_once_nothing_is_in_flight(ctx):
    topo = gccl.Topology("exponential", ctx.world)
    x = start_values(ctx).double()
    w = ops.new_weight()
    mass = total(x)
    with ops.OverlapGossip(x, w, topo, staleness=1) as g:
        for k in range(10):
            g.start(k)
            g.finish(k)
    assert torch.allclose(total(x), mass, atol=1e-9)
    assert abs(float(total(w)) - ctx.world) < 1e-12


@check
def pairwise_exchange_conserves_the_sum(ctx):
    topo = gccl.Topology("ring", ctx.world)
    x = start_values(ctx).double()
    mass = total(x)
    with ops.PairwiseGossip(x, topo, seed=3) as p:
        for k in range(5):
            partner = p.exchange(k)
            assert partner in ((ctx.rank + 1) % ctx.world, (ctx.rank - 1) % ctx.world)
    dist.barrier()
    assert torch.allclose(total(x), mass, atol=1e-9)


@check
def gossip_ops_refuse_misuse_clearly(ctx):
    topo = gccl.Topology("exponential", ctx.world)
    for bad, words in ((torch.ones(4, dtype=torch.int32), "floating"),
                       (torch.ones(4, 2).t(), "contiguous")):
        try:
            ops.push_sum(bad, ops.new_weight(), topo, 0)
        except (TypeError, ValueError) as e:
            assert words in str(e), str(e)
        else:
            raise AssertionError(f"push_sum accepted a tensor that is not {words}")
    try:
        ops.push_sum(torch.ones(4), torch.ones(1), topo, 0)
    except TypeError as e:
        assert "float64" in str(e), str(e)
    else:
        raise AssertionError("push_sum accepted a float32 weight")
    try:
        gccl.Topology("moebius", ctx.world)
    except ValueError as e:
        assert "moebius" in str(e)


@check
def gossip_ops_work_inside_torch_compile(ctx):
    topo = gccl.Topology("ring", ctx.world)
    x = start_values(ctx)

    @torch.compile(backend="eager")
    def step(t, k):
        t.mul_(2)
        ops.neighbor_average(t, topo, k)
        return t.sum()

    mean = total(x) / ctx.world
    for k in range(30):
        step(x, k)
    assert torch.allclose(x.double(), mean * 2 ** 30, rtol=1e-4)


def regression(ctx, algorithm, steps=150, **kw):
    """Trains y = 3x - 1 (plus a per-rank bias in the data) with `algorithm`; returns the
    wrapper and the final average loss over ranks."""
    torch.manual_seed(0)
    net = nn.Linear(4, 1)
    model = gccl.GossipDataParallel(net, algorithm, **kw)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.5)
    model.attach(opt)
    g = torch.Generator().manual_seed(10 + ctx.rank)
    w_true = torch.tensor([[3.0, -1.0, 0.5, 2.0]])
    for _ in range(steps):
        x = torch.randn(16, 4, generator=g)
        y = x @ w_true.t() - 1 + 0.1 * ctx.rank
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        opt.step()
    x = torch.randn(256, 4, generator=g)
    with torch.no_grad():
        loss = nn.functional.mse_loss(model(x), x @ w_true.t() - 1 + 0.15)
    loss = total(loss.reshape(1)) / ctx.world
    return model, float(loss)


def make_algorithm_check(algorithm, **kw):
    def fn(ctx):
        model, loss = regression(ctx, algorithm, **kw)
        distance = model.consensus_distance()
        model.close()
        assert loss < 0.05, f"{algorithm}: loss {loss}"
        assert distance < 0.1, f"{algorithm}: consensus distance {distance}"
    fn.__name__ = f"gossip_data_parallel_{algorithm}_converges"
    return check(fn)


for _alg, _kw in (("allreduce", {}), ("sgp", {}), ("osgp", {"staleness": 1}), ("dpsgd", {}),
                  ("swarm", {"local_steps": 2}), ("local_sgd", {"local_steps": 4})):
    make_algorithm_check(_alg, **_kw)


@check
def gossip_data_parallel_allreduce_keeps_ranks_identical(ctx):
    model, _ = regression(ctx, "allreduce", steps=20)
    assert model.consensus_distance() == 0.0


@check
def gossip_data_parallel_sgp_conserves_mass_without_gradients(ctx):
    topo = gccl.Topology.from_weights([[[0.5, 0.0, 0.0, 0.5], [0.5, 0.5, 0.0, 0.0],
                                        [0.0, 0.5, 0.5, 0.0], [0.0, 0.0, 0.5, 0.5]]]) \
        if ctx.world == 4 else None
    net = nn.Linear(8, 8)
    model = gccl.GossipDataParallel(net, "sgp", topology=topo, broadcast_initial=False)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(ctx.rank)
    mass = total(model.numerator())
    for _ in range(6):
        model.after_step()
    assert torch.allclose(total(model.numerator()), mass, atol=1e-5)
    assert abs(float(total(model.ps_weight)) - ctx.world) < 1e-12


@check
def gossip_data_parallel_state_dict_round_trips_with_the_weight(ctx):
    model, _ = regression(ctx, "sgp", steps=5)
    with torch.no_grad():
        model.ps_weight.fill_(0.75 + ctx.rank)
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    saved = [p.clone() for p in model.parameters()]
    state = torch.load(io.BytesIO(buf.getvalue()))
    assert "ps_weight" in state and float(state["ps_weight"]) == 0.75 + ctx.rank
    torch.manual_seed(5)
    other = gccl.GossipDataParallel(nn.Linear(4, 1), "sgp", broadcast_initial=False)
    other.load_state_dict(state)
    assert float(other.ps_weight) == 0.75 + ctx.rank
    for a, b in zip(other.parameters(), saved):
        assert torch.equal(a, b)
    # The loaded parameters are still views of the one flat buffer that gossip moves.
    assert torch.equal(other.flat_parameters, torch.cat([p.reshape(-1) for p in saved]))


@check
def gossip_data_parallel_refuses_misuse_clearly(ctx):
    for kwargs, words in (({"algorithm": "gossip"}, "unknown algorithm"),
                          ({"algorithm": "sgp", "codec": "fp12"}, "unknown codec"),
                          ({"algorithm": "allreduce", "codec": "q8"}, "allreduce averages"),
                          ({"algorithm": "swarm", "local_steps": 0}, "local_steps")):
        try:
            gccl.GossipDataParallel(nn.Linear(2, 2), **kwargs)
        except ValueError as e:
            assert words in str(e), str(e)
        else:
            raise AssertionError(f"accepted {kwargs}")
    try:
        gccl.GossipDataParallel(nn.Linear(2, 2).to(torch.float64).half(), "sgp")
    except Exception as e:  # float16 parameters are fine; this path must not crash
        raise AssertionError(f"float16 module refused: {e}")


if __name__ == "__main__":
    run(CHECKS)
