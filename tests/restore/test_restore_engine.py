"""Restore beside and swap by rename, against a real throwaway PostgreSQL and real ansible-playbook runs.

Every destructive path is run for real; every test asserts the live data is still there.
"""

import datetime
import gzip
import json
import os
import re
import subprocess
import threading
import time

import pytest
from ansible.module_utils.datasafe import background, container, manifest, restore
from harness import run_module_in_playbook as run_module
from pgbed import CRITICAL_TABLES, ThrowawayPostgres
from restore_helpers import databases, make_backup

SEEDED = {"users": 10, "patients": 2000, "visits": 6000, "test_results": 18000, "invoices": 6000}


# --- pure functions -----------------------------------------------------------------------------


def test_names_are_dated_and_validated():
    assert restore.restored_name("lms_slncity", "20261123_101500") == "lms_slncity_restore_20261123_101500"
    assert restore.before_name("lms_slncity", "20261123_101500") == "lms_slncity_before_restore_20261123_101500"
    with pytest.raises(ValueError, match="YYYYMMDD_HHMMSS"):
        restore.restored_name("lms_slncity", "yesterday")
    with pytest.raises(ValueError, match="63-byte"):
        restore.before_name("x" * 40, "20261123_101500")
    with pytest.raises(ValueError, match="plain identifier"):
        restore.qi('lms"; DROP DATABASE lms; --')


def test_a_swap_that_cannot_read_the_databases_renames_nothing():
    calls = []

    def unreachable(argv, data=None):
        calls.append(data)
        return 1, "", "Error response from daemon: No such container: dstest-gone"

    with pytest.raises(restore.RestoreError, match="cannot read the databases in dstest-gone .*nothing was renamed"):
        restore.swap(unreachable, "dstest-gone", "lms_user", "db", "db_restore_1", "db_before_restore_1")
    assert len(calls) == 1 and "RENAME" not in calls[0]  # only the read was tried


def test_swap_is_one_transaction_that_terminates_sessions_first_and_drops_nothing():
    sql = restore.swap_sql("db", "db_restore_1", "db_before_restore_1")
    lines = sql.strip().splitlines()
    assert lines[0] == "BEGIN;" and lines[-1] == "COMMIT;"
    assert "pg_terminate_backend(pid, 5000)" in lines[1] and "'db', 'db_restore_1'" in lines[1]
    assert lines[2:4] == [
        'ALTER DATABASE "db" RENAME TO "db_before_restore_1";',
        'ALTER DATABASE "db_restore_1" RENAME TO "db";',
    ]
    assert "DROP" not in sql.upper()


def test_engine_never_drops_or_truncates():
    source = open(restore.__file__).read().upper()
    assert not re.search(r"\bDROP\s+(DATABASE|TABLE|SCHEMA)|\bTRUNCATE\b|DOWN\s+-V|VOLUME\s+PRUNE", source)


def test_plain_restore_runs_under_pipefail_in_one_transaction_with_names_as_parameters():
    argv = restore.restore_argv("c", "lms_user", "db_restore_1", "plain", "gzip")
    script = argv[argv.index("-c") + 1]
    assert argv[:4] == ["docker", "exec", "-i", "c"] and "pipefail" in argv
    # BEGIN first; COMMIT is printed only after gzip read the whole stream and exited 0
    assert script.startswith("{ printf '%s' \"$3\" && gzip -dc && printf '%s' \"$4\"; } | psql")
    assert "ON_ERROR_STOP=1" in script and "--single-transaction" not in script
    assert "lms_user" not in script and argv[-4:-2] == ["lms_user", "db_restore_1"]
    prelude, epilogue = argv[-2:]
    assert prelude.startswith("BEGIN;\n") and "SET LOCAL maintenance_work_mem = '512MB';" in prelude
    assert epilogue == "ANALYZE;\nCOMMIT;\n"
    assert restore.restore_argv("c", "u", "d", "plain", "gzip", analyze=False)[-1] == "COMMIT;\n"


