#!/usr/bin/env python3
"""gccl's all_reduce_perf against MPI_Allreduce (Open MPI) and Gloo's allreduce.

Columns (one binary run per column, rank count and repeat):

  gccl-<t>   all_reduce_perf under gcclrun with GCCL_TRANSPORT=<t>, one column
             per transport in --gccl-transports (default tcp,shm)
  ompi-tcp   mpi_allreduce_bench under mpirun, forced to TCP on loopback:
             pml ob1 (so that UCX is never picked), btl tcp,self
  ompi-shm   mpi_allreduce_bench under mpirun over shared memory: pml ob1,
             btl vader,self (vader's single copy is CMA). This is what Debian
             12's Open MPI 4.1 picks on one host with nothing forced: its
             /etc/openmpi/openmpi-mca-params.conf excludes pml ucx, so ob1
             runs, and ob1 sends to every rank on the host through vader. It
             is forced here so that the column means the same on a host whose
             Open MPI would pick something else.
  gloo       gloo_allreduce_bench under gcclrun: gloo::allreduce (ring), TCP
             on loopback
  ompi-ucx   (only when named in --peers) mpi_allreduce_bench under mpirun
             with pml ucx, Open MPI's UCX path, over the UCX transports of
             --ucx-tls on loopback: the peer of the gccl-ucx column
             (--gccl-transports ucx), which runs with the same UCX_TLS

Every binary runs the same sizes with the same flags (-w warm-up calls, -n
timed calls, -z for how calls complete, see --mode), each REPEATS times,
interleaved (every column once, then every column again, ...). A run's time
per call at a size is its timed span / -n, averaged over ranks (the binaries'
-a 1); the table gives, per size, the median of the repeats. busbw is computed
from that median (size / time x 2(n-1)/n).

A column whose binary is missing, or whose run fails, is reported as
unavailable with the first line of its error, and the others go on; a column
that reports a wrong element fails the comparison (exit status 1) once the
tables are written. perf/compare (the bash wrapper) builds the binaries and
the plotting environment first; this script expects them to be there.

All binaries print nccl-tests' out-of-place columns (size, count, type, redop,
root, time, algbw, busbw, #wrong), which is all this script reads.
"""

import argparse
import csv
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEERS = ("ompi-tcp", "ompi-shm", "gloo")
# Peers that run only when --peers names them.
EXTRA_PEERS = ("ompi-ucx",)
# The sizes of the shared-memory and TCP targets in perf/RESULTS.md: 8 B to 16 MiB,
# and 64 KiB and 4 MiB where the bandwidth targets start and end.
ISSUE_SIZES = "8,32K,64K,256K,2M,4M,16M"
ISSUE_MIN_REPEATS = 5
# -z of every binary, per --mode.
MODES = {"blocking": "2", "nonblocking": "0"}
# Like-for-like ratios: (gccl column, Open MPI column).
RATIOS = (("gccl-tcp", "ompi-tcp"), ("gccl-shm", "ompi-shm"), ("gccl-ucx", "ompi-ucx"))


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


def shown_path(p):
    """A path relative to the repository when it lies inside it."""
    r = os.path.relpath(p, ROOT)
    return p if r.startswith("..") else r


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


class Unavailable(Exception):
    """A column that cannot be measured: its binary is missing or its run failed."""


class WrongResult(Exception):
    """A column whose binary reported wrong elements: a bug, never just unavailable."""


class Column:
    """One column of the table: how to launch it for n ranks, and its name."""

    def __init__(self, key, title, binary, launcher, env=None, built=()):
        self.key = key
        self.title = title
        self.binary = binary
        self.launcher = launcher  # n -> the command line before the binary
        self.env = env or {}
        # Files of the build that the launch needs besides the binary (gcclrun).
        self.built = [binary, *built]

    def command(self, n, flags):
        return self.launcher(n) + [self.binary] + flags

    def shown(self, n, flags):
        """The command as a user would type it, paths relative to the repository."""
        env = [f"{k}={v}" for k, v in sorted(self.env.items())]
        return shlex.join(env + [shown_path(a) if os.path.isabs(a) else a
                                 for a in self.command(n, flags)])


