"""GossipDataParallel: data-parallel training with exact or gossip averaging around any
``nn.Module`` and any optimizer.

    model = gccl.GossipDataParallel(net, algorithm="sgp")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model.attach(optimizer)             # communication runs in the optimizer's step hooks
    for inputs, targets in loader:
        optimizer.zero_grad()
        loss_fn(model(inputs), targets).backward()
        optimizer.step()

Algorithms (``algorithm=``):
  ``allreduce``  gradients averaged exactly (AllReduce AVG) before every optimizer step; with
                 ``codec="topk:F"`` the average of every rank's top-k selection instead (top-k
                 gradient compression with error feedback);
  ``sgp``        Stochastic Gradient Push: one PushSum step after every optimizer step on
                 ``topology`` (default: the one-peer exponential graph);
  ``osgp``       overlap SGP: the PushSum messages of step k may be folded in up to
                 ``staleness`` steps late, so they travel while the next steps compute;
  ``dpsgd``      D-PSGD: neighbour averaging after every step (default topology: the ring);
  ``swarm``      SwarmSGD: every ``local_steps`` (H) steps, average with one random neighbour
                 (pairwise gossip) while the neighbour keeps training;
  ``local_sgd``  periodic averaging: the models are averaged exactly every ``local_steps`` (K)
                 steps (with a codec: to one model within the codec's error of the average).

The gossip algorithms (sgp, osgp, dpsgd, swarm) and ``local_sgd`` take ``codec=`` to compress
their messages: a :class:`gccl.Codec` or a spelling such as ``"q8"`` (8-bit quantization),
``"f16"``, ``"bf16"`` or ``"lattice8:0.01"``. Gossip still conserves mass (push-sum numerator
and weight, or the sum of the models) and the ranks agree up to the codec's error; local SGD's
compressed average leaves every rank the same model, within the codec's error of the exact
average.

``allreduce`` takes a top-k codec instead (``"topk:0.01"`` or a :class:`gccl.Codec` of kind topk;
float32 parameters): before every optimizer step each rank selects the largest entries of its
flat gradient plus its residual (the error-feedback buffer, what earlier steps did not send) and
the gradients become the average of the ranks' selections (:func:`gccl.ops.topk_all_reduce`, one
call for the whole model). The residual is the buffer ``topk_residual`` and is saved and
restored with the state dict; every rank must pass the same codec.

The module's parameters always hold the de-biased model z = x / w (push-sum numerator over
weight), so evaluation and ``state_dict`` use them as they are; the push-sum weight w is the
buffer ``ps_weight`` and is saved and restored with the state dict. All parameters live in one
flat buffer, so each communication moves the whole model in one gccl call.
"""

import math

import torch
import torch.distributed as dist
from torch import nn

from . import ops
from .codec import as_codec, gossip_codec
from .topology import Topology

ALGORITHMS = ("allreduce", "sgp", "osgp", "dpsgd", "swarm", "local_sgd")
_DEFAULT_TOPOLOGY = {"sgp": "exponential", "osgp": "exponential", "dpsgd": "ring",
                     "swarm": "ring"}


