"""The finished report lines (module_utils/datasafe/reports.py, library/report_lines.py).

The restore and the safe update's rollback used to word their reports in Jinja inside the roles.
These tests render those very templates (kept below, verbatim, as the roles had them) with
Ansible's own templar over many combinations of facts, and hold the Python lines equal to them
letter for letter: operators, molecule's assertions and log readers see the same texts.
"""

import itertools

import pytest
from ansible.module_utils.datasafe import reports
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template
from harness import run_module


def jinja(template, **variables):
    return Templar(loader=DataLoader(), variables=variables).template(trust_as_template(template))


# ------------------------------------------------------------------ restore (tasks/safety_backup.yml, start.yml)

SAFETY_NOTE = (
    "{{ ('safety backup ' ~ (datasafe_backup_result.path | default('(check mode)') | basename))"
    " if (datasafe_restore_safety_backup | bool and _datasafe_restore_reachable.rc == 0)"
    " else 'no safety backup: ' ~ ('disabled' if not datasafe_restore_safety_backup | bool else"
    " 'database unreachable (' ~ (_datasafe_restore_reachable.stderr | default('') | trim"
    " | regex_replace('\\s+', ' ')) ~ ')') }}"
)
DOWNTIME_NOTE = (
    "{{ 'application downtime: none (check mode)' if ansible_check_mode"
    " else 'application down ' ~ _datasafe_restore_downtime ~ ' s' if _datasafe_restore_downtime is not none"
    " else 'no application service was running before the restore' }}"
)
ANALYZE_NOTE = (
    "{{ 'statistics: ANALYZE not run (datasafe_restore_analyze is false)' if not datasafe_restore_analyze | bool"
    " else 'statistics: ANALYZE after the swap (check mode: not run)' if ansible_check_mode"
    " else 'statistics: ANALYZE could not be started, autovacuum will analyze' if _datasafe_restore_analyzed is skipped"
    " else 'statistics: ANALYZE done in ' ~ _datasafe_restore_analyzed.seconds ~ ' s'"
    " if _datasafe_restore_analyzed.rc | default(-1) == 0"
    " else 'statistics: ANALYZE FAILED, autovacuum will analyze ('"
    " ~ (_datasafe_restore_analyzed.msg | default('?') | regex_replace('\\s+', ' ') | truncate(300)) ~ ')' }}"
)
MESSAGE = (
    "Restored {{ datasafe_db_name }} from {{ _datasafe_restore_backup.file }}: every count matches the manifest"
    " ({{ (_datasafe_restore_swap.restore.counts | default({})).values() | map('int') | sum }} rows), health OK;"
    " {{ _datasafe_restore_downtime_note }}; {{ _datasafe_restore_analyze_note }};"
    " {{ _datasafe_restore_safety_note }}; the previous database is kept as"
    " {{ _datasafe_restore_swap.kept_as | default('(none existed)', true) }}"
)
REPORT = [
    "{{ 'CHECK MODE, nothing was changed: would restore' if ansible_check_mode else 'restored' }}"
    " {{ datasafe_db_name }} from {{ _datasafe_restore_backup.file }}",
    "rows: {{ (_datasafe_restore_swap.restore.counts | default({})) | to_json }}",
    "{{ _datasafe_restore_downtime_note ~ ('' if ansible_check_mode or _datasafe_restore_downtime is none"
    " else ' (from its stop until the stack was verified, at ' ~ _datasafe_restore_verified_at ~ ')') }}",
    "{{ _datasafe_restore_analyze_note }}",
    "{{ _datasafe_restore_safety_note }}",
    "previous database kept as {{ _datasafe_restore_swap.kept_as | default('(none existed)', true) }}"
    " (inspect it; drop it by hand only when you are sure it is not needed)",
]

LONG_ERROR = "ANALYZE failed:\n  " + " ".join("word%d" % i for i in range(80))
ANALYZED = [
    {"skipped": True, "changed": False},
    {"rc": 0, "seconds": 0.53, "stderr": ""},
    {"rc": 1, "seconds": 2.0, "msg": LONG_ERROR},
    {"rc": 1, "failed": True},
]
REACHABLE = [
    {"rc": 0, "stdout": "1"},
    {"rc": 2, "stderr": 'psql: error: connection to server on socket\n   "/var/run/postgresql/.s.PGSQL.5432" failed\n'},
]


def restore_cases():
    for check, downtime, analyze, analyzed, safety, reachable, kept_as in itertools.product(
        (False, True), (None, 3.2), (True, False), ANALYZED, (True, False), REACHABLE, ("lms_before_restore_x", None)
    ):
        yield dict(
            check=check,
            downtime=downtime,
            analyze=analyze,
            analyzed=analyzed,
            safety=safety,
            reachable=reachable,
            kept_as=kept_as,
        )


