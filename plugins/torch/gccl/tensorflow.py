"""gccl for TensorFlow: the custom-op library ``libgccl_tf.so`` and Keras helpers.

    import gccl.tensorflow as gtf

    comm = gtf.init()                              # rank, size, rendezvous from the launcher
    y = gtf.all_reduce(x, "avg")                   # also broadcast, all_gather, reduce_scatter
    x, w = gtf.push_sum(x, w, topo, step)          # SGP step; neighbor_average (D-PSGD),
                                                   # PairwiseGossip (SwarmSGD), sparse_all_reduce
    data, residual = gtf.encode(x, gtf.Codec("quantize", bits=8))   # and decode
    model.compile(optimizer=gtf.DistributedOptimizer(keras.optimizers.SGD(0.1)),
                  jit_compile=False, ...)          # AllReduce SGD
    model.fit(..., callbacks=[gtf.SGPCallback()])  # or LocalSGDCallback(interval=K)

The ops are stateful: inside a ``tf.function`` they run in program order (every rank must
issue collectives in the same order), which tf.function's automatic control dependencies
guarantee outside ``tf.while_loop`` bodies; avoid issuing them from inside one. Ops that wait on
peers complete on the communicator's own thread, never on a TensorFlow worker thread.
all_reduce (sum, avg) and all_gather have gradients. Models compiled with Keras must not be
compiled by XLA (``jit_compile=False``): the ops have CPU kernels only.

The library is loaded from beside this file (the installed package) or from
``GCCL_TF_LIBRARY``. This module imports no torch.
"""

import atexit
import ctypes
import os
import threading
from pathlib import Path

try:
    import tensorflow as tf
except ImportError as e:
    raise ImportError("gccl.tensorflow needs tensorflow 2.x (pip install tensorflow-cpu; "
                      "scripts/python-env.sh puts it into .venv)") from e
import numpy as np

from .codec import Codec, codec_attrs, gossip_codec

__all__ = ["Communicator", "Topology", "Codec", "PairwiseGossip", "init", "default_comm",
           "all_reduce", "broadcast", "all_gather", "reduce_scatter", "push_sum",
           "push_sum_debias", "neighbor_average", "sparse_all_reduce", "top_k_all_reduce", "encode",
           "decode",
           "broadcast_variables", "all_reduce_gradients", "DistributedOptimizer", "SGPCallback",
           "LocalSGDCallback"]

LIBRARY_NAME = "libgccl_tf.so"


def _library_path() -> str:
    path = os.environ.get("GCCL_TF_LIBRARY")
    if path:
        if not Path(path).is_file():
            raise ImportError(f"gccl.tensorflow: GCCL_TF_LIBRARY={path} is not a file")
        return path
    here = Path(__file__).resolve().parent / LIBRARY_NAME
    if not here.is_file():
        raise ImportError(
            f"gccl.tensorflow: {here} is missing: the package was installed without tensorflow "
            "in the environment; install tensorflow-cpu, then run scripts/python-install.sh "
            "(or set GCCL_TF_LIBRARY to a built libgccl_tf.so)")
    return str(here)


_PATH = _library_path()
_ops = tf.load_op_library(_PATH)
# The same loaded library (dlopen returns the loaded object): its C control calls.
_c = ctypes.CDLL(_PATH)
_c.gccl_tf_last_error.restype = ctypes.c_char_p
_c.gccl_tf_version.restype = ctypes.c_int
_c.gccl_tf_comm_init_from_env.restype = ctypes.c_int64
_c.gccl_tf_comm_init_from_env.argtypes = [ctypes.c_int]
_c.gccl_tf_comm_info.argtypes = [ctypes.c_int64, ctypes.POINTER(ctypes.c_int),
                                 ctypes.POINTER(ctypes.c_int)]
_c.gccl_tf_comm_destroy.argtypes = [ctypes.c_int64, ctypes.c_int]
_c.gccl_tf_topology_create.restype = ctypes.c_int64
_c.gccl_tf_topology_create.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
_c.gccl_tf_topology_from_weights.restype = ctypes.c_int64
_c.gccl_tf_topology_from_weights.argtypes = [ctypes.c_int, ctypes.c_int,
                                             ctypes.POINTER(ctypes.c_double)]
