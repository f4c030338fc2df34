#!/usr/bin/env bash
# make-app-repo.sh SRC ROOT: a throwaway deployment of the demo app, as the protocol's users
# have it: ROOT/remote.git (the "origin" a safe update pulls from) and ROOT/app, a clone of it
# holding the compose files. The backend's wheelhouse is copied in and excluded from git, so
# the tree is clean. Idempotent: an existing ROOT/app is left alone.
set -o errexit -o nounset -o pipefail
src=$1 root=$2
[[ -d "$src" ]] || { echo "make-app-repo: no such directory: $src" >&2; exit 2; }
[[ -d "$src/backend/wheelhouse" ]] || { echo "make-app-repo: $src/backend/wheelhouse is missing: run 'make setup'" >&2; exit 2; }
if [[ -d "$root/app/.git" ]]; then echo "kept $root/app"; exit 0; fi
mkdir -p "$root"
git init -q --bare -b main "$root/remote.git"
seed=$(mktemp -d)
trap 'rm -rf "$seed"' EXIT
tar -C "$src" --exclude=./backend/wheelhouse --exclude=__pycache__ -c . | tar -C "$seed" -x
git -C "$seed" init -q -b main
git -C "$seed" add -A
git -C "$seed" -c user.name=datasafe-test -c user.email=test@datasafe.invalid commit -q -m "LMS demo app"
git -C "$seed" push -q "$root/remote.git" main
git clone -q "$root/remote.git" "$root/app"
cp -a "$src/backend/wheelhouse" "$root/app/backend/wheelhouse"
echo "backend/wheelhouse/" >>"$root/app/.git/info/exclude"
echo "created $root/app"
