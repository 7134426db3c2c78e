"""Builds libgccl_tf.so, gccl's TensorFlow op library, against the installed tensorflow.

    .venv/bin/python plugins/tensorflow/build.py [--build-dir build] [--out FILE]

Compiles csrc/*.cc with the flags tensorflow reports (tf.sysconfig.get_compile_flags() and
get_link_flags(): C++17, its headers and ABI) and links them against libgccl from the CMake
build folder (--build-dir, default $GCCL_BUILD_DIR or <repo>/build). The library finds libgccl
through its run path: beside itself (the installed package bundles both) or one folder up (the
default output, <build>/tensorflow/libgccl_tf.so). Incremental: an object is compiled again only
when its source, a header or the compiler flags changed; MAX_JOBS (default 2) compiles in
parallel. Prints the library's path.
"""

import argparse
import hashlib
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
SOURCES = ["csrc/runtime.cc", "csrc/ops.cc"]
HEADERS = ["csrc/runtime.h", str(REPO / "include" / "gccl" / "gccl.h"),
           str(REPO / "plugins" / "common" / "gccl_codec_options.h")]
WARNINGS = ["-Wall", "-Wextra", "-Werror"]


def tensorflow_flags():
    """tf.sysconfig's compile and link flags, asked of a child interpreter (importing
    tensorflow takes seconds and logs to stderr; the log is shown only when it fails)."""
    query = ("import json, tensorflow as tf; print(json.dumps([tf.sysconfig.get_compile_flags(),"
             " tf.sysconfig.get_link_flags()]))")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
    proc = subprocess.run([sys.executable, "-c", query], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"gccl/tensorflow: cannot ask tensorflow for its build flags "
                 f"({sys.executable}):\n{proc.stderr[-4000:]}")
    compile_flags, link_flags = json.loads(proc.stdout.strip().splitlines()[-1])
    # Its headers are system headers to us: their warnings are not ours to fix.
    compile_flags = [f"-isystem{f[2:]}" if f.startswith("-I") else f for f in compile_flags]
    return compile_flags, link_flags


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--build-dir", default=os.environ.get("GCCL_BUILD_DIR", str(REPO / "build")))
    p.add_argument("--out", help="the library to write (default <build-dir>/tensorflow/"
                   "libgccl_tf.so)")
    p.add_argument("--cxx", default=os.environ.get("CXX", "g++"))
    args = p.parse_args()

    build = Path(args.build_dir).resolve()
    library = build / "libgccl.so"
    if not library.exists():
        sys.exit(f"gccl/tensorflow: {library} does not exist: build libgccl first "
                 "(cmake --build --preset default --target gccl)")
    out = Path(args.out).resolve() if args.out else build / "tensorflow" / "libgccl_tf.so"
    objdir = build / "tensorflow" / "obj"
    objdir.mkdir(parents=True, exist_ok=True)
    out.parent.mkdir(parents=True, exist_ok=True)

    compile_flags, link_flags = tensorflow_flags()
    cflags = (["-O2", "-g0", "-fPIC", "-fvisibility=hidden", "-I", str(REPO / "include"),
              "-I", str(REPO / "plugins" / "common")]
              + WARNINGS + compile_flags)
    stamp = hashlib.sha256(" ".join([args.cxx] + cflags).encode()).hexdigest()[:16]
    newest_header = max((HERE / h).stat().st_mtime for h in HEADERS)

    for old in objdir.glob("*.o"):  # objects of other flags
        if not old.name.endswith(f".{stamp}.o"):
            old.unlink()

    jobs = max(1, int(os.environ.get("MAX_JOBS", "2")))
    running, objects = [], []
    for source in SOURCES:
        src = HERE / source
        obj = objdir / f"{src.stem}.{stamp}.o"
        objects.append(obj)
        if obj.exists() and obj.stat().st_mtime >= max(src.stat().st_mtime, newest_header):
            continue
        cmd = [args.cxx, *cflags, "-c", str(src), "-o", str(obj)]
        print("gccl/tensorflow: compiling", source, flush=True)
        while len(running) >= jobs:
            wait_one(running)
        running.append((subprocess.Popen(cmd), cmd, obj))
    while running:
        wait_one(running)

    link = [args.cxx, "-shared", "-o", str(out), *map(str, objects), "-L", str(build), "-lgccl",
            *link_flags, "-Wl,-rpath,$ORIGIN:$ORIGIN/..", "-Wl,--no-undefined"]
    inputs = [library.resolve(), *objects]
    if not out.exists() or out.stat().st_mtime < max(f.stat().st_mtime for f in inputs):
        subprocess.run(link, check=True)
    print(out)


def wait_one(running):
    proc, cmd, obj = running.pop(0)
    if proc.wait() != 0:
        obj.unlink(missing_ok=True)
        sys.exit(f"gccl/tensorflow: compile failed: {shlex.join(cmd)}")


if __name__ == "__main__":
    main()
