"""Undo benchmark (make bench-undo; docs/undo.md): one wrong DELETE on the ~1 GB database.

1. The benchmark database (~1 GB: the demo's generator at scale 100, as bench/benchdb.sh builds
   dsbench, which other benchmarks restart) is loaded into a server of the bench's own that
   archives exactly as datasafe's override configures it; a
   first pgBackRest full backup; then the verified logical backup the protocol would restore
   (datasafe's pg_backup, the same dump the 02:00 job writes).
2. A writer commits a visit and its result every 100 ms, from the backup on. After a while the
   moment is noted and the mistake runs (bench/undo_mistake.sql: a wrong DELETE of a few thousand
   test results); the writer goes on, then stops.
3. datasafe, timed from the command to a serving, verified database: undo review (recovery of
   the moment into a throwaway server, comparison of the critical tables by primary key, review
   tables), a verified backup, undo apply (one transaction, counts asserted).
4. The protocol's EMERGENCY RECOVERY, timed the same way: the last backup restored
   (``gunzip -c | psql``) into an empty database, then the count check. It runs beside the live
   database (a database of its own), which is what the protocol's restore leaves behind.
5. Rows lost: by datasafe, the deleted rows not brought back plus the writer's rows missing
   afterwards; by the protocol, every row of the critical tables that the restored database lacks
   against the undone live one (everything written since the backup).

Last line: ``undo rows lost N (protocol M), time ratio R`` with R = datasafe's time / the protocol's.
"""

import os
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests"))
sys.path.insert(0, os.path.join(REPO, "module_utils"))

import datasafe_path  # noqa: E402,F401
import pgbed  # noqa: E402  (free_port, throwaway labels)
from ansible.module_utils.datasafe import container, continuous, runner, undo  # noqa: E402
from harness import run_module  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchbed  # noqa: E402

IMAGE = os.environ.get("DATASAFE_PGBACKREST_IMAGE", "datasafe/postgres:15-bookworm-pgbackrest")
SCALE = int(os.environ.get("DATASAFE_BENCH_SCALE", "100"))  # 100: about 1 GB, as bench/benchdb.sh
USER, DB, STANZA = "lms_user", "lms_slncity", "bench_undo"
TABLES = benchbed.TABLES
WRITE_BEFORE, WRITE_AFTER = 20, 20  # seconds of writes before and after the mistake
run = runner.run


def say(text):
    print("bench-undo: %s" % text, flush=True)


def q(name, sql, db=DB):
    return container.query(run, name, db, USER, sql)


def total(counts):
    return sum(counts.values())


def wait_archived(live):
    """Switch WAL and wait until that segment is in the repository."""
    wal = q(live, "SELECT pg_walfile_name(pg_switch_wal());")[0][0]
    while q(live, "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver;")[0][0] < wal:
        time.sleep(1)


