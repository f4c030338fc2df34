#!/usr/bin/env bash
# remove-test-stack.sh PROJECT [ROOT]: remove a throwaway test stack completely: its
# containers and volumes (found by compose project label), its backend images (tagged, and the
# untagged ones every --no-cache rebuild leaves behind: compose labels each image it builds
# with its project), the rollback tags safe_update gave it, and ROOT.
# Refuses any project whose name does not start with "dstest-": production stacks are
# never named so, and this script is the only place datasafe removes volumes.
set -o errexit -o nounset -o pipefail
project=${1:?usage: remove-test-stack.sh PROJECT [ROOT]}
root=${2:-}
if [[ "$project" != dstest-* ]]; then
  echo "remove-test-stack: refusing to remove project '$project': only throwaway test projects (dstest-*) are removed" >&2
  exit 3
fi
if [[ -n "$root" && "$root" != /var/tmp/datasafe-* && "$root" != /tmp/* ]]; then
  echo "remove-test-stack: refusing to remove '$root': test roots live under /var/tmp/datasafe-* or /tmp" >&2
  exit 3
fi
label="label=com.docker.compose.project=$project"
# continuous recovery: the throwaway servers recover.yml made for the project, and the
# derived database image continuous.yml built for it
recovered="label=io.datasafe.recovered=$project"
derived="label=io.datasafe.continuous=$project"
docker ps -aq --filter "$label" | xargs -r docker rm -f >/dev/null
docker ps -aq --filter "$recovered" | xargs -r docker rm -f >/dev/null
docker volume ls -q --filter "$label" | xargs -r docker volume rm >/dev/null
docker volume ls -q --filter "$recovered" | xargs -r docker volume rm >/dev/null
images() { { docker image ls -q "lms-backend:$project*"; docker image ls -q --filter "$label"; docker image ls -q --filter "$derived"; } | sort -u; }
images | xargs -r docker image rm -f >/dev/null
# safe_update's rollback tags on images the project did not build (the PostgreSQL image):
# untagged only, the images stay.
rollback_tags() { docker image ls --format '{{.Repository}}:{{.Tag}}' | { grep -F ":datasafe-rollback-$project-" || true; }; }
rollback_tags | xargs -r docker image rm >/dev/null
[[ -n "$root" ]] && rm -rf -- "$root"
left=$( { docker ps -aq --filter "$label"; docker volume ls -q --filter "$label"; docker ps -aq --filter "$recovered";
          docker volume ls -q --filter "$recovered"; images; rollback_tags; } | wc -l)
if [[ "$left" != 0 ]]; then
  echo "remove-test-stack: $left container(s)/volume(s)/image(s) of $project are still there" >&2
  exit 1
fi
echo "removed $project"
