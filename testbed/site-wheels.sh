#!/usr/bin/env bash
# Fill .cache/site-wheels with the wheels of boto3 and its dependencies at requirements.txt's
# pins: the "air-gapped site's wheelhouse" of tests/offsite/test_offsite_deps_ssh.py, which
# installs from it with --no-index (tests never reach off loopback; this setup step may).
# Already-present wheels are kept.
set -o errexit -o nounset -o pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
python=${PYTHON:-"$repo/.venv/bin/python"}
dest="$repo/.cache/site-wheels"
mkdir -p "$dest"
mapfile -t pins < <(grep -E '^(boto3|botocore|s3transfer|jmespath|python-dateutil|urllib3|six)==' "$repo/requirements.txt")
((${#pins[@]} == 7)) || { echo "site-wheels: expected 7 pins in requirements.txt, found: ${pins[*]}" >&2; exit 2; }
# All seven are pure-Python wheels (py3-none-any): any site Python 3 takes them.
"$python" -m pip download --quiet --disable-pip-version-check --only-binary=:all: --no-deps \
  -d "$dest" "${pins[@]}" 2> >(grep -v "^WARNING: Location" >&2)
