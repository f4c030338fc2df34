"""Unit tests of the guard engine beyond the corpus: folding, statement details, deny rules, break-glass."""

import datetime
import hashlib
import json
import os

import pytest
from ansible.module_utils.datasafe import breakglass, guard, guard_cmd, guard_sql
from ansible.module_utils.datasafe.guard_sql import UNKNOWN


def where(sql):
    return guard_sql.pglast.parse_sql("DELETE FROM t WHERE " + sql)[0].stmt.whereClause


@pytest.mark.parametrize(
    ("expr", "value"),
    [
        ("1=1", True),
        ("1=2", False),
        ("NULL = 1", None),
        ("'a' < 'b'", True),
        ("x = 1", UNKNOWN),
        ("true AND x = 1", UNKNOWN),
        ("false AND x = 1", False),
        ("x = 1 OR true", True),
        ("NOT (NULL IS NULL)", False),
        ("coalesce(NULL, NULL, 2) = 2", True),
        ("'on'::boolean", True),
        ("'abc' LIKE 'a%'", True),
        ("'abc' NOT LIKE '%'", False),
        ("3 BETWEEN SYMMETRIC 5 AND 1", True),
        ("NULL IS DISTINCT FROM NULL", False),
        ("CASE 1 WHEN 2 THEN false ELSE true END", True),
        ("least(3, 1) = 1", True),
        ("-1 < 0", True),
        ("2 * 3 = 6", True),
        ("EXISTS (SELECT 1 WHERE false)", False),
    ],
)
def test_constant_folding(expr, value):
    assert guard_sql.fold(where(expr)) is value or guard_sql.fold(where(expr)) == value


def test_finding_carries_statement_reason_and_advice():
    (finding,) = guard_sql.judge("SELECT 1; /* c */ DELETE FROM patients; SELECT 2")
    assert finding.rule == "sql-delete-without-where"
    assert finding.statement == "DELETE FROM patients"
    assert "every row" in finding.reason and "WHERE" in finding.instead
    assert set(finding.to_dict()) == {"rule", "statement", "reason", "instead"}


def test_every_builtin_rule_explains_itself():
    for rule, (reason, instead) in guard.RULES.items():
        assert reason and instead, rule


def test_statement_kinds_for_check_mode():
    kinds = guard_sql.statement_kinds(
        "SELECT 1; VACUUM; UPDATE t SET a = 1 WHERE id = 1; BEGIN; "
        "CREATE INDEX CONCURRENTLY i ON t (a); EXPLAIN ANALYZE SELECT 1"
    )
    assert [k["transactional"] for k in kinds] == [True, False, True, False, False, True]
    assert [k["read_only"] for k in kinds] == [True, False, False, False, False, True]
    assert kinds[3]["transaction_control"]


def test_read_files_judges_sql_files_given_to_psql(tmp_path):
    migration = tmp_path / "0007.sql"
    migration.write_text("TRUNCATE invoices;\n")
    line = "psql -d lms -f %s" % migration
    assert guard_cmd.judge(line=line) == []  # by default, only the file name is judged
    assert [f.rule for f in guard_cmd.judge(line=line, read_files=True)] == ["sql-truncate"]


def test_extra_protected_paths():
    mount = "/srv/docker-data/volumes/lms_postgres_data/_data"
    assert guard_cmd.judge(line="rm -rf %s/base" % mount) == []
    assert [f.rule for f in guard_cmd.judge(line="rm -rf %s/base" % mount, protected_paths=[mount])] == [
        "cmd-rm-volume-path"
    ]


def test_stdin_is_judged_for_what_reads_it():
    psql = ["docker", "exec", "-i", "lms-postgres", "psql", "-U", "lms_user", "-d", "lms_slncity"]
    assert [f.rule for f in guard_cmd.judge(argv=psql, stdin="TRUNCATE patients;")] == ["sql-truncate"]
    assert guard_cmd.judge(argv=psql, stdin="SELECT count(*) FROM users;") == []
    assert [f.rule for f in guard_cmd.judge(argv=["bash"], stdin="docker volume prune -f")] == [
        "cmd-docker-volume-prune"
    ]
    assert guard_cmd.judge(argv=["cat"], stdin="docker volume prune -f") == []


