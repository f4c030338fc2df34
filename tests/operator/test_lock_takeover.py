"""The lock engine's take-over of an interrupted run's lock (module_utils/datasafe/lock.py), with
real processes: one that has ended (its pid and start time no longer run) and one still running."""

import json
import os
import subprocess

import pytest
from ansible.module_utils.datasafe import lock


def record_of(proc, **extra):
    owner = {"pid": proc.pid, "pid_start": lock.pid_start(proc.pid), "host": os.uname().nodename}
    return dict(lock.owner_record("safe_update of lms", "theirs", owner=owner), **extra)


def test_a_dead_owners_lock_is_taken_over_and_kept_aside(tmp_path):
    path = str(tmp_path / "lms.lock")
    ended = subprocess.Popen(["true"])
    held = record_of(ended, phase="down", facts={"counts_before": {"users": 3}})
    ended.wait()
    with open(path, "w") as handle:
        json.dump(held, handle)
    assert lock.owner_alive(held) is False
    mine = lock.FileLock(path, "mine", owner={"pid": os.getpid(), "pid_start": lock.pid_start(os.getpid())})
    with pytest.raises(lock.LockHeld):  # without take_over_dead it is refused, as before
        mine.take()
    assert mine.interrupted is None
    assert mine.take(check_mode=True, take_over_dead=True) is True
    assert lock.read(path) == held  # check mode moved nothing
    assert mine.take(take_over_dead=True) is True
    assert mine.interrupted == held and lock.read(path + ".interrupted") == held
    assert lock.read(path)["token"] == "mine" and lock.read(path)["pid"] == os.getpid()
    assert "at phase down" in lock.describe_interrupted(held, path)
    mine.note("down", {"counts_before": {"users": 4}})
    assert lock.read(path)["phase"] == "down" and lock.read(path)["facts"] == {"counts_before": {"users": 4}}
    with pytest.raises(lock.LockHeld, match="does not hold it"):
        lock.FileLock(path, "other").note("up")


def test_a_running_owners_lock_is_never_taken_over(tmp_path):
    path = str(tmp_path / "lms.lock")
    running = subprocess.Popen(["sleep", "60"])
    try:
        with open(path, "w") as handle:
            json.dump(record_of(running), handle)
        mine = lock.FileLock(path, "mine")
        with pytest.raises(lock.LockHeld, match="another run is in progress"):
            mine.take(take_over_dead=True)
        assert mine.interrupted is None and lock.read(path)["token"] == "theirs"
    finally:
        running.kill()
        running.wait()


@pytest.mark.parametrize(
    "phase, facts, said",
    [
        (
            None,
            None,
            "at phase before its first recorded phase; it ended before anything was stopped: the stack was not stopped",
        ),
        (
            "down",
            None,
            "at phase down; the stack may be down: the next safe_update or restore brings it back up, verified",
        ),
        ("up", None, "at phase up; the stack was verified up: nothing was left down"),
        (
            "down",
            {"restore": True, "swapped": False},
            "(a restore: the application was stopped; the restored database was not swapped in yet, the database is "
            "the one from before the restore); the stack may be down: the next safe_update or restore brings it back",
        ),
        (
            "rollback",
            {"revision_before": "0123456789abcdef0123"},
            "at phase rollback; it was rolling back a failed update (to revision 0123456789ab): the stack may be down "
            "and the checkout may still be the new, failed revision: the next safe_update finishes the rollback (the "
            "code back at that revision, every image name back at the image that ran before) and brings the stack "
            "up, verified",
        ),
    ],
    ids=["no-phase", "down", "up", "restore-down", "rollback"],
)
def test_an_interrupted_run_is_described_with_the_state_its_phase_left(tmp_path, phase, facts, said):
    """What status and the next run print: the phase, and what state it left the stack in."""
    ended = subprocess.Popen(["true"])
    extra = {k: v for k, v in (("phase", phase), ("facts", facts)) if v is not None}
    held = record_of(ended, **extra)
    ended.wait()
    assert said in lock.describe_interrupted(held, str(tmp_path / "lms.lock"))


def test_an_interrupted_rollback_is_left_to_the_safe_update_by_a_run_that_refuses_it(tmp_path):
    """A run that cannot finish a phase (refuse_phases; here a run named "restore", as the restore
    was before it learned to finish a rollback's code and images) neither takes over nor moves the
    interrupted run's lock; it names the run that finishes it. Another phase is taken over as before."""
    path = str(tmp_path / "lms.lock")
    ended = subprocess.Popen(["true"])
    held = record_of(ended, phase="rollback", facts={"revision_before": "abc", "counts_before": {"users": 3}})
    ended.wait()
    with open(path, "w") as handle:
        json.dump(held, handle)
    restore = lock.FileLock(path, "mine", purpose="restore of lms_slncity in lms")
    for check_mode in (True, False):
        with pytest.raises(lock.LockHeld) as refused:
            restore.take(check_mode=check_mode, take_over_dead=True, refuse_phases=("rollback",))
        said = str(refused.value)
        assert "at phase rollback" in said and "This restore of lms_slncity in lms cannot finish it" in said
        assert "run the safe update (playbooks/safe_update.yml) first" in said
        assert lock.read(path) == held and not os.path.exists(path + ".interrupted")  # left as it is
        assert restore.interrupted is None
    # the module's way in: the same refusal through lock.task
    params = dict(path=path, token="mine", purpose="restore", stale_after=21600, owner=None, state="present")
    params.update(phase=None, facts={}, wait=0, take_over_dead=True, refuse_phases=["rollback"])
    with pytest.raises(lock.LockHeld, match="cannot finish it"):
        lock.task(params)
    assert lock.read(path) == held
    # the safe update (no refuse_phases) takes it over and finishes it
    update = lock.FileLock(path, "update")
    assert update.take(take_over_dead=True) is True and update.interrupted == held
    assert lock.read(path + ".interrupted") == held
