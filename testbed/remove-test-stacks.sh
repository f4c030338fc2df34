#!/usr/bin/env bash
# Remove every throwaway test stack (compose projects named dstest-*: containers, volumes,
# images) and their roots.
set -o errexit -o nounset -o pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
{ docker ps -a --format '{{ .Label "com.docker.compose.project" }}'
  docker volume ls --format '{{ .Label "com.docker.compose.project" }}'
  docker image ls -q --filter label=com.docker.compose.project | sort -u \
    | xargs -r docker image inspect --format '{{ index .Config.Labels "com.docker.compose.project" }}'; } \
  | { grep '^dstest-' || true; } | sort -u | while read -r project; do  # none left is fine
    "$here/remove-test-stack.sh" "$project" "/var/tmp/datasafe-molecule/${project#dstest-}"
  done
# and the throwaway servers of pytest runs that were killed before their fixtures ended
"$here/remove-abandoned-test-servers.sh"
