"""init_process_group("gccl") without importing gccl: torch finds the backend through the
package's torch.distributed.backends entry point."""

import json
import os
import sys

import torch
import torch.distributed as dist

dist.init_process_group("gccl")
t = torch.ones(2)
dist.all_reduce(t)
ok = torch.equal(t, torch.full((2,), float(dist.get_world_size())))
with open(os.path.join(sys.argv[1], f"rank{dist.get_rank()}.json"), "w") as f:
    json.dump({"init_without_import": "ok" if ok else f"all_reduce gave {t.tolist()}"}, f)
dist.destroy_process_group()