_c.gccl_tf_topology_period.argtypes = [ctypes.c_int64, ctypes.POINTER(ctypes.c_int)]
_c.gccl_tf_topology_destroy.argtypes = [ctypes.c_int64]
_c.gccl_tf_pairwise_create.restype = ctypes.c_int64
_c.gccl_tf_pairwise_create.argtypes = [
    ctypes.c_int64, ctypes.c_int64, ctypes.c_int, ctypes.c_int64, ctypes.c_void_p, ctypes.c_int64,
    ctypes.c_char_p, ctypes.c_int, ctypes.c_int64, ctypes.c_char_p, ctypes.c_int64,
    ctypes.c_double]
_c.gccl_tf_pairwise_destroy.argtypes = [ctypes.c_int64]
_c.gccl_tf_pairwise_read.argtypes = [ctypes.c_int64, ctypes.c_void_p]


class GcclError(RuntimeError):
    """A control call of the library failed (communicator or topology set-up)."""


def _check(result, what):
    if result < 0:
        raise GcclError(_c.gccl_tf_last_error().decode(errors="replace") or
                        f"gccl: {what} failed")
    return result


def version() -> int:
    """libgccl's version as MAJOR*10000 + MINOR*100 + PATCH."""
    return _c.gccl_tf_version()


# ---- Communicators ------------------------------------------------------------------------------

class Communicator:
    """A gccl communicator made from the launcher's environment, as gcclCommInitFromEnv does:
    rank and size from mpirun, srun, torchrun or gcclrun (RANK/WORLD_SIZE, OMPI_COMM_WORLD_*,
    SLURM_*), rendezvous at GCCL_COMM_ID or MASTER_ADDR:MASTER_PORT+GCCL_PORT_OFFSET. Collective:
    every rank makes one. ``timeout_ms`` (at least 1000) overrides GCCL_TIMEOUT_MS."""

    def __init__(self, timeout_ms: int = None):
        if timeout_ms is not None and timeout_ms < 1000:
            raise ValueError(f"gccl: timeout_ms must be at least 1000, got {timeout_ms}")
        self.id = _check(_c.gccl_tf_comm_init_from_env(timeout_ms or 0), "communicator init")
        rank, size = ctypes.c_int(), ctypes.c_int()
        _check(_c.gccl_tf_comm_info(self.id, ctypes.byref(rank), ctypes.byref(size)),
               "communicator info")
        self.rank, self.size = rank.value, size.value

    def destroy(self, abort: bool = False) -> None:
        """Frees the communicator once its running ops completed (abort: stops them first,
        for a broken communicator or a failed rank). Idempotent."""
        if self.id is not None:
            comm_id, self.id = self.id, None
            _check(_c.gccl_tf_comm_destroy(comm_id, 1 if abort else 0), "communicator destroy")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.destroy(abort=exc[0] is not None)

    def __repr__(self):
        return f"Communicator(rank={self.rank}, size={self.size})"


_default = None
_default_lock = threading.Lock()


def init(timeout_ms: int = None) -> Communicator:
    """The default communicator, made on the first call (collective) and destroyed at exit."""
    global _default
    with _default_lock:
        if _default is None or _default.id is None:
            _default = Communicator(timeout_ms)
            atexit.register(_default.destroy)
        return _default


def default_comm() -> Communicator:
    if _default is None or _default.id is None:
        raise RuntimeError("gccl: no communicator: call gccl.tensorflow.init() first "
                           "(or pass comm=)")
    return _default


def _comm(comm) -> Communicator:
    comm = comm if comm is not None else default_comm()
    if comm.id is None:
        raise RuntimeError("gccl: the communicator was destroyed")
    return comm


# ---- Topologies and codecs ----------------------------------------------------------------------

TOPOLOGY_KINDS = {"exponential": 0, "static_exponential": 1, "bipartite_exponential": 2,
                  "ring": 3, "torus2d": 4, "complete": 5}


