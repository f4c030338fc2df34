"""The ansible-lint rules (lint_rules/) through real ansible-lint: each rule fires on its sample,
none fires on the safe sample, lint agrees with the corpus, and datasafe's own content passes."""

import json
import os
import shutil
import subprocess
import sys

import pytest
from guard_corpus import CMD_BENIGN, CMD_DESTRUCTIVE, SQL_BENIGN, SQL_DESTRUCTIVE

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
ANSIBLE_LINT = os.path.join(os.path.dirname(sys.executable), "ansible-lint")
CONFIG = os.path.join(HERE, "lint_config.yml")

# (sample file, task line) -> rule that must fire there
EXPECTED = {
    ("bad_compose_remove_volumes.yml", 6): "datasafe-compose-remove-volumes",
    ("bad_volume_absent.yml", 6): "datasafe-volume-absent",
    ("bad_prune_volumes.yml", 6): "datasafe-prune-volumes",
    ("bad_db_absent.yml", 6): "datasafe-db-absent",
    ("bad_commands.yml", 6): "datasafe-command-guard",
    ("bad_commands.yml", 9): "datasafe-command-guard",
    ("bad_commands.yml", 13): "datasafe-command-guard",
    ("bad_commands.yml", 16): "datasafe-sql-guard",  # psql -c 'TRUNCATE ...' inside ansible.legacy.shell
    ("bad_commands.yml", 19): "datasafe-command-guard",
    ("bad_commands.yml", 22): "datasafe-command-guard",
    ("bad_sql.yml", 6): "datasafe-sql-guard",
    ("bad_sql.yml", 10): "datasafe-sql-guard",
    ("bad_sql.yml", 14): "datasafe-sql-guard",
    ("bad_sql.yml", 18): "datasafe-sql-guard",
    ("bad_short_names.yml", 10): "datasafe-compose-remove-volumes",
    ("bad_short_names.yml", 15): "datasafe-volume-absent",
    ("bad_short_names.yml", 19): "datasafe-prune-volumes",
    ("bad_short_names.yml", 22): "datasafe-db-absent",
    ("bad_short_names.yml", 26): "datasafe-sql-guard",
}
RULES = {
    "datasafe-compose-remove-volumes",
    "datasafe-volume-absent",
    "datasafe-prune-volumes",
    "datasafe-db-absent",
    "datasafe-command-guard",
    "datasafe-sql-guard",
}


def corpus_playbook(path):
    """One task per corpus entry; returns {task line: (text, expected rule or None, kind)}."""
    lines = ["---", "- name: Corpus", "  hosts: localhost", "  gather_facts: false", "  tasks:"]
    where = {}
    entries = (
        [(c, r, "cmd") for c, r in CMD_DESTRUCTIVE]
        + [(c, None, "cmd") for c in CMD_BENIGN]
        + [(s, r, "sql") for s, r in SQL_DESTRUCTIVE]
        + [(s, None, "sql") for s in SQL_BENIGN]
    )
    for i, (text, rule, kind) in enumerate(entries):
        where[len(lines) + 1] = (text, rule, kind)
        lines.append("    - name: Corpus entry %d" % i)
        if kind == "cmd":
            # cmd: rather than free form, which Ansible itself splits (and chokes on broken quoting)
            lines += ["      ansible.builtin.shell:", "        cmd: %s" % json.dumps(text), "      changed_when: true"]
        else:  # alternate between the SQL modules the rule knows
            module = "community.postgresql.postgresql_query" if i % 2 else "safe_sql"
            key = "query" if i % 2 else "sql"
            lines += ["      %s:" % module, "        %s: %s" % (key, json.dumps(text))]
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    return where


def lint(paths, cwd, extra=()):
    # --project-dir: ansible-lint skips files outside the project, which it would otherwise place at CONFIG
    proc = subprocess.run(
        [
            ANSIBLE_LINT,
            "-c",
            CONFIG,
            "--project-dir",
            cwd,
            "-r",
            os.path.join(REPO, "lint_rules"),
            *extra,
            "-f",
            "codeclimate",
            *paths,
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        issues = json.loads(proc.stdout or "[]")
    except ValueError as exc:
        raise AssertionError("no JSON from ansible-lint:\n%s\n%s" % (proc.stdout[-2000:], proc.stderr[-3000:])) from exc
    found = {}
    for issue in issues:
        loc = issue["location"]
        line = loc.get("lines", {}).get("begin") or loc.get("positions", {}).get("begin", {}).get("line")
        found.setdefault((os.path.basename(loc["path"]), line), []).append(
            (issue["check_name"].split("[")[0], issue["description"])
        )
    return found, proc


@pytest.fixture(scope="module")
def linted(tmp_path_factory):
    work = tmp_path_factory.mktemp("lint")
    shutil.copytree(os.path.join(HERE, "lint_samples"), str(work / "samples"))
    where = corpus_playbook(str(work / "samples" / "corpus.yml"))
    found, proc = lint(["samples"], str(work), extra=["-R"])  # -R: datasafe rules on top of the defaults
    return found, proc, where


def test_every_rule_fires_on_its_sample(linted):
    found = linted[0]
    missing = [(key, rule) for key, rule in EXPECTED.items() if rule not in [r for r, _ in found.get(key, [])]]
    assert missing == []
    assert {rule for rule in EXPECTED.values()} == RULES


def test_no_datasafe_rule_fires_where_not_expected(linted):
    found = linted[0]
    extra = [
        (key, r)
        for key, hits in found.items()
        for r, _ in hits
        if r in RULES and key[0] != "corpus.yml" and EXPECTED.get(key) != r
    ]
    assert extra == []
    assert not any(k[0] == "good.yml" and r in RULES for k, hits in found.items() for r, _ in hits)


def test_lint_agrees_with_the_corpus(linted):
    found, _, where = linted
    wrong = []
    for line, (text, rule, _kind) in where.items():
        hits = [(r, d) for r, d in found.get(("corpus.yml", line), []) if r in RULES]
        if rule is None and hits:
            wrong.append((text, "benign but flagged", hits))
        elif rule is not None:
            lint_rule = "datasafe-sql-guard" if rule.startswith("sql-") else "datasafe-command-guard"
            if not any(r == lint_rule and d.startswith(rule + ":") or ("; " + rule + ":") in d for r, d in hits):
                wrong.append((text, rule, hits))
    assert wrong == []


def test_datasafe_own_content_passes(tmp_path):
    paths = [p for p in ("playbooks", "roles", "molecule") if os.path.isdir(os.path.join(REPO, p))]
    found, proc = lint(paths, REPO, extra=["-t", "datasafe"])
    assert [(k, r) for k, hits in found.items() for r, _ in hits if r in RULES] == [], proc.stderr[-2000:]
