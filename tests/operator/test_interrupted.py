"""An interrupted safe update leaves no stack down and no lock for six hours.

Real ansible-playbook runs of playbooks/safe_update.yml are killed (their whole process group,
as a lost session or Ctrl-C does) with SIGKILL and SIGINT at every phase of the update (see
UPDATE_PHASES): with the lock just taken (preflight, plan), while the pre-change backup is
written, after it (restore point, "About to", pull, build), during ``down``, between ``down`` and
``up``, with the database started alone, with the application started but not yet verified,
inside the rollback of a release that failed after ``down`` (the lock's phase ``rollback``), and
after the verified ``up`` (the change log's "completed", the release). In between, status names
the interrupted run, its phase, what state the stack is in and what to do. The next run (a safe
update; for the rollback also a restore, in a case of its own) finds the lock of
a run whose process is gone, takes it over (keeping the record, writing the change log), finishes
an interrupted rollback (the code back at the revision before the update, every image name back
at the image that ran before), brings a stack left down back up the verified way (database
alone, counts against those before down, then the application, health, stack check), and
completes its own update with every row there.
"""

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.request

import pytest
from ansible.module_utils.datasafe import backup, lock
from opbed import REPO, home_of, play, playbook_argv, playbook_env

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
        time.sleep(0.1)  # some predicates ask docker: a faster poll only adds load
    raise AssertionError("timed out waiting for %s" % what)


# A Ctrl-C that lands while ansible-playbook forks a worker is lost: its SIGINT handler raises
# KeyboardInterrupt inside Python's at-fork callback, which Python reports ("Exception ignored in:
# <function _releaseLock>") and drops, and the run goes on (seen once in a clean-clone run: the
# restore went on to the end). An operator presses Ctrl-C again; so does kill_playbook_at, as long
# as the run has not ended and the moment it was sent for still holds.
SIGINT_AGAIN_AFTER = 1.0


def kill_playbook_at(inventory, args, sig, condition, what, log_path):
    """Run ``ansible-playbook`` with ``args`` (the playbook, then its options) in a process group of
    its own, as an operator's session would, and kill the whole group with ``sig`` once
    ``condition()`` holds (SIGINT again while the run goes on and ``condition()`` still holds); its
    output goes to ``log_path``."""
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            playbook_argv(inventory, *args),
            env=playbook_env(home_of(inventory)),
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_for(condition, what, proc=proc)
            os.killpg(proc.pid, sig)
            for _ in range(10 if sig == signal.SIGINT else 0):
                try:
                    proc.wait(timeout=SIGINT_AGAIN_AFTER)
                    break
                except subprocess.TimeoutExpired:
                    if not condition():
                        break
                    os.killpg(proc.pid, sig)
            proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


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

    def reached():
        if (lock.read(path) or {}).get("phase") != "down":
            return False  # docker is asked only once the lock says down
        running = lms.running()
        return len(running) < 2 if moment == "during down" else running == []

    kill_playbook_at(
        inventory, ["safe_update.yml"], sig, reached, "the phase 'down', " + moment, tmp_path / "killed-run.log"
    )
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


# -- every phase ----------------------------------------------------------------------------------
# Each phase: the signal, when it is reached (a predicate over what a test can see from outside:
# the lock's record, the containers, the backup directory, the change log, the checkout), extra
# arguments of the killed run, and whether the killed run leaves the stack down (then the next
# run must bring it back, verified) or up (then it must say "nothing to bring back"). Both
# moments of ``down`` are the two cases of the test above.


def _no_phase(seen):
    held = seen["held"]
    return bool(held) and "phase" not in held and not held.get("unreadable")


def _partial_backup(seen):
    folder = os.path.join(seen["home"], "backups")
    return _no_phase(seen) and os.path.isdir(folder) and bool(backup.leftover_partials(folder))


def _about_to(seen):
    log = os.path.join(seen["home"], "change-log.txt")
    return _no_phase(seen) and os.path.exists(log) and "About to update" in open(log).read()


def _database_alone(seen):
    if seen["held"].get("phase") != "down":
        return False
    running = seen["lms"].running()
    seen["all_stopped"] = seen.get("all_stopped") or running == []
    return seen["all_stopped"] and running == [seen["lms"].db]


def _app_started_unverified(seen):
    if seen["held"].get("phase") != "down":
        return False
    running = seen["lms"].running()
    seen["all_stopped"] = seen.get("all_stopped") or running == []
    return seen["all_stopped"] and running == sorted([seen["lms"].backend, seen["lms"].db])


def _rolling_back(seen):
    # The rollback records its phase in the lock before it touches anything (its first step).
    return seen["held"].get("phase") == "rollback"


# A release whose application cannot reach its database (its compose file names a database that
# does not exist): /health answers 503, so the update fails after down and rolls back. Only the
# compose file changes, so no build is needed; the old version comes back healthy.
BROKEN_RELEASE = ("docker-compose.prod.yml", "LMS_DB_NAME: lms_slncity\n", "LMS_DB_NAME: lms_slncity_missing\n")
# What its application leaves in the database's log while it tries to connect: the session's later
# verify runs (other test files share this stack) must know these error lines are this test's own.
BROKEN_RELEASE_NOISE = r'FATAL:\s+database "lms_slncity_missing" does not exist'


