#!/usr/bin/env bash
# Remove the throwaway PostgreSQL servers of pytest runs that ended without their fixtures'
# teardown (a killed run leaves them running, on their loopback ports, slowing everything
# measured after them). Only containers and volumes labelled io.datasafe.test are considered,
# and of those only the ones whose owner (label io.datasafe.test.owner, "<pid>:<start time>" of
# the pytest process, see tests/pgbed.py) no longer runs: a live run's servers are never touched.
# Labelled resources without an owner label predate it; they are listed, not removed.
set -o errexit -o nounset -o pipefail
label=io.datasafe.test
owner_label=$label.owner

alive() {  # "<pid>:<start time>": that very process still runs (a reused pid has another start time)
  local pid=${1%%:*} start=${1#*:} stat
  [[ "$pid" =~ ^[0-9]+$ && "$start" =~ ^[0-9]+$ ]] || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  stat=${stat##*) }  # the fields after the command name; field 22 (start time) is the 20th of them
  read -r -a fields <<< "$stat"
  [[ "${fields[0]}" != [ZX] && "${fields[19]:-}" == "$start" ]]  # a zombie has ended: only unreaped
}

removed=0
while read -r id name owner; do
  [[ -n "$id" ]] || continue
  name=${name#/}
  if [[ -z "$owner" || "$owner" == "<no value>" ]]; then
    echo "remove-abandoned-test-servers: container $name has no $owner_label label: left alone (docker rm -f -v $name)" >&2
  elif ! alive "$owner"; then
    docker rm -f -v "$id" >/dev/null && removed=$((removed + 1))
  fi
done < <(docker ps -aq --filter "label=$label" | xargs -r docker inspect --format "{{.Id}} {{.Name}} {{ index .Config.Labels \"$owner_label\" }}")
while read -r name owner; do
  [[ -n "$name" ]] || continue
  if [[ -z "$owner" || "$owner" == "<no value>" ]]; then
    echo "remove-abandoned-test-servers: volume $name has no $owner_label label: left alone (docker volume rm $name)" >&2
  elif ! alive "$owner"; then
    # a volume still in use (its container belongs to a live owner) is refused by docker: kept
    docker volume rm "$name" >/dev/null 2>&1 && removed=$((removed + 1))
  fi
done < <(docker volume ls -q --filter "label=$label" | xargs -r docker volume inspect --format "{{.Name}} {{ index .Labels \"$owner_label\" }}")
echo "remove-abandoned-test-servers: removed $removed container(s) and volume(s) of ended test runs"
