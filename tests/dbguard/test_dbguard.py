"""The guard inside PostgreSQL, against one real throwaway server for the whole module.

Every destructive statement lives in a file under tests/dbguard/sql/ and is run for real with
``psql -f`` inside the container (the migration style), or over TCP by the demo backend's own
driver; after each refusal every table of the schema must hold exactly the rows and columns it
held before. The db_guard module runs in-process (ansible-core's harness), talking to the same
server with psql in the container.
"""

import glob
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import pytest
from ansible.module_utils.datasafe import container, dbguard, restore
from harness import run_module
from pgbed import LMS, PG_IMAGE, ThrowawayPostgres, docker

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SQL = os.path.join(HERE, "sql")
pytestmark = pytest.mark.slow

# Every table, materialized view and column of the public schema, with exact row counts.
SNAPSHOT_SQL = """
SELECT json_object_agg(c.relname, json_build_object(
  'rows', (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM %I.%I', n.nspname, c.relname),
                                              false, true, '')))[1]::text::bigint,
  'columns', (SELECT string_agg(a.attname, ',' ORDER BY a.attnum) FROM pg_attribute a
               WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped)))
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'm');
"""


def expected_rules(path):
    with open(path, encoding="utf-8") as handle:
        first = handle.readline()
    match = re.match(r"-- expect: (\S+)", first)
    assert match, "%s must start with '-- expect: <rule>'" % path
    return match.group(1).split("|")


def ids(paths):
    return [os.path.basename(p)[:-4] for p in paths]


FORBIDDEN = sorted(glob.glob(os.path.join(SQL, "forbidden", "*.sql")))
TAMPER = sorted(glob.glob(os.path.join(SQL, "tamper", "*.sql")))
ALLOWED = sorted(glob.glob(os.path.join(SQL, "allowed", "*.sql")))


class Guarded:
    def __init__(self, pg):
        self.pg = pg
        self.run = container.subprocess_runner

    def psql_file(self, path, database=None, user=None):
        """``psql -f`` of a file copied into the container, stopping at the first error."""
        inside = "/tmp/dbguard-%s" % os.path.basename(path)
        docker("cp", path, "%s:%s" % (self.pg.container, inside))
        return subprocess.run(
            container.docker_exec(
                self.pg.container,
                ["psql", "-X", "-v", "ON_ERROR_STOP=1", "-U", user or self.pg.user, "-d", database or self.pg.db]
                + ["-f", inside],
            ),
            capture_output=True,
            text=True,
            check=False,
        )

    def query(self, sql, database=None):
        return container.query(self.run, self.pg.container, database or self.pg.db, self.pg.user, sql)

    def snapshot(self, database=None):
        return json.loads(self.query(SNAPSHOT_SQL, database)[0][0])

    def check(self, database=None):
        return dbguard.check(self.run, self.pg.container, database or self.pg.db, self.pg.user)

    def module(self, check_mode=False, **args):
        base = dict(container=self.pg.container, database=self.pg.db, user=self.pg.user)
        return run_module("db_guard", dict(base, **args), check_mode=check_mode)

    def repair(self):
        result = self.module()
        assert not result["failed"], result["msg"]
        assert result["guard"]["enabled"], result["guard"]["problems"]


def start_patiently(pg, timeout=300):
    """pgbed waits 60 s for a new server; on this shared two-core VM under a full test load the
    entrypoint's initdb can take longer, so keep waiting for the same container."""
    try:
        return pg.start()
    except RuntimeError:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready = docker(
                "exec", pg.container, "pg_isready", "-q", "-h", "127.0.0.1", "-U", pg.user, "-d", pg.db, check=False
            )
            if ready.returncode == 0:
                return pg
            time.sleep(1)
        raise


@pytest.fixture(scope="module")
def guarded():
    pg = ThrowawayPostgres()
    try:
        start_patiently(pg).seed()
        g = Guarded(pg)
        g.started = time.time()
        proc = g.psql_file(os.path.join(SQL, "setup.sql"))
        assert proc.returncode == 0, proc.stderr
        g.repair()  # every test starts from a guarded database; the first removes it to install afresh
        yield g
    finally:
        pg.remove()


