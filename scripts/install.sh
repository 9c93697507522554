#!/bin/sh
# Create a virtualenv and install Parley into it. This is the one install recipe: the Dockerfile's
# build stage runs it, and CI (.ci/docker-check.sh) runs it the same way, so the two cannot drift.
#
#   scripts/install.sh VENV_DIR [EXTRAS]      e.g. scripts/install.sh /opt/venv postgres
#
# Installs the project in the directory above this script as a regular (non-editable) install:
# pip builds a wheel and installs that, so only what the package declares ends up in the venv.
# PYTHON names the interpreter (default python3). Packages come from PyPI (or pip's configured
# index); nothing else is downloaded.
set -eu

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 VENV_DIR [EXTRAS]" >&2
  exit 2
fi
venv=$1
extras=${2:-}
src=$(cd "$(dirname "$0")/.." && pwd)

target=$src
if [ -n "$extras" ]; then
  target="${src}[${extras}]"
fi

"${PYTHON:-python3}" -m venv "$venv"
# No cache: nothing to reuse in a throwaway venv or an image layer, and it keeps layers small.
"$venv/bin/python" -m pip install --no-cache-dir --no-input --disable-pip-version-check "$target"
# Fail the build on conflicting dependency versions rather than at run time.
"$venv/bin/python" -m pip check
