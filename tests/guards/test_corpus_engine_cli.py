"""The corpus through the engine and through the CLI: every destructive entry refused with its
rule, no benign entry refused, and the CLI agrees with the engine on every entry."""

import concurrent.futures
import os
import subprocess

import pytest
from ansible.module_utils.datasafe import guard_cmd, guard_sql
from guard_corpus import CMD_BENIGN, CMD_DESTRUCTIVE, SQL_BENIGN, SQL_DESTRUCTIVE

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLI = os.path.join(REPO, "bin", "datasafe-guard")


def test_corpus_is_big_enough():
    assert len(SQL_DESTRUCTIVE) >= 80 and len(SQL_BENIGN) >= 40
    assert len(CMD_DESTRUCTIVE) >= 50 and len(CMD_BENIGN) >= 40


@pytest.mark.parametrize(("sql", "rule"), SQL_DESTRUCTIVE)
def test_destructive_sql_is_refused_with_its_rule(sql, rule):
    findings = guard_sql.judge(sql)
    assert rule in [f.rule for f in findings]
    assert all(f.reason and f.instead and f.statement for f in findings)


@pytest.mark.parametrize("sql", SQL_BENIGN)
def test_benign_sql_is_allowed(sql):
    assert guard_sql.judge(sql) == []


@pytest.mark.parametrize(("cmd", "rule"), CMD_DESTRUCTIVE)
def test_destructive_command_is_refused_with_its_rule(cmd, rule):
    assert rule in [f.rule for f in guard_cmd.judge(line=cmd)]


@pytest.mark.parametrize("cmd", CMD_BENIGN)
def test_benign_command_is_allowed(cmd):
    assert guard_cmd.judge(line=cmd) == []


def _cli(args, stdin=None):
    proc = subprocess.run([CLI, *args], input=stdin, capture_output=True, text=True, check=False)
    return proc.returncode, proc.stderr


def _run_all(jobs):
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda job: _cli(*job), jobs))


def test_cli_agrees_with_the_corpus_on_sql(tmp_path):
    # One CLI run over one file per entry (the pre-commit use: many migration files at once);
    # with several files, every finding line starts with its file name.
    entries = [(sql, rule) for sql, rule in SQL_DESTRUCTIVE] + [(sql, None) for sql in SQL_BENIGN]
    names = []
    for i, (sql, _) in enumerate(entries):
        path = tmp_path / ("%03d.sql" % i)
        path.write_text(sql)
        names.append(str(path))
    rc, err = _cli(["sql", *names])
    assert rc == 3
    by_file = {}
    for line in err.splitlines():
        name, _, rest = line.partition(": ")
        by_file.setdefault(name, []).append(rest.split(":")[0])
    wrong = [
        (sql, rule, by_file.get(name))
        for name, (sql, rule) in zip(names, entries)
        if (rule is None and name in by_file) or (rule is not None and rule not in by_file.get(name, []))
    ]
    assert wrong == []
    assert _cli(["sql", *[n for n, (_, r) in zip(names, entries) if r is None]])[0] == 0


def test_cli_agrees_with_the_corpus_on_commands():
    entries = [(cmd, rule) for cmd, rule in CMD_DESTRUCTIVE] + [(cmd, None) for cmd in CMD_BENIGN]
    results = _run_all([(["cmd", cmd], None) for cmd, _ in entries])
    wrong = []
    for (cmd, rule), (rc, err) in zip(entries, results):
        expected_rc = 3 if rule else 0
        if rc != expected_rc or (rule and not any(line.startswith(rule + ":") for line in err.splitlines())):
            wrong.append((cmd, rule, rc, err))
    assert wrong == []


def test_cli_one_line_per_finding_on_stderr():
    rc, err = _cli(["sql", "-"], "TRUNCATE users; DROP TABLE visits;")
    assert rc == 3
    assert [line.split(":")[0] for line in err.strip().splitlines()] == ["sql-truncate", "sql-drop-table"]


def test_cli_argv_form(tmp_path):
    assert _cli(["cmd", "--", "docker", "compose", "down", "-v"])[0] == 3
    assert _cli(["cmd", "--", "docker", "compose", "down"])[0] == 0
    # an argv is not re-parsed by a shell: ';' is just an argument here
    assert _cli(["cmd", "--", "echo", ";", "docker", "volume", "prune"])[0] == 0


def test_cli_sql_files(tmp_path):
    good, bad = tmp_path / "0001_good.sql", tmp_path / "0002_bad.sql"
    good.write_text("ALTER TABLE patients ADD COLUMN nickname text;\n")
    bad.write_text("-- oops\nDELETE FROM patients;\n")
    assert _cli(["sql", str(good)])[0] == 0
    rc, err = _cli(["sql", str(good), str(bad)])
    assert rc == 3 and "0002_bad.sql: sql-delete-without-where" in err


@pytest.mark.parametrize(
    "args",
    [[], ["sql"], ["cmd"], ["frobnicate", "x"], ["sql", "/no/such/file.sql"], ["cmd", "docker", "compose", "down"]],
)
def test_cli_usage_errors_exit_2(args):
    assert _cli(args)[0] == 2


def test_cli_project_deny_rules(tmp_path):
    rules = tmp_path / "rules.yml"
    rules.write_text(
        "datasafe_guard_deny_rules:\n"
        "  - {id: custom-no-reboot, argv_prefix: [reboot], reason: 'reboots page the on-call'}\n"
        "  - {id: custom-no-audit-delete, applies_to: sql, regex: '(?i)delete\\s+from\\s+audit_log'}\n"
    )
    rc, err = _cli(["--deny-rules", str(rules), "cmd", "sudo reboot now"])
    assert rc == 3 and err.startswith("custom-no-reboot: reboots page the on-call")
    rc, err = _cli(["--deny-rules", str(rules), "sql", "-"], "DELETE FROM audit_log WHERE id = 1")
    assert rc == 3 and err.startswith("custom-no-audit-delete")
    rc, err = _cli(["--deny-rules", str(rules), "cmd", "psql -c 'DELETE FROM Audit_Log WHERE id = 1'"])
    assert rc == 3 and "custom-no-audit-delete" in err
    # built-in rules cannot be redefined (and so not weakened) by a project rule
    rules.write_text("- {id: sql-truncate, regex: 'nothing'}\n")
    assert _cli(["--deny-rules", str(rules), "sql", "-"], "SELECT 1")[0] == 2


def test_cli_works_from_another_directory(tmp_path):
    proc = subprocess.run(
        [CLI, "cmd", "docker volume prune"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 3 and proc.stderr.startswith("cmd-docker-volume-prune")