def test_restore_session_settings_are_validated_and_local():
    assert restore.session_prelude({}) == "BEGIN;\n"
    assert restore.session_prelude({"work_mem": "1GB"}) == "BEGIN;\nSET LOCAL work_mem = '1GB';\n"
    for bad in ({"work_mem; DROP": "1"}, {"work_mem": "1GB'; COMMIT; --"}, {"work_mem": ""}):
        with pytest.raises(ValueError, match="not a plain name and value"):
            restore.session_prelude(bad)


def test_created_database_copies_owner_encoding_and_locale():
    sql = restore.create_database_sql(
        "db_restore_1", "lms_user", {"encoding": "UTF8", "collate": "C.UTF-8", "ctype": "C.UTF-8"}
    )
    assert sql == (
        'CREATE DATABASE "db_restore_1" OWNER "lms_user" TEMPLATE template0 ENCODING \'UTF8\' '
        "LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8';\n"
    )


def test_choose_skips_newer_backups_that_fail_and_says_why():
    now = datetime.datetime(2026, 11, 23, 12, tzinfo=datetime.timezone.utc)

    def entry(name, hours, problem=None):
        return {
            "file": name,
            "path": "/b/" + name,
            "end": now - datetime.timedelta(hours=hours),
            "size": 10,
            "problem": problem,
            "manifest": {"database": "db", "kind": "scheduled", "counts": {"t": 1}, "verified": True, "size": 10},
        }

    entries = [entry("new", 1), entry("mid", 2, "no manifest"), entry("old", 30)]
    bad = {"new": ["sha256 differs"]}

    def verify(e):
        return ([e["problem"]] if e["problem"] else []) + bad.get(e["file"], [])

    chosen, rows, skipped = restore.choose_backup(entries, "db", "/b", None, now, verify)
    assert chosen["file"] == "old" and chosen["age_human"] == "1d 6h"
    assert skipped == ["new: sha256 differs", "mid: no manifest"]
    chosen, _, skipped = restore.choose_backup(entries, "other", "/b", None, now, verify)
    assert chosen is None and "not 'other'" in skipped[-1]
    with pytest.raises(restore.RestoreError, match="not in /b"):
        restore.choose_backup(entries, "db", "/b", "missing.sql.gz", now, verify)


# --- against a real database --------------------------------------------------------------------


@pytest.fixture
def pg():
    """A fresh seeded database per test: these tests rename and restore databases."""
    db = ThrowawayPostgres()
    try:
        db.start().seed(scale=1)
        yield db
    finally:
        db.remove()


def analyzed(pg, db):
    """The tables of ``db`` that an ANALYZE (not autovacuum) has analyzed."""
    rows = container.query(
        pg.run, pg.container, db, pg.user, "SELECT relname FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL;\n"
    )
    return sorted(r[0] for r in rows)


def beside_args(pg, backup, **extra):
    return dict(
        container=pg.container,
        user=pg.user,
        database=pg.db,
        backup=backup,
        tables=CRITICAL_TABLES,
        timestamp="20261123_101500",
        **extra,
    )


def swap_args(pg, restored, **extra):
    return dict(
        container=pg.container, user=pg.user, database=pg.db, restored=restored, timestamp="20261123_101500", **extra
    )


