"""The custom ops (``torch.ops.gccl.*``) with Python signatures: gossip, sparse AllReduce and
top-k gradient compression.

The gossip ops take the model as a contiguous floating CPU tensor that it updates in place, and the
process group whose gccl communicator carries the traffic (default: the world). The push-sum
weight is a float64 tensor of one element (:func:`new_weight`), updated in place.

The gossip steps take ``codec=``: None (the default: messages travel as they are), a
:class:`gccl.Codec` or a spelling such as ``"q8"``, ``"f16"``, ``"bf16"`` or ``"lattice8:0.01"``
(:func:`gccl.codec.as_codec`). With a lossy codec the sums over ranks of x and of the push-sum
weight are still conserved (each rank keeps exactly what it did not send) and the ranks reach
consensus up to the codec's error; every rank must pass the same codec. The casts take float32
and float64 models (not float16 with ``f16``, nor bfloat16 with ``bf16``), quantization and the
lattice any floating one; top-k is a gradient codec and is refused. A codec the tensor cannot
take (or an unknown spelling) is a ValueError before anything is sent.

Sparse AllReduce and top-k gradient compression (exact collectives over the group, every rank
calling with the same ``count`` and ``op``, "sum" or "avg" or the matching
``torch.distributed.ReduceOp``):

    dense = ops.sparse_all_reduce(indices, values, count)            # a dense tensor of count
    idx, val = ops.sparse_all_reduce_to_sparse(indices, values, count)
    sent = ops.topk_all_reduce(grad, residual, "topk:0.01", op="avg")  # grad <- the result

A sparse vector of ``count`` elements (count <= 2^32) is 1-D ``indices``, ascending and distinct,
each below count, and ``values`` of any dtype the backend takes. gccl takes uint32 indices:
torch.uint32 tensors go as they are, int32 ones are reinterpreted as uint32 (after a check that
none is negative) and int64 ones converted (after a check that each fits); the sparse result's
indices are torch.uint32 (``.long()`` for indexing). Indices out of range, unsorted or repeated
are refused by gccl before anything is sent, naming the position.

The wrappers are opaque to torch.compile (a graph break: communication has side effects that a
graph must not reorder or drop) and run without autograd, so that they can update parameters.
"""

import torch

from .codec import Codec, as_codec, gossip_codec
from .topology import Topology

_ops = torch.ops.gccl


def _comm_id(group):
    from . import backend_of
    return backend_of(group).comm_id


def _codec_args(codec, what):
    """The codec arguments of the gossip ops (their schema's codec, bits, bucket, rounding,
    codec_seed, lattice_step)."""
    c = gossip_codec(codec, what)
    return c.codec, c.bits, c.bucket, c.rounding, c.seed, float(c.lattice_step)


def new_weight(value: float = 1.0) -> torch.Tensor:
    """A push-sum weight tensor (float64, one element)."""
    return torch.full((1,), value, dtype=torch.float64)


@torch.compiler.disable
@torch.no_grad()
def push_sum(x: torch.Tensor, ps_weight: torch.Tensor, topology: Topology, step: int,
             group=None, codec=None) -> None:
    """One PushSum step on ``step`` of ``topology``: x and its weight mix with the in-peers'
    (x's messages encoded with ``codec``; the weight travels as float64)."""
    _ops.push_sum(x, ps_weight, topology.id, step, _comm_id(group),
                  *_codec_args(codec, "push_sum"))


@torch.compiler.disable
def push_sum_debias(x: torch.Tensor, ps_weight: torch.Tensor) -> torch.Tensor:
    """The de-biased model x / ps_weight (a new tensor)."""
    return _ops.push_sum_debias(x, ps_weight)


@torch.compiler.disable
@torch.no_grad()
def neighbor_average(x: torch.Tensor, topology: Topology, step: int, group=None,
                     codec=None) -> None:
    """D-PSGD averaging: x <- the topology's weighted average of x and its in-peers' x (the
    messages encoded with ``codec``)."""
    _ops.neighbor_average(x, topology.id, step, _comm_id(group),
                          *_codec_args(codec, "neighbor_average"))


