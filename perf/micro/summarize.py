#!/usr/bin/env python3
"""Markdown tables of the medians in the JSON output of gccl_kernels_bench and
gccl_tcp_bench (--benchmark_out=FILE --benchmark_out_format=json, run with
--benchmark_repetitions=N --benchmark_report_aggregates_only=true).

    perf/micro/summarize.py kernels.json
    perf/micro/summarize.py tcp.json

Kernels: GB/s (10^9 bytes/s, bytes counted as kernels_bench.cc says) of every
kernel per array size, and its ratio to the triad of the same size.
TCP: gccl beside raw sockets per message size, with gccl/raw ratios: one-way
latency for ping-pong (raw/gccl is the speed ratio there), GB/s for streaming.
"""
import json
import sys


def medians(path):
    """{(family, size): benchmark entry} for the median aggregates."""
    with open(path) as f:
        data = json.load(f)
    out = {}
    for b in data["benchmarks"]:
        if b.get("aggregate_name") != "median":
            continue
        parts = b["run_name"].split("/")
        # BM_Name[/capture]/size[/real_time]
        if parts[-1] == "real_time":
            parts = parts[:-1]
        out[("/".join(parts[:-1]), int(parts[-1]))] = b
    return out


def size_name(n):
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale and n % scale == 0:
            return f"{n // scale} {unit}"
    return f"{n} B"


def kernels(m):
    families = list(dict.fromkeys(f for f, _ in m))
    sizes = sorted({s for _, s in m})
    print("| kernel | " + " | ".join(size_name(s) for s in sizes) + " |")
    print("|---" * (len(sizes) + 1) + "|")
    for fam in families:
        cells = []
        for s in sizes:
            b = m.get((fam, s))
            t = m.get(("BM_Triad", s))
            if b is None:
                cells.append("")
                continue
            gbs = b["bytes_per_second"] / 1e9
            if t is None or fam == "BM_Triad":
                cells.append(f"{gbs:.1f}")
            else:
                cells.append(f"{gbs:.1f} ({gbs * 1e9 / t['bytes_per_second']:.2f})")
        print(f"| {fam.removeprefix('BM_')} | " + " | ".join(cells) + " |")


def tcp(m):
    sizes = lambda kind: sorted(s for f, s in m if f == f"BM_Exchange/raw_{kind}")
    print("| ping-pong size | raw one-way (us) | gccl one-way (us) | gccl/raw |")
    print("|---|---|---|---|")
    for s in sizes("pingpong"):
        raw = m.get(("BM_Exchange/raw_pingpong", s))
        g = m.get(("BM_Exchange/gccl_pingpong", s))
        if raw is None or g is None:
            continue
        r, q = raw["one_way_us"], g["one_way_us"]
        print(f"| {size_name(s)} | {r:.1f} | {q:.1f} | {q / r:.2f} |")
    print()
    print("| streaming size | raw (GB/s) | gccl (GB/s) | gccl/raw |")
    print("|---|---|---|---|")
    for s in sizes("stream"):
        raw = m.get(("BM_Exchange/raw_stream", s))
        g = m.get(("BM_Exchange/gccl_stream", s))
        if raw is None or g is None:
            continue
        r, q = raw["bytes_per_second"] / 1e9, g["bytes_per_second"] / 1e9
        print(f"| {size_name(s)} | {r:.2f} | {q:.2f} | {q / r:.2f} |")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    m = medians(sys.argv[1])
    if not m:
        sys.exit(f"{sys.argv[1]}: no median aggregates (run with --benchmark_repetitions)")
    if any(f.startswith("BM_Exchange") for f, _ in m):
        tcp(m)
    else:
        kernels(m)


if __name__ == "__main__":
    main()
