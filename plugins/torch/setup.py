"""Builds the gccl Python package: the torch extension gccl._C, linked against libgccl, and the
TensorFlow op library when it was built.

libgccl comes from the repository's CMake build (GCCL_BUILD_DIR, default <repo>/build; it is
built there first when missing) and is bundled into the package next to the extension, which
finds it through an $ORIGIN run path: the installed package needs no LD_LIBRARY_PATH and keeps
working when the build folder goes away.

    pip install --no-build-isolation plugins/torch

(--no-build-isolation builds against the torch already installed, instead of downloading
another copy of it into a temporary environment.)

gccl.tensorflow's library, libgccl_tf.so, is built against tensorflow by
plugins/tensorflow/build.py (scripts/python-install.sh runs it when tensorflow is installed)
into <build>/tensorflow/; when it is there, the package bundles it too.
"""

import os
import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from torch.utils.cpp_extension import BuildExtension, CppExtension

here = Path(__file__).resolve().parent
repo = here.parent.parent
build_dir = Path(os.environ.get("GCCL_BUILD_DIR", repo / "build")).resolve()
library = build_dir / "libgccl.so"


def build_libgccl():
    """Configures and builds libgccl with the repository's default preset."""
    jobs = os.environ.get("MAX_JOBS", "2")
    subprocess.run(["cmake", "--preset", "default"], cwd=repo, check=True)
    subprocess.run(["cmake", "--build", "--preset", "default", "--target", "gccl", "-j", jobs],
                   cwd=repo, check=True)


if not library.exists():
    if "GCCL_BUILD_DIR" in os.environ:
        raise SystemExit(f"gccl: {library} does not exist (GCCL_BUILD_DIR={build_dir})")
    build_libgccl()

# The versioned name (libgccl.so.0) is what the extension records as needed.
soname = subprocess.run(["objdump", "-p", str(library)], check=True, capture_output=True,
                        text=True).stdout
soname = next(line.split()[1] for line in soname.splitlines() if "SONAME" in line)
shutil.copyfile(library.resolve(), here / "gccl" / soname)
package_data = [soname]

# The TensorFlow op library, when plugins/tensorflow/build.py made one for this build.
tf_library = build_dir / "tensorflow" / "libgccl_tf.so"
tf_bundled = here / "gccl" / "libgccl_tf.so"
if tf_library.exists():
    shutil.copyfile(tf_library, tf_bundled)
    package_data.append(tf_bundled.name)
elif tf_bundled.exists():
    tf_bundled.unlink()  # from an earlier build: not this libgccl's

setup(
    name="gccl",
    version="0.1.0",
    description="gccl for PyTorch: a torch.distributed backend, gossip ops and "
    "GossipDataParallel",
    packages=["gccl"],
    package_data={"gccl": package_data},
    python_requires=">=3.9",
    install_requires=["torch>=2.1"],
    ext_modules=[
        CppExtension(
            name="gccl._C",
            sources=[
                "csrc/communicator.cc",
                "csrc/tensor_args.cc",
                "csrc/work.cc",
                "csrc/process_group.cc",
                "csrc/ops.cc",
                "csrc/module.cc",
            ],
            depends=[str(repo / "plugins" / "common" / "gccl_codec_options.h")],
            # plugins/common: what the torch and TensorFlow plugins share (the codec helper).
            include_dirs=[str(repo / "include"), str(repo / "plugins" / "common")],
            library_dirs=[str(build_dir)],
            libraries=["gccl"],
            # -g0: torch's headers make debug info slow to build and large.
            extra_compile_args=["-std=c++20", "-fvisibility=hidden", "-g0", "-Wall", "-Wextra",
                                "-Werror",
                                # torch's own headers trip these
                                "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
            extra_link_args=["-Wl,-rpath,$ORIGIN"],
        )
    ],
    cmdclass={"build_ext": BuildExtension},
    entry_points={"torch.distributed.backends": ["gccl = gccl:register_backend"]},
    zip_safe=False,
)
