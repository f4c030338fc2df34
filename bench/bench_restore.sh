#!/usr/bin/env bash
# make bench-restore: time from the command to a healthy, verified stack, datasafe's
# playbooks/restore.yml against the protocol's manual EMERGENCY RECOVERY, on the same
# backup of the ~1 GB benchmark database, in one run. See docs/measurements.md for the method.
set -o errexit -o nounset -o pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$repo/bench/benchdb.sh"
exec "$repo/.venv/bin/python" "$repo/bench/restore_bench.py" "$@"
