"""Gossip topologies: who sends to whom at each step, with which weights (gccl.h, Topologies)."""

from . import _C

KINDS = {
    "exponential": 0,
    "static_exponential": 1,
    "bipartite_exponential": 2,
    "ring": 3,
    "torus2d": 4,
    "complete": 5,
}


class Topology:
    """A gccl topology over ``nranks`` ranks; every rank builds the same one.

    ``kind`` is one of :data:`KINDS`; ``peers_per_step`` is the p of the exponential graph
    (1: the one-peer exponential graph, 2: SGP's two-peer graph) and must be 1 otherwise.
    """

    def __init__(self, kind: str, nranks: int, peers_per_step: int = 1):
        if kind not in KINDS:
            raise ValueError(f"gccl: unknown topology kind {kind!r} (one of {sorted(KINDS)})")
        self.kind = kind
        self.nranks = nranks
        self.id = _C.topology_create(KINDS[kind], nranks, peers_per_step)

    @classmethod
    def from_weights(cls, weights):
        """A topology from mixing matrices: weights[s][j][i] is the share of rank i's value
        that goes to rank j at schedule step s (a list of nranks x nranks matrices)."""
        self = cls.__new__(cls)
        nsteps = len(weights)
        self.nranks = len(weights[0])
        self.kind = "user"
        flat = [float(a) for step in weights for row in step for a in row]
        self.id = _C.topology_from_weights(self.nranks, nsteps, flat)
        return self

    @property
    def period(self) -> int:
        return _C.topology_period(self.id)

    def out_peers(self, step: int, rank: int):
        """(peers, weights, self weight) of ``rank`` at ``step``."""
        return _C.topology_out_peers(self.id, step, rank)

    def __del__(self):
        if getattr(self, "id", None) is not None:
            try:
                _C.topology_destroy(self.id)
            except Exception:
                pass
            self.id = None

    def __repr__(self):
        return f"Topology({self.kind!r}, nranks={self.nranks})"
