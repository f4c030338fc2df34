#!/usr/bin/env bash
# make bench-update: downtime of playbooks/safe_update.yml against the protocol's manual
# sequence, on one throwaway stack and the same kind of change, in one run.
set -o errexit -o nounset -o pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PATH="$repo/.venv/bin:$PATH"
exec "$repo/.venv/bin/python" "$repo/bench/bench_update.py"