class Topology:
    """A gossip topology over ``nranks`` ranks (gccl.h, Topologies); every rank builds the same
    one. ``kind`` is one of :data:`TOPOLOGY_KINDS`; ``peers_per_step`` is the exponential
    graph's p and must be 1 for the other kinds."""

    def __init__(self, kind: str, nranks: int, peers_per_step: int = 1):
        if kind not in TOPOLOGY_KINDS:
            raise ValueError(f"gccl: unknown topology kind {kind!r} "
                             f"(one of {sorted(TOPOLOGY_KINDS)})")
        self.kind, self.nranks = kind, nranks
        self.id = _check(_c.gccl_tf_topology_create(TOPOLOGY_KINDS[kind], nranks,
                                                    peers_per_step), "topology create")

    @classmethod
    def from_weights(cls, weights):
        """From mixing matrices: weights[s][j][i] is the share of rank i's value that goes to
        rank j at schedule step s (columns sum to 1)."""
        w = np.ascontiguousarray(weights, dtype=np.float64)
        if w.ndim != 3 or w.shape[1] != w.shape[2]:
            raise ValueError(f"gccl: weights must be nsteps x nranks x nranks, got {w.shape}")
        self = cls.__new__(cls)
        self.kind, self.nranks = "user", w.shape[1]
        self.id = _check(_c.gccl_tf_topology_from_weights(
            w.shape[1], w.shape[0], w.ctypes.data_as(ctypes.POINTER(ctypes.c_double))),
            "topology from weights")
        return self

    @property
    def period(self) -> int:
        period = ctypes.c_int()
        _check(_c.gccl_tf_topology_period(self.id, ctypes.byref(period)), "topology period")
        return period.value

    def __del__(self):
        if getattr(self, "id", None) is not None:
            _c.gccl_tf_topology_destroy(self.id)
            self.id = None

    def __repr__(self):
        return f"Topology({self.kind!r}, nranks={self.nranks})"


_named_topologies = {}


def _topology(topology, comm, default_kind="exponential") -> Topology:
    """A Topology, or one named by its kind over the communicator's ranks. Named ones are kept
    for the life of the process: a graph traced by tf.function holds only the id."""
    if topology is None:
        topology = default_kind
    if isinstance(topology, str):
        key = (topology, comm.size)
        if key not in _named_topologies:
            _named_topologies[key] = Topology(topology, comm.size)
        topology = _named_topologies[key]
    if topology.nranks != comm.size:
        raise ValueError(f"gccl: the topology has {topology.nranks} ranks, the communicator "
                         f"{comm.size}")
    return topology


# Codec is gccl.codec's (shared with the torch side); re-exported here as gccl.tensorflow.Codec.
_codec_attrs = codec_attrs


# ---- Argument checks ----------------------------------------------------------------------------

ALL_DTYPES = (tf.float16, tf.bfloat16, tf.float32, tf.float64, tf.int8, tf.uint8, tf.int32,
              tf.uint32, tf.int64, tf.uint64)
FLOAT_DTYPES = (tf.float16, tf.bfloat16, tf.float32, tf.float64)
REDUCTIONS = ("sum", "avg", "min", "max", "prod")


def _tensor(x, what, dtypes):
    x = tf.convert_to_tensor(x)
    if x.dtype not in dtypes:
        raise TypeError(f"gccl: {what}: unsupported dtype {x.dtype.name} "
                        f"(supported: {', '.join(d.name for d in dtypes)})")
    return x


def _reduction(op, what, allowed=REDUCTIONS):
    if op not in allowed:
        raise ValueError(f"gccl: {what}: unknown reduction {op!r} (one of {', '.join(allowed)})")
    return op


def _step(step):
    return tf.cast(tf.convert_to_tensor(step), tf.int64)


def _gathered_shape(x, n, gather):
    """The static shape of all_gather's output (gather) or reduce_scatter's (not gather)."""
    shape = x.shape
    if shape.rank is None:
        return None
    if shape.rank == 0:
        return tf.TensorShape([n])
    if shape[0] is None:
        return shape
    first = shape[0] * n if gather else shape[0] // n
    return tf.TensorShape([first]).concatenate(shape[1:])


# ---- Exact collectives --------------------------------------------------------------------------

def all_reduce(x, op: str = "sum", comm: Communicator = None):
    """The element-wise reduction of ``x`` over all ranks: sum, avg, min, max or prod. Integer
    averages truncate toward zero; half types accumulate in float32."""
    x = _tensor(x, "all_reduce", ALL_DTYPES)
    return _ops.gccl_all_reduce(x, reduction=_reduction(op, "all_reduce"), comm=_comm(comm).id)


