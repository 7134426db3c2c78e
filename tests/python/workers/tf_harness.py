"""Runs a TensorFlow worker module's checks on every rank of a gcclrun job and writes each rank's
results (check name -> "ok" or the error) to <outdir>/rank<r>.json, as harness.py does for the
torch workers. The communicator comes from gcclrun's environment (gccl.tensorflow.init()).

Checks run in the order they were defined, each on every rank; a check makes all its
collective calls before it asserts, so that a failure on one rank keeps the others matched.
A check that leaves the communicator broken on purpose sets ctx.broken (it must be the last)."""

import json
import os
import sys
import traceback


def registry():
    checks = {}

    def check(fn):
        checks[fn.__name__] = fn
        return fn

    return checks, check


class Context:
    def __init__(self, comm):
        self.comm = comm
        self.rank = comm.rank
        self.world = comm.size
        self.broken = False


def run(checks):
    import gccl.tensorflow as gtf

    outdir = sys.argv[1]
    only = sys.argv[2].split(",") if len(sys.argv) > 2 and sys.argv[2] else None
    if "torch" in sys.modules:
        raise AssertionError("gccl.tensorflow imported torch")
    ctx = Context(gtf.init())
    results = {}
    for name, fn in checks.items():
        if only is not None and name not in only:
            continue
        try:
            fn(ctx)
            results[name] = "ok"
        except Exception:  # recorded for the test to report
            results[name] = traceback.format_exc()
    with open(os.path.join(outdir, f"rank{ctx.rank}.json"), "w") as f:
        json.dump(results, f)
    ctx.comm.destroy(abort=ctx.broken or any(r != "ok" for r in results.values()))