@pytest.mark.slow
def test_truncated_and_flipped_backups_are_refused_before_anything_is_created(pg, tmp_path):
    good = make_backup(pg, str(tmp_path))
    truncated = tmp_path / "lms_backup_20261123_030000.sql.gz"
    flipped = tmp_path / "lms_backup_20261123_040000.sql.gz"
    data = open(good["path"], "rb").read()
    truncated.write_bytes(data[: len(data) // 2])
    flipped.write_bytes(data[:100] + bytes([data[100] ^ 0xFF]) + data[101:])
    for path in (truncated, flipped):
        manifest.write(str(path) + ".json", dict(good, file=path.name, path=str(path)))

    for path, problem in ((truncated, "size"), (flipped, "sha256")):
        result = run_module("pg_restore_beside", beside_args(pg, str(path)))
        assert result.get("failed") and "refusing to restore" in result["msg"] and problem in result["msg"]
    assert databases(pg) == [pg.db]
    assert pg.counts() == SEEDED


@pytest.mark.slow
def test_a_stream_that_breaks_midway_commits_nothing(pg, tmp_path):
    good = make_backup(pg, str(tmp_path))
    cut = tmp_path / "cut.sql.gz"
    data = open(good["path"], "rb").read()
    cut.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(restore.RestoreError, match="failed"):
        restore.restore_beside(
            pg.run,
            pg.container,
            pg.user,
            pg.db,
            "lms_slncity_restore_20261123_101500",
            dict(good, path=str(cut)),
            CRITICAL_TABLES,
        )
    tables = container.query(
        pg.run,
        pg.container,
        "lms_slncity_restore_20261123_101500",
        pg.user,
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
    )
    assert tables == [["0"]]  # --single-transaction + pipefail: the partial load was rolled back
    assert pg.counts() == SEEDED


@pytest.mark.slow
def test_a_dump_cut_on_a_row_boundary_commits_nothing(pg, tmp_path):
    # A complete gzip stream of an incomplete dump: gzip succeeds, and psql would end the COPY at
    # end of input and (with --single-transaction) commit half a table. The explicit transaction
    # never sees its COMMIT: the epilogue lands inside the unfinished COPY and everything rolls back.
    good = make_backup(pg, str(tmp_path))
    text = gzip.decompress(open(good["path"], "rb").read()).decode()
    start = text.index("COPY public.test_results")
    cut_at = text.index("\n", start + len(text[start:]) // 2) + 1
    cut = tmp_path / "rowcut.sql.gz"
    cut.write_bytes(gzip.compress(text[:cut_at].encode()))
    with pytest.raises(restore.RestoreError, match="failed"):
        restore.restore_beside(
            pg.run,
            pg.container,
            pg.user,
            pg.db,
            "lms_slncity_restore_20261123_101500",
            dict(good, path=str(cut)),
            CRITICAL_TABLES,
        )
    tables = container.query(
        pg.run,
        pg.container,
        "lms_slncity_restore_20261123_101500",
        pg.user,
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
    )
    assert tables == [["0"]]
    assert pg.counts() == SEEDED


@pytest.mark.slow
def test_restore_beside_waits_for_a_server_that_is_not_up_yet(pg, tmp_path):
    # The role launches the restore beside before it makes sure PostgreSQL runs: a stopped server
    # is waited for with pg_isready (never a fixed sleep), then the restore goes on.
    good = make_backup(pg, str(tmp_path))
    subprocess.run(["docker", "stop", pg.container], check=True, capture_output=True)
    starter = threading.Timer(3, lambda: subprocess.run(["docker", "start", pg.container], capture_output=True))
    starter.start()
    probes = []

    def run(argv, data=None):
        probes.append("pg_isready" in argv)
        return pg.run(argv, data=data)

    try:
        result = restore.restore_beside(
            run,
            pg.container,
            pg.user,
            pg.db,
            "lms_slncity_restore_20261123_101500",
            good,
            CRITICAL_TABLES,
            ready_timeout=300,
        )
    finally:
        starter.join()
    assert result["problems"] == [] and result["counts"] == SEEDED
    assert any(probes) and pg.counts() == SEEDED
    # a server that answers at once is not probed at all
    probes.clear()
    restore.restore_beside(
        run,
        pg.container,
        pg.user,
        pg.db,
        "lms_slncity_restore_20261123_101600",
        good,
        CRITICAL_TABLES,
        ready_timeout=300,
    )
    assert probes and not any(probes)


def test_restore_waits_for_the_server_with_pg_isready_and_gives_up_in_time():
    answers, calls = iter([1, 1, 0]), []

    def run(argv, data=None):
        calls.append(argv)
        return next(answers), "", ""

    now = [0.0]
    restore.wait_server(run, "c", "u", 10, sleep=lambda s: now.__setitem__(0, now[0] + s), clock=lambda: now[0])
    assert len(calls) == 3 and all("pg_isready" in c for c in calls)
    with pytest.raises(restore.RestoreError, match="within 2s"):
        restore.wait_server(
            lambda argv, data=None: (2, "", ""),
            "c",
            "u",
            2,
            sleep=lambda s: now.__setitem__(0, now[0] + s),
            clock=lambda: now[0],
        )


def test_the_swap_waits_for_the_background_job_by_reading_its_result_file(tmp_path):
    path = str(tmp_path / "job")
    now, reads = [0.0], []

    def sleep(seconds):
        now[0] += seconds
        reads.append(now[0])
        if len(reads) == 2:  # half written: not yet a result
            (tmp_path / "job").write_text('{"started": 1, "fini')
        if len(reads) == 4:
            (tmp_path / "job").write_text('{"changed": true, "new_database": "db_restore_x", "counts": {"t": 1}}')

    # The starter writes "started" before it returns (pg_restore_beside's detach, Ansible's async).
    (tmp_path / "job").write_text('{"started": 1, "finished": 0}')
    result = restore.wait_job(path, 10, 0.1, clock=lambda: now[0], sleep=sleep)
    assert result["new_database"] == "db_restore_x" and len(reads) == 4  # started, started, partial, partial
    (tmp_path / "job").write_text('{"started": true, "finished": false}')
    with pytest.raises(restore.RestoreError, match="did not finish within 2s.*nothing was swapped"):
        restore.wait_job(path, 2, 0.5, clock=lambda: now[0], sleep=sleep)
    # No file: nothing runs that could write one, so no waiting.
    os.unlink(path)
    reads.clear()
    with pytest.raises(restore.RestoreError, match="has no result file .*nothing was swapped"):
        restore.wait_job(path, 3600, 0.1, clock=lambda: now[0], sleep=sleep)
    assert reads == []


def test_a_background_job_runs_on_after_start_returns_and_reports_its_outcome(tmp_path):
    release = tmp_path / "release"
    path = background.start(["sh", "-c", 'while [ ! -e "$0" ]; do sleep 0.05; done; echo done', str(release)])
    try:
        assert background.state(path) is None  # started, still running: start() did not wait for it
        release.touch()
        result = background.wait(path, 30, 0.05, what="the test job")
        assert result["rc"] == 0 and not result["failed"] and result["stdout"] == "done\n"
    finally:
        release.touch()
        os.unlink(path)
    failing = background.start(["sh", "-c", "echo boom >&2; exit 3"])
    result = background.wait(failing, 30, 0.05)
    assert result["rc"] == 3 and result["failed"] and "boom" in result["msg"]
    os.unlink(failing)
    missing = background.start(["/nonexistent/analyze"])
    result = background.wait(missing, 30, 0.05)
    assert result["rc"] == 127 and "cannot run /nonexistent/analyze" in result["msg"]
    os.unlink(missing)


def test_a_detached_function_runs_on_after_the_call_returns_and_reports_its_outcome(tmp_path):
    release = tmp_path / "release"

    def work():
        while not release.exists():
            time.sleep(0.05)
        return {"changed": True, "new_database": "db_restore_x", "counts": {"t": 1}}

    path = background.run_detached(work, directory=str(tmp_path))
    try:
        assert background.state(path) is None  # the call returned; the work still runs
        release.touch()
        result = background.wait(path, 30, 0.05, what="the test job")
        assert result["counts"] == {"t": 1} and not result["failed"] and result["rc"] == 0
    finally:
        release.touch()

    def broken():
        raise RuntimeError("no such table")

    result = background.wait(background.run_detached(broken, directory=str(tmp_path)), 30, 0.05)
    assert result["failed"] and result["rc"] == 1
    assert result["msg"] == "the background job raised RuntimeError: no such table"


@pytest.mark.slow
def test_job_result_returns_a_jobs_outcome_and_refuses_what_is_not_one(tmp_path):
    done = run_module("job_result", dict(path=background.start(["sh", "-c", "echo fine"]), what="the test job"))
    assert not done.get("failed") and done["rc"] == 0 and not done["changed"], done
    path = background.start(["sh", "-c", "echo no statistics >&2; exit 2"])
    failed = run_module("job_result", dict(path=path, what="ANALYZE of x"))
    assert failed["failed"] and failed["msg"].startswith("ANALYZE of x failed: sh exited 2: no statistics")
    assert not os.path.exists(path)  # read, reported, removed
    gone = run_module("job_result", dict(path=path))
    assert gone["failed"] and "has no result file" in gone["msg"]
    other = tmp_path / "async.json"
    other.write_text('{"changed": true, "new_database": "x"}')  # an Ansible async result, not a job's
    refused = run_module("job_result", dict(path=str(other)))
    assert refused["failed"] and "is not the result file of a datasafe job" in refused["msg"] and other.exists()
    bad = run_module("job_result", dict(path=str(other), poll=0))
    assert bad["failed"] and "poll 0.05 to 10 s" in bad["msg"]


def test_the_swap_refuses_a_background_restore_that_is_not_verified():
    good = {"changed": True, "new_database": "db_restore_x", "counts": {"t": 1}, "problems": []}
    assert restore.verified_restore(good, "db_restore_x") is good
    refusals = [
        (dict(good, failed=True, msg="counts do not match"), "failed, nothing was swapped: counts do not match"),
        (dict(good, new_database="db_restore_y"), "restored 'db_restore_y', not 'db_restore_x'"),
        (dict(good, problems=[{"table": "t"}]), "no clean count comparison"),
        ({"changed": True, "new_database": "db_restore_x"}, "no counts"),
        ({"failed": 1, "msg": "Timeout exceeded"}, "Timeout exceeded"),  # async wrapper's own kill
    ]
    for result, message in refusals:
        with pytest.raises(restore.RestoreError, match=re.escape(message)):
            restore.verified_restore(result, "db_restore_x")


@pytest.mark.slow
def test_a_swap_given_the_result_of_a_failed_restore_renames_nothing(pg, tmp_path):
    good = make_backup(pg, str(tmp_path))
    lying = dict(good, counts=dict(good["counts"], test_results=good["counts"]["test_results"] + 1))
    manifest.write(good["path"] + ".json", lying)  # the file is intact; its manifest promises a row more
    failed = run_module("pg_restore_beside", beside_args(pg, good["path"]))
    assert failed.get("failed") and "do not match the manifest" in failed["msg"]
    job = tmp_path / "job"
    job.write_text(json.dumps(failed))  # what Ansible's async wrapper leaves for a failed job
    before = pg.psql("SELECT string_agg(datname || oid, ',' ORDER BY datname) FROM pg_database").stdout
    swap = dict(container=pg.container, user=pg.user, database=pg.db, timestamp="20261123_101500")
    result = run_module("pg_swap_database", dict(swap, restored=failed["new_database"], restore_job=str(job)))
    assert result.get("failed") and "the restore beside failed, nothing was swapped" in result["msg"]
    assert result["renames"] == [] and result["restore"]["problems"]
    assert pg.psql("SELECT string_agg(datname || oid, ',' ORDER BY datname) FROM pg_database").stdout == before
    assert pg.counts() == SEEDED

    # The same file named for another database is refused too; a verified result is swapped in.
    manifest.write(good["path"] + ".json", good)
    restored = run_module("pg_restore_beside", beside_args(pg, good["path"], new_database="lms_slncity_restore_ok"))
    job.write_text(json.dumps(restored))
    with_ok = pg.psql("SELECT string_agg(datname || oid, ',' ORDER BY datname) FROM pg_database").stdout
    other = run_module("pg_swap_database", dict(swap, restored=failed["new_database"], restore_job=str(job)))
    assert other.get("failed") and "did not verify" in other["msg"] and other["renames"] == []
    assert pg.psql("SELECT string_agg(datname || oid, ',' ORDER BY datname) FROM pg_database").stdout == with_ok
    assert not job.exists()  # read once: the result went on in the swap's own (failed) result
    job.write_text(json.dumps(restored))
    swapped = run_module("pg_swap_database", dict(swap, restored="lms_slncity_restore_ok", restore_job=str(job)))
    assert not swapped.get("failed"), swapped.get("msg")
    assert swapped["restore"]["counts"] == SEEDED and pg.counts() == SEEDED
    assert swapped["kept_as"] == "lms_slncity_before_restore_20261123_101500"
    # its file is gone too, so one result cannot be swapped in twice
    assert not job.exists()
    again = run_module("pg_swap_database", dict(swap, restored="lms_slncity_restore_ok", restore_job=str(job)))
    assert again.get("failed") and "has no result file" in again["msg"] and "nothing was swapped" in again["msg"]
    assert pg.counts() == SEEDED


@pytest.mark.slow
@pytest.mark.slow
def test_a_detached_restore_beside_returns_at_once_and_the_swap_takes_its_verified_result(pg, tmp_path):
    good = make_backup(pg, str(tmp_path))
    pg.psql("DELETE FROM test_results")  # the disaster, behind datasafe's back
    checked = run_module("pg_restore_beside", beside_args(pg, good["path"], detach=True), check=True)
    assert background.state(checked["job"])["counts"] == SEEDED and databases(pg) == [pg.db]  # a plan only
    # The rescue of a failed --check run reads that file with job_result, which removes it.
    read = run_module("job_result", dict(path=checked["job"], what="the planned restore"), check=True)
    assert not read.get("failed"), read.get("msg")
    assert read["rc"] == 0 and not os.path.exists(checked["job"])

    # The module returns after its checks: no counts yet, only the file the restore will write.
    started = run_module("pg_restore_beside", beside_args(pg, good["path"], analyze=False, detach=True))
    assert not started.get("failed"), started.get("msg")
    assert started["new_database"] == "lms_slncity_restore_20261123_101500" and "counts" not in started
    job = started["job"]
    swapped = run_module("pg_swap_database", swap_args(pg, started["new_database"], restore_job=job))
    assert not swapped.get("failed"), swapped.get("msg")
    assert swapped["restore"]["counts"] == SEEDED and swapped["restore"]["rc"] == 0
    assert pg.counts() == SEEDED and not os.path.exists(job)  # the result was read, then removed
    assert databases(pg) == [pg.db, "lms_slncity_before_restore_20261123_101500"]

    # A detached restore that fails is reported by its file; the swap then renames nothing.
    pg.psql("DELETE FROM test_results")
    failing = run_module(
        "pg_restore_beside",
        dict(beside_args(pg, good["path"], detach=True), new_database="lms_slncity_before_restore_20261123_101500"),
    )
    result = background.wait(failing["job"], 60, 0.05)
    assert result["failed"] and "already exists" in result["msg"] and result["rc"] == 1
    assert os.stat(failing["job"]).st_mode & 0o077 == 0  # the result file is the user's own
    os.unlink(failing["job"])
    assert pg.counts()["test_results"] == 0  # nothing was swapped or restored over the live database


def test_restore_beside_and_swap_bring_every_row_back_and_keep_the_damaged_database(pg, tmp_path):
    good = make_backup(pg, str(tmp_path))
    pg.psql("DELETE FROM test_results")  # the disaster, behind datasafe's back

    checked = run_module("pg_restore_beside", beside_args(pg, good["path"]), check=True)
    assert checked["changed"] and not checked.get("failed") and databases(pg) == [pg.db]

    restored = run_module("pg_restore_beside", beside_args(pg, good["path"], analyze=False))
    assert not restored.get("failed"), restored.get("msg")
    assert restored["counts"] == SEEDED and restored["problems"] == []
    assert restored["new_database"] == "lms_slncity_restore_20261123_101500"
    assert pg.counts()["test_results"] == 0  # the live database was not touched
    assert analyzed(pg, restored["new_database"]) == []  # the swap's ANALYZE, below, is the only one

    # a client still connected to the live database is ended by the swap, not waited for
    holder = subprocess.Popen(
        container.psql_argv(pg.container, pg.db, pg.user),
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    holder.stdin.write("SELECT 1;\n")
    holder.stdin.flush()
    try:
        swapped = run_module("pg_swap_database", swap_args(pg, restored["new_database"], analyze=True))
    finally:
        holder.stdin.close()
        holder.wait()
    assert not swapped.get("failed"), swapped.get("msg")
    assert swapped["kept_as"] == "lms_slncity_before_restore_20261123_101500"
    assert pg.counts() == SEEDED
    waited = run_module("job_result", dict(path=swapped["analyze_job"], what="ANALYZE of %s" % pg.db))
    assert not waited.get("failed") and waited["rc"] == 0, waited
    assert analyzed(pg, pg.db) == sorted(CRITICAL_TABLES) and not os.path.exists(swapped["analyze_job"])
    kept = container.count_rows(pg.run, pg.container, swapped["kept_as"], pg.user, CRITICAL_TABLES)
    assert kept == dict(SEEDED, test_results=0)
    assert databases(pg) == [pg.db, swapped["kept_as"]]
    owner = pg.psql("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '%s'" % pg.db).stdout.strip()
    assert owner == pg.user


@pytest.mark.slow
def test_a_swap_that_cannot_complete_renames_nothing(pg):
    pg.psql("SELECT 1")
    container.query(pg.run, pg.container, "postgres", pg.user, 'CREATE DATABASE "restored_x";\n')
    container.query(pg.run, pg.container, "postgres", pg.user, 'CREATE DATABASE "kept_x";\n')
    before = pg.psql("SELECT string_agg(datname || oid, ',' ORDER BY datname) FROM pg_database").stdout
    result = run_module(
        "pg_swap_database",
        dict(container=pg.container, user=pg.user, database=pg.db, restored="restored_x", keep_as="kept_x"),
    )
    assert result.get("failed") and "already exists" in result["msg"]
    assert pg.psql("SELECT string_agg(datname || oid, ',' ORDER BY datname) FROM pg_database").stdout == before
    assert pg.counts() == SEEDED


@pytest.mark.slow
def test_failed_rename_in_the_transaction_rolls_back_and_the_old_name_stays(pg):
    container.query(pg.run, pg.container, "postgres", pg.user, 'CREATE DATABASE "restored_y";\n')
    # The second rename fails (its target name is taken), after the first one succeeded inside
    # the transaction: the whole swap must roll back, leaving the live database under its name.
    sql = restore.swap_sql(pg.db, "restored_y", "kept_y").replace('RENAME TO "%s"' % pg.db, 'RENAME TO "template1"')
    with pytest.raises(container.ContainerError):
        container.query(pg.run, pg.container, "postgres", pg.user, sql)
    assert databases(pg) == [pg.db, "restored_y"]
    assert pg.counts() == SEEDED


def test_modules_document_themselves():
    for name in ("pg_restore_beside", "pg_swap_database", "restore_plan", "restore_drill"):
        out = subprocess.run(
            [
                os.path.join(
                    os.path.dirname(os.path.dirname(os.path.dirname(__file__))), ".venv", "bin", "ansible-doc"
                ),
                "-M",
                "library",
                name,
            ],
            capture_output=True,
            text=True,
            cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
            check=False,
        )
        assert out.returncode == 0 and "check_mode" in out.stdout, out.stderr


def test_a_restores_own_safety_backup_is_never_chosen_as_the_newest_good_backup():
    now = datetime.datetime(2026, 11, 23, 12, tzinfo=datetime.timezone.utc)

    def entry(name, hours, label):
        return {
            "file": name,
            "path": "/b/" + name,
            "end": now - datetime.timedelta(hours=hours),
            "size": 10,
            "problem": None,
            "manifest": {
                "database": "db",
                "kind": "pre-change",
                "counts": {"t": 1},
                "verified": True,
                "size": 10,
                "label": label,
            },
        }

    entries = [entry("safety", 1, "before restore from good"), entry("good", 5, "nightly")]
    chosen, _, skipped = restore.choose_backup(entries, "db", "/b", None, now, lambda e: [], skip_safety=True)
    assert chosen["file"] == "good" and "safety backup taken by a restore" in skipped[0]
    chosen, _, _ = restore.choose_backup(entries, "db", "/b", "safety", now, lambda e: [], skip_safety=True)
    assert chosen["file"] == "safety"