def broadcast(x, root: int = 0, comm: Communicator = None):
    """``root``'s ``x`` on every rank (the other ranks' ``x`` gives the shape, which must be the
    same everywhere)."""
    x = _tensor(x, "broadcast", ALL_DTYPES)
    c = _comm(comm)
    if not 0 <= root < c.size:
        raise ValueError(f"gccl: broadcast: root {root} is not a rank of 0..{c.size - 1}")
    return _ops.gccl_broadcast(x, root=root, comm=c.id)


def all_gather(x, comm: Communicator = None):
    """Every rank's ``x`` concatenated in rank order along the first dimension (a scalar
    counts as a vector of one element); the other dimensions must agree across ranks."""
    x = _tensor(x, "all_gather", ALL_DTYPES)
    c = _comm(comm)
    y = _ops.gccl_all_gather(x, comm=c.id)
    shape = _gathered_shape(x, c.size, True)
    if shape is not None and not tf.executing_eagerly():
        y.set_shape(shape)
    return y


def reduce_scatter(x, op: str = "sum", comm: Communicator = None):
    """Rank r's block of the reduction over ranks: ``x``'s first dimension is cut into ``size``
    equal blocks."""
    x = _tensor(x, "reduce_scatter", ALL_DTYPES)
    c = _comm(comm)
    if x.shape.rank == 0:
        raise ValueError("gccl: reduce_scatter: the input must have a first dimension to cut "
                         "into blocks, got a scalar")
    if x.shape.rank is not None and x.shape[0] is not None and x.shape[0] % c.size != 0:
        raise ValueError(f"gccl: reduce_scatter: the first dimension of the input (shape "
                         f"{x.shape}) must be a multiple of the {c.size} ranks")
    y = _ops.gccl_reduce_scatter(x, reduction=_reduction(op, "reduce_scatter"), comm=c.id)
    shape = _gathered_shape(x, c.size, False)
    if shape is not None and not tf.executing_eagerly():
        y.set_shape(shape)
    return y


@tf.RegisterGradient("GcclAllReduce")
def _all_reduce_grad(op, grad):
    reduction = op.get_attr("reduction")
    reduction = reduction.decode() if isinstance(reduction, bytes) else reduction
    if reduction not in ("sum", "avg"):
        raise LookupError(f"gccl: all_reduce has a gradient for sum and avg, not {reduction}")
    # d(sum_r x_r)/dx_i = 1 for every output: rank i's gradient is the sum of all ranks'
    # upstream gradients (divided by n for avg).
    return _ops.gccl_all_reduce(grad, reduction=reduction, comm=op.get_attr("comm"))


@tf.RegisterGradient("GcclAllGather")
def _all_gather_grad(op, grad):
    # Rank i's block of every rank's output came from rank i: its gradient is the sum over
    # ranks of their upstream gradients' block i.
    x = op.inputs[0]
    g = grad if x.shape.rank != 0 else tf.reshape(grad, [-1])
    g = _ops.gccl_reduce_scatter(g, reduction="sum", comm=op.get_attr("comm"))
    return tf.reshape(g, tf.shape(x))


# ---- Gossip -------------------------------------------------------------------------------------

def push_sum(x, ps_weight, topology: Topology, step, codec=None, comm: Communicator = None):
    """One PushSum (SGP) step of ``topology`` (a Topology or a kind name) at ``step``: returns
    the mixed x and push-sum weight (float64 scalar). With a ``codec`` the tensor messages are compressed
    (gcclPushSumEx); mass stays conserved."""
    x = _tensor(x, "push_sum", FLOAT_DTYPES)
    c = _comm(comm)
    topology = _topology(topology, c)
    w = tf.cast(tf.convert_to_tensor(ps_weight), tf.float64)
    return _ops.gccl_push_sum(x, w, _step(step), comm=c.id, topology=topology.id,
                              **_codec_attrs(codec))


def push_sum_debias(x, ps_weight):
    """The de-biased model x / w."""
    x = tf.convert_to_tensor(x)
    return x / tf.cast(ps_weight, x.dtype)


def neighbor_average(x, topology: Topology, step, codec=None, comm: Communicator = None):
    """D-PSGD averaging: the topology's weighted average of x and the in-peers' x (a doubly
    stochastic Topology or kind name: ring, torus2d, complete ...); compressed with
    ``codec``."""
    x = _tensor(x, "neighbor_average", FLOAT_DTYPES)
    c = _comm(comm)
    topology = _topology(topology, c, "ring")
    return _ops.gccl_neighbor_average(x, _step(step), comm=c.id, topology=topology.id,
                                      **_codec_attrs(codec))


