#!/usr/bin/env bash
# Remove every throwaway test stack (compose projects named dstest-*) and their roots.
set -o errexit -o nounset -o pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
{ docker ps -a --format '{{ index .Labels "com.docker.compose.project" }}'
  docker volume ls --format '{{ index .Labels "com.docker.compose.project" }}'; } \
  | grep '^dstest-' | sort -u | while read -r project; do
    "$here/remove-test-stack.sh" "$project" "/var/tmp/datasafe-molecule/${project#dstest-}"
  done
