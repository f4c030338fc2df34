"""playbooks/status.yml: am I protected right now? Real ansible-playbook runs against the package's
throwaway deployment: red with nothing done, green after a real backup, off-site copy (a directory
target) and restore drill, red again for a stale backup and for a lock an interrupted run left."""

import json
import os
import subprocess

import pytest
from ansible.module_utils.datasafe import lock
from opbed import home_of, play


@pytest.fixture(scope="module")
def work(lms, tmp_path_factory):
    root = tmp_path_factory.mktemp("status")
    (root / "nas").mkdir()
    target = {"name": "nas", "type": "dir", "path": str(root / "nas"), "allow_same_filesystem": True}
    return {"inventory": lms.inventory(root / "hosts.yml", datasafe_offsite_targets=[target])}


def not_protected(output):
    assert "NOT PROTECTED" in output, output[-4000:]
    reason = output.rindex("NOT PROTECTED")
    assert reason > output.rindex("change lock ")  # the table first, the reasons last
    return " ".join(output[reason:].split("PLAY RECAP")[0].replace("''", "'").split())


def test_nothing_done_yet_is_red_naming_each_part(work):
    proc = play(work["inventory"], "status.yml")
    assert proc.returncode != 0
    reason = not_protected(proc.stdout)
    assert "backup: no verified backup of lms_slncity" in reason
    assert "off-site copy: never ran: playbooks/offsite.yml" in reason
    assert "restore drill: never ran: playbooks/restore_drill.yml" in reason
    assert "change lock" not in reason  # free


def test_a_backup_copied_off_site_and_drilled_is_green_until_it_is_stale(work):
    for playbook in ("backup.yml", "offsite.yml", "restore_drill.yml"):
        proc = play(work["inventory"], playbook)
        assert proc.returncode == 0, playbook + proc.stdout[-4000:]
    proc = play(work["inventory"], "status.yml")
    assert proc.returncode == 0, proc.stdout[-4000:]
    for line in (
        "backup         OK  lms_backup_",
        "off-site copy  OK  ok ",
        "restore drill  OK  ok ",
        "change lock    OK",
    ):
        assert line in proc.stdout, line
    proc = play(work["inventory"], "status.yml", "-e", "datasafe_status_backup_max_age=0")
    assert proc.returncode != 0
    assert "older than 0 s: the nightly backup is not running" in not_protected(proc.stdout)


def test_a_lock_left_by_an_interrupted_run_is_red(lms, work):
    path = os.path.join(home_of(work["inventory"]), ".datasafe", "%s.lock" % lms.project)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    ended = subprocess.Popen(["true"])
    owner = {"pid": ended.pid, "pid_start": lock.pid_start(ended.pid), "host": os.uname().nodename}
    ended.wait()
    with open(path, "w") as handle:
        json.dump(dict(lock.owner_record("safe_update of %s" % lms.project, "t", owner=owner), phase="down"), handle)
    try:
        proc = play(work["inventory"], "status.yml")
        assert proc.returncode != 0
        reason = not_protected(proc.stdout)
        assert "change lock: an interrupted run was found: safe_update of %s" % lms.project in reason
        assert "at phase down" in reason
    finally:
        os.unlink(path)