def columns(args):
    b = args.build_dir
    perf = os.path.join(b, "perf")

    launcher = os.path.join(perf, "gcclrun")

    def gcclrun(n):
        return [launcher, "-n", str(n), "-t", str(args.timeout)]

    def mpirun(btl, extra=()):
        return lambda n: [
            args.mpirun, "--allow-run-as-root", "--oversubscribe", "--bind-to", "none",
            "--mca", "pml", "ob1", "--mca", "btl", btl, *extra, "-np", str(n)]

    mpi = os.path.join(perf, "peers", "mpi_allreduce_bench")
    gloo = os.path.join(perf, "peers", "gloo_allreduce_bench")
    # Both UCX columns run over the same UCX transports, on loopback only.
    ucx_env = {"UCX_TLS": args.ucx_tls, "UCX_NET_DEVICES": "lo"}
    cols = [
        Column(f"gccl-{t}", f"gccl {t}" + (f" (UCX_TLS={args.ucx_tls})" if t == "ucx" else ""),
               os.path.join(perf, "all_reduce_perf"), gcclrun,
               dict({"GCCL_TRANSPORT": t}, **(ucx_env if t == "ucx" else {})), [launcher])
        for t in args.gccl_transports
    ]
    peers = {
        "ompi-tcp": Column("ompi-tcp", "Open MPI tcp (ob1, btl tcp,self)", mpi,
                           mpirun("tcp,self", ("--mca", "btl_tcp_if_include", "lo"))),
        "ompi-shm": Column("ompi-shm", "Open MPI shm (ob1, btl vader,self; CMA)", mpi,
                           mpirun("vader,self")),
        "gloo": Column("gloo", "Gloo ring (tcp)", gloo, gcclrun, built=[launcher]),
        "ompi-ucx": Column(
            "ompi-ucx", f"Open MPI ucx (pml ucx, UCX_TLS={args.ucx_tls})", mpi,
            lambda n: [args.mpirun, "--allow-run-as-root", "--oversubscribe", "--bind-to", "none",
                       # Open MPI 4.1 takes pml ucx only for the devices and
                       # transports these name (by default Mellanox ones).
                       "--mca", "pml", "ucx", "--mca", "pml_ucx_tls", "any",
                       "--mca", "pml_ucx_devices", "any",
                       "-x", "UCX_TLS", "-x", "UCX_NET_DEVICES", "-np", str(n)],
            ucx_env),
    }
    cols += [peers[p] for p in args.peers]
    return cols


def binary_flags(args):
    flags = ["-w", str(args.warmup), "-n", str(args.iters), "-c", "1", "-z", MODES[args.mode]]
    if args.sizes:
        return ["--sizes", ",".join(str(s) for s in args.sizes)] + flags
    return ["-b", str(args.min_bytes), "-e", str(args.max_bytes), "-f", str(args.factor)] + flags


def missing(col, args):
    """Why a column cannot run at all on this machine, or None."""
    for path in col.built:
        if os.access(path, os.X_OK):
            continue
        hint = {
            "mpi_allreduce_bench": "it needs Open MPI's development files, Debian: libopenmpi-dev",
            "gloo_allreduce_bench": "it needs Gloo's development files, Debian: libgloo-dev",
        }.get(os.path.basename(path), "perf/compare builds it")
        return f"{shown_path(path)} is not built ({hint})"
    if col.key.startswith("ompi-") and shutil.which(args.mpirun) is None:
        return f"{args.mpirun} not found (Debian: openmpi-bin)"
    return None


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


def first_error(stderr, stdout):
    """The line that says why a run failed: the first of stderr that a rank
    wrote (not a launcher's summary, not a rule of dashes), else the first of
    any kind, else the last of stdout."""
    lines = [ln.strip() for ln in stderr.splitlines()]
    lines = [ln for ln in lines if re.search(r"[A-Za-z0-9]", ln)]
    launcher = re.compile(r"^(gcclrun:|mpirun |Primary job|Process name:|Exit code:)")
    for ln in lines:
        if not launcher.match(ln):
            return ln
    if lines:
        return lines[0]
    out = [ln.strip() for ln in stdout.splitlines() if ln.strip()]
    return out[-1] if out else "no output"


