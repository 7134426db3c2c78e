#!/usr/bin/env bash
# Runs one pytest file of the Python package's tests with the project's .venv (ctest label
# python). The package must be installed there: scripts/python-install.sh (scripts/test.sh runs
# it before ctest). Fails, saying so, when it is not: CI must never skip these tests.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python="$here/../../.venv/bin/python"
if [ ! -x "$python" ] || ! "$python" -c "import gccl" >/dev/null 2>&1; then
  echo "tests/python: no gccl package in .venv: run scripts/python-install.sh" \
       "(scripts/test.sh does)" >&2
  exit 1
fi
exec "$python" -m pytest -q -p no:cacheprovider "$here/$1"