# --- install: check mode, real run, idempotent -------------------------------------------------


def test_install_check_mode_real_run_then_nothing_to_do(guarded):
    assert guarded.module(state="absent")["changed"]
    planned = guarded.module(check_mode=True)
    assert planned["changed"] and not planned["failed"]
    assert planned["actions"] == ["install the guard (version %s)" % dbguard.INSTALLED_VERSION]
    assert not guarded.check()["installed"], "check mode installed something"

    done = guarded.module()
    assert done["changed"] and done["guard"]["enabled"] and not done["guard"]["tampered"]
    assert {"public.users", "public.visits", "public.ward_beds"} <= set(done["guard"]["tables"])

    for check_mode in (True, False):
        again = guarded.module(check_mode=check_mode)
        assert not again["changed"] and again["actions"] == [], again["actions"]
    checked = guarded.module(state="checked", required=True)
    assert not checked["failed"] and checked["guard"]["enabled"]


# --- forbidden: refused, nothing lost ----------------------------------------------------------


@pytest.mark.parametrize("path", FORBIDDEN + TAMPER, ids=ids(FORBIDDEN + TAMPER))
def test_forbidden_statement_is_refused_and_nothing_is_lost(guarded, path):
    before = guarded.snapshot()
    proc = guarded.psql_file(path)
    assert proc.returncode != 0, "%s was not refused:\n%s" % (os.path.basename(path), proc.stdout)
    assert "datasafe guard refused" in proc.stderr, proc.stderr
    assert any("(rule %s" % rule in proc.stderr for rule in expected_rules(path)), proc.stderr
    # The message names the rule, the row count, the limit and how to break glass.
    assert re.search(r"rows [0-9-]+, limit ", proc.stderr) and "SET LOCAL datasafe.break_glass" in proc.stderr
    assert guarded.snapshot() == before
    assert guarded.check()["enabled"], guarded.check()["problems"]


def test_refusals_are_logged_with_transaction_id(guarded):
    logs = docker("logs", guarded.pg.container)
    refused = [line for line in (logs.stdout + logs.stderr).splitlines() if "datasafe guard: refused" in line]
    assert len(refused) >= len(FORBIDDEN)
    assert all(re.search(r"txid \d+, at \d{4}-", line) for line in refused), refused[:3]
    # What the safe update's rollback reads to name a refused migration.
    found = guarded.module(state="refusals", log_since=str(guarded.started))
    assert not found["failed"] and not found["changed"] and len(found["refusals"]) == 10
    assert all(line.startswith("datasafe guard: refused ") for line in found["refusals"])
    assert guarded.module(state="refusals", log_since=str(time.time() + 3600))["refusals"] == []


def test_the_demo_backends_own_connection_is_refused(guarded):
    """pg8000 over TCP, the way lms_backend connects, from the backend's own wheels."""
    wheels = glob.glob(os.path.join(LMS, "backend", "wheelhouse", "*.whl"))
    pure = [w for w in wheels if w.endswith("-none-any.whl")]
    if not any(os.path.basename(w).startswith("pg8000") for w in pure):
        pytest.fail("the backend wheelhouse has no pg8000: run `bash testbed/setup.sh` first")
    before = guarded.snapshot()
    proc = subprocess.run(
        [
            sys.executable,
            os.path.join(HERE, "app_connection.py"),
            "127.0.0.1",
            str(guarded.pg.port),
            guarded.pg.db,
            guarded.pg.user,
            os.path.join(SQL, "app_delete_all_results.sql"),
        ],
        input=guarded.pg.password,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(pure)),
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "datasafe guard refused DELETE on public.test_results" in proc.stdout
    assert "mass-delete-over-limit" in proc.stdout
    assert guarded.snapshot() == before