def run_one(col, n, flags, sizes, timeout):
    """Times per size (us) of one run, and its wall time."""
    cmd = col.command(n, flags)
    env = dict(os.environ, **col.env)
    t0 = time.monotonic()
    # A session of its own, so that a run past its time goes down with every
    # rank it started.
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=env, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout + 30)
    except subprocess.TimeoutExpired as e:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        raise Unavailable(f"no end after {timeout + 30} s") from e
    if p.returncode != 0:
        raise Unavailable(f"exited with status {p.returncode}: {first_error(err, out)}")
    rows, ok = parse_rows(out)
    wrong = {s: r[2] for s, r in rows.items() if r[2] != "0"}
    if wrong:
        raise WrongResult(f"wrong elements (size: #wrong) {wrong}")
    if not ok:
        raise Unavailable("no '# Out of bounds values : 0 OK' line: "
                          f"{first_error(err, out)}")
    absent = [s for s in sizes if s not in rows]
    if absent:
        raise Unavailable(f"no row for sizes {absent}: {first_error(err, out)}")
    return {s: rows[s][0] for s in sizes}, time.monotonic() - t0


def sweep_sizes(args):
    if args.sizes:
        return list(args.sizes)
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


def summarize(times, sizes, n, keys):
    """Per size and available column: median, min and max time (us), and the
    busbw of the median time (computed here for more digits than the
    binaries print)."""
    table = {}
    for s in sizes:
        row = {}
        for key in keys:
            ts = times[key][s]
            med = statistics.median(ts)
            row[key] = {
                "median_us": med,
                "min_us": min(ts),
                "max_us": max(ts),
                "busbw": s / (med * 1e-6) / 1e9 * bus_factor(n),
            }
        table[s] = row
    return table


def ratio(row, a, b, field):
    if a not in row or b not in row:
        return None
    return row[a][field] / row[b][field]


def markdown_tables(table, n, cols, mode, repeats):
    """Two tables per rank count: time per call, then bus bandwidth, each with
    the like-for-like ratios of gccl to Open MPI."""
    titles = [c.title for c in cols]
    keys = {c.key for c in cols}
    # A ratio only where both of its columns run.
    pairs = [(a, b) for a, b in RATIOS if a in keys and b in keys]
    ratio_titles = [f"gccl/ompi {a.split('-', 1)[1]}" for a, _ in pairs]
    head = "| size | " + " | ".join(titles + ratio_titles) + " |"
    rule = "|---:|" + "---:|" * (len(titles) + len(ratio_titles))

    def body(field, fmt):
        lines = []
        for s, row in table.items():
            cells = [fmt(row[c.key][field]) if c.key in row else "n/a" for c in cols]
            for a, b in pairs:
                r = ratio(row, a, b, field)
                cells.append(f"{r:.2f}" if r is not None else "n/a")
            lines.append(f"| {human(s)} | " + " | ".join(cells) + " |")
        return lines

    return "\n".join([
        f"**{n} ranks, {mode}: time per call, us** (median of {repeats} repeats; "
        "ratio > 1: gccl is slower)",
        "",
        head,
        rule,
        *body("median_us", fmt_us),
        "",
        f"**{n} ranks, {mode}: bus bandwidth, GB/s** (size / median time x 2(n-1)/n; "
        "ratio > 1: gccl is faster)",
        "",
        head,
        rule,
        *body("busbw", fmt_bw),
    ])


