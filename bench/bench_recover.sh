#!/usr/bin/env bash
# make bench-recover: on the ~1 GB benchmark database, the time from the command to a verified,
# serving database: recover.yml to latest (continuous recovery) against restore.yml from the last
# logical backup (bench/recover_bench.py; docs/continuous.md).
# Last line: recover ratio R (recover.yml A s / restore.yml B s)
set -o errexit -o nounset -o pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$repo/bench/benchdb.sh"
bash "$repo/testbed/build-continuous-image.sh"
exec "$repo/.venv/bin/python" "$repo/bench/recover_bench.py" "$@"
