"""safe_sql and safe_command against a real throwaway database.

The whole corpus goes through the modules in check mode in-process (ansible-core's harness;
the module code, the guard and psql in the container run for real). Then one real
ansible-playbook run (start-up is the expensive part, so it is one playbook with loops): a
corpus batch in check mode (one entry per rule plus benign ones), every forbidden family for
real, allowed statements for real, break-glass. Afterwards the rows and the postgres_data
volume must be exactly as seeded.
"""

import datetime
import hashlib
import json
import os

import pytest
from guard_corpus import CMD_BENIGN, CMD_DESTRUCTIVE, SQL_BENIGN, SQL_DESTRUCTIVE
from harness import run_module, run_playbook

BATCH_BENIGN = 5  # benign entries of each corpus that also go through ansible-playbook


def one_per_rule(entries):
    seen, batch = set(), []
    for text, rule in entries:
        if rule not in seen:
            seen.add(rule)
            batch.append((text, rule))
    return batch


SQL_BATCH = one_per_rule(SQL_DESTRUCTIVE) + [(s, None) for s in SQL_BENIGN[:BATCH_BENIGN]]
CMD_BATCH = one_per_rule(CMD_DESTRUCTIVE) + [(c, None) for c in CMD_BENIGN[:BATCH_BENIGN]]
SEEDED = {"users": 10, "patients": 2000, "visits": 6000, "test_results": 18000, "invoices": 6000}


def manifest(backup_dir, name, age_minutes, verified=True):
    os.makedirs(backup_dir, exist_ok=True)
    content = b"-- a verified dump\n"
    with open(os.path.join(backup_dir, name), "wb") as handle:
        handle.write(content)
    end = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=age_minutes)
    with open(os.path.join(backup_dir, name + ".json"), "w", encoding="utf-8") as handle:
        json.dump(
            {  # complete, as pg_backup writes it (manifest.REQUIRED)
                "file": name,
                "path": os.path.join(backup_dir, name),
                "start": end.isoformat(),
                "format": "plain",
                "compression": "gzip",
                "database": "lms_slncity",
                "verified": verified,
                "end": end.isoformat(),
                "sha256": hashlib.sha256(content).hexdigest(),
                "size": len(content),
                "kind": "pre-change",
            },
            handle,
        )


def forbidden_sql():
    return [
        ("sql-truncate", "TRUNCATE patients CASCADE"),
        ("sql-drop-table", "DROP TABLE test_results"),
        ("sql-drop-database", "DROP DATABASE lms_slncity"),
        ("sql-drop-schema", "DROP SCHEMA public CASCADE"),
        ("sql-drop-column", "ALTER TABLE patients DROP COLUMN medical_notes"),
        ("sql-delete-without-where", "DELETE FROM invoices"),
        ("sql-update-without-where", "UPDATE patients SET full_name = 'x'"),
        ("sql-where-always-true", "DELETE FROM invoices WHERE 1=1"),
        ("sql-where-always-true", "WITH gone AS (DELETE FROM invoices WHERE true RETURNING id) SELECT 1"),
        ("sql-where-not-row-specific", "DELETE FROM invoices WHERE now() > '2000-01-01'"),
        ("sql-join-without-restriction", "DELETE FROM invoices i USING visits v WHERE i.visit_id = v.id"),
        ("sql-dynamic", "DO $$ BEGIN EXECUTE format('TRUNCATE %I', 'invoices'); END $$"),
        ("sql-truncate", "DO $$ BEGIN EXECUTE 'TRUNCATE invoices'; END $$"),
        ("sql-copy-program", "COPY invoices TO PROGRAM 'rm -rf /var/lib/postgresql/data'"),
        ("sql-unparseable", "DELETE invoices"),
        ("sql-truncate", 'SELECT 1; /* */ tRuNcAtE "visits" CASCADE; SELECT 2'),
    ]


