#!/usr/bin/env bash
# make bench-undo: one wrong DELETE of a few thousand rows on the ~1 GB database while writes go
# on; datasafe's undo against the protocol's recovery (restore the last backup), rows lost and time
# to a serving, verified database (bench/undo_bench.py; docs/undo.md).
# Last line: undo rows lost N (protocol M), time ratio R
set -o errexit -o nounset -o pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$repo/testbed/build-continuous-image.sh"
exec "$repo/.venv/bin/python" "$repo/bench/undo_bench.py" "$@"
