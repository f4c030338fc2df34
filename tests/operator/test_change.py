"""playbooks/change.yml: the protocol's before/after procedures around a change made by hand.
Real ansible-playbook runs against the package's throwaway deployment; the "change" loses rows
for real (held back by a SQL file and given back afterwards)."""

import json
import os

import pytest
from opbed import home_of, play


@pytest.fixture(scope="module")
def inventory(lms, tmp_path_factory):
    return lms.inventory(tmp_path_factory.mktemp("change") / "hosts.yml")


def step(inventory, name, *args):
    return play(inventory, "change.yml", "-e", json.dumps(dict(datasafe_change_step=name, **dict(args))))


def flat(proc):
    return " ".join(proc.stdout.replace("''", "'").split())


def test_end_without_begin_says_so(inventory):
    proc = step(inventory, "end")
    assert proc.returncode != 0 and "end without a begin: no change was begun" in flat(proc), proc.stdout[-3000:]


def test_a_change_that_lost_rows_fails_naming_them_and_the_way_back_then_ends_once_fixed(lms, inventory):
    proc = step(inventory, "begin", ("datasafe_change_description", "archive old invoices"))
    assert proc.returncode == 0, proc.stdout[-4000:]
    log = os.path.join(home_of(inventory), "change-log.txt")
    assert "About to archive old invoices (backup BEFORE_UPDATE_" in open(log).read()
    proc = step(inventory, "begin", ("datasafe_change_description", "a second one"))
    assert proc.returncode != 0 and "a change was already begun" in flat(proc)

    lms.psql_file("hold_back_invoices.sql")  # the "change" loses three invoices
    try:
        proc = step(inventory, "end")
        assert proc.returncode != 0
        text = flat(proc)
        reason = text[text.rindex("CHANGE FAILED") :]
        assert "invoices: %d -> %d (lost 3 row(s))" % (lms.seeded["invoices"], lms.seeded["invoices"] - 3) in reason
        assert "The way back (the backup begin took): ansible-playbook playbooks/restore.yml" in reason
        assert "-e datasafe_restore_backup=BEFORE_UPDATE_" in reason
        assert "Change FAILED: archive old invoices" in open(log).read()
    finally:
        lms.psql_file("give_back_invoices.sql")
    proc = step(inventory, "end")
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert (
        open(log)
        .read()
        .rstrip()
        .splitlines()[-1]
        .endswith(
            "Change completed successfully: archive old invoices; rows %d -> %d"
            % (sum(lms.seeded.values()), sum(lms.seeded.values()))
        )
    )
    proc = step(inventory, "end")
    assert proc.returncode != 0 and "end without a begin" in flat(proc)
