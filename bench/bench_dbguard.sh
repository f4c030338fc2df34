#!/usr/bin/env bash
# make bench-dbguard: what the guard inside PostgreSQL costs. pgbench (tpcb-like) TPS with and
# without the guard, alternating rounds on the same data, and a bulk 50,000-row DELETE under
# break-glass against the same DELETE unguarded. Last line: `dbguard tps ratio R`.
set -o errexit -o nounset -o pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PATH="$repo/.venv/bin:$PATH"
exec "$repo/.venv/bin/python" "$repo/bench/dbguard_bench.py" "$@"
