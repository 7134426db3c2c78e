"""Launches worker scripts under torchrun on local ranks and collects their results.

These tests run against the gccl package installed in the interpreter that runs pytest
(scripts/python-install.sh puts it into .venv; scripts/test.sh does that before ctest)."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
WORKERS = HERE / "workers"
sys.path.insert(0, str(WORKERS))


def _digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def pytest_sessionstart(session):
    """Refuses to test a package whose bundled libgccl is not the build's: the package would
    not be the code under test."""
    build = os.environ.get("GCCL_TEST_BINARY_DIR")
    if not build:
        return
    import gccl
    bundled = next(Path(gccl.__file__).parent.glob("libgccl.so*"), None)
    built = Path(build) / "libgccl.so"
    if bundled is None or not built.exists():
        return
    if _digest(bundled) != _digest(built.resolve()):
        raise pytest.UsageError(
            f"the installed gccl package bundles another libgccl than {built}: "
            "run scripts/python-install.sh (GCCL_BUILD_DIR for another build folder)")


def launch(script, nproc, outdir, checks=None, timeout=240, env=None):
    """Runs workers/<script> on `nproc` local ranks; returns {rank: {check: result}}."""
    run_env = dict(os.environ)
    # The workers import the gccl that pytest imports (a PYTHONPATH pointing at a checkout's
    # plugins/torch stays in front of the installed package).
    path = os.pathsep.join(p for p in (str(WORKERS), run_env.get("PYTHONPATH")) if p)
    run_env.update({"GCCL_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1", "PYTHONPATH": path})
    run_env.setdefault("GCCL_TIMEOUT_MS", "60000")
    if env:
        run_env.update(env)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc-per-node={nproc}", str(WORKERS / script), str(outdir),
           ",".join(checks or [])]
    proc = subprocess.run(cmd, env=run_env, capture_output=True, text=True, timeout=timeout)
    results = {}
    for r in range(nproc):
        path = Path(outdir) / f"rank{r}.json"
        if path.exists():
            results[r] = json.loads(path.read_text())
    if len(results) != nproc:
        raise AssertionError(f"torchrun exited {proc.returncode} and {nproc - len(results)} "
                             f"ranks wrote no results\n--- stdout\n{proc.stdout[-4000:]}\n"
                             f"--- stderr\n{proc.stderr[-8000:]}")
    return results


def assert_ok(results, name):
    failures = {r: res.get(name, "not run") for r, res in results.items()
                if res.get(name) != "ok"}
    assert not failures, "\n".join(f"rank {r}: {why}" for r, why in failures.items())


@pytest.fixture(scope="module")
def job_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("job")