_GCCL_TYPES = {tf.float32: 7, tf.float64: 8}  # gcclFloat32, gcclFloat64


class PairwiseGossip:
    """Pairwise gossip (SwarmSGD): gccl keeps a copy of the model that neighbours average with
    at any time; ``exchange(x, step)`` folds in the local change of x since the last exchange,
    averages with a random neighbour of ``topology`` (seeded by ``seed``) and returns the new
    model and the partner's rank. Creation and :meth:`close` are collective."""

    def __init__(self, x, topology, seed: int = 0, codec=None, comm: Communicator = None):
        x = _tensor(x, "pairwise_gossip", (tf.float32, tf.float64))
        c = _comm(comm)
        self.topology = _topology(topology, c, "ring")
        self.comm, self.shape, self.dtype = c, x.shape, x.dtype
        a = np.ascontiguousarray(x.numpy()).reshape(-1)
        attrs = gossip_codec(codec, "pairwise_gossip").attrs()
        self.id = _check(_c.gccl_tf_pairwise_create(
            c.id, self.topology.id, _GCCL_TYPES[x.dtype], a.size,
            a.ctypes.data_as(ctypes.c_void_p), seed, attrs["codec"].encode(), attrs["bits"],
            attrs["bucket"], attrs["rounding"].encode(), attrs["seed"], attrs["lattice_step"]),
            "pairwise_gossip create")

    def exchange(self, x, step):
        if self.id is None:
            raise RuntimeError("gccl: pairwise_gossip: closed")
        x = tf.convert_to_tensor(x)
        n = x.shape.num_elements()  # None in a graph without a static shape: the kernel checks
        if x.dtype != self.dtype or (n is not None and n != self.shape.num_elements()):
            raise ValueError(f"gccl: pairwise_gossip: x is {x.dtype.name} {x.shape}, the "
                             f"registered model {self.dtype.name} {self.shape}")
        return _ops.gccl_pairwise_exchange(x, _step(step), state=self.id)

    def read(self):
        """The registered model now, with what neighbours mixed into it since the last
        exchange (a NumPy array of x's shape)."""
        if self.id is None:
            raise RuntimeError("gccl: pairwise_gossip: closed")
        out = np.empty(self.shape.num_elements(), self.dtype.as_numpy_dtype)
        _check(_c.gccl_tf_pairwise_read(self.id, out.ctypes.data_as(ctypes.c_void_p)),
               "pairwise_gossip read")
        return out.reshape(self.shape)

    def close(self):
        if self.id is not None:
            state, self.id = self.id, None
            _check(_c.gccl_tf_pairwise_destroy(state), "pairwise_gossip destroy")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---- Sparse AllReduce and codecs ----------------------------------------------------------------

def sparse_all_reduce(indices, values, count: int, op: str = "sum", comm: Communicator = None):
    """The dense sum (or avg) over ranks of sparse vectors of ``count`` elements, each rank's
    given as ascending, distinct ``indices`` and their ``values`` (gcclSparseAllReduce)."""
    values = _tensor(values, "sparse_all_reduce", ALL_DTYPES)
    indices = tf.cast(tf.convert_to_tensor(indices), tf.int64)
    if not isinstance(count, (int, np.integer)) or count < 0:
        raise ValueError(f"gccl: sparse_all_reduce: count must be an int >= 0, got {count!r}")
    return _ops.gccl_sparse_all_reduce(indices, values, count=int(count),
                                       reduction=_reduction(op, "sparse_all_reduce",
                                                            ("sum", "avg")),
                                       comm=_comm(comm).id)


