"""Wire codecs (gcclCodecConfig_t): one description for gccl's PyTorch and TensorFlow sides.

    Codec("quantize", bits=8, bucket=256)   # the fields of gcclCodecConfig_t, by name
    as_codec("q8")                          # the short spellings of the perf tools' --codec

The torch ops (:mod:`gccl.ops`, :class:`gccl.GossipDataParallel`) and :mod:`gccl.tensorflow`
take a :class:`Codec`, a spelling that :func:`as_codec` reads, or None (no compression). Both
pass the fields by name to their C++ side, which turns them into the C struct with one helper
(plugins/common/gccl_codec_options.h). This module imports neither torch nor tensorflow.
"""

from dataclasses import asdict, dataclass

__all__ = ["Codec", "CODECS", "GOSSIP_CODECS", "ROUNDINGS", "as_codec", "codec_attrs"]

CODECS = ("none", "float16", "bfloat16", "quantize", "lattice", "topk")
# What the gossip calls take: top-k is a gradient codec (a model's largest entries are the same
# at every step, so the others would never be averaged), and gccl refuses it there.
GOSSIP_CODECS = ("none", "float16", "bfloat16", "quantize", "lattice")
ROUNDINGS = ("nearest", "stochastic")

_SPELLINGS = ("none, float16, bfloat16, quantize, lattice, topk; or f16, bf16, q8, q4, q2, "
              "q8s, q4s, q2s (stochastic rounding), lattice8:STEP, lattice4:STEP, "
              "lattice2:STEP, topk:FRACTION")


@dataclass(frozen=True)
class Codec:
    """A wire codec (gcclCodecConfig_t): ``codec`` is none, float16, bfloat16, quantize
    (``bits`` 8/4/2 per element, per ``bucket`` a minimum and a scale), lattice
    (``lattice_step``, decoded against the receiver's tensor) or topk (``topk_count`` entries,
    or ``topk_fraction`` of them; float32, with a residual). ``rounding``: nearest or
    stochastic (seeded by ``seed``)."""
    codec: str = "none"
    bits: int = 8
    bucket: int = 1024
    rounding: str = "nearest"
    seed: int = 0
    lattice_step: float = 0.0
    topk_count: int = 0
    topk_fraction: float = 0.01

    def __post_init__(self):
        if self.codec not in CODECS:
            raise ValueError(f"gccl: unknown codec {self.codec!r} (none, float16, bfloat16, "
                             "quantize, lattice, topk)")
        if self.rounding not in ROUNDINGS:
            raise ValueError(f"gccl: unknown rounding {self.rounding!r} (nearest, stochastic)")

    def attrs(self) -> dict:
        """The fields by name (the TensorFlow ops' attributes)."""
        return asdict(self)

    @property
    def compressed(self) -> bool:
        return self.codec != "none"

    @classmethod
    def parse(cls, spec: str) -> "Codec":
        """A codec from its name (``"quantize"``: the defaults) or a short spelling as the perf
        tools' ``--codec`` takes it: ``f16``, ``bf16``, ``q8``/``q4``/``q2`` (a trailing ``s``
        rounds stochastically), ``lattice8:STEP`` (or 4, 2), ``topk:FRACTION``."""
        if not isinstance(spec, str):
            raise TypeError(f"gccl: a codec spelling must be a str, got {type(spec).__name__}")
        s = spec.strip().lower()
        if s in CODECS:
            return cls(s)
        short = {"f16": "float16", "fp16": "float16", "bf16": "bfloat16"}
        if s in short:
            return cls(short[s])
        if s in ("q8", "q4", "q2", "q8s", "q4s", "q2s"):
            return cls("quantize", bits=int(s[1]),
                       rounding="stochastic" if s.endswith("s") else "nearest")
        name, colon, arg = s.partition(":")
        if colon and name in ("lattice8", "lattice4", "lattice2", "topk"):
            try:
                value = float(arg)
            except ValueError:
                value = float("nan")
            if name == "topk":
                if not 0 < value <= 1:
                    raise ValueError(f"gccl: codec {spec!r}: topk:FRACTION takes a fraction "
                                     "in (0, 1]")
                return cls("topk", topk_fraction=value)
            if not 0 < value < float("inf"):
                raise ValueError(f"gccl: codec {spec!r}: {name}:STEP takes a step > 0")
            return cls("lattice", bits=int(name[7]), lattice_step=value)
        raise ValueError(f"gccl: unknown codec {spec!r} ({_SPELLINGS})")


def as_codec(codec) -> Codec:
    """A :class:`Codec` from None (no compression), a Codec or a spelling (:meth:`Codec.parse`)."""
    if codec is None:
        return Codec()
    if isinstance(codec, Codec):
        return codec
    if isinstance(codec, str):
        return Codec.parse(codec)
    raise TypeError(f"gccl: codec must be a gccl Codec, a str such as 'q8' or None, got "
                    f"{type(codec).__name__}")


def codec_attrs(codec) -> dict:
    """The fields of :func:`as_codec` (codec) by name."""
    return as_codec(codec).attrs()


def gossip_codec(codec, what: str) -> Codec:
    """:func:`as_codec` for a gossip call: refuses top-k, naming the call."""
    codec = as_codec(codec)
    if codec.codec not in GOSSIP_CODECS:
        raise ValueError(f"gccl: {what}: {codec.codec} is a gradient codec, not for gossip "
                         f"(one of {', '.join(GOSSIP_CODECS)})")
    return codec
