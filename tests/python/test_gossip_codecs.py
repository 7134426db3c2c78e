"""The gossip custom ops and GossipDataParallel with wire codecs on 4 ranks, and the Codec
spellings (gccl.codec, shared with gccl.tensorflow)."""

import pytest

import gossip_codecs
from conftest import assert_ok, launch
from gccl.codec import Codec, as_codec, codec_attrs


@pytest.fixture(scope="module")
def codec_results(job_dir):
    return launch("gossip_codecs.py", 4, job_dir)


@pytest.mark.parametrize("name", list(gossip_codecs.CHECKS))
def test_gossip_codecs(codec_results, name):
    assert_ok(codec_results, name)


@pytest.mark.parametrize("spelling, codec", [
    (None, Codec()),
    ("none", Codec()),
    ("quantize", Codec("quantize")),
    ("q8", Codec("quantize", bits=8)),
    ("Q4", Codec("quantize", bits=4)),
    ("q2s", Codec("quantize", bits=2, rounding="stochastic")),
    ("f16", Codec("float16")),
    ("fp16", Codec("float16")),
    ("float16", Codec("float16")),
    ("bf16", Codec("bfloat16")),
    ("lattice8:0.5", Codec("lattice", bits=8, lattice_step=0.5)),
    ("lattice4:1e-3", Codec("lattice", bits=4, lattice_step=1e-3)),
    ("topk:0.05", Codec("topk", topk_fraction=0.05)),
    (Codec("quantize", bucket=64), Codec("quantize", bucket=64)),
])
def test_codec_spellings(spelling, codec):
    assert as_codec(spelling) == codec
    assert codec_attrs(spelling) == codec.attrs()


@pytest.mark.parametrize("spelling, words", [
    ("zip", "unknown codec 'zip'"), ("q3", "unknown codec"), ("lattice8", "unknown codec"),
    ("lattice8:-1", "step > 0"), ("topk:0", "(0, 1]"), ("topk:2", "(0, 1]"),
])
def test_codec_bad_spellings(spelling, words):
    with pytest.raises(ValueError, match=None) as e:
        as_codec(spelling)
    assert words in str(e.value)
    with pytest.raises(TypeError):
        as_codec(8)
    with pytest.raises(ValueError, match="unknown rounding"):
        Codec("quantize", rounding="up")
    with pytest.raises(ValueError, match="unknown codec"):
        Codec("q8")  # the dataclass takes names; spellings go through as_codec


def test_codec_module_imports_no_framework():
    import subprocess
    import sys
    code = ("import sys, gccl.codec; "
            "assert 'torch' not in sys.modules and 'tensorflow' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
