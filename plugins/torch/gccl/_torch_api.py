"""gccl for PyTorch: what the package ``gccl`` exports (see its docstring for when this loads).

Loading it registers the torch.distributed backend ``"gccl"`` (CPU tensors), loads the gossip
custom ops (``torch.ops.gccl.*``, wrapped in :mod:`gccl.ops`) and provides
:class:`GossipDataParallel`.
"""

from datetime import timedelta

import torch
import torch.distributed as dist

from . import _C  # noqa: F401  (loads libgccl and registers torch.ops.gccl)
from ._C import ProcessGroupGccl
from .topology import Topology
from . import ops
from .parallel import GossipDataParallel

__all__ = ["GossipDataParallel", "ProcessGroupGccl", "Topology", "ops", "register_backend",
           "backend_of", "version"]

BACKEND_NAME = "gccl"


def version() -> int:
    """libgccl's version as MAJOR*10000 + MINOR*100 + PATCH."""
    return _C.version()


def _create_backend(store, rank, size, timeout):
    if isinstance(timeout, timedelta):
        timeout = timeout.total_seconds()
    return _C.create_backend(store, rank, size, float(timeout))


def register_backend() -> None:
    """Registers the backend "gccl" with torch.distributed (idempotent)."""
    if BACKEND_NAME.upper() in dist.Backend._plugins:
        return
    dist.Backend.register_backend(BACKEND_NAME, _create_backend, devices=["cpu"])


def backend_of(group=None) -> ProcessGroupGccl:
    """The gccl backend behind a process group (default: the world)."""
    if group is None:
        group = dist.group.WORLD
    if group is None:
        raise RuntimeError("gccl: no process group: call "
                           "torch.distributed.init_process_group('gccl') first")
    backend = group._get_backend(torch.device("cpu"))
    if not isinstance(backend, ProcessGroupGccl):
        raise RuntimeError(f"gccl: the process group's CPU backend is "
                           f"{type(backend).__name__}, not gccl")
    return backend


register_backend()
