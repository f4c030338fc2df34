#!/usr/bin/env bash
# The test bed's database image for continuous recovery: the PostgreSQL image plus pgBackRest
# from Debian's packages, built with datasafe's own Dockerfile (roles/datasafe_continuous/files).
#
#   $DATASAFE_PGBACKREST_IMAGE  (default datasafe/postgres:15-bookworm-pgbackrest)
#   FROM $DATASAFE_PGBACKREST_BASE (default datasafe/postgres:15-bookworm; never DATASAFE_PG_IMAGE,
#   which the continuous scenario points at this very image for its stack)
#
# A separate tag FROM the existing image, so the image every other test uses stays as it is.
# The build reaches the Debian mirror this machine's apt sources name (host network, a build
# argument); no package host is written into the repository or the image. Rebuilt only when
# its inputs (the Dockerfile, this script, the base image's id) change.
set -o errexit -o nounset -o pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
context="$(dirname "$here")/roles/datasafe_continuous/files"
base=${DATASAFE_PGBACKREST_BASE:-datasafe/postgres:15-bookworm}
image=${DATASAFE_PGBACKREST_IMAGE:-datasafe/postgres:15-bookworm-pgbackrest}

log() { printf 'build-continuous-image: %s\n' "$*" >&2; }

base_id=$(docker image inspect --format '{{.Id}}' "$base")
inputs=$( { echo "$base_id"; cat "$context/Dockerfile" "$here/build-continuous-image.sh"; } | sha256sum | cut -c1-12)
if [[ "$(docker image inspect --format '{{ index .Config.Labels "io.datasafe.inputs" }}' "$image" 2>/dev/null)" == "$inputs" ]]; then
  log "$image is current"
  exit 0
fi
read -r mirror suite < <("$here/debian-mirror.sh")
log "building $image (FROM $base, pgbackrest from Debian's packages)"
docker build --quiet --network host --label "io.datasafe.inputs=$inputs" \
  --build-arg "DB_IMAGE=$base" --build-arg "APT_MIRROR=$mirror" --build-arg "APT_SUITE=$suite" \
  -t "$image" "$context" >/dev/null
log "built $image"
