"""status.yml's guards and continuous-recovery rows, and its HTML report rendered in a real
headless browser (Debian's chromium), on the package's throwaway deployment.

One inventory (its own home: backups, change log, report) for the module. The guard inside
PostgreSQL and the volume pin are installed by their own playbooks, one guard trigger is
disabled to tamper with it, and both are removed again at the end whatever happens (the other
tests of the package use the same deployment without them).
"""

import glob
import json
import os
import sys

import pytest
from ansible.module_utils.datasafe import container, pin
from browser import GREEN, GREY, RED, chromium, render
from opbed import home_of, play
from pgbed import REPO

pytestmark = pytest.mark.skipif(not chromium(), reason="chromium is missing: run testbed/setup.sh")


@pytest.fixture(scope="module")
def inv(lms, tmp_path_factory):
    root = tmp_path_factory.mktemp("status-report")
    inventory = lms.inventory(
        root / "hosts.yml",
        datasafe_pin_labels={"io.datasafe.test": "1"},
        datasafe_status_expect_offsite=False,
        datasafe_status_expect_drill=False,
        datasafe_status_agent_hook_home=str(root / "agent-home"),
    )
    yield inventory
    play(inventory, "dbguard.yml", "-e", "datasafe_dbguard_state=absent")
    play(inventory, "pin.yml", "-e", "datasafe_pin_state=absent")
    assert not pin.status(container.subprocess_runner, "%s_postgres_data" % lms.project)["exists"]


def report_of(inventory):
    return os.path.join(home_of(inventory), "backups-status.html")


def rows(shown):
    return {r["name"]: r for r in shown["rows"]}


def reason_last(output):
    """The failure's reason, which comes after the table (the play's last failed task)."""
    at = output.rindex("NOT PROTECTED")
    assert at > output.rindex("WAL archiving "), output[-4000:]
    return " ".join(output[at:].split("PLAY RECAP")[0].split())


def test_nothing_done_yet_the_report_shows_red_and_the_guards_off(inv, tmp_path):
    proc = play(inv, "status.yml")
    assert proc.returncode != 0, proc.stdout[-4000:]
    assert "no verified backup" in reason_last(proc.stdout)
    with open(report_of(inv)) as handle:
        html = handle.read()
    assert "<script" not in html and "http://" not in html and "https://" not in html
    shown = render(report_of(inv), screenshot=str(tmp_path / "red.png"))
    assert shown["resources"] == []  # nothing fetched
    assert shown["verdict"] == {"text": "NOT PROTECTED", "background": RED}
    state = rows(shown)
    assert state["backup"]["state"] == "RED" and state["backup"]["background"] == RED
    assert state["change lock"]["background"] == GREEN
    for off in ("dbguard", "volume pin", "agent hook", "WAL archiving"):
        assert state[off]["state"] == "OFF" and state[off]["background"] == GREY, state[off]
    assert all(c["empty"] and not c["series"] for c in shown["charts"])


def test_backups_and_guards_the_report_shows_green_and_every_manifest_as_a_point(lms, inv, tmp_path):
    for playbook in ("backup.yml", "backup.yml", "pin.yml", "dbguard.yml"):
        proc = play(inv, playbook)
        assert proc.returncode == 0, playbook + proc.stdout[-4000:]
    proc = play(inv, "status.yml", "-e", "datasafe_status_expect_dbguard=true", "-e", "datasafe_pin_required=true")
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert "dbguard        OK  installed and intact" in proc.stdout
    assert "volume pin     OK  %s_postgres_data is held by the running pin" % lms.project in proc.stdout

    manifests = []
    for path in sorted(glob.glob(os.path.join(home_of(inv), "backups", "*.json"))):
        with open(path) as handle:
            manifests.append(json.load(handle))
    manifests.sort(key=lambda m: m["end"])
    assert len(manifests) == 2
    shown = render(report_of(inv), screenshot=str(tmp_path / "green.png"))
    assert shown["resources"] == []
    assert shown["verdict"] == {"text": "PROTECTED", "background": GREEN}
    state = rows(shown)
    for green in ("backup", "change lock", "dbguard", "volume pin"):
        assert state[green]["state"] == "OK" and state[green]["background"] == GREEN, state[green]
    assert state["agent hook"]["background"] == GREY and state["WAL archiving"]["background"] == GREY
    charts = {c["title"]: c for c in shown["charts"]}
    assert charts["Backup size"]["width"] > 100
    assert charts["Backup size"]["series"][0]["values"] == [m["size"] for m in manifests]
    assert charts["Backup duration"]["series"][0]["values"] == [m["duration_seconds"] for m in manifests]
    counted = {s["name"]: s["values"] for s in charts["Critical-table row counts"]["series"]}
    assert set(counted) == set(manifests[0]["counts"])
    for table, values in counted.items():
        assert values == [m["counts"][table] for m in manifests], table
        assert len(values) == len(manifests)


def test_a_tampered_guard_and_a_stale_backup_are_red_in_the_table_and_the_report(lms, inv):
    lms.psql_file("disable_guard_trigger.sql")
    proc = play(inv, "status.yml", "-e", "datasafe_status_backup_max_age=0")
    assert proc.returncode != 0
    reason = reason_last(proc.stdout)
    assert "dbguard: THE GUARD INSIDE POSTGRESQL WAS CHANGED" in reason
    assert "event trigger datasafe_guard_ddl is disabled" in reason
    assert "datasafe_guard_truncate on public.invoices is disabled" in reason
    assert "backup:" in reason and "older than 0 s" in reason
    shown = render(report_of(inv))
    assert shown["verdict"]["background"] == RED
    state = rows(shown)
    assert state["dbguard"]["background"] == RED and state["backup"]["background"] == RED
    assert state["volume pin"]["background"] == GREEN
    assert len(shown["charts"][0]["series"][0]["values"]) == 2  # the history is still there
    play(inv, "dbguard.yml")  # repaired for what follows


def test_expected_but_missing_guards_and_continuous_recovery_are_red(inv):
    proc = play(
        inv,
        "status.yml",
        "-e",
        "datasafe_status_expect_agent_hook=true",
        "-e",
        "datasafe_status_expect_continuous=true",
        "-e",
        "datasafe_status_report=",
    )
    assert proc.returncode != 0
    reason = reason_last(proc.stdout)
    assert "agent hook: not installed for claude, gemini, cursor" in reason
    assert "WAL archiving: archive_mode is off" in reason
    assert "dbguard" not in reason  # repaired by the test before


def test_the_fleet_runner_lists_and_copies_each_hosts_report(inv, tmp_path, monkeypatch):
    if REPO not in sys.path:  # the fleet runner's package lives at the top of the checkout
        sys.path.insert(0, REPO)
    from datasafe_fleet import run_fleet

    monkeypatch.setenv("HOME", home_of(inv))  # "~" on the (local) host is the test's own home
    fleet = run_fleet("status", [inv], str(tmp_path / "fleet"), ident="status")
    shown = fleet["hosts"]["localhost"]["status_report"]
    copy = str(tmp_path / "fleet" / "artifacts" / "status" / "status-reports" / "localhost-status.html")
    assert shown["path"] == report_of(inv) and shown["local"] == copy
    assert shown["ok"] is (fleet["rc"] == 0) and (shown["failures"] == []) is shown["ok"]
    with open(copy) as mine, open(report_of(inv)) as theirs:
        assert mine.read() == theirs.read()
    seen = render(copy)["verdict"]
    assert seen == (
        {"text": "PROTECTED", "background": GREEN} if shown["ok"] else {"text": "NOT PROTECTED", "background": RED}
    )
