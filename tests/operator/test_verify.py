"""playbooks/verify.yml verifies: counts against a known-good reference, logs shown and scanned.

Real ansible-playbook runs against the package's throwaway deployment. Rows are lost for real
(held back in a table of the throwaway database by a SQL file, and given back afterwards), and
a real error goes into PostgreSQL's log; the verify must fail naming each, with the reason last.
"""

import json
import os
import subprocess

import pytest
from opbed import play, recap

MARKER = "datasafe_test_marker_no_such_table"


@pytest.fixture(scope="module")
def work(lms, tmp_path_factory):
    """One inventory and one (test) home for the module: the snapshot and backups carry over."""
    root = tmp_path_factory.mktemp("verify")
    return {"inventory": lms.inventory(root / "hosts.yml"), "home": root / "home"}


def snapshot_file(lms, work):
    return work["home"] / ("datasafe_verify_%s.json" % lms.project)


def failed_last(output):
    """The failure reason, asserted to come after the report and the logs."""
    assert "VERIFY FAILED" in output, output[-4000:]
    reason = output.rindex("VERIFY FAILED")
    assert reason > output.rindex("counts compared with") and reason > output.rindex("rows total")
    # the YAML callback folds a long message over indented lines (and may quote it)
    text = output[reason:].split("PLAY RECAP")[0].split("\n\n")[0]
    return " ".join(text.replace("''", "'").split())


def extra(**variables):
    return ["-e", json.dumps(variables)]


def test_a_first_verify_has_no_reference_passes_and_leaves_its_snapshot(lms, work):
    proc = play(work["inventory"], "verify.yml", "--check")
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert "counts compared with: nothing yet" in proc.stdout
    assert not snapshot_file(lms, work).exists()  # check mode writes nothing

    proc = play(work["inventory"], "verify.yml")
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert recap(proc.stdout)["changed"] == 1
    saved = json.loads(snapshot_file(lms, work).read_text())
    assert saved["counts"] == lms.seeded and saved["project"] == lms.project
    assert oct(os.stat(snapshot_file(lms, work)).st_mode & 0o777) == "0o600"
    # the protocol's "check application logs": every container's last lines are shown
    assert "== %s (last 50 lines)" % lms.backend in proc.stdout and "== %s (last 50 lines)" % lms.db in proc.stdout
    assert "logs: no error line in the last lines" in proc.stdout


def test_a_lost_row_fails_the_verify_naming_the_table_and_the_reference(lms, work):
    lms.psql_file("hold_back_invoices.sql")
    try:
        assert lms.counts()["invoices"] == lms.seeded["invoices"] - 3
        proc = play(work["inventory"], "verify.yml")
        assert proc.returncode != 0
        reason = failed_last(proc.stdout)
        assert "rows lost since the previous verify" in reason, reason
        assert "invoices: %d -> %d (lost 3 row(s))" % (lms.seeded["invoices"], lms.seeded["invoices"] - 3) in reason
        # a failing verify never moves the reference
        assert json.loads(snapshot_file(lms, work).read_text())["counts"] == lms.seeded

        # what the operator allows is not a failure (check mode: the reference stays)
        proc = play(work["inventory"], "verify.yml", "--check", *extra(datasafe_verify_allow_decrease={"invoices": 3}))
        assert proc.returncode == 0, proc.stdout[-4000:]
        proc = play(work["inventory"], "verify.yml", "--check", *extra(datasafe_verify_allow_decrease={"invoices": 2}))
        assert proc.returncode != 0 and "(lost 3 row(s) (2 allowed))" in failed_last(proc.stdout)
    finally:
        lms.psql_file("give_back_invoices.sql")
    assert lms.counts() == lms.seeded
    proc = play(work["inventory"], "verify.yml")
    assert proc.returncode == 0, proc.stdout[-4000:]


def test_the_newest_verified_backup_becomes_the_reference(lms, work):
    proc = play(work["inventory"], "backup.yml")
    assert proc.returncode == 0, proc.stdout[-4000:]
    proc = play(work["inventory"], "verify.yml")
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert "counts compared with: the verified backup lms_backup_" in proc.stdout
    lms.psql_file("hold_back_invoices.sql")
    try:
        proc = play(work["inventory"], "verify.yml")
        assert proc.returncode != 0
        assert "rows lost since the verified backup lms_backup_" in failed_last(proc.stdout)
    finally:
        lms.psql_file("give_back_invoices.sql")
    assert lms.counts() == lms.seeded


def test_an_error_in_the_application_logs_fails_the_verify_and_is_shown(lms, work):
    with pytest.raises(subprocess.CalledProcessError):
        lms.psql_file("log_an_error.sql")
    lms.log_noise.append(MARKER)  # later verify runs of this package know it is there
    proc = play(work["inventory"], "verify.yml")
    assert proc.returncode != 0
    reason = failed_last(proc.stdout)
    assert "error line(s) in the application's last log lines" in reason and lms.db in reason, reason
    assert "error line: " in proc.stdout and MARKER in proc.stdout
    # known noise can be ignored by the operator
    proc = play(work["inventory"], "verify.yml", *extra(datasafe_verify_log_ignore=[MARKER]))
    assert proc.returncode == 0, proc.stdout[-4000:]
