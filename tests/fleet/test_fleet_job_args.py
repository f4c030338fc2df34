"""bin/datasafe-backup-job's per-site options: --limit and --job, and their refusals.

The playbook run itself is covered over SSH (test_fleet_runner.py); here a recording stand-in
for ansible-playbook shows the exact command line and lock each option leads to.
"""

import os
import subprocess

import pytest
from fleetbed import REPO

JOB = os.path.join(REPO, "bin", "datasafe-backup-job")
RECORDER = """#!/bin/bash
printf '%s\\n' "$@" > "$HOME/argv"
ls -a "$HOME" > "$HOME/home"
"""


@pytest.fixture
def home(tmp_path):
    recorder = tmp_path / "ansible-playbook"
    recorder.write_text(RECORDER)
    recorder.chmod(0o755)
    return tmp_path


def job(home, *args):
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [JOB, "--ansible-playbook", str(home / "ansible-playbook"), *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )


@pytest.mark.parametrize(
    ("name", "playbook", "log"),
    [
        ("backup", "backup.yml", "backup.log"),
        ("offsite", "offsite.yml", "offsite.log"),
        ("drill", "restore_drill.yml", "restore-drill.log"),
    ],
)
def test_each_job_runs_its_playbook_for_one_site_under_its_own_lock(home, name, playbook, log):
    run = job(home, "--job", name, "--limit", "lab-south", "--inventory", "/etc/sites.yml")
    assert run.returncode == 0, run.stderr
    argv = (home / "argv").read_text().splitlines()
    assert argv[:4] == ["-i", "/etc/sites.yml", "--limit", "lab-south"]
    assert argv[4] == os.path.join(REPO, "playbooks", playbook)
    assert (argv[5:] == ["-e", "datasafe_backup_kind=scheduled"]) == (name == "backup")
    assert ".datasafe-%s-job-lab-south.lock" % name in (home / "home").read_text().split()
    text = (home / log).read_text()
    assert "datasafe %s job started (site lab-south)" % name in text
    assert "datasafe %s job finished OK (site lab-south)" % name in text


def test_without_limit_the_backup_keeps_its_lock_and_log(home):
    assert job(home).returncode == 0
    assert "--limit" not in (home / "argv").read_text().split()
    assert ".datasafe-backup-job.lock" in (home / "home").read_text().split()
    assert "datasafe backup job finished OK" in (home / "backup.log").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--job", "vacuum"], "unknown --job 'vacuum': backup, offsite or drill"),
        (["--limit", ""], "--limit wants an inventory host name"),
        (["--limit", "--job"], "--limit wants an inventory host name"),
    ],
)
def test_bad_options_are_refused_and_nothing_runs(home, args, message):
    run = job(home, *args)
    assert run.returncode == 2 and message in run.stderr
    assert not (home / "argv").exists()
