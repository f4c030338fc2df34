"""The fleet runner on ansible-runner, and the nightly jobs of one site only, over SSH.

The runner installs the nightly backup on every site (playbooks/schedule.yml): status, rc,
the events ansible-runner kept, the per-host stream and report, then the idempotent second
run. The job a site's cron entry runs is then started as cron would (env -i) and backs up that
site only. Every site's cron entries are removed again at the end.
"""

import glob
import io
import json
import os
import subprocess

import pytest
from fleetbed import REPO

from datasafe_fleet import FleetError, run_fleet

pytestmark = pytest.mark.slow

CRON_TASK = "datasafe : Write or remove the crontab entry"  # roles/datasafe/tasks/crontab.yml


@pytest.fixture
def runner_env(fleet, monkeypatch):
    for name, value in fleet.env().items():
        monkeypatch.setenv(name, value)


def cron_entries(fleet):
    """{entry name: job line} of the fleet's sites in this user's crontab (others may own more)."""
    lines = subprocess.run(["crontab", "-l"], capture_output=True, text=True, check=False).stdout.splitlines()
    return {
        line[len("#Ansible: ") :]: lines[i + 1]
        for i, line in enumerate(lines[:-1])
        if line.startswith("#Ansible: ") and "dstest-fleet-" in line
    }


def schedule(fleet, tmp_path, ident, **extra):
    stream = io.StringIO()
    report = run_fleet(
        "schedule",
        [fleet.inventory],
        str(tmp_path / "runs"),
        extravars=extra,
        stream=stream,
        ident=ident,
    )
    return report, stream.getvalue()


def test_bad_input_runs_nothing(fleet, tmp_path):
    with pytest.raises(FleetError, match="no playbook 'nonesuch'"):
        run_fleet("nonesuch", [fleet.inventory], str(tmp_path))
    with pytest.raises(FleetError, match="no inventory"):
        run_fleet("verify", [str(tmp_path / "missing.yml")], str(tmp_path))
    assert not os.path.exists(tmp_path / "artifacts")


def test_the_runner_schedules_each_site_for_itself_and_a_second_run_changes_nothing(fleet, tmp_path, runner_env):
    try:
        first, streamed = schedule(fleet, tmp_path, "first")
        assert (first["status"], first["rc"]) == ("successful", 0)
        assert first["summary"]["changed"] == sorted(fleet.sites)
        for name in fleet.sites:
            assert CRON_TASK in first["hosts"][name]["changed"]
            assert "%-12s %-11s %s" % (name, "changed", CRON_TASK) in streamed.splitlines()
        # ansible-runner kept the run: status, rc, stdout and every event, per host
        artifacts = first["artifacts"]
        assert open(os.path.join(artifacts, "status")).read() == "successful"
        assert open(os.path.join(artifacts, "rc")).read() == "0"
        events = [json.load(open(path)) for path in glob.glob(os.path.join(artifacts, "job_events", "*.json"))]
        hosts_ok = {e["event_data"]["host"] for e in events if e["event"] == "runner_on_ok"}
        assert hosts_ok == set(fleet.sites)
        assert json.load(open(os.path.join(artifacts, "fleet-report.json"))) == first

        entries = cron_entries(fleet)
        for name, site in fleet.sites.items():
            job = entries["datasafe nightly backup of lms_slncity (%s)" % site["datasafe_compose_project"]]
            assert job.startswith("0 2 * * * ")
            assert "--limit=%s " % name in job + " " and "--inventory=%s" % fleet.inventory in job

        second, _ = schedule(fleet, tmp_path, "second")
        assert (second["status"], second["rc"]) == ("successful", 0)
        assert second["summary"]["ok"] == sorted(fleet.sites) and second["summary"]["changed"] == []
        assert all(host["changed"] == [] for host in second["hosts"].values())
        assert cron_entries(fleet) == entries
    finally:
        schedule(fleet, tmp_path, "remove", datasafe_schedule_state="absent")
    assert cron_entries(fleet) == {}


def test_a_controller_holds_one_entry_per_site_and_each_job_backs_up_its_own_site_only(fleet, tmp_path, runner_env):
    def backups():
        return {
            name: sorted(os.path.basename(p) for p in glob.glob(os.path.join(site["datasafe_backup_dir"], "*.sql.gz")))
            for name, site in fleet.sites.items()
        }

    try:
        report, _ = schedule(fleet, tmp_path, "controller", datasafe_schedule_runs_on="controller")
        assert report["rc"] == 0, report["hosts"]
        entries = cron_entries(fleet)
        assert sorted(entries) == sorted(
            "datasafe nightly backup of lms_slncity (%s) on %s" % (site["datasafe_compose_project"], name)
            for name, site in fleet.sites.items()
        )
        job = entries["datasafe nightly backup of lms_slncity (dstest-fleet-site2) on site2"]
        argv = job.split()[5:]
        assert argv[0] == os.path.join(REPO, "bin", "datasafe-backup-job") and "--limit=site2" in argv
        before = backups()
        log = tmp_path / "site2-backup.log"
        # as cron starts it: a bare environment, the entry's own argv
        run = subprocess.run(
            ["env", "-i", *argv, "--log", str(log)],
            capture_output=True,
            text=True,
            check=False,
        )
        text = log.read_text()
        assert run.returncode == 0, text[-3000:]
        assert "datasafe backup job finished OK (site site2)" in text
        after = backups()
        assert after["site1"] == before["site1"] and after["site3"] == before["site3"]
        new = sorted(set(after["site2"]) - set(before["site2"]))
        assert len(new) == 1 and new[0].startswith("lms_backup_")
        assert "site1" not in text.split("PLAY RECAP", 1)[1] and "site3" not in text.split("PLAY RECAP", 1)[1]

        # the 02:30 restore drill, one entry per site beside the backup's; site2's drills site2 only
        drill = dict(
            datasafe_schedule_runs_on="controller", datasafe_schedule_job="drill", datasafe_schedule_minute="30"
        )
        assert schedule(fleet, tmp_path, "drill", **drill)[0]["rc"] == 0
        entries = cron_entries(fleet)
        assert len(entries) == 6
        job = entries["datasafe nightly restore drill of lms_slncity (dstest-fleet-site2) on site2"]
        assert job.startswith("30 2 * * * ")
        argv = job.split()[5:]
        assert "--job=drill" in argv and "--limit=site2" in argv
        log = tmp_path / "site2-drill.log"
        run = subprocess.run(["env", "-i", *argv, "--log", str(log)], capture_output=True, text=True, check=False)
        text = log.read_text()
        assert run.returncode == 0, text[-3000:]
        assert "datasafe drill job finished OK (site site2)" in text
        recap = text.split("PLAY RECAP", 1)[1]
        assert "site2" in recap and "site1" not in recap and "site3" not in recap
        drilled = {
            name: os.path.exists(os.path.join(site["datasafe_test_root"], "datasafe_restore_drill.prom"))
            for name, site in fleet.sites.items()
        }
        assert drilled == {"site1": False, "site2": True, "site3": False}
    finally:
        schedule(fleet, tmp_path, "remove", datasafe_schedule_runs_on="controller", datasafe_schedule_state="absent")
        schedule(
            fleet,
            tmp_path,
            "remove-drill",
            datasafe_schedule_runs_on="controller",
            datasafe_schedule_job="drill",
            datasafe_schedule_state="absent",
        )
    assert cron_entries(fleet) == {}