class GossipDataParallel(nn.Module):
    """Wraps ``module`` for data-parallel training over ``group`` (default: the world, whose
    backend must be gccl).

    Args:
        module: any module whose parameters are CPU tensors of one floating dtype.
        algorithm: one of :data:`ALGORITHMS`.
        topology: a :class:`gccl.Topology` (or a kind name) for the gossip algorithms.
        staleness: τ for ``osgp``.
        local_steps: H for ``swarm`` (steps between exchanges), K for ``local_sgd`` (steps
            between averages).
        seed: seeds the random neighbour choice of ``swarm`` (reproducible).
        codec: the wire codec of the models' messages (sgp, osgp, dpsgd, swarm, local_sgd): a
            :class:`gccl.Codec` or a spelling (``"q8"``, ``"q4"``, ``"f16"``, ``"bf16"``,
            ``"lattice8:STEP"``; see :func:`gccl.codec.as_codec`); None (the default) sends
            them as they are. Every rank must pass the same one. The casts need float32 or
            float64 parameters; top-k is a gradient codec and is refused there. ``allreduce``
            takes only top-k (``"topk:F"``, float32 parameters): gradient compression with
            an error-feedback residual; other codecs are a ValueError.
        broadcast_initial: start every rank from rank 0's parameters and buffers.
    """

    def __init__(self, module: nn.Module, algorithm: str = "sgp", *, group=None, topology=None,
                 staleness: int = 1, local_steps: int = 1, seed: int = 0, codec=None,
                 broadcast_initial: bool = True):
        super().__init__()
        if algorithm not in ALGORITHMS:
            raise ValueError(f"gccl: unknown algorithm {algorithm!r} (one of {ALGORITHMS})")
        if codec is not None and as_codec(codec).compressed:
            if algorithm == "allreduce":
                codec = as_codec(codec)
                if codec.codec != "topk":
                    raise ValueError(f"gccl: allreduce averages gradients exactly or with top-k "
                                     f"compression (codec='topk:F'); {codec.codec} compresses "
                                     "the models' messages (sgp, osgp, dpsgd, swarm, local_sgd)")
                codec = ops.topk_codec(codec, "GossipDataParallel('allreduce')")
            else:
                codec = gossip_codec(codec, f"GossipDataParallel({algorithm!r})")
        else:
            codec = None
        if local_steps < 1:
            raise ValueError(f"gccl: local_steps must be >= 1, got {local_steps}")
        if staleness < 0:
            raise ValueError(f"gccl: staleness must be >= 0, got {staleness}")
        if not dist.is_initialized():
            raise RuntimeError("gccl: GossipDataParallel needs "
                               "torch.distributed.init_process_group('gccl') first")
        self.module = module
        self.algorithm = algorithm
        self.codec = codec
        self.group = group
        self.rank = dist.get_rank(group)
        self.world_size = dist.get_world_size(group)
        self.staleness = staleness
        self.local_steps = local_steps
        self.steps = 0
        self.last_sent = None  # allreduce with top-k: the entries this rank sent at the last step
        self._hooks = []
        self._gossip = None
        self._pairwise = None
        self._local_sgd = None

        params = [p for p in module.parameters()]
        if not params:
            raise ValueError("gccl: the module has no parameters")
        dtype = params[0].dtype
        for name, p in module.named_parameters():
            if p.device.type != "cpu":
                raise ValueError(f"gccl: parameter {name} is on {p.device}; "
                                 "GossipDataParallel takes CPU modules")
            if p.dtype != dtype or not p.dtype.is_floating_point:
                raise ValueError(f"gccl: parameter {name} is {p.dtype}; all parameters must "
                                 f"share one floating dtype ({dtype})")
        if codec is not None and codec.codec == "topk" and dtype != torch.float32:
            raise ValueError(f"gccl: top-k gradient compression takes float32 parameters, the "
                             f"parameters are {dtype}")
        if codec is not None and codec.codec in ("float16", "bfloat16") \
                and dtype not in (torch.float32, torch.float64):
            raise ValueError(f"gccl: the {codec.codec} codec casts float32 or float64 models, "
                             f"the parameters are {dtype}")
        # One flat buffer behind every parameter: each communication is one call.
        with torch.no_grad():
            self._flat = torch.cat([p.detach().reshape(-1) for p in params])
            offset = 0
            for p in params:
                n = p.numel()
                p.data = self._flat[offset:offset + n].view_as(p)
                offset += n
        self._params = params
        self.register_buffer("ps_weight", torch.ones(1, dtype=torch.float64))
        if codec is not None and codec.codec == "topk":
            # Top-k's error feedback: what this rank's flat gradient has not sent yet.
            self.register_buffer("topk_residual", torch.zeros_like(self._flat))

        if broadcast_initial:
            with torch.no_grad():
                dist.broadcast(self._flat, dist.get_global_rank(group, 0) if group else 0,
                               group=group)
                for b in module.buffers():
                    dist.broadcast(b, dist.get_global_rank(group, 0) if group else 0,
                                   group=group)

        self.topology = None
        if algorithm in _DEFAULT_TOPOLOGY:
            if topology is None:
                topology = _DEFAULT_TOPOLOGY[algorithm]
            if isinstance(topology, str):
                topology = Topology(topology, self.world_size)
            if topology.nranks != self.world_size:
                raise ValueError(f"gccl: the topology has {topology.nranks} ranks, the group "
                                 f"{self.world_size}")
            self.topology = topology
        if algorithm == "osgp":
            self._gossip = ops.OverlapGossip(self._flat, self.ps_weight, self.topology,
                                             staleness, group, codec=codec)
        if algorithm == "swarm":
            self._pairwise = ops.PairwiseGossip(self._flat, self.topology, seed, group,
                                                codec=codec)
        if algorithm == "local_sgd" and codec is not None:
            self._local_sgd = ops.LocalSGD(self._flat, local_steps, group, codec=codec)

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    # ---- Hooks into an optimizer --------------------------------------------------------

    def attach(self, optimizer: torch.optim.Optimizer) -> "GossipDataParallel":
        """Runs the communication in ``optimizer``'s step hooks: gradient averaging before the
        step (``allreduce``), the model lock around it (``swarm``), gossip or averaging after
        it. Without attach, call :meth:`before_step` and :meth:`after_step` yourself."""
        owned = {id(p) for p in self._params}
        for g in optimizer.param_groups:
            for p in g["params"]:
                if id(p) not in owned:
                    raise ValueError("gccl: the optimizer holds a parameter that is not the "
                                     "wrapped module's")
        self._hooks.append(optimizer.register_step_pre_hook(
            lambda *_: self.before_step()))
        self._hooks.append(optimizer.register_step_post_hook(
            lambda *_: self.after_step()))
        return self

    def before_step(self) -> None:
        """Before the optimizer step: averages gradients (allreduce), takes the model lock
        against neighbours' exchanges (swarm)."""
        if self.algorithm == "allreduce":
            self.average_gradients()
        elif self.algorithm == "swarm":
            self._pairwise.lock()

    def after_step(self) -> None:
        """After the optimizer step: the algorithm's communication for this step."""
        k = self.steps
        self.steps += 1
        algorithm = self.algorithm
        with torch.no_grad():
            if algorithm == "sgp":
                w = float(self.ps_weight)
                self._flat.mul_(w)
                ops.push_sum(self._flat, self.ps_weight, self.topology, k, self.group,
                             codec=self.codec)
                self._flat.div_(self.ps_weight)
            elif algorithm == "osgp":
                self._flat.mul_(self.ps_weight)
                if k > 0:
                    self._gossip.finish(k - 1)
                self._gossip.start(k)
                self._flat.div_(self.ps_weight)
            elif algorithm == "dpsgd":
                ops.neighbor_average(self._flat, self.topology, k, self.group,
                                     codec=self.codec)
            elif algorithm == "swarm":
                self._pairwise.unlock()
                if self.steps % self.local_steps == 0:
                    self._pairwise.exchange(k)
            elif algorithm == "local_sgd":
                if self._local_sgd is not None:
                    self._local_sgd.step(k)  # compressed: averages when self.steps % K == 0
                elif self.steps % self.local_steps == 0:
                    dist.all_reduce(self._flat, op=dist.ReduceOp.AVG, group=self.group)

    def average_gradients(self) -> None:
        """Averages the parameters' gradients over the group (one AllReduce; with a top-k codec,
        one top-k AllReduce with the residual ``topk_residual``)."""
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self._params]
        flat = torch.cat([g.reshape(-1) for g in grads])
        if self.codec is not None and self.codec.codec == "topk":
            self.last_sent = ops.topk_all_reduce(flat, self.topk_residual, self.codec, op="avg",
                                                 group=self.group)
        else:
            dist.all_reduce(flat, op=dist.ReduceOp.AVG, group=self.group)
        offset = 0
        for p in self._params:
            n = p.numel()
            view = flat[offset:offset + n].view_as(p)
            if p.grad is None:
                p.grad = view.clone()
            else:
                p.grad.copy_(view)
            offset += n

    # ---- Models and metrics ---------------------------------------------------------------

    @property
    def flat_parameters(self) -> torch.Tensor:
        """The de-biased model z as one flat tensor (a view: do not resize)."""
        return self._flat

    def numerator(self) -> torch.Tensor:
        """The push-sum numerator x = z * w (a new tensor): its sum over ranks is conserved by
        gossip."""
        with torch.no_grad():
            return self._flat.double() * self.ps_weight

    @torch.no_grad()
    def consensus_distance(self) -> float:
        """sqrt(mean over ranks of ||z_i - mean z||^2): how far the ranks' models are apart
        (0 for exact averaging). Collective."""
        z = self._flat.double()
        mean = z.clone()
        dist.all_reduce(mean, op=dist.ReduceOp.AVG, group=self.group)
        sq = ((z - mean) ** 2).sum().reshape(1)
        dist.all_reduce(sq, op=dist.ReduceOp.AVG, group=self.group)
        return math.sqrt(float(sq))

    @torch.no_grad()
    def average_model_(self) -> None:
        """Replaces every rank's model by the exact average (AllReduce), e.g. before a final
        evaluation. Collective."""
        if self._gossip is not None:
            self._flat.mul_(self.ps_weight)
            self._gossip.finish(max(self.steps - 1, 0))
            self._flat.div_(self.ps_weight)
        dist.all_reduce(self._flat, op=dist.ReduceOp.AVG, group=self.group)

    def close(self) -> None:
        """Ends overlap or pairwise gossip (collective for swarm): folds in what is still in
        flight and removes the optimizer hooks."""
        for h in self._hooks:
            h.remove()
        self._hooks = []
        with torch.no_grad():
            if self._gossip is not None:
                self._flat.mul_(self.ps_weight)
                self._gossip.close()
                self._flat.div_(self.ps_weight)
                self._gossip = None
            if self._pairwise is not None:
                self._pairwise.close()
                self._pairwise = None
            if self._local_sgd is not None:
                self._local_sgd.close()
                self._local_sgd = None

    def __del__(self):
        # Only what is safe without the other ranks: gossip state is folded in by close().
        for h in getattr(self, "_hooks", []):
            h.remove()
