#!/usr/bin/env bash
# make bench-rpo: how many seconds of committed rows continuous recovery loses when the server and
# its volume are destroyed at a random moment (bench/rpo_bench.py; docs/continuous.md).
# Last line: rpo seconds S (protocol: up to 86400)
set -o errexit -o nounset -o pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$repo/testbed/build-continuous-image.sh"
exec "$repo/.venv/bin/python" "$repo/bench/rpo_bench.py" "$@"