def plot(results, cols, path, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ranks = sorted(results)
    fig, axes = plt.subplots(2, len(ranks), figsize=(6.5 * len(ranks), 9), squeeze=False)
    style = {"gccl-tcp": ("tab:blue", "o"), "gccl-shm": ("tab:cyan", "D"),
             "ompi-tcp": ("tab:orange", "s"), "ompi-shm": ("tab:red", "v"),
             "gloo": ("tab:green", "^"), "gccl-ucx": ("tab:purple", "P"),
             "ompi-ucx": ("tab:brown", "X")}
    for col, n in enumerate(ranks):
        table = results[n]
        sizes = list(table)
        for c in cols:
            if c.key not in table[sizes[0]]:
                continue
            color, marker = style.get(c.key, ("tab:gray", "x"))
            bw = [table[s][c.key]["busbw"] for s in sizes]
            med = [table[s][c.key]["median_us"] for s in sizes]
            lo = [table[s][c.key]["median_us"] - table[s][c.key]["min_us"] for s in sizes]
            hi = [table[s][c.key]["max_us"] - table[s][c.key]["median_us"] for s in sizes]
            axes[0][col].plot(sizes, bw, color=color, marker=marker, label=c.title)
            axes[1][col].errorbar(sizes, med, yerr=[lo, hi], color=color, marker=marker,
                                  capsize=2, label=c.title)
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


def split_list(s):
    return [x.strip() for x in s.split(",") if x.strip()]


def parse_args():
    ap = argparse.ArgumentParser(
        prog="perf/compare",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="AllReduce (float32 sum, out of place) of gccl over each transport "
        "beside Open MPI forced to TCP, Open MPI over shared memory and Gloo (TCP), on the "
        "same local ranks and sizes.",
        epilog="modes:\n"
        "  blocking     every call returns with its result and the next starts at once:\n"
        "               gcclAllReduce with a NULL request, MPI_Allreduce, gloo::allreduce\n"
        "               (-z 2 in every binary)\n"
        "  nonblocking  the timed calls are all started, then waited for together:\n"
        "               gcclAllReduce with a request and gcclWait; MPI_Iallreduce and\n"
        "               MPI_Waitall (-z 0). Gloo has no non-blocking AllReduce: its\n"
        "               column is unavailable in this mode.\n"
        "Either way each size gets -w warm-up calls (at the largest and smallest\n"
        "size), one untimed call and a barrier, then -n timed calls: time per call =\n"
        "span / -n, averaged over ranks; the table takes the median of the repeats.")
    ap.add_argument("--build-dir", default=os.environ.get("GCCL_BUILD_DIR", "build"),
                    help="build directory, relative to the repository root (default "
                    "$GCCL_BUILD_DIR, else build)")
    ap.add_argument("--gccl-transports", default="tcp,shm",
                    help="gccl columns: one per GCCL_TRANSPORT value, comma-separated "
                    "(default tcp,shm)")
    ap.add_argument("--peers", default=",".join(PEERS),
                    help="peer columns, comma-separated, from ompi-tcp, ompi-shm, gloo, "
                    "ompi-ucx (default the first three; '' for none)")
    ap.add_argument("--ucx-tls", default="tcp",
                    help="UCX_TLS of the gccl-ucx and ompi-ucx columns (default tcp; sm for "
                    "UCX's shared memory); both run with UCX_NET_DEVICES=lo")
    ap.add_argument("--mode", choices=sorted(MODES), default="blocking",
                    help="how the timed calls complete (default blocking; see below)")
    ap.add_argument("--ranks", default=None, help="rank counts, comma-separated (default 2,4)")
    ap.add_argument("--repeats", type=int, default=None,
                    help="runs of each column per rank count, interleaved (default 3; "
                    f"{ISSUE_MIN_REPEATS} with --issue-sizes, which takes no fewer)")
    ap.add_argument("-b", "--min-bytes", default="8", help="smallest size (default 8)")
    ap.add_argument("-e", "--max-bytes", default="64M", help="largest size (default 64M)")
    ap.add_argument("-f", "--factor", type=int, default=2,
                    help="size factor (default 2: 8 B to 64 MiB in 24 sizes)")
    ap.add_argument("--sizes", default=None,
                    help="these sizes instead of -b/-e/-f, comma-separated (8,32K,2M)")
    ap.add_argument("--issue-sizes", action="store_true",
                    help=f"the sizes the shared-memory and TCP targets name ({ISSUE_SIZES}) at "
                    f"2 and 4 ranks (unless --ranks), at least {ISSUE_MIN_REPEATS} repeats")
    ap.add_argument("-w", "--warmup", type=int, default=5, help="warm-up calls (default 5)")
    ap.add_argument("-n", "--iters", type=int, default=20, help="timed calls (default 20)")
    ap.add_argument("--timeout", type=int, default=600,
                    help="seconds one run may take (default 600)")
    ap.add_argument("--mpirun", default="mpirun", help="the mpirun to use (default mpirun)")
    ap.add_argument("--out", default=os.path.join("perf", "results", "compare.png"),
                    help="PNG plot, relative to the repository root (default "
                    "perf/results/compare.png); the markdown tables and the CSVs go beside "
                    "it (.md, .csv, _raw.csv)")
    ap.add_argument("--no-plot", action="store_true", help="write the tables only")
    args = ap.parse_args()

    if args.issue_sizes:
        if args.sizes:
            ap.error("--issue-sizes and --sizes both give the sizes")
        args.sizes = ISSUE_SIZES
        if args.repeats is not None and args.repeats < ISSUE_MIN_REPEATS:
            ap.error(f"--issue-sizes takes at least {ISSUE_MIN_REPEATS} repeats")
        if args.repeats is None:
            args.repeats = ISSUE_MIN_REPEATS
    if args.repeats is None:
        args.repeats = 3
    try:
        args.min_bytes = parse_size(args.min_bytes)
        args.max_bytes = parse_size(args.max_bytes)
        if args.sizes:
            args.sizes = sorted({parse_size(s) for s in split_list(args.sizes)})
        args.ranks = [int(x) for x in split_list(args.ranks or "2,4")]
    except ValueError as e:
        ap.error(str(e))
    args.gccl_transports = split_list(args.gccl_transports)
    args.peers = split_list(args.peers)
    for t in args.gccl_transports:
        if not re.fullmatch(r"[A-Za-z0-9_]+", t):
            ap.error(f"--gccl-transports: '{t}' is not a transport name")
    for p in args.peers:
        if p not in PEERS + EXTRA_PEERS:
            ap.error(f"--peers: '{p}' is not one of {', '.join(PEERS + EXTRA_PEERS)}")
    if not args.gccl_transports and not args.peers:
        ap.error("no column: give --gccl-transports or --peers")
    sizes = args.sizes or [args.min_bytes]
    if (args.repeats < 1 or not args.ranks or min(args.ranks) < 2 or min(sizes) < 4
            or any(s % 4 for s in sizes) or args.factor < 2):
        ap.error("need --repeats >= 1, rank counts >= 2, sizes that are multiples of 4 bytes "
                 "and --factor >= 2")
    if not os.path.isabs(args.build_dir):
        args.build_dir = os.path.join(ROOT, args.build_dir)
    return args


def main():
    args = parse_args()
    out_png = args.out if os.path.isabs(args.out) else os.path.join(ROOT, args.out)
    stem = os.path.splitext(out_png)[0]
    sizes = sweep_sizes(args)
    cols = columns(args)
    flags = binary_flags(args)

    # Why each column is unavailable, per rank count ({n: {key: reason}}),
    # and the columns that reported wrong elements.
    unavailable = {n: {} for n in args.ranks}
    wrong = []
    for c in cols:
        why = missing(c, args)
        if why:
            for n in args.ranks:
                unavailable[n][c.key] = why
            print(f"compare: {c.key} unavailable: {why}", file=sys.stderr, flush=True)

    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    load_before = load_average()
    try:
        busy = os.getloadavg()[0]
    except OSError:
        busy = 0.0
    if busy > 0.5 * (os.cpu_count() or 1):
        # Open MPI's ranks poll without sleeping while they have a core each:
        # a process that takes the core away costs them a scheduler slice per
        # message, which no other column pays as much.
        print(f"compare: load average {busy:.2f} on {os.cpu_count()} CPUs: other processes "
              "will distort the times, Open MPI's most", file=sys.stderr, flush=True)
    results = {}
    raw = []
    for n in args.ranks:
        times = {c.key: {s: [] for s in sizes} for c in cols}
        for rep in range(args.repeats):
            for c in cols:
                if c.key in unavailable[n]:
                    continue
                label = f"compare: {n} ranks, repeat {rep + 1}/{args.repeats}: {c.key}"
                try:
                    t, wall = run_one(c, n, flags, sizes, args.timeout)
                except (Unavailable, WrongResult) as e:
                    why = f"repeat {rep + 1}: {e}"
                    unavailable[n][c.key] = why
                    if isinstance(e, WrongResult):
                        wrong.append(f"{c.key} on {n} ranks: {why}")
                    print(f"{label}: unavailable: {e}\n  command: {c.shown(n, flags)}",
                          file=sys.stderr, flush=True)
                    continue
                print(f"{label} ({wall:.1f} s)", file=sys.stderr, flush=True)
                for s in sizes:
                    times[c.key][s].append(t[s])
                    raw.append((n, rep + 1, c.key, s, t[s]))
        ok = [c.key for c in cols if c.key not in unavailable[n]]
        results[n] = summarize(times, sizes, n, ok)
    load_after = load_average()

    host = (f"{os.cpu_count()} CPUs ({cpu_model()}), Linux {platform.release()}, "
            f"load average before {load_before}, after {load_after}")
    series = (", ".join(human(s) for s in sizes) if args.sizes else
              f"{human(args.min_bytes)} to {human(sizes[-1])} (x{args.factor})")
    mode_line = {
        "blocking": "blocking calls one after another (gcclAllReduce with a NULL request, "
                    "MPI_Allreduce, gloo::allreduce; -z 2)",
        "nonblocking": "non-blocking calls, all started, then waited for together "
                       "(gcclAllReduce with a request + gcclWait, MPI_Iallreduce + MPI_Waitall; "
                       "-z 0)",
    }[args.mode]
    md = [
        f"# AllReduce float32 sum: gccl vs Open MPI vs Gloo ({started})",
        "",
        f"Machine: {host}.",
        "",
        f"Mode: {args.mode}: {mode_line}. Sizes {series}; {args.warmup} warm-up and "
        f"{args.iters} timed calls per size, time per call = timed span / {args.iters}, "
        f"averaged over ranks; median of {args.repeats} interleaved repeats per column. "
        f"Commands (for {args.ranks[0]} ranks):",
        "",
    ]
    md += [f"- {c.title}: `{c.shown(args.ranks[0], flags)}`" for c in cols]
    md.append("")
    for n in args.ranks:
        md += [markdown_tables(results[n], n, cols, args.mode, args.repeats), ""]
        for c in cols:
            if c.key in unavailable[n]:
                md.append(f"- {c.title} unavailable on {n} ranks: {unavailable[n][c.key]}")
        md.append("")
    md_text = "\n".join(md).rstrip() + "\n"
    print(md_text)

    os.makedirs(os.path.dirname(stem), exist_ok=True)
    with open(stem + ".md", "w") as f:
        f.write(md_text)
    with open(stem + ".csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["ranks", "mode", "size_bytes", "column", "median_us", "min_us", "max_us",
                    "busbw_GBps_of_median", "time_over_ompi", "busbw_over_ompi", "unavailable"])
        ompi_of = dict(RATIOS)
        for n in args.ranks:
            for s, row in results[n].items():
                for c in cols:
                    if c.key not in row:
                        w.writerow([n, args.mode, s, c.key, "", "", "", "", "", "",
                                    unavailable[n][c.key]])
                        continue
                    r = row[c.key]
                    rt = rb = None
                    if c.key in ompi_of:
                        rt = ratio(row, c.key, ompi_of[c.key], "median_us")
                        rb = ratio(row, c.key, ompi_of[c.key], "busbw")
                    w.writerow([n, args.mode, s, c.key, f"{r['median_us']:.3f}",
                                f"{r['min_us']:.3f}", f"{r['max_us']:.3f}", f"{r['busbw']:.6g}",
                                "" if rt is None else f"{rt:.4f}",
                                "" if rb is None else f"{rb:.4f}", ""])
    with open(stem + "_raw.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["ranks", "repeat", "column", "size_bytes", "time_us"])
        w.writerows(raw)
    written = [stem + ".md", stem + ".csv", stem + "_raw.csv"]
    measured = any(results[n][sizes[0]] for n in args.ranks)
    if not args.no_plot and measured:
        plot(results, cols, out_png,
             f"AllReduce float32 sum, {args.mode} calls, {host.split(',')[0]}")
        written.append(out_png)
    print("compare: wrote " + ", ".join(shown_path(p) for p in written),
          file=sys.stderr)
    if wrong:
        print("compare: FAILED: wrong results:\n  " + "\n  ".join(wrong), file=sys.stderr)
        return 1
    if not measured:
        print("compare: FAILED: no column could be measured", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
