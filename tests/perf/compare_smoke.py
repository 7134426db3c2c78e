#!/usr/bin/env python3
"""Smoke test of perf/compare.py: a tiny comparison on 2 ranks, 1 repeat.

  compare_smoke.py --build-dir DIR --mpirun PATH --out-dir DIR

Blocking mode, every column: it must exit 0, print both tables with the
like-for-like ratio columns, and measure gccl over TCP, Open MPI over TCP and
over shared memory, and Gloo. gccl over shared memory may be measured or
reported unavailable with a reason (the library refuses GCCL_TRANSPORT=shm
where the transport is not built). Then non-blocking mode, where Gloo must be
reported unavailable (it has no non-blocking AllReduce) and the run still
exits 0. Exits 77 (a skip for ctest), saying why, when mpirun or a binary
that compare runs is missing.
"""

import argparse
import csv
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
COMPARE = os.path.join(os.path.dirname(os.path.dirname(HERE)), "perf", "compare.py")
SKIP = 77


def fail(why, out=""):
    print(f"FAIL: {why}")
    if out:
        print(out)
    sys.exit(1)


def run_compare(args, mode, out_dir):
    cmd = [sys.executable, COMPARE, "--build-dir", args.build_dir, "--mpirun", args.mpirun,
           "--ranks", "2", "--repeats", "1", "--sizes", "8,4K", "-w", "1", "-n", "2",
           "--mode", mode, "--no-plot", "--timeout", "60",
           "--out", os.path.join(out_dir, f"compare_{mode}.png")]
    print("+ " + " ".join(cmd), flush=True)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=240, check=False)
    out = p.stdout + p.stderr
    if p.returncode != 0:
        fail(f"compare exited with status {p.returncode} in {mode} mode", out)
    with open(os.path.join(out_dir, f"compare_{mode}.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    return p.stdout, out, rows


def check_measured(rows, column, out):
    mine = [r for r in rows if r["column"] == column]
    if not mine:
        fail(f"no {column} rows in the CSV", out)
    for r in mine:
        if r["unavailable"] or not r["median_us"]:
            fail(f"{column} was not measured: {r['unavailable']}", out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--mpirun", default="")
    ap.add_argument("--out-dir", required=True)
    args = ap.parse_args()

    if not args.mpirun or not os.access(args.mpirun, os.X_OK):
        print(f"SKIP: no mpirun ({args.mpirun or 'not found at configure time'}): "
              "the Open MPI columns cannot run (Debian: openmpi-bin)")
        return SKIP
    for rel in ("perf/gcclrun", "perf/all_reduce_perf", "perf/peers/mpi_allreduce_bench",
                "perf/peers/gloo_allreduce_bench"):
        path = os.path.join(args.build_dir, rel)
        if not os.access(path, os.X_OK):
            why = ("the peer harnesses need libopenmpi-dev and libgloo-dev at configure time"
                   if "peers" in rel else "GCCL_BUILD_PERF is off, or the target is not built")
            print(f"SKIP: {path} is not built ({why})")
            return SKIP
    os.makedirs(args.out_dir, exist_ok=True)

    stdout, out, rows = run_compare(args, "blocking", args.out_dir)
    for header in ("gccl/ompi tcp", "gccl/ompi shm", "Open MPI shm", "Open MPI tcp"):
        if header not in stdout:
            fail(f"no '{header}' column in the printed tables", out)
    if stdout.count("| size |") != 2:
        fail("expected a time table and a bus bandwidth table", out)
    for column in ("gccl-tcp", "ompi-tcp", "ompi-shm", "gloo"):
        check_measured(rows, column, out)
    for r in rows:
        if r["column"] == "gccl-tcp" and not (r["time_over_ompi"] and r["busbw_over_ompi"]):
            fail("gccl-tcp rows carry no ratio to ompi-tcp", out)
        if r["column"] == "gccl-shm" and not r["median_us"] and not r["unavailable"]:
            fail("gccl-shm is neither measured nor given a reason", out)

    _, out, rows = run_compare(args, "nonblocking", args.out_dir)
    check_measured(rows, "gccl-tcp", out)
    check_measured(rows, "ompi-tcp", out)
    gloo = [r for r in rows if r["column"] == "gloo"]
    if not gloo or "-z 0 is not offered" not in gloo[0]["unavailable"]:
        fail("gloo is not reported unavailable in non-blocking mode", out)
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
