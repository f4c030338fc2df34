#!/usr/bin/env bash
# Every molecule scenario, in lanes that run side by side: the scenarios of one lane run one after
# another, the lanes at the same time. Each scenario has its own ports (56000+slot*10), its own
# stack and project name, and a flock of its own, so two lanes never share a stack; what scenarios
# do share (the crontab) is edited under a lock (roles/datasafe/tasks/crontab.yml).
#
# usage: run-molecule.sh BASE_CONFIG LANE [LANE ...]   (a lane: scenario names, space-separated)
#
# Why lanes: the scenarios mostly wait (image builds with --no-cache, servers starting, health
# checks); one after another they were the suite's critical path (the update scenario alone ran
# twenty minutes after pytest had finished). Every scenario runs even when an earlier one failed;
# each lane's output is kept whole and printed lane after lane, then the failed scenarios are named.
set -o nounset -o pipefail
base_config=$1
shift
logs=()
pids=()
started=$SECONDS
for lane in "$@"; do
  log=$(mktemp /tmp/datasafe-molecule-lane-XXXXXX.log)
  logs+=("$log")
  (
    failed=""
    for s in $lane; do
      echo "== molecule test -s $s"
      began=$SECONDS
      flock "/var/tmp/datasafe-molecule-$s.lock" molecule --base-config "$base_config" test -s "$s" || failed="$failed $s"
      echo "== molecule scenario $s took $((SECONDS - began)) s"
    done
    [ -z "$failed" ] || echo "== lane failed:$failed"
  ) >"$log" 2>&1 &
  pids+=($!)
done
# Ctrl-C reaches every lane's molecule through the terminal's process group; testbed/run-suite.sh
# stops the whole group it started with setsid
trap 'kill -TERM "${pids[@]}" 2>/dev/null; exit 130' INT TERM
for pid in "${pids[@]}"; do wait "$pid"; done
trap - INT TERM

failed=""
for log in "${logs[@]}"; do
  cat "$log"
  failed="$failed$(sed -n 's/^== lane failed://p' "$log")"
  rm -f "$log"
done
echo "== molecule finished after $((SECONDS - started)) s"
if [ -n "$failed" ]; then
  echo "molecule: FAILED scenario(s):$failed" >&2
  exit 1
fi