def test_an_application_role_without_privileges_on_the_guard_is_refused_and_can_break_glass(guarded):
    """lab_app is no superuser and owns nothing: the triggers run as it, the audit row is still written."""
    proc = guarded.psql_file(os.path.join(SQL, "app_role_break_glass.sql"), user="lab_app")
    assert proc.returncode == 0, proc.stderr
    assert "datasafe guard refused DELETE on public.app_scratch" in proc.stderr
    assert guarded.query("SELECT count(*) FROM app_scratch") == [["0"]]
    assert guarded.query(
        "SELECT session_user_name, rule, affected_rows FROM datasafe.audit WHERE reason = 'app role test'"
    ) == [["lab_app", "mass-delete-all-rows", "3"]]


# --- allowed ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ALLOWED, ids=ids(ALLOWED))
def test_allowed_family_runs(guarded, path):
    audit_before = guarded.check()["audit_rows"]
    proc = guarded.psql_file(path)
    assert proc.returncode == 0, proc.stderr
    verdict = guarded.check()
    assert verdict["enabled"], verdict["problems"]
    name = os.path.basename(path)
    if name == "break_glass.sql":
        assert verdict["audit_rows"] == audit_before + 1
        row = guarded.query(
            "SELECT session_user_name, application_name, rule, operation, object_name, affected_rows, reason, "
            "statement, txid > 0, at > now() - interval '1 hour' FROM datasafe.audit ORDER BY id DESC LIMIT 1"
        )[0]
        assert row[:7] == [
            guarded.pg.user,
            "dbguard-test",
            "mass-delete-all-rows",
            "DELETE",
            "public.ward_beds",
            "3",
            "retire the old ward list, ticket LAB-42",
        ]
        assert "DELETE FROM ward_beds" in row[7] and row[8:] == ["t", "t"]
        logs = docker("logs", guarded.pg.container)
        assert "datasafe guard: break-glass DELETE on public.ward_beds" in logs.stdout + logs.stderr
    else:
        assert verdict["audit_rows"] == audit_before, "%s wrote an audit row" % name
    if name == "partitions.sql":
        assert {"public.sample_log", "public.sample_log_2026"} <= set(verdict["tables"])


