#!/usr/bin/env python3
"""The NCCL net plugin beside raw sockets and gccl's sendrecv_perf, in one run.

Three columns, all two processes on loopback exchanging one message each way
per iteration (the sendrecv pattern), interleaved round by round so that a
change of machine load hits them alike; each cell is the median over the
rounds of that run's mean time per iteration:

  plugin    nccl_net_perf --mode plugin: libnccl-net-gccl.so through its
            ncclNetPlugin_v11 table, as NCCL's proxy drives it
  socket    nccl_net_perf --mode socket: one plain TCP socket, poll loop
  sendrecv  sendrecv_perf under gcclrun -n 2 (GCCL_TRANSPORT=tcp): gccl's own
            point-to-point over the same TCP transport, blocking calls (-z 2)

  perf/nccl_net_compare.py [--build build] [--sizes 8,4K,64K,1M,16M] [-w 20] [-n 200] [--repeats 5]
"""
import argparse
import os
import statistics
import subprocess
import sys


def parse_size(text):
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    t = text.strip().upper()
    return int(float(t[:-1]) * mult[t[-1]]) if t[-1] in mult else int(t)


def run(cmd, env, timeout):
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        sys.exit(f"failed ({out.returncode}): {' '.join(cmd)}\n{out.stdout}\n{out.stderr}")
    return out.stdout


def times_nccl_net_perf(text):
    """size -> (mean us per iteration, median us per iteration)."""
    rows = {}
    for line in text.splitlines():
        f = line.split()
        if f and not line.startswith("#") and len(f) >= 4:
            rows[int(f[0])] = (float(f[2]), float(f[1]))
    return rows


def times_sendrecv_perf(text):
    """size -> out-of-place time (us), nccl-tests' row layout."""
    rows = {}
    for line in text.splitlines():
        f = line.split()
        if f and not line.startswith("#") and len(f) >= 9 and f[0].isdigit():
            rows[int(f[0])] = float(f[5])
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build")
    ap.add_argument("--sizes", default="8,4K,64K,1M,16M")
    ap.add_argument("-w", type=int, default=20)
    ap.add_argument("-n", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--timeout", type=int, default=300)
    a = ap.parse_args()
    sizes = [parse_size(s) for s in a.sizes.split(",")]
    b = os.path.abspath(a.build)
    tool = os.path.join(b, "perf", "nccl_net_perf")
    plugin = os.path.join(b, "libnccl-net-gccl.so")
    env = dict(os.environ, GCCL_SOCKET_IFNAME="lo", GCCL_TRANSPORT="tcp")
    cmds = {}
    for mode in ("plugin", "socket"):
        for s in sizes:
            cmds.setdefault(mode, []).append(
                [tool, "--mode", mode, "--plugin", plugin, "-b", str(s), "-e", str(s),
                 "-w", str(a.w), "-n", str(a.n)])
    sr = [os.path.join(b, "perf", "gcclrun"), "-n", "2", os.path.join(b, "perf", "sendrecv_perf"),
          "--sizes", ",".join(str(s) for s in sizes), "-w", str(a.w), "-n", str(a.n), "-c", "1",
          "-z", "2", "-d", "uint8"]
    cols = ("plugin", "plugin-med", "socket", "socket-med", "sendrecv")
    results = {c: {s: [] for s in sizes} for c in cols}
    for _ in range(a.repeats):
        for mode in ("plugin", "socket"):
            for cmd, s in zip(cmds[mode], sizes):
                mean, med = times_nccl_net_perf(run(cmd, env, a.timeout))[s]
                results[mode][s].append(mean)
                results[mode + "-med"][s].append(med)
        got = times_sendrecv_perf(run(sr, env, a.timeout))
        for s in sizes:
            results["sendrecv"][s].append(got[s])
    print(f"# {a.repeats} interleaved repeats; each cell: the median over the repeats of a run's")
    print("# mean time per iteration (us); 'med' cells: of a run's median iteration instead")
    print(f"# plugin: nccl_net_perf --mode plugin --plugin build/libnccl-net-gccl.so -b S -e S -w {a.w} -n {a.n}")
    print(f"# socket: nccl_net_perf --mode socket -b S -e S -w {a.w} -n {a.n}")
    print(f"# sendrecv: GCCL_TRANSPORT=tcp gcclrun -n 2 sendrecv_perf {' '.join(sr[4:])}")
    print("| size | plugin | plugin med | socket | socket med | sendrecv_perf | plugin/socket | plugin/sendrecv | plugin GB/s |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for s in sizes:
        m = {c: statistics.median(results[c][s]) for c in cols}
        print(f"| {s} | {m['plugin']:.1f} | {m['plugin-med']:.1f} | {m['socket']:.1f} | "
              f"{m['socket-med']:.1f} | {m['sendrecv']:.1f} | {m['plugin'] / m['socket']:.2f} | "
              f"{m['plugin'] / m['sendrecv']:.2f} | {s / m['plugin'] / 1e3:.3f} |")
    for s in sizes:
        print(f"<!-- {s}: " + "; ".join(f"{c} {results[c][s]}" for c in cols) + " -->")


if __name__ == "__main__":
    main()