def forbidden_commands(pg, scripts):
    c, vol = pg.container, pg.volume
    psql = "docker exec -i %s psql -U %s -d %s" % (c, pg.user, pg.db)
    return [
        ("cmd-docker-volume-rm", "docker volume rm -f %s" % vol),
        ("cmd-docker-volume-rm", "bash -c 'docker volume rm %s'" % vol),
        ("cmd-docker-volume-prune", "docker volume prune -f --filter label=datasafe-guard-test-never-set"),
        ("cmd-docker-rm-volumes", "docker rm -fv %s" % c),
        ("cmd-compose-down-volumes", "docker compose -p datasafe-guard-test-nonexistent down -v"),
        ("cmd-rm-volume-path", "sudo rm -rf /var/lib/docker/volumes/%s" % vol),
        ("cmd-rm-volume-path", "docker exec %s rm -rf /var/lib/postgresql/data" % c),
        ("sql-truncate", "%s -c 'TRUNCATE patients CASCADE'" % psql),
        ("sql-delete-without-where", "echo 'DELETE FROM invoices;' | %s" % psql),
        ("sql-where-always-true", "%s -Xc 'DELETE FROM invoices WHERE 1 = 1'" % psql),
        ("cmd-setup-script", "bash %s/setup-development.sh" % scripts),
        ("cmd-clean-seed", "%s < %s/clean-seed.sql" % (psql, scripts)),
        ("cmd-dropdb", "docker exec %s dropdb -U %s %s" % (c, pg.user, pg.db)),
    ]


@pytest.fixture(scope="module")
def played(throwaway_pg, tmp_path_factory):
    pg = throwaway_pg
    work = str(tmp_path_factory.mktemp("guard-play"))
    scripts = os.path.join(work, "server", "db")
    os.makedirs(scripts)
    wipe = "docker exec -i %s psql -U %s -d %s -c 'TRUNCATE patients, invoices CASCADE'\n" % (
        pg.container,
        pg.user,
        pg.db,
    )
    with open(os.path.join(scripts, "setup-development.sh"), "w", encoding="utf-8") as handle:
        handle.write("#!/bin/sh\n" + wipe)  # what the real script does: clear all data
    with open(os.path.join(scripts, "clean-seed.sql"), "w", encoding="utf-8") as handle:
        handle.write("TRUNCATE patients, invoices CASCADE;\n")
    fresh, stale = os.path.join(work, "backups-fresh"), os.path.join(work, "backups-stale")
    manifest(fresh, "lms_pre-change.sql.gz", age_minutes=2)
    manifest(stale, "lms_daily.sql.gz", age_minutes=60)
    db = {"container": pg.container, "database": pg.db, "user": pg.user}
    logs = {"change_log": os.path.join(work, "change-log.txt"), "change_log_json": os.path.join(work, "change.jsonl")}
    sql_family, cmd_family = forbidden_sql(), forbidden_commands(pg, scripts)

    def task(name, module, args, **extra):
        return dict({"name": name, module: args}, **extra)

    tolerant = {"failed_when": False}  # refusals are the expected outcome; the test asserts on each result
    tasks = [
        task(
            "corpus sql",
            "safe_sql",
            dict(db, sql="{{ item }}"),
            check_mode=True,
            loop="{{ corpus_sql }}",
            loop_control={"label": "{{ item[:60] }}"},
            **tolerant,
        ),
        task(
            "corpus cmd",
            "safe_command",
            {"cmd": "{{ item }}"},
            check_mode=True,
            loop="{{ corpus_cmd }}",
            loop_control={"label": "{{ item[:60] }}"},
            **tolerant,
        ),
        task("forbidden sql", "safe_sql", dict(db, sql="{{ item }}", **logs), loop="{{ forbidden_sql }}", **tolerant),
        task("forbidden cmd", "safe_command", dict(cmd="{{ item }}", **logs), loop="{{ forbidden_cmd }}", **tolerant),
        task(
            "forbidden stdin",
            "safe_command",
            {
                "argv": ["docker", "exec", "-i", pg.container, "psql", "-U", pg.user, "-d", pg.db],
                "stdin": "TRUNCATE patients CASCADE;",
            },
            **tolerant,
        ),
        task("allowed update", "safe_sql", dict(db, sql="UPDATE patients SET phone = '555-0199' WHERE id = 1")),
        task(
            "allowed update again",
            "safe_sql",
            dict(db, sql="UPDATE patients SET phone = '555-0199' WHERE id = 1 AND phone IS DISTINCT FROM '555-0199'"),
        ),
        task("allowed select", "safe_sql", dict(db, sql="SELECT count(*) AS n FROM visits; SHOW server_version")),
        task("check-mode delete", "safe_sql", dict(db, sql="DELETE FROM invoices WHERE id <= 10"), check_mode=True),
        task("check-mode vacuum", "safe_sql", dict(db, sql="VACUUM ANALYZE visits"), check_mode=True),
        task("real vacuum", "safe_sql", dict(db, sql="VACUUM ANALYZE visits")),
        task(
            "failing sql rolls back",
            "safe_sql",
            dict(db, sql="UPDATE patients SET phone = 'rolled-back' WHERE id = 2; SELECT 1/0"),
            **tolerant,
        ),
        task(
            "allowed command",
            "safe_command",
            {
                "argv": [
                    "docker",
                    "exec",
                    pg.container,
                    "psql",
                    "-U",
                    pg.user,
                    "-d",
                    pg.db,
                    "-tAc",
                    "SELECT count(*) FROM users",
                ]
            },
        ),
        task("check-mode command", "safe_command", {"cmd": "touch %s/should-not-exist" % work}, check_mode=True),
        task("scratch table", "safe_sql", dict(db, sql="CREATE TABLE scratch_bg (id int)")),
        task(
            "breakglass stale",
            "safe_sql",
            dict(
                db,
                sql="DROP TABLE scratch_bg",
                allow_destructive=True,
                reason="test: stale backup must refuse",
                backup_dir=stale,
                **logs,
            ),
            **tolerant,
        ),
        task(
            "breakglass fresh",
            "safe_sql",
            dict(
                db,
                sql="DROP TABLE scratch_bg",
                allow_destructive=True,
                reason="test: retire scratch table",
                backup_dir=fresh,
                **logs,
            ),
        ),
        task(
            "breakglass command fresh",
            "safe_command",
            dict(
                argv=["docker", "volume", "rm", "datasafe-guard-test-no-such-volume"],
                allow_destructive=True,
                reason="test: remove a volume that does not exist",
                backup_dir=fresh,
                **logs,
            ),
            **tolerant,
        ),
    ]
    plays = [
        {
            "name": "guards",
            "hosts": "localhost",
            "gather_facts": False,
            "vars": {
                "corpus_sql": [s for s, _ in SQL_BATCH],
                "corpus_cmd": [c for c, _ in CMD_BATCH],
                "forbidden_sql": [s for _, s in sql_family],
                "forbidden_cmd": [c for _, c in cmd_family],
            },
            "tasks": tasks,
        }
    ]
    volume_before = pg.volume_identity()
    results, proc = run_playbook(plays, work)
    return {
        "results": results,
        "proc": proc,
        "work": work,
        "logs": logs,
        "sql_family": sql_family,
        "cmd_family": cmd_family,
        "volume_before": volume_before,
        "pg": pg,
    }


