#!/usr/bin/env bash
# Makes the project-local Python environment (.venv) that the Python package
# (PyTorch and TensorFlow), its tests and the demos use: torch 2.x from PyPI
# (its wheel brings the CUDA libraries, about 3 GB, even for CPU use),
# tensorflow-cpu 2.x (about 700 MB with Keras), numpy, scikit-learn (the
# digits data set), matplotlib (the demo's plot) and pytest. Creates .venv only when
# missing and installs only what is missing, so a second run costs a second.
# GCCL_PYTHON names the interpreter to build the environment from (default
# python3, >= 3.9). Prints nothing when everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv
python=${GCCL_PYTHON:-python3}

if [ ! -x "$venv/bin/python" ]; then
  echo "python-env: creating $venv from $($python --version 2>&1)"
  "$python" -m venv "$venv"
fi

# module name -> pip requirement
declare -A wanted=(
  [torch]="torch>=2.1,<3"
  [tensorflow]="tensorflow-cpu>=2.16,<3"
  [numpy]="numpy"
  [sklearn]="scikit-learn"
  [matplotlib]="matplotlib"
  [pytest]="pytest"
  [wheel]="wheel"
)
missing=()
for module in "${!wanted[@]}"; do
  if ! "$venv/bin/python" -c "import $module" >/dev/null 2>&1; then
    missing+=("${wanted[$module]}")
  fi
done
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
echo "python-env: installing ${missing[*]} into $venv"
start=$(date +%s)
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${missing[@]}"
echo "python-env: installed in $(( $(date +%s) - start )) s"