def old_restore(c):
    variables = dict(
        ansible_check_mode=c["check"],
        datasafe_db_name="lms_slncity",
        _datasafe_restore_backup={"file": "lms_slncity_20260101_020000.sql.gz"},
        _datasafe_restore_swap={"restore": {"counts": {"users": 10, "visits": "6000"}}, "kept_as": c["kept_as"]},
        _datasafe_restore_downtime=c["downtime"],
        _datasafe_restore_verified_at="2026-01-01T02:03:04.000005+00:00",
        datasafe_restore_analyze=c["analyze"],
        _datasafe_restore_analyzed=c["analyzed"],
        datasafe_restore_safety_backup=c["safety"],
        _datasafe_restore_reachable=c["reachable"] if c["safety"] else {"skipped": True},
        datasafe_backup_result={"path": "/home/lab/backups/lms_slncity_pre-restore_20260101.sql.gz"},
    )
    notes = dict(
        _datasafe_restore_safety_note=jinja(SAFETY_NOTE, **variables),
        _datasafe_restore_downtime_note=jinja(DOWNTIME_NOTE, **variables),
        _datasafe_restore_analyze_note=jinja(ANALYZE_NOTE, **variables),
    )
    variables.update(notes)
    return dict(
        safety_note=notes["_datasafe_restore_safety_note"],
        downtime_note=notes["_datasafe_restore_downtime_note"],
        analyze_note=notes["_datasafe_restore_analyze_note"],
        message=jinja(MESSAGE, **variables),
        lines=[jinja(line, **variables) for line in REPORT],
    )


def new_restore(c):
    safety = c["safety"] and c["reachable"]["rc"] == 0
    return reports.lines(
        "restore",
        dict(
            database="lms_slncity",
            backup_file="lms_slncity_20260101_020000.sql.gz",
            check_mode=c["check"],
            counts={"users": 10, "visits": "6000"},
            kept_as=c["kept_as"],
            downtime=c["downtime"],
            verified_at="2026-01-01T02:03:04.000005+00:00",
            analyze=c["analyze"],
            analyzed=c["analyzed"],
            safety_enabled=c["safety"],
            reachable=c["reachable"] if c["safety"] else {"skipped": True},
            safety_backup="/home/lab/backups/lms_slncity_pre-restore_20260101.sql.gz" if safety else None,
        ),
    )


def test_the_restore_report_is_word_for_word_what_the_role_wrote():
    cases = list(restore_cases())
    for case in cases:
        assert new_restore(case) == old_restore(case), case
    assert len(cases) == 256


def test_the_restore_report_in_check_mode_without_a_backup_result():
    """Check mode before a safety backup exists: the role's default '(check mode)' name."""
    facts = dict(database="d", backup_file="f", check_mode=True, safety_enabled=True, reachable={"rc": 0})
    assert reports.lines("restore", facts)["safety_note"] == "safety backup (check mode)"


# ------------------------------------------------------------------ the update's rollback (tasks/rollback.yml)

ROLLED_BACK_MESSAGE = (
    "Update of {{ datasafe_compose_project }} FAILED at {{ _datasafe_update_failure | truncate(200) }};"
    " rolled back to {{ _datasafe_update_revision_before[:12] }}, healthy;"
    " {{ ('rows lost: ' ~ (_datasafe_update_rollback_counts.problems | map(attribute='table') | join(', '))"
    " ~ (', restored from ' if datasafe_update_restore_on_data_loss else ', NOT restored: run ')"
    " ~ (datasafe_backup_result.path | basename if datasafe_update_restore_on_data_loss"
    " else _datasafe_update_restore_command))"
    " if _datasafe_update_rollback_counts.problems else 'no row lost' }}"
)
ROLLED_BACK_MSG = (
    "UPDATE FAILED at {{ _datasafe_update_failure }}."
    " Rolled back to {{ _datasafe_update_revision_before[:12] }} and the previous version is healthy."
    " {{ ('ROWS WERE LOST: ' ~ (_datasafe_update_rollback_counts.problems | map(attribute='table') | join(', '))"
    " ~ ('; restored from ' ~ datasafe_backup_result.path ~ ' and counts re-checked'"
    " if datasafe_update_restore_on_data_loss"
    " else '; NOT restored automatically. To restore the pre-change backup: ' ~ _datasafe_update_restore_command))"
    " if _datasafe_update_rollback_counts.problems else 'No row was lost.' }}"
)
FAILED_MESSAGE = (
    "Update of {{ datasafe_compose_project }} FAILED at {{ _datasafe_update_failure | truncate(200) }}"
    " and the ROLLBACK FAILED at {{ ansible_failed_task.name | default('unknown task') }}; volumes untouched"
)
FAILED_MSG = (
    "UPDATE FAILED at {{ _datasafe_update_failure }} -- and the ROLLBACK FAILED at"
    " {{ ansible_failed_task.name | default('unknown task') }}: {{ ansible_failed_result.msg | default('') }}."
    " No volume was removed. The code should be at {{ _datasafe_update_revision_before[:12] }}"
    " (git -C {{ datasafe_compose_dir }} log -1). Pre-change backup:"
    " {{ datasafe_backup_result.path | default('none was taken') }}."
    " If data is missing: {{ _datasafe_update_restore_command }}"
)
COMMAND = (
    "ansible-playbook playbooks/restore.yml -l lab1 -e datasafe_restore_backup=/b/lms_pre.sql.gz"
    " -e datasafe_restore_confirm=lms_slncity"
)
FAILURES = ["Run the migrations: exit status 1", "Bring the new version up: " + " ".join(["timeout"] * 60)]
PROBLEMS = [[], [{"table": "test_results", "before": 5, "after": 3}, {"table": "visits", "before": 9, "after": 1}]]