def git(where, *args):
    ident = ["-c", "user.name=datasafe-test", "-c", "user.email=test@datasafe.invalid"]
    proc = subprocess.run(["git", "-C", where, *ident, *args], capture_output=True, text=True, check=True)
    return proc.stdout.strip()


@contextlib.contextmanager
def released(lms, tmp_path, change):
    """Push ``change`` (path, old text, new text) as a release to the stack's origin; yields its
    revision (None without a change). Afterwards a revert is pushed, so the session's other cases
    pull a tree like the one they started from."""
    if change is None:
        yield None
        return
    dev = str(tmp_path / "dev")
    subprocess.run(["git", "clone", "-q", os.path.join(lms.root, "remote.git"), dev], check=True)
    path, old, new = change
    with open(os.path.join(dev, path)) as handle:
        text = handle.read()
    assert old in text, "the release's change no longer applies to %s" % path
    with open(os.path.join(dev, path), "w") as handle:
        handle.write(text.replace(old, new, 1))
    git(dev, "commit", "-q", "-am", "a release whose application cannot reach its database")
    git(dev, "push", "-q", "origin", "HEAD:main")
    try:
        yield git(dev, "rev-parse", "HEAD")
    finally:
        git(dev, "revert", "--no-edit", "HEAD")
        git(dev, "push", "-q", "origin", "HEAD:main")


UPDATE_PHASES = {
    # The lock is the first thing the update takes; preflight and plan follow at once.
    "preflight": (signal.SIGKILL, _no_phase, (), None),
    # pg_dump writes .<name>.partial; the next backup removes a dead one's partial file.
    "backup": (signal.SIGINT, _partial_backup, (), None),
    # After "About to update" (restore point, pull, build, the restart's check): the stack still serves.
    "pull-build": (signal.SIGKILL, _about_to, (), None),
    # down is over and stack_start has started the database alone (counting, before the application).
    "start-database": (signal.SIGKILL, _database_alone, (), "down"),
    # The application runs, health and the stack check are not done yet (the lock still says down).
    "health": (signal.SIGINT, _app_started_unverified, (), "down"),
    # A release that never answers 200 (BROKEN_RELEASE; the killed run waits 30 s for it): the
    # rescue rolls back, and is killed as soon as the lock says rollback, before or after its
    # git reset (either way the checkout and images must be put back by the next run).
    "rollback": (signal.SIGKILL, _rolling_back, ("-e", "datasafe_update_wait_timeout=30"), "rollback"),
    # The same, and the next run is a restore: it finishes the rollback's code and images the same
    # way, then restores (the newest verified backup: the killed update's own pre-change backup).
    "rollback-restore": (signal.SIGKILL, _rolling_back, ("-e", "datasafe_update_wait_timeout=30"), "rollback"),
    # The lock says up: the new version is verified; the change log and the release remain.
    "finish": (signal.SIGKILL, lambda seen: seen["held"].get("phase") == "up", (), "up"),
}
# The cases that push a release to the stack's origin first.
RELEASES = {"rollback": BROKEN_RELEASE, "rollback-restore": BROKEN_RELEASE}


def kill_update_at(lms, inventory, sig, reached, extra, log_path):
    """Start a safe update, kill its process group with ``sig`` once ``reached(seen)``; returns the lock left."""
    path = lock_path(lms, inventory)
    seen = {"lms": lms, "home": home_of(inventory)}

    def at_phase():
        seen["held"] = lock.read(path) or {}
        return reached(seen)

    kill_playbook_at(inventory, ["safe_update.yml", *extra], sig, at_phase, "the phase to kill at", log_path)
    left = lock.read(path)
    assert left and lock.owner_alive(left) is False, left
    return left


@pytest.mark.parametrize("phase", list(UPDATE_PHASES))
def test_an_update_killed_at_any_phase_is_told_by_status_and_recovered_by_the_next_run(lms, inventory, tmp_path, phase):
    if RELEASES.get(phase) is BROKEN_RELEASE:
        lms.log_noise.append(BROKEN_RELEASE_NOISE)
    with released(lms, tmp_path, RELEASES.get(phase)) as release:
        killed_and_recovered(lms, inventory, tmp_path, phase, release)


