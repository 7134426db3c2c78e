"""Runs a worker module's checks on every rank of a torchrun job and writes each rank's results
(check name -> "ok" or the error) to <outdir>/rank<r>.json for the pytest side to assert on.

Checks run in the order they were defined, each on every rank; a check that raises on one rank
only is recorded there and the job goes on (checks are written so that their collective calls
stay matched)."""

import json
import os
import sys
import traceback

def registry():
    """A worker module's check list and the decorator that adds to it: fn(ctx) runs on every
    rank, in the order of definition."""
    checks = {}

    def check(fn):
        checks[fn.__name__] = fn
        return fn

    return checks, check


class Context:
    def __init__(self):
        import torch.distributed as dist
        self.rank = dist.get_rank()
        self.world = dist.get_world_size()
        self.outdir = sys.argv[1]

    def report_and_exit(self, results):
        """Writes this rank's results and ends the process at once, without any goodbye to
        the communicator (a rank that dies)."""
        with open(os.path.join(self.outdir, f"rank{self.rank}.json"), "w") as f:
            json.dump(results, f)
        os._exit(0)


def run(checks, init=None):
    import torch
    import torch.distributed as dist
    import gccl  # noqa: F401  registers the backend

    torch.manual_seed(0)
    outdir = sys.argv[1]
    only = sys.argv[2].split(",") if len(sys.argv) > 2 and sys.argv[2] else None
    dist.init_process_group("gccl")
    ctx = Context()
    if init is not None:
        init(ctx)
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
    dist.destroy_process_group()


def raises(exc, words, fn):
    """Asserts that fn() raises exc with `words` in its message."""
    try:
        fn()
    except exc as e:
        assert words in str(e), f"{words!r} not in: {e}"
    else:
        raise AssertionError(f"no {exc.__name__} ({words})")