def main():
    live = "datasafe-bench-undo-%d" % os.getpid()
    root = tempfile.mkdtemp(prefix="datasafe-bench-undo.", dir="/var/tmp")
    labels = pgbed.throwaway_labels()
    backups = os.path.join(root, "backups")
    try:
        port, repo, conf = benchbed.archiving_server(live, root, IMAGE, USER, DB, STANZA, labels, shm=True)
        os.makedirs(backups, mode=0o700)
        time.sleep(2)
        # the stanza first: until it exists every archive attempt fails and the WAL piles up
        continuous.pgbackrest(run, live, STANZA, ["stanza-create"], "stanza-create")
        say("loading the benchmark database (scale %d, as bench/benchdb.sh builds dsbench) into %s" % (SCALE, live))
        with open(os.path.join(REPO, "examples", "lms", "db", "init", "01-schema.sql"), encoding="utf-8") as handle:
            q(live, handle.read())
        undo.pipe(
            [sys.executable, os.path.join(REPO, "examples", "lms", "generate_data.py"), "--scale", str(SCALE)],
            container.psql_argv(live, DB, USER),
            "load the benchmark data",
        )
        q(live, "VACUUM ANALYZE;")
        wait_archived(live)  # the load's WAL, before the backup's own archive check (slow on a busy machine)
        continuous.pgbackrest(run, live, STANZA, ["backup", "--type=full", "--archive-timeout=900"], "backup")
        done = run_module("pg_backup", container=live, database=DB, user=USER, backup_dir=backups, tables=TABLES)
        if done["failed"]:
            raise SystemExit("bench-undo: the logical backup failed: %s" % done["msg"])
        say("archiving on, full pgBackRest backup and the logical backup %s taken" % os.path.basename(done["path"]))

        stop, written = threading.Event(), []

        def writer():
            n = 0
            while not stop.is_set():
                n += 1
                q(
                    live,
                    "WITH v AS (INSERT INTO visits (patient_id, registered_by, visit_code, visited_at, status) "
                    "VALUES (1, 1, 'bench-undo-%d', now(), 'registered') RETURNING id) "
                    "INSERT INTO test_results (visit_id, test_code, test_name, result_value) "
                    "SELECT id, 'HB', 'Haemoglobin', '13.5' FROM v;" % n,
                )
                written.append(n)
                time.sleep(0.1)

        thread = threading.Thread(target=writer, daemon=True)
        thread.start()
        time.sleep(WRITE_BEFORE)
        target = q(live, "SELECT clock_timestamp()::text;")[0][0]
        time.sleep(1.1)
        with open(os.path.join(REPO, "bench", "undo_mistake.sql"), encoding="utf-8") as handle:
            deleted = int(q(live, handle.read())[0][0])
        say("the mistake deleted %d test results; writes go on" % deleted)
        time.sleep(WRITE_AFTER)
        stop.set()
        thread.join(timeout=60)
        wait_archived(live)
        before_undo = container.count_rows(run, live, DB, USER, TABLES)
        say("writer committed %d visits with a result each; counts now %s" % (len(written), before_undo))

        # datasafe: review, verified backup, apply
        started = time.monotonic()
        p = dict(
            live_container=live, database=DB, user=USER, tables=TABLES, target_kind="time", target=target,
            mistake_xids=[], source="continuous", image=IMAGE, stanza=STANZA, repo_dir=repo, conf_dir=conf,
            pgdata="/var/lib/postgresql/data", backup_dir=backups, name="", port=0, labels=labels[1::2],
            keep_server=False, timeout=3600,
        )  # fmt: skip
        reviewed = undo.review(run, p)
        say("review %s: %s" % (reviewed["run"], "; ".join(reviewed["summary"])))
        pre = run_module(
            "pg_backup", container=live, database=DB, user=USER, backup_dir=backups, tables=TABLES, kind="pre-change"
        )
        if pre["failed"]:
            raise SystemExit("bench-undo: the backup before the apply failed: %s" % pre["msg"])
        applied = undo.apply(
            run,
            dict(p, review=reviewed["run"], confirm=DB, reason="bench", backup_max_age_minutes=60),
        )
        undo_seconds = time.monotonic() - started
        after = container.count_rows(run, live, DB, USER, TABLES)
        brought = sum(c["brought_back"] for c in applied["counts"].values())
        writer_rows = int(q(live, "SELECT count(*) FROM visits WHERE visit_code LIKE 'bench-undo-%';")[0][0])
        lost_undo = (deleted - brought) + (len(written) - writer_rows)
        say("datasafe: %d rows brought back in %.1f s (review, verified backup, apply)" % (brought, undo_seconds))

        # the protocol: restore the last backup into an empty database, count
        started = time.monotonic()
        q(live, "CREATE DATABASE lms_protocol;", db="postgres")
        with open(done["path"], "rb") as src:
            gunzip = subprocess.Popen(["gunzip", "-c"], stdin=src, stdout=subprocess.PIPE)
            psql = subprocess.run(
                container.psql_argv(live, "lms_protocol", USER), stdin=gunzip.stdout, capture_output=True
            )
            gunzip.stdout.close()
            gunzip.wait()
        if psql.returncode != 0 or gunzip.returncode != 0:
            raise SystemExit("bench-undo: the protocol's restore failed: %s" % psql.stderr.decode()[-500:])
        q(live, "SELECT count(*) FROM users;", db="lms_protocol")
        protocol_seconds = time.monotonic() - started
        restored = container.count_rows(run, live, "lms_protocol", USER, TABLES)
        lost_protocol = total(after) - total(restored)
        say("protocol: last backup restored in %.1f s; it lacks %d rows of the undone database" % (
            protocol_seconds, lost_protocol))  # fmt: skip
        say("datasafe %.1f s, protocol %.1f s" % (undo_seconds, protocol_seconds))
        print(
            "undo rows lost %d (protocol %d), time ratio %.2f"
            % (lost_undo, lost_protocol, undo_seconds / protocol_seconds)
        )
    finally:
        benchbed.remove_server(live)
        benchbed.remove_as_root(IMAGE, root, "repo")


if __name__ == "__main__":
    main()
