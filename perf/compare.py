#!/usr/bin/env python3
"""gccl's all_reduce_perf against MPI_Allreduce (Open MPI) and Gloo's allreduce.

Runs the three binaries on the same local ranks and sizes, each REPEATS times,
interleaved (gccl, mpi, gloo, gccl, mpi, gloo, ...), takes the median time per
size, and writes a markdown table per rank count, a CSV and a PNG plot.
perf/compare (the bash wrapper) builds the binaries and the plotting
environment first; this script expects them to be there.

All three binaries print nccl-tests' out-of-place columns (size, count, type,
redop, root, time, algbw, busbw, #wrong), which is all this script reads.
"""

import argparse
import csv
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIBS = ("gccl", "mpi", "gloo")


def parse_size(s):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    s = s.strip().upper().rstrip("B")
    if s and s[-1] in units:
        return int(float(s[:-1]) * units[s[-1]])
    return int(s)


def human(n):
    for unit, f in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= f and n % f == 0:
            return f"{n // f} {unit}"
    return f"{n} B"


def bus_factor(n):
    return 2.0 * (n - 1) / n


def cpu_model():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average():
    try:
        return "%.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        return "unknown"


class Failure(Exception):
    pass


def commands(args, n):
    b = args.build_dir
    flags = [
        "-b", str(args.min_bytes), "-e", str(args.max_bytes), "-f", str(args.factor),
        "-w", str(args.warmup), "-n", str(args.iters), "-c", "1",
    ]
    gcclrun = [os.path.join(b, "perf", "gcclrun"), "-n", str(n), "-t", str(args.timeout)]
    mpirun = [
        args.mpirun, "--allow-run-as-root", "--oversubscribe", "--bind-to", "none",
        "--mca", "pml", "ob1", "--mca", "btl", "tcp,self",
        "--mca", "btl_tcp_if_include", "lo", "-np", str(n),
    ]
    return {
        "gccl": gcclrun + [os.path.join(b, "perf", "all_reduce_perf")] + flags,
        "mpi": mpirun + [os.path.join(b, "perf", "peers", "mpi_allreduce_bench")] + flags,
        "gloo": gcclrun + [os.path.join(b, "perf", "peers", "gloo_allreduce_bench")] + flags,
    }


def parse_rows(text):
    """Rows of nccl-tests output: {size: (time_us, busbw, wrong)}, and whether
    the binary reported its check as passed."""
    rows = {}
    ok = False
    for line in text.splitlines():
        if line.startswith("# Out of bounds values"):
            ok = line.rstrip().endswith("OK")
        if not line.strip() or line.startswith("#"):
            continue
        f = line.split()
        if len(f) < 9:
            continue
        try:
            rows[int(f[0])] = (float(f[5]), float(f[7]), f[8])
        except ValueError:
            continue
    return rows, ok


def run_one(lib, cmd, n, sizes, timeout):
    label = f"{lib} on {n} ranks"
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 30, check=False)
    except subprocess.TimeoutExpired as e:
        raise Failure(f"{label}: no end after {timeout + 30} s\n  command: {shlex.join(cmd)}") from e
    out = p.stdout + p.stderr
    tail = "\n".join(out.splitlines()[-25:])
    if p.returncode != 0:
        raise Failure(
            f"{label}: exited with status {p.returncode}\n  command: {shlex.join(cmd)}\n{tail}")
    rows, ok = parse_rows(p.stdout)
    wrong = {s: r[2] for s, r in rows.items() if r[2] != "0"}
    if wrong:
        raise Failure(f"{label}: wrong elements (size: #wrong) {wrong}\n"
                      f"  command: {shlex.join(cmd)}\n{tail}")
    if not ok:
        raise Failure(f"{label}: no '# Out of bounds values : 0 OK' line\n"
                      f"  command: {shlex.join(cmd)}\n{tail}")
    missing = [s for s in sizes if s not in rows]
    if missing:
        raise Failure(f"{label}: no row for sizes {missing}\n  command: {shlex.join(cmd)}\n{tail}")
    return {s: rows[s][0] for s in sizes}, time.monotonic() - t0


def sweep_sizes(args):
    sizes = []
    s = args.min_bytes
    while s <= args.max_bytes:
        sizes.append(s)
        if args.factor <= 1:
            break
        s *= args.factor
    return sizes


