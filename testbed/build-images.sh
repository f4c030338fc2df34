#!/usr/bin/env bash
# Build the test bed's images offline, from Debian's packages, when they are missing.
#
#   datasafe/bookworm-base:<inputs>  debootstrap minbase + PostgreSQL 15 + Python 3 + igzip (isal: the
#                                    backups compress with it in the container; docker import)
#   $DATASAFE_PG_IMAGE               the postgres image (default datasafe/postgres:15-bookworm)
#   $DATASAFE_PYTHON_IMAGE           the backend's base image (default datasafe/python:3.11-bookworm)
#
# Each image carries a label with a hash of the inputs that made it, so an image is rebuilt
# only when it is missing or its inputs changed. Where a registry is reachable, point
# DATASAFE_PG_IMAGE at the official image (postgres:16) and DATASAFE_PYTHON_IMAGE at
# python:3.11-slim: images that do not start with "datasafe/" are never built here.
set -o errexit -o nounset -o pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
pg_image=${DATASAFE_PG_IMAGE:-datasafe/postgres:15-bookworm}
py_image=${DATASAFE_PYTHON_IMAGE:-datasafe/python:3.11-bookworm}
packages="postgresql-15,python3,python3-venv,procps,isal"

log() { printf 'build-images: %s\n' "$*" >&2; }

inputs_hash=$( { echo "$packages"; cat "$here/build-images.sh" "$here/images/postgres/Dockerfile" \
  "$here/images/postgres/docker-entrypoint.sh"; } | sha256sum | cut -c1-12)
base_image="datasafe/bookworm-base:$inputs_hash"

image_is_current() {  # image has our inputs label
  [[ "$(docker image inspect --format '{{ index .Config.Labels "io.datasafe.inputs" }}' "$1" 2>/dev/null)" == "$inputs_hash" ]]
}

build_base() {
  if docker image inspect "$base_image" >/dev/null 2>&1; then return; fi
  command -v debootstrap >/dev/null || {
    log "debootstrap is missing: apt-get install debootstrap (or set DATASAFE_PG_IMAGE to an existing image)"; exit 1; }
  read -r mirror suite < <("$here/debian-mirror.sh")
  local rootfs
  rootfs=$(mktemp -d /var/tmp/datasafe-rootfs.XXXXXX)
  trap 'rm -rf "$rootfs"' EXIT
  log "debootstrap $suite ($packages) into $rootfs; this takes a minute or two"
  debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs" "$mirror" \
    >"$rootfs.log" 2>&1 || { log "debootstrap failed; its log:"; tail -n 30 "$rootfs.log" >&2; exit 1; }
  rm -f "$rootfs.log"
  # The package creates a "main" cluster at install time; the image keeps its data in PGDATA.
  rm -rf "$rootfs/etc/postgresql/15" "$rootfs/var/lib/postgresql/15" \
         "$rootfs/var/cache/apt/archives/"*.deb "$rootfs/var/lib/apt/lists/"*
  tar -C "$rootfs" -c . | docker import \
    --change "LABEL io.datasafe.inputs=$inputs_hash" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]' - "$base_image" >/dev/null
  rm -rf "$rootfs"
  trap - EXIT
  log "imported $base_image"
}

build_datasafe_image() {  # name
  local name=$1
  if image_is_current "$name"; then log "$name is current"; return; fi
  build_base
  case "$name" in
    "$pg_image")
      docker build --quiet --label "io.datasafe.inputs=$inputs_hash" \
        --build-arg "BASE_IMAGE=$base_image" -t "$name" "$here/images/postgres" >/dev/null ;;
    "$py_image")
      docker tag "$base_image" "$name" ;;
  esac
  log "built $name"
}

for image in "$pg_image" "$py_image"; do
  if [[ "$image" == datasafe/* ]]; then
    build_datasafe_image "$image"
  elif ! docker image inspect "$image" >/dev/null 2>&1; then
    log "pulling $image"
    docker pull --quiet "$image" >/dev/null
  fi
done