class OverlapGossip:
    """Overlap SGP on ``x`` (staleness τ): ``start(k)`` sends step k's shares and returns,
    ``finish(k)`` folds in what arrived and waits only for steps <= k - τ. ``close()`` (also on
    exit from a ``with`` block) folds in whatever is still travelling. With ``codec`` the
    messages are compressed (start keeps x minus what it sent, decoded)."""

    def __init__(self, x: torch.Tensor, ps_weight: torch.Tensor, topology: Topology,
                 staleness: int = 1, group=None, codec=None):
        self.x, self.ps_weight, self.topology = x, ps_weight, topology
        self.id = None
        self.id = _ops.gossip_create(x, ps_weight, topology.id, staleness, _comm_id(group),
                                     *_codec_args(codec, "gossip_create"))

    @torch.compiler.disable
    @torch.no_grad()
    def start(self, step: int) -> None:
        _ops.gossip_start(self.id, self.x, self.ps_weight, step)

    @torch.compiler.disable
    @torch.no_grad()
    def finish(self, step: int) -> None:
        _ops.gossip_finish(self.id, self.x, self.ps_weight, step)

    @torch.no_grad()
    def close(self) -> None:
        if self.id is not None:
            gid, self.id = self.id, None
            _ops.gossip_destroy(gid, self.x, self.ps_weight)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class PairwiseGossip:
    """Pairwise gossip (SwarmSGD) on ``x``: ``exchange(k)`` averages with a random neighbour of
    ``topology`` (seeded by ``seed``), while this rank's engine serves its neighbours'
    exchanges. Wrap local updates of x in ``with pairwise.locked():``. Creating and
    ``close()`` are collective. With ``codec`` both sides send encoded snapshots and add half
    the decoded difference, so the sum of the models is still conserved."""

    def __init__(self, x: torch.Tensor, topology: Topology, seed: int = 0, group=None,
                 codec=None):
        self.x, self.topology = x, topology
        self.id = None
        self.id = _ops.pairwise_create(x, topology.id, seed, _comm_id(group),
                                       *_codec_args(codec, "pairwise_create"))

    @torch.compiler.disable
    @torch.no_grad()
    def exchange(self, step: int) -> int:
        """Averages with a neighbour; returns the neighbour's rank."""
        return _ops.pairwise_exchange(self.id, self.x, step)

    def lock(self) -> None:
        _ops.pairwise_lock(self.id, self.x)

    def unlock(self) -> None:
        _ops.pairwise_unlock(self.id, self.x)

    def locked(self):
        outer = self

        class _Locked:
            def __enter__(self):
                outer.lock()

            def __exit__(self, *exc):
                outer.unlock()

        return _Locked()

    def close(self) -> None:
        if self.id is not None:
            pid, self.id = self.id, None
            _ops.pairwise_destroy(pid, self.x)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class LocalSGD:
    """Periodic exact averaging of ``x`` with compressed messages (gcclLocalSgd,
    gcclAverageAllReduce): ``step(k)`` after step k's local update averages the ranks' models
    when (k + 1) % interval == 0 (every rank then calls it with the same k) and returns whether
    it did. With ``codec`` each rank sends its encoded model to all and every rank averages
    the decodings in rank order, so all models end equal, within the codec's error of the
    exact average. Creating is collective; ``close()`` only frees this rank's state."""

    def __init__(self, x: torch.Tensor, interval: int, group=None, codec=None):
        self.x, self.interval = x, interval
        self.id = None
        self.id = _ops.local_sgd_create(x, interval, _comm_id(group),
                                        *_codec_args(codec, "local_sgd_create"))

    @torch.compiler.disable
    @torch.no_grad()
    def step(self, step: int) -> bool:
        return _ops.local_sgd_step(self.id, self.x, step)

    def close(self) -> None:
        if self.id is not None:
            lid, self.id = self.id, None
            _ops.local_sgd_destroy(lid, self.x)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---- Sparse AllReduce and top-k gradient compression -----------------------------------------