def fmt_us(v):
    return f"{v:.1f}" if v >= 100 else f"{v:.2f}"


def fmt_bw(v):
    return f"{v:.3f}" if v >= 0.01 else f"{v:.2e}"


def summarize(times, sizes, n):
    """Per size and library: median, min and max time (us), and the busbw of
    the median time (computed here for more digits than the binaries print)."""
    table = {}
    for s in sizes:
        row = {}
        for lib in LIBS:
            ts = times[lib][s]
            med = statistics.median(ts)
            row[lib] = {
                "median_us": med,
                "min_us": min(ts),
                "max_us": max(ts),
                "busbw": s / (med * 1e-6) / 1e9 * bus_factor(n),
            }
        best_peer = max(row["mpi"]["busbw"], row["gloo"]["busbw"])
        row["ratio"] = row["gccl"]["busbw"] / best_peer
        table[s] = row
    return table


def markdown_table(table, n):
    lines = [
        f"**{n} ranks** (median of the repeats; busbw = size / time x 2(n-1)/n, GB/s)",
        "",
        "| size | gccl us | mpi us | gloo us | gccl busbw | mpi busbw | gloo busbw "
        "| gccl/best-peer busbw |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s, row in table.items():
        lines.append(
            f"| {human(s)} | "
            + " | ".join(fmt_us(row[lib]["median_us"]) for lib in LIBS)
            + " | "
            + " | ".join(fmt_bw(row[lib]["busbw"]) for lib in LIBS)
            + f" | {row['ratio']:.2f} |")
    return "\n".join(lines)


def plot(results, path, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ranks = sorted(results)
    fig, axes = plt.subplots(2, len(ranks), figsize=(6.5 * len(ranks), 9), squeeze=False)
    style = {"gccl": ("tab:blue", "o"), "mpi": ("tab:orange", "s"), "gloo": ("tab:green", "^")}
    names = {"gccl": "gccl", "mpi": "Open MPI (MPI_Allreduce)", "gloo": "Gloo (ring)"}
    for col, n in enumerate(ranks):
        table = results[n]
        sizes = list(table)
        for lib in LIBS:
            color, marker = style[lib]
            bw = [table[s][lib]["busbw"] for s in sizes]
            med = [table[s][lib]["median_us"] for s in sizes]
            lo = [table[s][lib]["median_us"] - table[s][lib]["min_us"] for s in sizes]
            hi = [table[s][lib]["max_us"] - table[s][lib]["median_us"] for s in sizes]
            axes[0][col].plot(sizes, bw, color=color, marker=marker, label=names[lib])
            axes[1][col].errorbar(sizes, med, yerr=[lo, hi], color=color, marker=marker,
                                  capsize=2, label=names[lib])
        ax = axes[0][col]
        ax.set_xscale("log", base=2)
        ax.set_title(f"AllReduce float32 sum, {n} ranks: bus bandwidth")
        ax.set_xlabel("size (bytes)")
        ax.set_ylabel("busbw (GB/s)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        ax = axes[1][col]
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_title(f"{n} ranks: time per call (median, bars: min-max of repeats)")
        ax.set_xlabel("size (bytes)")
        ax.set_ylabel("time (us)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(
        prog="perf/compare",
        description="gccl all_reduce_perf vs MPI_Allreduce (Open MPI, TCP on loopback) vs "
        "Gloo allreduce (TCP on loopback), on the same local ranks and sizes.")
    ap.add_argument("--build-dir", default=os.environ.get("GCCL_BUILD_DIR", "build"),
                    help="build directory, relative to the repository root (default "
                    "$GCCL_BUILD_DIR, else build)")
    ap.add_argument("--ranks", default="2,4", help="rank counts, comma-separated (default 2,4)")
    ap.add_argument("--repeats", type=int, default=3,
                    help="runs of each binary per rank count, interleaved (default 3)")
    ap.add_argument("-b", "--min-bytes", default="8", help="smallest size (default 8)")
    ap.add_argument("-e", "--max-bytes", default="64M", help="largest size (default 64M)")
    ap.add_argument("-f", "--factor", type=int, default=2, help="size factor (default 2: 8 B to 64 MiB in 24 sizes)")
    ap.add_argument("-w", "--warmup", type=int, default=5, help="warm-up calls (default 5)")
    ap.add_argument("-n", "--iters", type=int, default=20, help="timed calls (default 20)")
    ap.add_argument("--timeout", type=int, default=600,
                    help="seconds one binary may run (default 600)")
    ap.add_argument("--mpirun", default="mpirun", help="the mpirun to use (default mpirun)")
    ap.add_argument("--out", default=os.path.join("perf", "results", "compare.png"),
                    help="PNG plot, relative to the repository root (default "
                    "perf/results/compare.png); the markdown table and the CSVs go beside it "
                    "(.md, .csv, _raw.csv)")
    ap.add_argument("--no-plot", action="store_true", help="write the tables only")
    args = ap.parse_args()

    try:
        args.min_bytes = parse_size(args.min_bytes)
        args.max_bytes = parse_size(args.max_bytes)
        ranks = [int(x) for x in args.ranks.split(",") if x.strip()]
    except ValueError as e:
        ap.error(str(e))
    if args.repeats < 1 or not ranks or min(ranks) < 2 or args.min_bytes < 4 or args.factor < 2:
        ap.error("need --repeats >= 1, rank counts >= 2, sizes >= 4 bytes and --factor >= 2")
    if not os.path.isabs(args.build_dir):
        args.build_dir = os.path.join(ROOT, args.build_dir)
    out_png = args.out if os.path.isabs(args.out) else os.path.join(ROOT, args.out)
    stem = os.path.splitext(out_png)[0]
    sizes = sweep_sizes(args)

    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    load_before = load_average()
    results = {}
    raw = []
    try:
        for n in ranks:
            cmds = commands(args, n)
            times = {lib: {s: [] for s in sizes} for lib in LIBS}
            for rep in range(args.repeats):
                for lib in LIBS:
                    t, wall = run_one(lib, cmds[lib], n, sizes, args.timeout)
                    print(f"compare: {n} ranks, repeat {rep + 1}/{args.repeats}: {lib} "
                          f"({wall:.1f} s)", file=sys.stderr, flush=True)
                    for s in sizes:
                        times[lib][s].append(t[s])
                        raw.append((n, rep + 1, lib, s, t[s]))
            results[n] = summarize(times, sizes, n)
    except Failure as e:
        print(f"compare: FAILED: {e}", file=sys.stderr)
        return 1
    load_after = load_average()

    host = (f"{os.cpu_count()} CPUs ({cpu_model()}), Linux {platform.release()}, "
            f"load average before {load_before}, after {load_after}")
    example = commands(args, ranks[0])

    def rel(cmd):
        return shlex.join(os.path.relpath(a, ROOT) if os.path.isabs(a) else a for a in cmd)

    md = [
        f"# AllReduce: gccl vs Open MPI vs Gloo ({started})",
        "",
        f"Machine: {host}.",
        "",
        f"Sizes {human(args.min_bytes)} to {human(sizes[-1])} (x{args.factor}), "
        f"{args.warmup} warm-up and {args.iters} timed calls per size, "
        f"{args.repeats} interleaved repeats per binary; commands (for {ranks[0]} ranks):",
        "",
    ]
    md += [f"    {rel(example[lib])}" for lib in LIBS]
    md.append("")
    for n in ranks:
        md += [markdown_table(results[n], n), ""]
    md_text = "\n".join(md)
    print(md_text)

    os.makedirs(os.path.dirname(stem), exist_ok=True)
    with open(stem + ".md", "w") as f:
        f.write(md_text)
    with open(stem + ".csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["ranks", "size_bytes", "lib", "median_us", "min_us", "max_us",
                    "busbw_GBps_of_median", "gccl_over_best_peer_busbw"])
        for n in ranks:
            for s, row in results[n].items():
                for lib in LIBS:
                    r = row[lib]
                    w.writerow([n, s, lib, f"{r['median_us']:.3f}", f"{r['min_us']:.3f}",
                                f"{r['max_us']:.3f}", f"{r['busbw']:.6g}", f"{row['ratio']:.4f}"])
    with open(stem + "_raw.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["ranks", "repeat", "lib", "size_bytes", "time_us"])
        w.writerows(raw)
    written = [stem + ".md", stem + ".csv", stem + "_raw.csv"]
    if not args.no_plot:
        plot(results, out_png, f"AllReduce float32 sum on loopback TCP, {host.split(',')[0]}")
        written.append(out_png)
    print("compare: wrote " + ", ".join(os.path.relpath(p, ROOT) for p in written),
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
