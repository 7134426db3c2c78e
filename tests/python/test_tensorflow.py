"""gccl.tensorflow: every op against NumPy on 4 ranks, gradients, bad input and a mismatch
across ranks (workers/tf_ops.py); Keras training with AllReduce SGD, SGP and local SGD on 2 ranks
(workers/tf_keras.py). Each worker file is one gcclrun job; its checks are the tests.

Run by run_tensorflow.sh, which points the interpreter at this checkout's sources and the build's
libgccl_tf.so."""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import WORKERS, assert_ok


def check_names(worker):
    """The worker's checks, in order, read from its source (importing it would load
    tensorflow into this process)."""
    tree = ast.parse((WORKERS / worker).read_text())
    return [f.name for f in tree.body if isinstance(f, ast.FunctionDef)
            and any(getattr(d, "id", None) == "check" for d in f.decorator_list)]


def gcclrun(worker, nproc, outdir, timeout=300):
    """Runs workers/<worker> on `nproc` ranks under the build's gcclrun; {rank: results}."""
    build = Path(os.environ.get("GCCL_TEST_BINARY_DIR", Path(__file__).parents[2] / "build"))
    env = dict(os.environ)
    env.update({"GCCL_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1",
                "TF_NUM_INTEROP_THREADS": "2", "TF_NUM_INTRAOP_THREADS": "1",
                "PYTHONPATH": os.pathsep.join([str(WORKERS), env.get("PYTHONPATH", "")])})
    env.setdefault("GCCL_TIMEOUT_MS", "60000")
    cmd = [str(build / "perf" / "gcclrun"), "-n", str(nproc), "-t", str(timeout - 10),
           sys.executable, str(WORKERS / worker), str(outdir)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    results = {}
    for r in range(nproc):
        path = Path(outdir) / f"rank{r}.json"
        if path.exists():
            results[r] = json.loads(path.read_text())
    if len(results) != nproc:
        raise AssertionError(f"gcclrun exited {proc.returncode} and {nproc - len(results)} "
                             f"ranks wrote no results\n--- stdout\n{proc.stdout[-4000:]}\n"
                             f"--- stderr\n{proc.stderr[-8000:]}")
    return results


@pytest.fixture(scope="module")
def ops_results(tmp_path_factory):
    return gcclrun("tf_ops.py", 4, tmp_path_factory.mktemp("tf_ops"))


@pytest.fixture(scope="module")
def keras_results(tmp_path_factory):
    return gcclrun("tf_keras.py", 2, tmp_path_factory.mktemp("tf_keras"))


@pytest.mark.parametrize("name", check_names("tf_ops.py"))
def test_op(ops_results, name):
    assert_ok(ops_results, name)


@pytest.mark.parametrize("name", check_names("tf_keras.py"))
def test_keras(keras_results, name):
    assert_ok(keras_results, name)


def test_import_gccl_loads_neither_framework():
    """`import gccl` needs neither torch nor tensorflow; the workers check that
    gccl.tensorflow imports no torch."""
    probe = ("import sys, gccl; loaded = [m for m in ('torch', 'tensorflow') if m in sys.modules];"
             " assert not loaded, loaded")
    subprocess.run([sys.executable, "-c", probe], check=True, timeout=60)
