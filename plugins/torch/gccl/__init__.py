"""gccl's Python package: PyTorch and TensorFlow.

PyTorch: the package's own names. ``import gccl`` registers the torch.distributed backend
``"gccl"`` (CPU tensors), so that

    import gccl
    torch.distributed.init_process_group("gccl")

works under torchrun (the ``torch.distributed.backends`` entry point registers it too, without
the import). It also loads the gossip custom ops (``torch.ops.gccl.*``, wrapped in
:mod:`gccl.ops`) and provides :class:`GossipDataParallel`.

TensorFlow: :mod:`gccl.tensorflow`, the custom-op library ``libgccl_tf.so`` and its Keras
helpers. It imports no torch, and the torch part needs no tensorflow: the torch part
(``gccl._torch_api``) loads with the package when torch is already imported, and otherwise on
first use of one of its names. In a process that has imported tensorflow it waits for that
first use: loading torch's compiler stack (which the gossip ops' wrappers import) after
tensorflow aborts the process (their copies of LLVM register the same options), so the package
does not do it unasked.
"""

import sys

from .codec import Codec  # noqa: F401  (imports neither torch nor tensorflow)

_TORCH_NAMES = ("GossipDataParallel", "ProcessGroupGccl", "Topology", "ops", "register_backend",
                "backend_of", "version", "BACKEND_NAME")

__all__ = ["GossipDataParallel", "ProcessGroupGccl", "Topology", "Codec", "ops",
           "register_backend", "backend_of", "version"]


def _load_torch():
    from . import _torch_api
    for name in _TORCH_NAMES:
        globals()[name] = getattr(_torch_api, name)


def __getattr__(name):
    if name in _TORCH_NAMES:
        _load_torch()
        return globals()[name]
    raise AttributeError(f"module 'gccl' has no attribute {name!r}")


if "torch" in sys.modules and "tensorflow" not in sys.modules:
    _load_torch()
