#!/usr/bin/env bash
# make bench-backup: a verified datasafe backup against the protocol's manual commands, on the
# ~1 GB benchmark database (bench/benchdb.sh), measured in one go on the same data.
#
#   manual:   docker exec dsbench-pg pg_dump -U lms_user lms_slncity > file.sql && gzip file.sql
#   datasafe: ansible-playbook playbooks/backup.yml   (dump on an exported snapshot, same-snapshot
#             row counts, verification, manifest, retention; everything the role does)
#
# An untimed warm-up dump first, then BENCH_ROUNDS (default 3) rounds in alternating order
# (datasafe first in odd rounds). The last line reads
#   backup ratio R (datasafe A s / manual B s)
# (the ratio of the medians). Above it: every round's ratio with the load average at its end,
# and the spread (min, median, max) of the ratios and of each side's times (bench/spread.py).
# Target: R <= 0.40. A benchmark never fails on the number; it fails only if a step fails.
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

# The bench's stack described in full (the default inventory describes none; see inventory/hosts.yml).
extra=$(printf '{"datasafe_db_container": "%s", "datasafe_compose_dir": "%s", "datasafe_compose_project": "%s", "datasafe_db_name": "lms_slncity", "datasafe_db_user": "lms_user", "datasafe_critical_tables": ["users", "patients", "visits", "test_results", "invoices"], "datasafe_backup_dir": "%s", "datasafe_change_log": "%s", "datasafe_backup_label": "benchmark"}' \
  "$LMS_DB_CONTAINER" "$BENCH_COMPOSE_DIR" "$COMPOSE_PROJECT_NAME" "$work/datasafe" "$work/change-log.txt")
rounds=${BENCH_ROUNDS:-3}
# Whichever runs first reads a cold page cache. An untimed warm-up dump, then rounds that
# alternate the order, and the median of each side, keep the comparison about the commands.
echo "bench-backup: warm-up (untimed): pg_dump > /dev/null" >&2
docker exec "$LMS_DB_CONTAINER" pg_dump -U lms_user lms_slncity >/dev/null

run_datasafe() {
  ansible-playbook "$repo/playbooks/backup.yml" -e "$extra" >"$work/datasafe.log" 2>&1 \
    || { tail -40 "$work/datasafe.log" >&2; exit 1; }
}
run_manual() {
  rm -f "$work/manual/file.sql" "$work/manual/file.sql.gz"
  docker exec "$LMS_DB_CONTAINER" pg_dump -U lms_user lms_slncity >"$work/manual/file.sql"
  gzip "$work/manual/file.sql"
}
timed() { local t0 t1; t0=$(now); "$@"; t1=$(now); secs "$t0" "$t1"; }
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "bench-backup: datasafe: ansible-playbook playbooks/backup.yml on $LMS_DB_CONTAINER" >&2
echo "bench-backup: manual: docker exec $LMS_DB_CONTAINER pg_dump -U lms_user lms_slncity > file.sql && gzip file.sql" >&2
ours=() theirs=() loads=()
for ((i = 1; i <= rounds; i++)); do
  if ((i % 2)); then
    ours+=("$(timed run_datasafe)"); theirs+=("$(timed run_manual)")
  else
    theirs+=("$(timed run_manual)"); ours+=("$(timed run_datasafe)")
  fi
  loads+=("$(cut -d' ' -f1 /proc/loadavg)")
  echo "bench-backup: round $i: datasafe ${ours[-1]} s, manual ${theirs[-1]} s, load ${loads[-1]}" >&2
done

ds_file=$(ls "$work/datasafe"/lms_backup_*.sql.gz | tail -n 1)
ds_size=$(stat -c %s "$ds_file")
manual_size=$(stat -c %s "$work/manual/file.sql.gz")
a=$(median "${ours[@]}") b=$(median "${theirs[@]}")
python "$bench_dir/spread.py" "${ours[*]}" "${theirs[*]}" "${loads[*]}"
echo "datasafe backup: $(basename "$ds_file") $((ds_size / 1000000)) MB, verified, manifest + same-snapshot counts, median $a s of $rounds"
echo "manual backup:   file.sql.gz $((manual_size / 1000000)) MB, unverified, median $b s of $rounds"
awk -v a="$a" -v b="$b" 'BEGIN { printf "backup ratio %.2f (datasafe %.1f s / manual %.1f s)\n", a / b, a, b }'