def top_k_all_reduce(grad, residual=None, codec=None, op: str = "avg",
                     comm: Communicator = None):
    """Top-k gradient compression with error feedback (gcclTopKAllReduce): every rank sends
    the top k entries of grad + residual (``codec``: a topk Codec, default 1%), and the sum or
    average of all ranks' selections comes back dense. Returns (result, new residual, entries
    this rank sent); pass the residual (float32, zero at first, one per tensor) to the next
    call."""
    grad = _tensor(grad, "top_k_all_reduce", (tf.float32,))
    codec = Codec("topk") if codec is None else codec
    attrs = _codec_attrs(codec)
    if attrs["codec"] != "topk":
        raise ValueError(f"gccl: top_k_all_reduce: the codec must be topk, got {attrs['codec']}")
    residual = (tf.zeros_like(grad) if residual is None
                else tf.cast(tf.convert_to_tensor(residual), tf.float32))
    if residual.shape.num_elements() is not None and grad.shape.num_elements() is not None \
            and residual.shape.num_elements() != grad.shape.num_elements():
        raise ValueError(f"gccl: top_k_all_reduce: the residual has shape {residual.shape}, "
                         f"the gradient {grad.shape}")
    return _ops.gccl_top_k_all_reduce(grad, residual,
                                      reduction=_reduction(op, "top_k_all_reduce",
                                                           ("sum", "avg")),
                                      comm=_comm(comm).id, **attrs)


def encode(x, codec, residual=None):
    """x's encoding (a uint8 vector) and, for top-k, the new error-feedback residual (as many
    float32 elements as x, zero at first: what was not sent); else an empty residual."""
    x = _tensor(x, "encode", FLOAT_DTYPES)
    attrs = _codec_attrs(codec)
    if residual is None:
        residual = (tf.zeros([tf.size(x)], tf.float32) if attrs["codec"] == "topk"
                    else tf.zeros([0], tf.float32))
    residual = tf.reshape(tf.cast(residual, tf.float32), [-1])
    return _ops.gccl_codec_encode(tf.reshape(x, [-1]), residual, **attrs)


def decode(encoded, codec, shape, dtype=tf.float32, reference=None):
    """The tensor of ``shape`` and ``dtype`` an encoding stands for; the lattice codec decodes
    against ``reference`` (the receiver's own tensor)."""
    dtype = tf.as_dtype(dtype)
    if dtype not in FLOAT_DTYPES:
        raise TypeError(f"gccl: decode: unsupported dtype {dtype.name} "
                        f"(supported: {', '.join(d.name for d in FLOAT_DTYPES)})")
    shape = tf.TensorShape(shape)
    if not shape.is_fully_defined():
        raise ValueError(f"gccl: decode: the shape must be fully defined, got {shape}")
    count = shape.num_elements()
    ref = (tf.zeros([0], dtype) if reference is None
           else tf.reshape(tf.cast(reference, dtype), [-1]))
    flat = _ops.gccl_codec_decode(tf.convert_to_tensor(encoded, tf.uint8), ref, count=count,
                                  **_codec_attrs(codec))
    return tf.reshape(flat, shape)


# ---- Keras --------------------------------------------------------------------------------------

def _flat(variables):
    return tf.concat([tf.reshape(tf.convert_to_tensor(v), [-1]) for v in variables], 0)


def _assign_flat(variables, flat):
    offset = 0
    for v in variables:
        n = int(np.prod(v.shape))
        v.assign(tf.reshape(flat[offset:offset + n], v.shape))
        offset += n


def _variables(model):
    """The model's floating variables (weights, and statistics such as batch norm's; not the
    integer state of random generators), which must share one dtype."""
    variables = [v for v in list(model.trainable_variables) + list(model.non_trainable_variables)
                 if tf.as_dtype(v.dtype).is_floating]
    dtypes = {tf.as_dtype(v.dtype).name for v in variables}
    if len(dtypes) > 1:
        raise TypeError(f"gccl: the model's variables must share one dtype, got {sorted(dtypes)}")
    return variables


def broadcast_variables(variables, root: int = 0, comm: Communicator = None) -> None:
    """Sets every rank's ``variables`` (one dtype) to ``root``'s, in one broadcast."""
    variables = list(variables)
    if variables:
        _assign_flat(variables, broadcast(_flat(variables), root, comm))


def all_reduce_gradients(grads, op: str = "avg", comm: Communicator = None):
    """The gradients reduced over ranks with one all_reduce per dtype (None entries stay
    None; IndexedSlices are made dense)."""
    grads = [None if g is None else tf.convert_to_tensor(g) for g in grads]
    out = list(grads)
    by_dtype = {}
    for i, g in enumerate(grads):
        if g is not None:
            by_dtype.setdefault(g.dtype, []).append(i)
    for dtype in sorted(by_dtype, key=lambda d: d.name):  # the same order on every rank
        idx = by_dtype[dtype]
        flat = all_reduce(tf.concat([tf.reshape(grads[i], [-1]) for i in idx], 0), op, comm)
        sizes = [tf.size(grads[i]) for i in idx]
        for i, part in zip(idx, tf.split(flat, sizes)):
            out[i] = tf.reshape(part, tf.shape(grads[i]))
    return out


