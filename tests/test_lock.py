"""lock.py, the one lock engine: the file lock run_lock takes across tasks, the flock a backup
run and the nightly job hold for their lifetime, and the owner record both write."""

import os
import signal
import subprocess
import sys
import time

import pytest
from ansible.module_utils.datasafe import lock
from fakes import FakeClock

LOCK_PY = lock.__file__


def test_a_file_lock_is_taken_once_per_token_and_released_only_by_its_token(tmp_path):
    path = str(tmp_path / "d" / "lms.lock")
    mine, theirs = lock.FileLock(path, "t1", "safe_update"), lock.FileLock(path, "t2", "restore")
    assert mine.take() is True and mine.take() is False  # taken, then already ours
    holder = lock.read(path)
    assert holder["token"] == "t1" and holder["purpose"] == "safe_update" and holder["pid"] == os.getpid()
    assert holder["pid_start"] == lock.pid_start(os.getpid()) and lock.owner_alive(holder) is True
    with pytest.raises(lock.LockHeld, match="another run is in progress: safe_update holds the lock") as held:
        theirs.take()
    assert held.value.holder["token"] == "t1"
    with pytest.raises(lock.LockHeld, match="not releasing"):
        theirs.release()
    assert os.path.exists(path)
    assert mine.release() is True and not os.path.exists(path) and mine.release() is False


def test_check_mode_takes_and_releases_nothing(tmp_path):
    path = str(tmp_path / "lms.lock")
    assert lock.FileLock(path, "t1").take(check_mode=True) is True and not os.path.exists(path)
    lock.FileLock(path, "t1").take()
    assert lock.FileLock(path, "t1").release(check_mode=True) is True and os.path.exists(path)


def test_a_held_file_lock_is_waited_for_then_refused_and_an_old_one_called_stale(tmp_path):
    path = str(tmp_path / "lms.lock")
    lock.FileLock(path, "t1", "safe_update").take()
    clock = FakeClock()
    with pytest.raises(lock.LockHeld) as held:
        lock.FileLock(path, "t2", stale_after=0).take(wait=5, sleep=clock.sleep, clock=clock)
    assert clock.now >= 5 and "probably stale" in str(held.value)


def test_a_dead_owner_is_detected_by_pid_and_start_time():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    record = lock.owner_record("x", pid=child.pid)
    assert lock.owner_alive(record) is True
    child.wait()
    assert lock.owner_alive(record) is False
    assert lock.owner_alive(dict(record, pid=os.getpid())) is False  # a reused pid with another start time
    assert lock.owner_alive(dict(record, host="elsewhere")) is None


def test_a_process_lock_names_its_holder_and_dies_with_it(tmp_path):
    path = str(tmp_path / "b" / ".datasafe-backup.lock")
    holder = subprocess.Popen(
        [
            sys.executable,
            LOCK_PY,
            "--purpose",
            "backup",
            path,
            "--",
            sys.executable,
            "-c",
            "import time; time.sleep(60)",
        ],
        start_new_session=True,  # its own process group: the kill below ends the holder and its command
    )
    try:
        for _ in range(200):
            if (lock.read(path) or {}).get("pid") == holder.pid:
                break
            time.sleep(0.05)
        with pytest.raises(lock.LockHeld, match="backup holds the lock .* pid %d" % holder.pid):
            lock.ProcessLock(path, "second").acquire()
    finally:
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait()
    # the kernel released the flock with the process; the file is still there, with its record.
    # Released at the holder's exit, which a loaded machine may finish a moment after wait()
    # returns for the group leader: a short wait, never a lock that stays held.
    with lock.ProcessLock(path, "second").acquire(timeout=10) as taken:
        assert lock.read(path)["purpose"] == "second" and taken.fd is not None
    assert lock.read(path) == {"unreadable": True, "text": ""}


def test_the_command_form_exits_75_while_held_and_passes_the_status_through(tmp_path):
    path = str(tmp_path / "job.lock")
    code = [sys.executable, "-c", "import sys; sys.exit(7)"]
    assert subprocess.run([sys.executable, LOCK_PY, path, "--"] + code, check=False).returncode == 7
    with lock.ProcessLock(path, "the test"):
        proc = subprocess.run(
            [sys.executable, LOCK_PY, "--conflict-exit=75", path, "--"] + code, capture_output=True, text=True
        )
    assert proc.returncode == 75 and "the test holds the lock" in proc.stderr
    bad = subprocess.run([sys.executable, LOCK_PY, path], capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "usage" in bad.stderr


def test_the_run_lock_module_takes_refuses_and_releases_through_the_engine(tmp_path):
    from harness import run_module

    path = str(tmp_path / "lms.lock")
    assert run_module("run_lock", path=path, token="a", purpose="safe_update", check_mode=True)["changed"] is True
    assert not os.path.exists(path)
    assert run_module("run_lock", path=path, token="a", purpose="safe_update")["changed"] is True
    assert run_module("run_lock", path=path, token="a")["changed"] is False
    other = run_module("run_lock", path=path, token="b", purpose="restore")
    assert other["failed"] and "another run is in progress" in other["msg"] and other["holder"]["token"] == "a"
    assert run_module("run_lock", path=path, token="b", state="absent")["failed"] and os.path.exists(path)
    assert run_module("run_lock", path=path, token="a", state="absent")["changed"] is True
    assert not os.path.exists(path)


def test_a_crontab_edit_waits_for_another_then_names_it(tmp_path, monkeypatch):
    """lock.crontab_edit: the file the crontab role takes too; a live holder makes an edit wait, then refuse."""
    monkeypatch.setenv("HOME", str(tmp_path))
    path = tmp_path / ".datasafe-crontab.lock"
    with lock.crontab_edit("first edit"):
        assert lock.read(str(path))["purpose"] == "crontab edit: first edit"
        with pytest.raises(lock.LockHeld, match="crontab edit: first edit holds the lock"):
            with lock.crontab_edit("second edit", wait=0):
                pass
    assert not path.exists()  # released
    with lock.crontab_edit("check mode", check_mode=True):
        assert not path.exists()  # a dry run takes nothing