def killed_and_recovered(lms, inventory, tmp_path, phase, release):
    sig, reached, extra, expected = UPDATE_PHASES[phase]
    before = git(lms.app, "rev-parse", "HEAD")
    left = kill_update_at(lms, inventory, sig, reached, extra, tmp_path / "killed-run.log")
    recorded = left.get("phase")
    assert recorded == expected, left
    leaves_down = recorded in ("down", "rollback")
    if leaves_down:
        assert left["facts"]["counts_before"] == lms.seeded, left
    else:
        assert lms.running() == sorted([lms.backend, lms.db]) and health(lms) == 200  # never stopped
    if recorded == "rollback":
        assert left["facts"]["revision_before"] == before and release not in (None, before), left
        assert lms.compose_env["LMS_BACKEND_IMAGE"] in left["facts"]["images_before"], left
        # killed before its git reset (as a rule: the kill follows the lock's note at once) or after it
        assert git(lms.app, "rev-parse", "HEAD") in (release, before)

    # status, in between: red, naming the run, its phase, the stack's state and what to do
    proc = play(inventory, "status.yml")
    (tmp_path / "status.log").write_text(proc.stdout)
    assert proc.returncode != 0
    said = " ".join(proc.stdout.split())
    assert "change lock: an interrupted run was found: safe_update of %s" % lms.project in said
    assert "at phase %s" % (recorded or "before its first recorded phase") in said
    assert (
        "it was rolling back a failed update (to revision %s): the stack may be down and the checkout may still be "
        "the new, failed revision: the next safe_update finishes the rollback" % before[:12]
        if recorded == "rollback"
        else "the stack may be down: the next safe_update or restore brings it back up, verified"
        if leaves_down
        else "the stack was not stopped"
        if recorded is None
        else "the stack was verified up"
    ) in said, said[-3000:]
    assert (
        "the next safe_update takes it over, finishes the rollback and brings the stack back up (a restore takes it "
        "over too: it finishes the rollback's code and images, then restores)"
        if recorded == "rollback"
        else "the next safe_update or restore takes it over"
    ) in said

    if phase == "rollback-restore":
        restored_by_the_next_restore(lms, inventory, tmp_path, left, before)
        return
    recovery = ["-e", "datasafe_update_build=false"]
    if recorded == "rollback":
        # this update only finishes the rollback: the broken release is not pulled again
        recovery += ["-e", "datasafe_update_pull=false"]

    # the recovery the runbook names: the next safe update
    proc = play(inventory, "safe_update.yml", *recovery)
    (tmp_path / "recovery.log").write_text(proc.stdout)
    assert proc.returncode == 0, proc.stdout[-5000:]
    said = " ".join(proc.stdout.split())  # the callback wraps long lines
    assert "an interrupted run was found: safe_update of %s" % lms.project in said
    assert ("the stack is brought back up now, verified" if leaves_down else "nothing to bring back") in said
    assert lms.counts() == lms.seeded  # not a row lost
    assert lms.running() == sorted([lms.backend, lms.db]) and health(lms) == 200
    if recorded == "rollback":
        assert "it stopped inside the rollback of a failed update: the rollback is finished now" in said
        assert git(lms.app, "rev-parse", "HEAD") == before  # the old release: it was a failed update
    assert lock.read(lock_path(lms, inventory)) is None  # released at the end of the update
    assert json.loads(open(lock_path(lms, inventory) + ".interrupted").read())["pid"] == left["pid"]
    folder = os.path.join(home_of(inventory), "backups")
    assert backup.leftover_partials(folder) == []  # a killed backup's partial file is gone
    changelog = open(os.path.join(home_of(inventory), "change-log.txt")).read()
    assert "Released the lock of an interrupted run (its process is gone)" in changelog
    assert "Change completed successfully" in changelog.rstrip().splitlines()[-1]
    if recorded == "rollback":
        assert "Finished the interrupted rollback of a failed update of %s: the code is back at %s" % (
            lms.project,
            before,
        ) in " ".join(changelog.split())


def restored_by_the_next_restore(lms, inventory, tmp_path, left, before):
    """The run after an update killed inside its rollback is a restore: it takes the lock over,
    finishes the rollback's code and images (the checkout back at the revision before the update),
    restores the newest verified backup and brings the previous version up with every row."""
    proc = play(inventory, "restore.yml", "-e", "datasafe_restore_confirm=lms_slncity")
    (tmp_path / "recovery.log").write_text(proc.stdout)
    assert proc.returncode == 0, proc.stdout[-5000:]
    said = " ".join(proc.stdout.split())
    assert "an interrupted run was found: safe_update of %s" % lms.project in said
    assert "it stopped inside the rollback of a failed update: the rollback of the code is finished now" in said
    assert git(lms.app, "rev-parse", "HEAD") == before  # the old release: it was a failed update
    assert lms.counts() == lms.seeded  # not a row lost
    assert lms.running() == sorted([lms.backend, lms.db]) and health(lms) == 200
    assert lock.read(lock_path(lms, inventory)) is None  # released at the end of the restore
    assert json.loads(open(lock_path(lms, inventory) + ".interrupted").read())["pid"] == left["pid"]
    changelog = " ".join(open(os.path.join(home_of(inventory), "change-log.txt")).read().split())
    assert "Released the lock of an interrupted run (its process is gone)" in changelog
    assert (
        "finished the interrupted rollback of a failed update of %s: the code is back at %s"
        % (
            lms.project,
            before,
        )
        in changelog
    )