def rules_of(result):
    return [f["rule"] for f in result.get("findings", [])]


def test_playbook_ran_every_task(played):
    assert played["proc"].returncode == 0, played["proc"].stdout[-3000:]


def sql_result_ok(item, rule):
    if rule is None:  # allowed, and ran (rolled back) without a psql error
        return not item["refused"] and item["findings"] == [] and "rc" not in item and item["failed"] is not True
    return item["refused"] and rule in rules_of(item) and not item["executed"]


def cmd_result_ok(item, rule):
    if rule is None:  # allowed; check mode reports what would run and runs nothing
        return not item["refused"] and item["changed"] and item["would_run"] and not item["executed"]
    return item["refused"] and rule in rules_of(item) and not item["executed"]


def test_whole_sql_corpus_through_the_module_in_check_mode(throwaway_pg):
    db = {"container": throwaway_pg.container, "database": throwaway_pg.db, "user": throwaway_pg.user}
    wrong = []
    for sql, rule in SQL_DESTRUCTIVE + [(s, None) for s in SQL_BENIGN]:
        item = run_module("safe_sql", dict(db, sql=sql), check_mode=True)
        if not sql_result_ok(item, rule):
            wrong.append((sql, rule, item.get("msg")))
    assert wrong == []
    assert throwaway_pg.counts() == SEEDED


def test_whole_command_corpus_through_the_module_in_check_mode():
    wrong = []
    for cmd, rule in CMD_DESTRUCTIVE + [(c, None) for c in CMD_BENIGN]:
        item = run_module("safe_command", {"cmd": cmd}, check_mode=True)
        if not cmd_result_ok(item, rule):
            wrong.append((cmd, rule, item.get("msg")))
    assert wrong == []