def test_argv_is_not_reparsed_by_a_shell():
    assert guard_cmd.judge(argv=["echo", "docker volume prune"]) == []
    assert [f.rule for f in guard_cmd.judge(argv=["bash", "-c", "docker volume prune"])] == ["cmd-docker-volume-prune"]


@pytest.mark.parametrize(
    "spec",
    [
        {"id": "sql-truncate", "regex": "x"},  # built-in ids cannot be redefined
        {"id": "Bad Id", "regex": "x"},
        {"id": "custom-a"},
        {"id": "custom-a", "regex": "x", "argv_prefix": ["y"]},
        {"id": "custom-a", "regex": "("},
        {"id": "custom-a", "applies_to": "sql", "argv_prefix": ["y"]},
        {"id": "custom-a", "regex": "x", "allow": True},
    ],
)
def test_bad_deny_rules_are_rejected(spec):
    with pytest.raises(guard.DenyRuleError):
        guard.compile_deny_rules([spec])


def test_deny_rules_add_to_builtin_rules():
    rules = guard.compile_deny_rules([{"id": "custom-no-restart", "argv_prefix": ["docker", "restart"]}])
    assert [f.rule for f in guard_cmd.judge(line="sudo docker restart lms-postgres", deny_rules=rules)] == [
        "custom-no-restart"
    ]
    both = guard_cmd.judge(line="docker restart x && docker volume prune", deny_rules=rules)
    assert {f.rule for f in both} == {"custom-no-restart", "cmd-docker-volume-prune"}


# --- break-glass ------------------------------------------------------------------------------


def make_backup(directory, name="lms_20260101.sql.gz", age_minutes=1, verified=True, content=b"dump", **overrides):
    path = os.path.join(directory, name)
    with open(path, "wb") as handle:
        handle.write(content)
    end = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=age_minutes)
    manifest = {  # complete, as pg_backup writes it (manifest.REQUIRED)
        "file": name,
        "path": path,
        "start": end.isoformat(),
        "format": "plain",
        "compression": "gzip",
        "database": "lms_slncity",
        "verified": verified,
        "end": end.isoformat(),
        "sha256": hashlib.sha256(content).hexdigest(),
        "size": len(content),
        "kind": "pre-change",
    }
    manifest.update(overrides)
    with open(path + ".json", "w", encoding="utf-8") as handle:
        json.dump(manifest, handle)
    return path


def test_breakglass_accepts_a_fresh_verified_backup(tmp_path):
    path = make_backup(str(tmp_path))
    evidence = breakglass.fresh_verified_backup(str(tmp_path), 15, database="lms_slncity")
    assert evidence["backup"] == path and evidence["age_seconds"] < 120


@pytest.mark.parametrize(
    ("kwargs", "why"),
    [
        ({"age_minutes": 16}, "too old"),
        ({"verified": False}, "not verified"),
        ({"size": 999}, "size"),
        ({"sha256": "0" * 64}, "sha256"),
        ({"database": "other"}, "backup of database"),
        ({"age_minutes": -30}, "future"),
    ],
)
def test_breakglass_refuses_and_says_why(tmp_path, kwargs, why):
    make_backup(str(tmp_path), **kwargs)
    with pytest.raises(breakglass.BreakGlassRefused) as exc:
        breakglass.fresh_verified_backup(str(tmp_path), 15, database="lms_slncity")
    message = str(exc.value)
    assert "verified backup younger than 15 min in %s" % tmp_path in message and why in message


def test_breakglass_refuses_without_any_backup(tmp_path):
    with pytest.raises(breakglass.BreakGlassRefused, match="found no backup manifest"):
        breakglass.fresh_verified_backup(str(tmp_path / "missing"), 15)


def test_breakglass_refuses_when_the_backup_file_is_gone(tmp_path):
    os.remove(make_backup(str(tmp_path)))
    with pytest.raises(breakglass.BreakGlassRefused, match="missing"):
        breakglass.fresh_verified_backup(str(tmp_path), 15)
