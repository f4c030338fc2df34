#!/usr/bin/env bash
# make test's two long steps side by side, after setup and lint (the Makefile runs those first): the molecule scenarios (fixed ports 56000+slot*10, their
# own stacks) run in the background while pytest runs its files over a few workers (free ports
# outside 56000-56999, its own stacks). Both mostly wait on servers and playbooks, so two cores carry
# both. Nothing they share is edited without a lock (crontab: roles/datasafe/tasks/crontab.yml).
# molecule's output is kept in a log and printed whole after pytest's; pytest's output is kept too.
# The last lines are a summary a CI tail can show on its own: what failed (pytest's test ids,
# molecule's scenarios and their failed tasks), the slowest pytest files, the times.
set -o nounset -o pipefail
make=${MAKE:-make}
molecule_log=$(mktemp /tmp/datasafe-molecule-XXXXXX.log)
pytest_log=$(mktemp /tmp/datasafe-pytest-XXXXXX.log)
pytest_junit=$(mktemp /tmp/datasafe-pytest-XXXXXX.xml)

setsid "$make" run-molecule >"$molecule_log" 2>&1 &
molecule_pid=$!
stop_molecule() { kill -TERM -- "-$molecule_pid" 2>/dev/null; wait "$molecule_pid" 2>/dev/null; }
trap 'stop_molecule; echo "run-suite: interrupted; logs: $pytest_log $molecule_log" >&2; exit 130' INT TERM

started=$SECONDS
"$make" run-pytest PYTEST_JUNIT="$pytest_junit" 2>&1 | tee "$pytest_log"
pytest_rc=${PIPESTATUS[0]}
pytest_took=$((SECONDS - started))
echo "== pytest exited $pytest_rc after ${pytest_took} s; waiting for the molecule scenarios (log: $molecule_log)"
wait "$molecule_pid"
molecule_rc=$?
molecule_took=$(sed -n 's/^== molecule finished after \([0-9]*\) s$/\1/p' "$molecule_log" | tail -n 1)
trap - INT TERM
echo "== molecule (ran beside pytest), exit $molecule_rc:"
cat "$molecule_log"

echo
echo "== summary (logs: $pytest_log $molecule_log)"
python3 "$(dirname "$0")/suite_summary.py" "$pytest_log" "$pytest_junit" "$molecule_log"
echo "== suite: pytest exit $pytest_rc (${pytest_took} s), molecule exit $molecule_rc (${molecule_took:-?} s), $((SECONDS - started)) s in all"
if ((pytest_rc != 0 || molecule_rc != 0)); then
  echo "run-suite: FAILED:$( ((pytest_rc)) && echo ' pytest')$( ((molecule_rc)) && echo ' molecule')" >&2
  exit 1
fi