def DistributedOptimizer(optimizer, comm: Communicator = None):
    """AllReduce SGD: a copy of the Keras ``optimizer`` whose updates use the gradients
    averaged over ranks (one all_reduce per step, inside Keras' compiled train step). Start
    the ranks from equal weights: broadcast_variables(model.trainable_variables) once the
    model is built."""
    import keras
    base = type(optimizer)
    if not isinstance(optimizer, keras.optimizers.Optimizer):
        raise TypeError(f"gccl: DistributedOptimizer wraps a keras optimizer, got {base}")

    class _Distributed(base):
        def apply(self, grads, trainable_variables=None):
            return super().apply(all_reduce_gradients(grads, "avg", comm), trainable_variables)

    _Distributed.__name__ = _Distributed.__qualname__ = f"Distributed{base.__name__}"
    return _Distributed.from_config(optimizer.get_config())


def _keras_callback_base():
    import keras
    return keras.callbacks.Callback


class SGPCallback(_keras_callback_base()):
    """Stochastic Gradient Push around any Keras optimizer: after every training batch, one
    PushSum step on ``topology`` (default: the one-peer exponential graph; ``peers_per_step``
    2 for SGP's two-peer graph), optionally compressed with ``codec``. The model's weights hold
    the de-biased model z = x / w; the push-sum weight is ``ps_weight``. On train begin every
    rank takes rank 0's weights (``broadcast_initial``)."""

    def __init__(self, topology=None, peers_per_step: int = 1, codec=None,
                 comm: Communicator = None, broadcast_initial: bool = True):
        super().__init__()
        self.comm = _comm(comm)
        if topology is None:
            topology = Topology("exponential", self.comm.size,
                                peers_per_step if self.comm.size > 1 else 1)
        self.topology = _topology(topology, self.comm)
        self.codec, self.broadcast_initial = codec, broadcast_initial
        self._weight = tf.Variable(1.0, dtype=tf.float64, trainable=False)
        self._step = tf.Variable(0, dtype=tf.int64, trainable=False)
        self._gossip = None

    @property
    def ps_weight(self) -> float:
        """This rank's push-sum weight w."""
        return float(self._weight.numpy())

    @property
    def step(self) -> int:
        """The PushSum steps taken."""
        return int(self._step.numpy())

    def on_train_begin(self, logs=None):
        if self.broadcast_initial:
            broadcast_variables(_variables(self.model), 0, self.comm)
        variables = _variables(self.model)

        def gossip():  # one graph per training run: flatten, PushSum, de-bias, assign
            z = _flat(variables)
            x = z * tf.cast(self._weight, z.dtype)
            x, w = push_sum(x, self._weight, self.topology, self._step, self.codec, self.comm)
            _assign_flat(variables, push_sum_debias(x, w))
            self._weight.assign(w)
            self._step.assign_add(1)

        self._gossip = tf.function(gossip)

    def on_train_batch_end(self, batch, logs=None):
        self._gossip()


class LocalSGDCallback(_keras_callback_base()):
    """Local SGD (periodic averaging): ranks train on their own and average their models
    exactly every ``interval`` (K) training batches, and once more at the end of training.
    On train begin every rank takes rank 0's weights (``broadcast_initial``)."""

    def __init__(self, interval: int = 4, comm: Communicator = None,
                 broadcast_initial: bool = True):
        super().__init__()
        if interval < 1:
            raise ValueError(f"gccl: LocalSGDCallback: interval must be >= 1, got {interval}")
        self.interval, self.comm = interval, _comm(comm)
        self.broadcast_initial = broadcast_initial
        self.step = 0

    def _average(self):
        variables = _variables(self.model)
        _assign_flat(variables, all_reduce(_flat(variables), "avg", self.comm))

    def on_train_begin(self, logs=None):
        if self.broadcast_initial:
            broadcast_variables(_variables(self.model), 0, self.comm)

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        if self.step % self.interval == 0:
            self._average()

    def on_train_end(self, logs=None):
        if self.step % self.interval != 0:
            self._average()
