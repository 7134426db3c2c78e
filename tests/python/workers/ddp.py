"""DistributedDataParallel over gccl and over gloo, from the same seeds, ends bit-identical.

With two ranks every reduction is a + b, the same bits in any order, so the two backends must
agree exactly (with more ranks the order of a float sum is the algorithm's)."""

import copy

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from harness import registry, run

CHECKS, check = registry()


@check
def ddp_matches_gloo(ctx):
    gloo = dist.new_group(backend="gloo")
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))
    models = {"gccl": DDP(copy.deepcopy(net)), "gloo": DDP(copy.deepcopy(net), process_group=gloo)}
    opts = {k: torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9) for k, m in models.items()}
    g = torch.Generator().manual_seed(100 + ctx.rank)
    for _ in range(10):
        x, y = torch.randn(8, 16, generator=g), torch.randint(0, 4, (8,), generator=g)
        for k, m in models.items():
            opts[k].zero_grad()
            nn.functional.cross_entropy(m(x), y).backward()
            opts[k].step()
    for (name, a), b in zip(models["gccl"].named_parameters(), models["gloo"].parameters()):
        assert torch.equal(a, b), f"{name} differs: max {float((a - b).abs().max())}"


if __name__ == "__main__":
    run(CHECKS)
