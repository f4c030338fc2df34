#!/usr/bin/env bash
# push-change.sh ROOT MESSAGE PATH=CONTENT... : commit files to the throwaway app's remote,
# as a developer would (a clone in ROOT/dev, commit, push). Prints the new revision.
# push-change.sh ROOT --revert : push a commit reverting the last one.
set -o errexit -o nounset -o pipefail
root=$1 message=$2
shift 2
dev="$root/dev"
[[ -d "$dev/.git" ]] || git clone -q "$root/remote.git" "$dev"
git -C "$dev" pull -q --ff-only
export GIT_AUTHOR_NAME=datasafe-test GIT_AUTHOR_EMAIL=test@datasafe.invalid
export GIT_COMMITTER_NAME=datasafe-test GIT_COMMITTER_EMAIL=test@datasafe.invalid
if [[ "$message" == --revert ]]; then
  git -C "$dev" revert -q --no-edit HEAD
else
  for pair in "$@"; do
    path=${pair%%=*} content=${pair#*=}
    mkdir -p "$(dirname "$dev/$path")"
    printf '%b\n' "$content" >"$dev/$path"
  done
  git -C "$dev" add -A
  git -C "$dev" commit -q -m "$message"
fi
git -C "$dev" push -q origin HEAD:main
git -C "$dev" rev-parse HEAD
