"""An interrupted safe update leaves no stack down and no lock for six hours.

Real ansible-playbook runs of playbooks/safe_update.yml are killed (their whole process group,
as a lost session or Ctrl-C does) with SIGKILL and SIGINT, during ``down`` and between ``down``
and ``up``. The next run finds the lock of a run whose process is gone, takes it over (keeping
the record, writing the change log), brings the stack back up the verified way (database alone,
counts against those before down, then the application, health, stack check), and completes its
own update with every row there.
"""

import json
import os
import signal
import subprocess
import time
import urllib.request

import pytest
from ansible.module_utils.datasafe import lock
from opbed import home_of, play, playbook_argv, playbook_env

PHASE_TIMEOUT = 600  # generous: the machine is shared


@pytest.fixture
def inventory(lms, tmp_path):
    # build=false: the stack's images exist; the test is about the restart, not the build. The
    # shared 2-core machine can take minutes to start the backend: a generous wait.
    return lms.inventory(tmp_path / "hosts.yml", datasafe_update_build=False, datasafe_update_wait_timeout=900)


def lock_path(lms, inventory):
    return os.path.join(home_of(inventory), ".datasafe", "%s.lock" % lms.project)


def wait_for(condition, what, timeout=PHASE_TIMEOUT, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError("the run ended (rc %s) before %s" % (proc.returncode, what))
        time.sleep(0.05)
    raise AssertionError("timed out waiting for %s" % what)


def health(lms):
    with urllib.request.urlopen(lms.url, timeout=10) as response:  # noqa: S310  (loopback URL built here)
        return response.status


@pytest.mark.parametrize(
    "sig, moment",
    [
        (signal.SIGKILL, "during down"),
        (signal.SIGINT, "between down and up"),
    ],
    # both signals and both moments; each case costs an update and a half on a shared machine
    ids=["SIGKILL-during-down", "SIGINT-between-down-and-up"],
)
def test_an_update_killed_at_down_is_brought_back_up_verified_by_the_next_run(lms, inventory, tmp_path, sig, moment):
    path = lock_path(lms, inventory)
    log = open(tmp_path / "killed-run.log", "w")  # noqa: SIM115  (closed below)
    proc = subprocess.Popen(
        playbook_argv(inventory, "safe_update.yml"),
        env=playbook_env(home_of(inventory)),
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for(lambda: (lock.read(path) or {}).get("phase") == "down", "the phase 'down'", proc=proc)
        if moment == "during down":
            wait_for(lambda: len(lms.running()) < 2, "the first container to stop", proc=proc)
        else:
            wait_for(lambda: lms.running() == [], "every container stopped", proc=proc)
        os.killpg(proc.pid, sig)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
    left = lock.read(path)
    assert left and left["phase"] == "down" and lock.owner_alive(left) is False, left
    assert len(lms.running()) < 2  # the interrupted run left the stack (partly) down

    proc = play(inventory, "safe_update.yml", "-e", "datasafe_update_build=false")
    assert proc.returncode == 0, proc.stdout[-5000:]
    assert "an interrupted run was found: safe_update of %s" % lms.project in proc.stdout
    assert "at phase down" in proc.stdout
    assert "the stack is brought back up now, verified" in proc.stdout
    assert lms.counts() == lms.seeded  # not a row lost
    assert lms.running() == sorted([lms.backend, lms.db]) and health(lms) == 200
    assert lock.read(path) is None  # released at the end of the update
    assert json.loads(open(path + ".interrupted").read())["pid"] == left["pid"]  # kept as evidence
    changelog = open(os.path.join(home_of(inventory), "change-log.txt")).read()
    assert "Released the lock of an interrupted run (its process is gone)" in changelog
    assert "back up after the interrupted run: every critical table has at least the rows" in changelog
    assert "Change completed successfully" in changelog.rstrip().splitlines()[-1]


def test_a_lock_whose_owner_still_runs_is_never_taken_over(lms, inventory):
    path = lock_path(lms, inventory)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    sleeper = subprocess.Popen(["sleep", "600"])
    try:
        owner = {"pid": sleeper.pid, "pid_start": lock.pid_start(sleeper.pid), "host": os.uname().nodename}
        with open(path, "w") as handle:
            json.dump(lock.owner_record("safe_update of %s" % lms.project, "someone-else", owner=owner), handle)
        proc = play(inventory, "safe_update.yml", "--check")
        assert proc.returncode != 0
        assert "another run is in progress" in proc.stdout and "pid %d" % sleeper.pid in proc.stdout
        assert lock.read(path)["token"] == "someone-else"  # untouched
    finally:
        sleeper.kill()
        sleeper.wait()
        os.unlink(path)
    assert lms.running() == sorted([lms.backend, lms.db])
