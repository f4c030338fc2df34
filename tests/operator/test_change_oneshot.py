"""playbooks/change.yml's one-shot mode (datasafe_change_step=run): a change datasafe runs itself,
judged by the guard before anything happens, with the protocol's before/after procedures around
it. Real ansible-playbook runs against the package's throwaway deployment; the refused changes
are tried for real and every row is asserted to be still there."""

import json
import os

import pytest
from opbed import home_of, play

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def inventory(lms, tmp_path_factory):
    return lms.inventory(tmp_path_factory.mktemp("oneshot") / "hosts.yml")


def run(inventory, description, **change):
    extra = dict(datasafe_change_step="run", datasafe_change_description=description, **change)
    return play(inventory, "change.yml", "-e", json.dumps(extra))


def flat(proc):
    return " ".join(proc.stdout.replace("''", "'").split())


def sql(name):
    return os.path.join(HERE, "sql", name)


def backups(inventory):
    directory = os.path.join(home_of(inventory), "backups")
    return sorted(os.listdir(directory)) if os.path.isdir(directory) else []


def changelog(inventory):
    path = os.path.join(home_of(inventory), "change-log.txt")
    return open(path).read() if os.path.exists(path) else ""


def test_refused_changes_never_start(lms, inventory):
    with open(os.path.join(HERE, "commands", "down_volumes.txt")) as handle:
        down_volumes = handle.read().strip()
    before = (backups(inventory), changelog(inventory))
    proc = run(inventory, "empty the invoices", datasafe_change_sql_file=sql("truncate_invoices.sql"))
    assert proc.returncode != 0 and "TRUNCATE" in proc.stdout, proc.stdout[-3000:]
    proc = run(inventory, "recreate the stack", datasafe_change_command=down_volumes)
    assert proc.returncode != 0 and "cmd-compose-down-volumes" in proc.stdout, proc.stdout[-3000:]
    proc = run(inventory, "both", datasafe_change_command="true", datasafe_change_sql_file=sql("migration_42.sql"))
    assert proc.returncode != 0 and "takes exactly one of datasafe_change_command" in flat(proc)
    assert "both were given. Nothing was changed." in flat(proc)
    # judged before the backup: no backup, no change log line, no state left, every row there
    assert (backups(inventory), changelog(inventory)) == before
    assert not os.path.exists(os.path.join(home_of(inventory), "datasafe_change_%s.json" % lms.project))
    assert lms.counts() == lms.seeded
    assert lms.running() == sorted([lms.backend, lms.db])


def test_check_mode_is_a_dry_run(lms, inventory):
    before = (backups(inventory), changelog(inventory))
    extra = dict(
        datasafe_change_step="run",
        datasafe_change_description="run migration 42",
        datasafe_change_sql_file=sql("migration_42.sql"),
    )
    proc = play(inventory, "change.yml", "--check", "-e", json.dumps(extra))
    assert proc.returncode == 0, proc.stdout[-5000:]
    assert (backups(inventory), changelog(inventory)) == before
    assert "does not exist" in lms.psql_file("migration_42_absent.sql").stdout
    assert lms.counts() == lms.seeded


def test_a_sql_migration_runs_between_the_procedures(lms, inventory):
    proc = run(inventory, "run migration 42", datasafe_change_sql_file=sql("migration_42.sql"))
    assert proc.returncode == 0, proc.stdout[-5000:]
    lines = changelog(inventory).rstrip().splitlines()
    assert "About to run migration 42 (backup BEFORE_UPDATE_" in lines[-2]
    total = sum(lms.seeded.values())
    assert lines[-1].endswith("Change completed successfully: run migration 42; rows %d -> %d" % (total, total))
    assert any(name.startswith("BEFORE_UPDATE_") and name.endswith(".sql.gz") for name in backups(inventory))
    assert lms.psql_file("read_migration_42.sql").stdout.split() == ["42|migrated"]
    assert not os.path.exists(os.path.join(home_of(inventory), "datasafe_change_%s.json" % lms.project))


def test_a_command_that_loses_rows_fails_naming_them_and_the_way_back(lms, inventory):
    # allowed by the guard (a DELETE with a real WHERE), found by the counts afterwards
    command = "docker exec -i %s psql -X -q -v ON_ERROR_STOP=1 -U lms_user -d lms_slncity < %s" % (
        lms.db,
        sql("hold_back_invoices.sql"),
    )
    try:
        proc = run(inventory, "archive old invoices", datasafe_change_command=command)
        assert proc.returncode != 0
        text = flat(proc)
        reason = text[text.rindex("CHANGE FAILED") :]
        assert "invoices: %d -> %d (lost 3 row(s))" % (lms.seeded["invoices"], lms.seeded["invoices"] - 3) in reason
        assert "-e datasafe_restore_backup=BEFORE_UPDATE_" in reason
        log = changelog(inventory)
        assert "About to archive old invoices" in log and "Change FAILED: archive old invoices" in log
    finally:
        lms.psql_file("give_back_invoices.sql")
    # the failed check is kept: after fixing forward, end confirms and closes the change
    proc = play(inventory, "change.yml", "-e", "datasafe_change_step=end")
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert (
        changelog(inventory)
        .rstrip()
        .splitlines()[-1]
        .endswith(
            "Change completed successfully: archive old invoices; rows %d -> %d"
            % (sum(lms.seeded.values()), sum(lms.seeded.values()))
        )
    )
    assert lms.counts() == lms.seeded
