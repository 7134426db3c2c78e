"""Failures across ranks (2 ranks, one check per job): they break the communicator."""

import time

import torch
import torch.distributed as dist

from harness import registry, run

CHECKS, check = registry()


@check
def a_dead_peer_is_an_exception_naming_it(ctx):
    dist.barrier()
    if ctx.rank == 1:
        ctx.report_and_exit({"a_dead_peer_is_an_exception_naming_it": "ok"})
    time.sleep(0.5)
    start = time.monotonic()
    try:
        dist.all_reduce(torch.ones(1 << 16))
    except dist.DistBackendError as e:
        assert "rank 1" in str(e), str(e)
    else:
        raise AssertionError("all_reduce with a dead peer succeeded")
    assert time.monotonic() - start < 10, "the failure took longer than the timeout"


@check
def mismatched_shapes_across_ranks_are_an_error(ctx):
    messages = []
    for _ in range(2):  # the rank that did not see the mismatch has it by its next call
        try:
            dist.all_reduce(torch.ones(4 if ctx.rank == 0 else 8))
        except dist.DistBackendError as e:
            messages.append(str(e))
    assert messages, "a mismatched all_reduce succeeded"
    assert any("count" in m or "mismatch" in m for m in messages), messages
    # The communicator is broken now: skip the orderly teardown.
    ctx.report_and_exit({"mismatched_shapes_across_ranks_are_an_error": "ok"})


if __name__ == "__main__":
    run(CHECKS)
