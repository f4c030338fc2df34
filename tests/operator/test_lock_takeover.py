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