def test_an_application_workload_runs_normally(guarded):
    inside = "/tmp/dbguard-workload.sql"
    docker("cp", os.path.join(HERE, "workload.sql"), "%s:%s" % (guarded.pg.container, inside))
    proc = docker(
        "exec",
        guarded.pg.container,
        "/usr/lib/postgresql/15/bin/pgbench",
        "-n",
        "-U",
        guarded.pg.user,
        "-f",
        inside,
        "-c",
        "2",
        "-t",
        "100",
        guarded.pg.db,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "number of transactions actually processed: 200/200" in proc.stdout
    assert re.search(r"number of failed transactions: 0\b", proc.stdout), proc.stdout


# --- tampering the event triggers cannot refuse is detected ------------------------------------


@pytest.mark.parametrize(
    "name, expected",
    [
        (
            "disable_event_trigger_then_trigger",
            [
                "event trigger datasafe_guard_ddl is disabled",
                "trigger datasafe_guard_truncate on public.invoices is disabled",
            ],
        ),
        ("replace_function", ["function datasafe.guard_truncate was replaced"]),
        ("drop_event_trigger", ["event trigger datasafe_guard_drop is missing"]),
        ("redefine_trigger", ["trigger datasafe_guard_delete on public.invoices was redefined"]),
    ],
)
def test_tampering_is_detected_by_the_next_check_and_repaired(guarded, name, expected, tmp_path):
    proc = guarded.psql_file(os.path.join(SQL, "detected", name + ".sql"))
    assert proc.returncode == 0, proc.stderr
    metrics_file = str(tmp_path / "datasafe_dbguard.prom")
    checked = guarded.module(state="checked", metrics_file=metrics_file)
    assert checked["failed"] and checked["guard"]["tampered"]
    assert "THE GUARD INSIDE POSTGRESQL WAS CHANGED" in checked["msg"]
    for text in expected:
        assert text in checked["msg"], checked["msg"]
    with open(metrics_file, encoding="utf-8") as handle:
        assert 'datasafe_dbguard_ok{database="lms_slncity"} 0' in handle.read()
    planned = guarded.module(check_mode=True)
    assert planned["changed"] and any(a.startswith("repair: ") for a in planned["actions"])
    assert guarded.check()["tampered"], "check mode repaired something"
    guarded.repair()
    assert guarded.module(state="checked", metrics_file=metrics_file)["guard"]["enabled"]
    with open(metrics_file, encoding="utf-8") as handle:
        assert 'datasafe_dbguard_ok{database="lms_slncity"} 1' in handle.read()


def test_a_backup_checks_the_guard_beside_its_dump_and_never_fails_for_it(guarded, tmp_path):
    """pg_backup's guard_check (what playbooks/backup.yml uses instead of a db_guard run of its own):
    the backup is made and verified whatever the guard's state; guard_ok is true only for what
    db_guard's check passes, and a passing check writes the same metrics db_guard does."""
    pg = guarded.pg
    metrics_file = tmp_path / "datasafe_dbguard.prom"

    def backup(**extra):
        args = dict(
            container=pg.container,
            database=pg.db,
            user=pg.user,
            backup_dir=str(tmp_path / "backups"),
            tables=sorted(pg.counts()),
            guard_check=True,
            guard_metrics_file=str(metrics_file),
            archiving_probe=True,
        )
        taken = run_module("pg_backup", dict(args, **extra))
        assert not taken["failed"], taken["msg"]
        assert taken["manifest"]["verified"] and taken["counts"] == pg.counts()
        assert taken["archiving_enabled"] is False  # the throwaway server does not archive WAL
        return taken

    taken = backup()
    assert taken["guard_ok"] is True and "guard_problem" not in taken, taken.get("guard_problem")
    assert 'datasafe_dbguard_ok{database="lms_slncity"} 1' in metrics_file.read_text()
    metrics_file.unlink()
    proc = guarded.psql_file(os.path.join(SQL, "detected", "disable_event_trigger_then_trigger.sql"))
    assert proc.returncode == 0, proc.stderr
    try:
        taken = backup()
        assert taken["guard_ok"] is False
        assert "THE GUARD INSIDE POSTGRESQL WAS CHANGED" in taken["guard_problem"]
        assert "trigger datasafe_guard_truncate on public.invoices is disabled" in taken["guard_problem"]
        assert not metrics_file.exists()  # left to db_guard's own run, which reads again and fails
        assert guarded.module(state="absent")["changed"]
        taken = backup(guard_required=True)
        assert taken["guard_ok"] is False and "required" in taken["guard_problem"]
        assert backup()["guard_ok"] is True  # not installed and not required: db_guard passes too
        assert guarded.module(state="checked", required=True)["failed"]
    finally:
        guarded.repair()
    not_asked = run_module(
        "pg_backup",
        dict(container=pg.container, database=pg.db, user=pg.user, backup_dir=str(tmp_path / "backups")),
    )
    assert not not_asked["failed"] and "guard_ok" not in not_asked and "archiving_enabled" not in not_asked


# --- dumps of a guarded database restore, guard included ---------------------------------------


@pytest.mark.parametrize("fmt", ["plain", "custom"])
def test_a_dump_restores_into_a_new_database_with_the_guard_working(guarded, fmt):
    target = "dbguard_restored_%s" % fmt
    pg = guarded.pg
    guarded.query(restore.create_database_sql(target, pg.user))
    with tempfile.NamedTemporaryFile(suffix=".dump") as dump:
        argv = ["pg_dump", "-U", pg.user, "-d", pg.db] + (["-Z", "6"] if fmt == "plain" else ["-Fc"])
        subprocess.run(container.docker_exec(pg.container, argv), stdout=dump, check=True)
        dump.flush()
        restore.restore_file(guarded.run, pg.container, pg.user, target, dump.name, fmt, "gzip")
    assert guarded.snapshot(target) == guarded.snapshot()
    verdict = guarded.check(target)
    assert verdict["enabled"] and verdict["current"], verdict["problems"]
    assert verdict["audit_rows"] == guarded.check()["audit_rows"]
    proc = guarded.psql_file(os.path.join(SQL, "forbidden", "truncate.sql"), database=target)
    assert proc.returncode != 0 and "datasafe guard refused TRUNCATE" in proc.stderr


def test_a_restore_drill_of_a_guarded_database_passes(guarded, tmp_path):
    """The nightly drill restores a guarded database's backup (datasafe's own, roles file included)
    into a fresh server: the guard's objects load with it and every count matches its manifest."""
    pg = guarded.pg
    backup_dir = tmp_path / "backups"
    backup_dir.mkdir()
    taken = run_module(
        "pg_backup",
        dict(
            container=pg.container,
            database=pg.db,
            user=pg.user,
            backup_dir=str(backup_dir),
            tables=sorted(pg.counts()),
            kind="scheduled",
            change_log=str(tmp_path / "change-log.txt"),
            metrics_file=str(tmp_path / "backup.prom"),
        ),
    )
    assert not taken["failed"], taken["msg"]
    result = run_module(
        "restore_drill",
        dict(
            image=PG_IMAGE,
            backup_dir=str(backup_dir),
            database=pg.db,
            user=pg.user,
            tables=sorted(taken["counts"]),
            ready_timeout=300,
            change_log=str(tmp_path / "change-log.txt"),
            metrics_file=str(tmp_path / "drill.prom"),
        ),
    )
    assert not result["failed"], result["msg"]
    assert result["ok"] and result["counts"] == taken["counts"], result
    assert result["backup"]["path"] == taken["path"] and len(result["removed"]) == 2
    assert {"lab_import", "lab_app"} <= set(result["roles"]["created"]), result["roles"]
    assert guarded.check()["enabled"]  # the production side was only read


# --- absent, and settings ------------------------------------------------------------------------


def test_table_limits_and_schemas_are_validated_before_anything_changes(guarded):
    for bad in (dict(table_limits={"visits": 0}), dict(table_limits={"visits;drop": 5}), dict(schemas=["datasafe"])):
        result = guarded.module(**bad)
        assert result["failed"] and "nothing was changed" in result["msg"], result
    assert guarded.check()["settings"]["table_limits"] == {}


def test_per_table_limit_from_the_inventory(guarded):
    result = guarded.module(table_limits={"test_results": 20000})
    assert result["changed"] and result["guard"]["settings"]["table_limits"] == {"public.test_results": 20000}
    proc = guarded.psql_file(os.path.join(SQL, "forbidden", "update_over_limit.sql"))
    assert proc.returncode == 0, proc.stderr  # 5000 rows: under this table's own limit
    result = guarded.module()
    assert result["changed"] and result["guard"]["settings"]["table_limits"] == {}


def test_absent_removes_the_guard_and_keeps_the_audit(guarded):
    audit = guarded.check()["audit_rows"]
    assert audit >= 1
    planned = guarded.module(state="absent", check_mode=True)
    assert planned["changed"] and guarded.check()["enabled"], "check mode removed something"
    removed = guarded.module(state="absent")
    assert removed["changed"] and not removed["guard"]["installed"]
    assert removed["guard"]["audit_rows"] == audit
    assert not guarded.module(state="absent")["changed"]
    assert not guarded.module(state="checked")["failed"]
    required = guarded.module(state="checked", required=True)
    assert required["failed"] and "required" in required["msg"]
    guarded.repair()


# --- pure logic ---------------------------------------------------------------------------------


def test_normalize_settings():
    assert dbguard.normalize_settings(500, {"visits": 5000, "x.y": "off"}, ["public"]) == {
        "default_max_rows": "500",
        "schemas": "public",
        "table_limits": {"public.visits": 5000, "x.y": None},
    }
    assert dbguard.normalize_settings()["schemas"] == "*"
    for bad in (dict(default_max_rows=0), dict(table_limits={"v": True}), dict(table_limits={"v": "1.5"})):
        with pytest.raises(ValueError):
            dbguard.normalize_settings(**bad)


def test_every_function_body_is_hashed_and_versioned():
    assert set(dbguard.EXPECTED_MD5) == set(dbguard.FUNCTION_NAMES)
    assert dbguard.INSTALLED_VERSION.startswith(dbguard.VERSION + "+")
    assert dbguard.judge({"settings": {}, "functions": {}, "event_triggers": {}, "tables": []})["installed"] is False


# --- the role and playbook, with real ansible-playbook -------------------------------------------


def playbook(guarded, path, *args):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_FORCE_COLOR="0")
    return subprocess.run(
        [
            os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
            path,
            "-e",
            "datasafe_db_container=%s" % guarded.pg.container,
            "-e",
            "datasafe_db_name=%s" % guarded.pg.db,
            "-e",
            "datasafe_db_user=%s" % guarded.pg.user,
            *args,
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def recap(proc):
    match = re.search(r"localhost\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=\d+\s+failed=(\d+)", proc.stdout)
    assert match, proc.stdout[-3000:] + proc.stderr[-2000:]
    if int(match.group(3)):
        print(proc.stdout[-4000:])  # pytest shows it with the failing assertion
    return {"changed": int(match.group(2)), "failed": int(match.group(3))}


def test_playbook_installs_in_check_mode_honestly_and_is_idempotent(guarded, tmp_path):
    assert guarded.module(state="absent")["changed"]
    dbguard_yml = os.path.join(REPO, "playbooks", "dbguard.yml")
    planned = playbook(guarded, dbguard_yml, "--check")
    assert recap(planned) == {"changed": 1, "failed": 0} and "install the guard" in planned.stdout
    assert not guarded.check()["installed"]
    assert recap(playbook(guarded, dbguard_yml)) == {"changed": 1, "failed": 0}
    assert guarded.check()["enabled"]
    assert recap(playbook(guarded, dbguard_yml)) == {"changed": 0, "failed": 0}

    # What verify, backup and the update's preflight include: passes now, fails loudly once changed.
    check_play = tmp_path / "check.yml"
    check_play.write_text(
        "- hosts: production\n  gather_facts: false\n  tasks:\n"
        "    - ansible.builtin.include_role: {name: datasafe_dbguard, tasks_from: check}\n"
    )
    assert recap(playbook(guarded, str(check_play))) == {"changed": 0, "failed": 0}
    proc = guarded.psql_file(os.path.join(SQL, "detected", "disable_event_trigger_then_trigger.sql"))
    assert proc.returncode == 0, proc.stderr
    failed = playbook(guarded, str(check_play))
    assert recap(failed)["failed"] == 1
    assert "THE GUARD INSIDE POSTGRESQL WAS CHANGED" in failed.stdout
    assert "trigger datasafe_guard_truncate on public.invoices is disabled" in failed.stdout
    assert recap(playbook(guarded, dbguard_yml)) == {"changed": 1, "failed": 0}
    assert guarded.check()["enabled"]


def test_the_backup_playbook_checks_the_guard_beside_its_dump_and_fails_loudly_once_changed(guarded, tmp_path):
    """playbooks/backup.yml: an intact guard is checked inside the backup's module run (no db_guard
    run of its own, no archiving probe of its own on a server that does not archive); a changed one
    still fails the play naming what was changed, after a backup that is made and verified."""
    backups = tmp_path / "backups"
    settings = {
        "datasafe_backup_dir": str(backups),
        "datasafe_change_log": str(tmp_path / "change-log.txt"),
        "datasafe_critical_tables": sorted(guarded.pg.counts()),
        "datasafe_compose_project": "dbguard-backup",
    }
    backup_yml = os.path.join(REPO, "playbooks", "backup.yml")
    db_guard_task = "datasafe_dbguard : The guard inside PostgreSQL is intact"
    probe_task = "datasafe_continuous : Find out whether the database archives WAL"
    passed = playbook(guarded, backup_yml, "-e", json.dumps(settings))
    assert recap(passed)["failed"] == 0
    assert db_guard_task not in passed.stdout and probe_task not in passed.stdout
    proc = guarded.psql_file(os.path.join(SQL, "detected", "disable_event_trigger_then_trigger.sql"))
    assert proc.returncode == 0, proc.stderr
    try:
        failed = playbook(guarded, backup_yml, "-e", json.dumps(settings))
        assert recap(failed)["failed"] == 1
        assert db_guard_task in failed.stdout
        assert "THE GUARD INSIDE POSTGRESQL WAS CHANGED" in failed.stdout
        assert "trigger datasafe_guard_truncate on public.invoices is disabled" in failed.stdout
    finally:
        guarded.repair()
    made = [json.loads(path.read_text()) for path in sorted(backups.glob("*.json"))]
    assert len(made) == 2 and all(m["verified"] for m in made)  # the guard never costs a backup


def test_an_older_guard_is_reported_outdated_not_tampered():
    state = {
        "settings": {"version": "0+0123456789ab"},
        # older bodies, and one function this version added is not there yet
        "functions": {name: "0" * 32 for name in dbguard.EXPECTED_MD5 if name != "guard_mass_change_start"},
        "event_triggers": {
            name: {"enabled": "A", "function": "datasafe." + function}
            for name, (_event, function, _when) in dbguard.EVENT_TRIGGERS.items()
        },
        "tables": [],
    }
    verdict = dbguard.judge(state)
    assert verdict["installed"] and not verdict["current"] and len(verdict["problems"]) == 1
    assert "upgrade it with playbooks/dbguard.yml" in verdict["problems"][0]
    assert dbguard.checked_failure(verdict).startswith("the guard inside PostgreSQL is outdated")
    assert dbguard.plan_install(verdict, dbguard.normalize_settings())[0].startswith("upgrade the guard from 0+")


def _state_with_table(tree, functions):
    """A current guard's catalog state with one table whose mass-change triggers call ``functions``."""
    table = "public.lab_remarks"
    triggers = {}
    for name in dbguard.TRIGGERS:
        wanted = functions if name in dbguard.COUNTED_THROUGH_TREE else dbguard.TRIGGERS[name][0]
        definitions = dbguard.trigger_definitions(name, table, False)
        triggers[name] = {
            "enabled": "A",
            "function": "datasafe." + wanted,
            "definition": definitions["datasafe." + wanted],
        }
    return {
        "settings": {"version": dbguard.INSTALLED_VERSION},
        "functions": dict(dbguard.EXPECTED_MD5),
        "event_triggers": {
            name: {"enabled": "A", "function": "datasafe." + function}
            for name, (_event, function, _when) in dbguard.EVENT_TRIGGERS.items()
        },
        "track_counts": "on",
        "tables": [{"table": table, "schema": "public", "tree": tree, "triggers": triggers}],
    }


def test_a_table_with_children_must_count_through_them():
    # counters on a table with children would miss its children's rows: reported, and named why
    verdict = dbguard.judge(_state_with_table(True, "guard_mass_change"))
    assert verdict["tampered"] and len(verdict["problems"]) == 2, verdict["problems"]
    assert "which does not count the rows of its child tables" in verdict["problems"][0]
    assert dbguard.judge(_state_with_table(True, "guard_mass_change_tree"))["enabled"]
    # a plain table may count either way (one that lost its children keeps the transition table)
    assert dbguard.judge(_state_with_table(False, "guard_mass_change"))["enabled"]
    assert dbguard.judge(_state_with_table(False, "guard_mass_change_tree"))["enabled"]


def test_track_counts_off_is_a_problem_named_with_its_fix():
    state = dict(_state_with_table(False, "guard_mass_change"), track_counts="off")
    verdict = dbguard.judge(state)
    assert verdict["tampered"] and verdict["problems"] == [
        "track_counts is off: the guard cannot count the rows a statement changes and refuses every "
        "DELETE and UPDATE; set track_counts = on (postgresql.conf or ALTER SYSTEM)"
    ]