def _reduction(op, what: str) -> str:
    """"sum" or "avg" from a spelling or a torch.distributed.ReduceOp."""
    import torch.distributed as dist
    if isinstance(op, str) and op.lower() in ("sum", "avg"):
        return op.lower()
    if isinstance(op, (dist.ReduceOp, dist.ReduceOp.RedOpType)):
        if op == dist.ReduceOp.SUM:
            return "sum"
        if op == dist.ReduceOp.AVG:
            return "avg"
    raise ValueError(f"gccl: {what}: op must be 'sum' or 'avg' (or ReduceOp.SUM/AVG), got {op!r}")


def _count(count, what: str) -> int:
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= 1 << 32:
        raise ValueError(f"gccl: {what}: count must be an int in 0..2^32, got {count!r}")
    return count


@torch.compiler.disable
@torch.no_grad()
def sparse_all_reduce(indices: torch.Tensor, values: torch.Tensor, count: int, op="sum",
                      group=None) -> torch.Tensor:
    """The dense sum (or average) over ranks of sparse vectors of ``count`` elements, each
    rank's given as ``indices`` (uint32, int32 or int64; ascending, distinct) and ``values``
    (gcclSparseAllReduce): a new 1-D tensor of ``count`` elements of the values' dtype, with
    the same bits on every rank."""
    what = "sparse_all_reduce"
    return _ops.sparse_all_reduce(indices, values, _count(count, what), _reduction(op, what),
                                  _comm_id(group))


@torch.compiler.disable
@torch.no_grad()
def sparse_all_reduce_to_sparse(indices: torch.Tensor, values: torch.Tensor, count: int,
                                op="sum", group=None, capacity: int = 0):
    """The sum (or average) over ranks as a sparse vector (gcclSparseAllReduceToSparse):
    (indices, values), the entries whose sum is not zero, ascending, indices torch.uint32.

    ``capacity`` is the room of the first try (0: min(count, 65536)); when the result has more
    entries, gccl tells every rank the need and the call tries once more with that room. Every
    rank must pass the same capacity."""
    what = "sparse_all_reduce_to_sparse"
    if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 0:
        raise ValueError(f"gccl: {what}: capacity must be an int >= 0, got {capacity!r}")
    return tuple(_ops.sparse_all_reduce_to_sparse(indices, values, _count(count, what),
                                                  _reduction(op, what), _comm_id(group),
                                                  capacity))


def topk_codec(topk, what: str = "topk_all_reduce") -> Codec:
    """A top-k :class:`Codec` from a fraction in (0, 1] (a float), a count k >= 1 (an int), a
    spelling such as ``"topk:0.01"`` or a Codec of kind topk."""
    if isinstance(topk, bool):
        raise TypeError(f"gccl: {what}: top-k takes a fraction, a count, 'topk:F' or a Codec, "
                        "got a bool")
    if isinstance(topk, int):
        if topk < 1:
            raise ValueError(f"gccl: {what}: k must be >= 1, got {topk}")
        return Codec("topk", topk_count=topk)
    if isinstance(topk, float):
        if not 0 < topk <= 1:
            raise ValueError(f"gccl: {what}: the top-k fraction must be in (0, 1], got {topk}")
        return Codec("topk", topk_fraction=topk)
    codec = as_codec(topk)
    if codec.codec != "topk":
        raise ValueError(f"gccl: {what}: the codec must be topk (e.g. 'topk:0.01'), got "
                         f"{codec.codec}")
    return codec


@torch.compiler.disable
@torch.no_grad()
def topk_all_reduce(grad: torch.Tensor, residual: torch.Tensor, topk=0.01, op="avg",
                    group=None) -> int:
    """Top-k gradient compression with error feedback (gcclTopKAllReduce), in place: every rank
    selects the k entries of largest magnitude of grad + residual (``topk``: a fraction, a count
    k, ``"topk:F"`` or a topk Codec; see :func:`topk_codec`), keeps the rest in ``residual``,
    and ``grad`` becomes the sum (or average) of all ranks' selections. Both are contiguous
    float32 CPU tensors of the same size; the residual is this tensor's own (zero at first,
    passed again at the next step), so that sent + new residual == grad + old residual.
    Returns the number of entries this rank sent."""
    codec = topk_codec(topk)
    what = "topk_all_reduce"
    return _ops.topk_all_reduce(grad, residual, float(codec.topk_fraction), int(codec.topk_count),
                                _reduction(op, what), _comm_id(group))
