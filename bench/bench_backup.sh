#!/usr/bin/env bash
# make bench-backup: a verified datasafe backup against the protocol's manual commands, on the
# ~1 GB benchmark database (bench/benchdb.sh), measured in one run on the same data.
#
#   manual:   docker exec dsbench-pg pg_dump -U lms_user lms_slncity > file.sql && gzip file.sql
#   datasafe: ansible-playbook playbooks/backup.yml   (dump on an exported snapshot, same-snapshot
#             row counts, verification, manifest, retention; everything the role does)
#
# datasafe runs first, so it pays for any cold cache. The last line reads
#   backup ratio R (datasafe A s / manual B s)
# Target: R <= 0.5. A benchmark never fails on the number; it fails only if a step fails.
set -o errexit -o nounset -o pipefail
bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$bench_dir")
export PATH="$repo/.venv/bin:$PATH" ANSIBLE_CONFIG="$repo/ansible.cfg" ANSIBLE_FORCE_COLOR=0

bash "$bench_dir/benchdb.sh"
# shellcheck source=bench/benchdb.sh
source "$bench_dir/benchdb.sh" --env

work=/var/tmp/datasafe-bench-backup
rm -rf "$work"
mkdir -p "$work/manual"
trap '[[ -n "${BENCH_KEEP:-}" ]] || rm -rf "$work"' EXIT
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

extra=$(printf '{"datasafe_db_container": "%s", "datasafe_compose_dir": "%s", "datasafe_backup_dir": "%s", "datasafe_change_log": "%s", "datasafe_backup_label": "benchmark"}' \
  "$LMS_DB_CONTAINER" "$BENCH_COMPOSE_DIR" "$work/datasafe" "$work/change-log.txt")
echo "bench-backup: datasafe: ansible-playbook playbooks/backup.yml on $LMS_DB_CONTAINER" >&2
t0=$(now)
ansible-playbook "$repo/playbooks/backup.yml" -e "$extra" >"$work/datasafe.log" 2>&1 \
  || { tail -40 "$work/datasafe.log" >&2; exit 1; }
t1=$(now)

echo "bench-backup: manual: docker exec $LMS_DB_CONTAINER pg_dump -U lms_user lms_slncity > file.sql && gzip file.sql" >&2
t2=$(now)
docker exec "$LMS_DB_CONTAINER" pg_dump -U lms_user lms_slncity >"$work/manual/file.sql"
gzip "$work/manual/file.sql"
t3=$(now)

ds_file=$(ls "$work/datasafe"/lms_backup_*.sql.gz)
ds_size=$(stat -c %s "$ds_file")
manual_size=$(stat -c %s "$work/manual/file.sql.gz")
a=$(secs "$t0" "$t1") b=$(secs "$t2" "$t3")
echo "datasafe backup: $(basename "$ds_file") $((ds_size / 1000000)) MB, verified, manifest + same-snapshot counts, in $a s"
echo "manual backup:   file.sql.gz $((manual_size / 1000000)) MB, unverified, in $b s"
awk -v a="$a" -v b="$b" 'BEGIN { printf "backup ratio %.2f (datasafe %.1f s / manual %.1f s)\n", a / b, a, b }'
