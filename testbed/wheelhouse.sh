#!/usr/bin/env bash
# Fill examples/lms/backend/wheelhouse with the backend's pinned wheels, so its image
# builds offline (the Dockerfile installs with --no-index). Already-present wheels are kept.
set -o errexit -o nounset -o pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
backend="$here/../examples/lms/backend"
python=${PYTHON:-"$here/../.venv/bin/python"}
mkdir -p "$backend/wheelhouse"
"$python" -m pip download --quiet --disable-pip-version-check --only-binary=:all: --no-deps \
  --python-version 3.11 --implementation cp --platform manylinux2014_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 --platform any \
  -r "$backend/requirements.txt" -d "$backend/wheelhouse" 2> >(grep -v "^WARNING: Location" >&2)