def test_corpus_batch_through_ansible_playbook_agrees(played):
    for task, batch, ok in (("corpus sql", SQL_BATCH, sql_result_ok), ("corpus cmd", CMD_BATCH, cmd_result_ok)):
        items = played["results"][task]["results"]
        assert len(items) == len(batch)
        wrong = [(text, rule, item.get("msg")) for item, (text, rule) in zip(items, batch) if not ok(item, rule)]
        assert wrong == [], task


def test_every_forbidden_family_is_refused_for_real(played):
    for task, family in (("forbidden sql", played["sql_family"]), ("forbidden cmd", played["cmd_family"])):
        items = played["results"][task]["results"]
        assert len(items) == len(family)
        for item, (rule, text) in zip(items, family):
            assert item["refused"] and not item["executed"] and rule in rules_of(item), (text, item.get("msg"))
            assert "refused by datasafe's guard" in item["msg"]


def test_sql_on_stdin_is_refused(played):
    item = played["results"]["forbidden stdin"]
    assert item["refused"] and not item["executed"] and rules_of(item) == ["sql-truncate"]


def test_rows_and_volume_survived(played):
    pg = played["pg"]
    assert pg.counts() == SEEDED
    assert pg.volume_identity() == played["volume_before"]
    assert (
        pg.psql(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'patients' "
            "AND column_name = 'medical_notes'"
        ).stdout.strip()
        == "1"
    )


def test_allowed_sql_really_runs_and_reports_rows(played):
    r = played["results"]
    assert r["allowed update"]["changed"] and r["allowed update"]["rows_affected"] == 1
    assert r["allowed update"]["transaction"] == "commit"
    assert not r["allowed update again"]["changed"] and r["allowed update again"]["rows_affected"] == 0
    select = r["allowed select"]
    assert not select["changed"] and select["statements"][0]["rows"] == [{"n": "6000"}]
    assert played["pg"].psql("SELECT phone FROM patients WHERE id = 1").stdout.strip() == "555-0199"


def test_check_mode_rolls_back(played):
    r = played["results"]
    delete = r["check-mode delete"]
    assert delete["changed"] and delete["rows_affected"] == 10 and delete["transaction"] == "rollback"
    vacuum = r["check-mode vacuum"]
    assert vacuum["changed"] and not vacuum["executed"]
    assert r["real vacuum"]["executed"] and r["real vacuum"]["transaction"] == "none"
    assert r["check-mode command"]["changed"] and not r["check-mode command"]["executed"]
    assert not os.path.exists(os.path.join(played["work"], "should-not-exist"))


def test_failing_sql_is_rolled_back_and_named(played):
    failing = played["results"]["failing sql rolls back"]
    assert "statement 2 of 2" in failing["msg"] and "division by zero" in failing["msg"]
    assert not failing["changed"]
    assert played["pg"].psql("SELECT count(*) FROM patients WHERE phone = 'rolled-back'").stdout.strip() == "0"


def test_allowed_command_runs(played):
    cmd = played["results"]["allowed command"]
    assert cmd["executed"] and cmd["rc"] == 0 and cmd["stdout"].strip() == "10"


def test_breakglass(played):
    r, logs = played["results"], played["logs"]
    stale = r["breakglass stale"]
    assert stale["refused"] and "verified backup younger than 15 min" in stale["msg"] and "too old" in stale["msg"]
    fresh = r["breakglass fresh"]
    assert fresh["changed"] and fresh["breakglass"]["backup"].endswith("lms_pre-change.sql.gz")
    assert played["pg"].psql("SELECT to_regclass('scratch_bg') IS NULL").stdout.strip() == "t"
    # the volume rm itself fails (no such volume): break-glass let it through, docker said no
    assert r["breakglass command fresh"]["executed"] and r["breakglass command fresh"]["rc"] != 0
    with open(logs["change_log_json"], encoding="utf-8") as handle:
        entries = [json.loads(line) for line in handle]
    outcomes = [(e["outcome"], e.get("reason")) for e in entries]
    assert ("refused", "test: stale backup must refuse") in outcomes
    assert ("accepted", "test: retire scratch table") in outcomes
    assert ("succeeded", None) in [(e["outcome"], None) for e in entries]
    assert ("accepted", "test: remove a volume that does not exist") in outcomes
    with open(logs["change_log"], encoding="utf-8") as handle:
        text = handle.read()
    assert "BREAK-GLASS safe_sql despite sql-drop-table: test: retire scratch table" in text
    # plain refusals (no break-glass) are not change-log events
    assert not any("DROP DATABASE" in (e.get("operation") or "") for e in entries)