def update_variables(failure, problems, restore_on_loss, backup):
    variables = dict(
        datasafe_compose_project="lms",
        datasafe_compose_dir="/srv/lms",
        _datasafe_update_failure=failure,
        _datasafe_update_revision_before="0123456789abcdef0123",
        _datasafe_update_restore_command=COMMAND,
        _datasafe_update_rollback_counts={"problems": problems},
        datasafe_update_restore_on_data_loss=restore_on_loss,
    )
    if backup:
        variables["datasafe_backup_result"] = {"path": backup}
    return variables


def update_facts(failure, problems, restore_on_loss, backup):
    return dict(
        project="lms",
        compose_dir="/srv/lms",
        failure=failure,
        revision_before="0123456789abcdef0123",
        restore_command=COMMAND,
        problems=problems,
        restore_on_data_loss=restore_on_loss,
        backup_path=backup,
    )


@pytest.mark.parametrize("failure", FAILURES)
@pytest.mark.parametrize("problems", PROBLEMS)
@pytest.mark.parametrize("restore_on_loss", [True, False])
def test_the_rolled_back_update_is_word_for_word_what_the_role_wrote(failure, problems, restore_on_loss):
    backup = "/home/lab/backups/lms_slncity_pre-change_20260101.sql.gz"
    variables = update_variables(failure, problems, restore_on_loss, backup)
    words = reports.lines("update_rolled_back", update_facts(failure, problems, restore_on_loss, backup))
    assert words == {"message": jinja(ROLLED_BACK_MESSAGE, **variables), "msg": jinja(ROLLED_BACK_MSG, **variables)}


@pytest.mark.parametrize("failure", FAILURES)
@pytest.mark.parametrize("task", [None, {"name": "Put the code back at the recorded revision"}])
@pytest.mark.parametrize("backup", [None, "/b/lms_pre.sql.gz"])
def test_the_failed_rollback_is_word_for_word_what_the_role_wrote(failure, task, backup):
    variables = update_variables(failure, [], False, backup)
    variables["ansible_failed_result"] = {"msg": "non-zero return code"}
    if task:
        variables["ansible_failed_task"] = task
    facts = dict(update_facts(failure, [], False, backup), rollback_task=task and task["name"])
    facts["rollback_msg"] = "non-zero return code"
    words = reports.lines("update_rollback_failed", facts)
    assert words == {"message": jinja(FAILED_MESSAGE, **variables), "msg": jinja(FAILED_MSG, **variables)}


# ------------------------------------------------------------------ the module


def test_the_module_returns_the_lines_and_changes_nothing():
    facts = dict(database="d", backup_file="f", check_mode="false", counts={"t": 2}, analyze=False)
    result = run_module("report_lines", kind="restore", facts=facts)
    assert result["changed"] is False and not result["failed"]
    assert result["lines"][0] == "restored d from f" and result["lines"][1] == 'rows: {"t": 2}'
    assert result["analyze_note"] == "statistics: ANALYZE not run (datasafe_restore_analyze is false)"


def test_missing_facts_are_named():
    result = run_module("report_lines", kind="update_rolled_back", facts={"project": "lms"})
    assert result["failed"]
    assert result["msg"] == "report_lines: facts for update_rolled_back lack failure, revision_before, restore_command"
