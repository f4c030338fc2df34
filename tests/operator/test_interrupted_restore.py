"""An interrupted restore leaves no stack down and no lock for six hours.

Real ansible-playbook runs of playbooks/restore.yml are killed (their whole process group, as a
lost session or Ctrl-C does) at the two phases that leave different things behind: SIGKILL with
the application stopped and the old database still live, SIGINT once the restored database is
swapped in. The next run (a safe update, a restore; status in between) finds the lock of a run
whose process is gone, says what state the stack is in, takes the lock over (recorded in the
change log), brings the stack back up the verified way, and no row is lost.
"""

import json
import os
import signal

import pytest
from ansible.module_utils.datasafe import backup, lock
from opbed import home_of, play
from test_interrupted import health, kill_playbook_at, lock_path

CONFIRM = ("-e", "datasafe_restore_confirm=lms_slncity")


@pytest.fixture(scope="module")
def inventory(lms, tmp_path_factory):
    path = lms.inventory(
        tmp_path_factory.mktemp("restore-kill") / "hosts.yml",
        datasafe_update_build=False,
        datasafe_update_wait_timeout=900,
        # the restore waits health_retries * health_delay + 60 s for the application: the shared
        # 2-core machine can take minutes to start the backend (seen: no answer within 120 s)
        datasafe_health_retries=840,
    )
    proc = play(path, "backup.yml")  # the backup the restores restore
    assert proc.returncode == 0, proc.stdout[-4000:]
    return path


def kill_restore(lms, inventory, sig, reached, what, log_path):
    """Start a confirmed restore, kill its process group with ``sig`` once ``reached(lock)``."""
    path = lock_path(lms, inventory)
    kill_playbook_at(inventory, ["restore.yml", *CONFIRM], sig, lambda: reached(lock.read(path) or {}), what, log_path)
    left = lock.read(path)
    assert left and left["phase"] == "down" and lock.owner_alive(left) is False, left
    assert left["facts"]["restore"] is True
    return left


def failure(proc):
    """The failed task's message (the output's tail is mostly the application's access log)."""
    at = proc.stdout.find("fatal:")
    return proc.stdout[at : at + 4000] if at >= 0 else proc.stdout[-4000:]


def changelog(inventory):
    return open(os.path.join(home_of(inventory), "change-log.txt")).read()


def test_a_restore_killed_with_the_application_stopped_is_brought_back_by_the_next_update(lms, inventory, tmp_path):
    left = kill_restore(
        lms,
        inventory,
        signal.SIGKILL,
        lambda held: held.get("phase") == "down" and lms.running() == [lms.db],
        "the application stopped by the restore",
        tmp_path / "killed-restore.log",
    )
    assert left["facts"]["swapped"] is False
    assert lms.running() == [lms.db]  # the application is down

    proc = play(inventory, "status.yml")  # status sees it, and says what state it is in
    assert proc.returncode != 0
    text = " ".join(proc.stdout.split())
    assert "an interrupted run was found: restore of lms_slncity" in text
    assert "the restored database was not swapped in yet, the database is the one from before the restore" in text

    proc = play(inventory, "safe_update.yml", "-e", "datasafe_update_build=false")
    assert proc.returncode == 0, failure(proc)
    assert "it was a restore that had stopped the application; the database is still the one from before" in " ".join(
        proc.stdout.split()
    )
    assert "the stack is brought back up now, verified" in proc.stdout
    assert lms.counts() == lms.seeded  # not a row lost
    assert lms.running() == sorted([lms.backend, lms.db]) and health(lms) == 200
    assert lock.read(lock_path(lms, inventory)) is None
    log = changelog(inventory)
    assert "Released the lock of an interrupted run (its process is gone): an interrupted run was found: restore" in log
    assert "back up after the interrupted run: every critical table has at least the rows" in log


def test_a_restore_interrupted_after_its_swap_is_finished_by_the_next_restore(lms, inventory, tmp_path):
    left = kill_restore(
        lms,
        inventory,
        signal.SIGINT,
        lambda held: held.get("phase") == "down" and (held.get("facts") or {}).get("swapped") is True,
        "the restored database swapped in",
        tmp_path / "interrupted-restore.log",
    )
    assert left["facts"]["counts_before"] == lms.seeded  # what the restored database must keep
    assert lms.counts() == lms.seeded  # the swapped-in database has every row

    proc = play(inventory, "restore.yml", *CONFIRM)
    assert proc.returncode == 0, failure(proc)
    assert "the restored database was swapped in, the one before it kept as lms_slncity_before_restore_" in " ".join(
        proc.stdout.split()
    )
    assert lms.counts() == lms.seeded
    assert lms.running() == sorted([lms.backend, lms.db]) and health(lms) == 200
    assert lock.read(lock_path(lms, inventory)) is None
    assert json.loads(open(lock_path(lms, inventory) + ".interrupted").read())["pid"] == left["pid"]
    assert "Released the lock of an interrupted run (its process is gone)" in changelog(inventory)


# -- every phase ----------------------------------------------------------------------------------
# Each phase: the signal, when it is reached (a predicate over what a test can see from outside:
# the lock's record and facts, the containers, the backup directory, the server's databases), and
# the recovery the runbook names (docs/operations.md: the next safe update or the next restore;
# both are used across the phases). The two tests above are the phases "safety backup begun, the
# application stopped" (SIGKILL, then the next update) and "swapped" (SIGINT, then the next
# restore).


def _about_to_restore(home):
    try:
        with open(os.path.join(home, "change-log.txt")) as handle:
            return handle.read().count("About to restore")
    except FileNotFoundError:
        return 0


def _beside_loading(seen):
    # The lock is taken, no phase recorded yet, and "About to restore" is written: the restore
    # beside was launched just before it (in the background; it loads on after the kill, into a
    # database of its own that nothing uses). From here to the phase "down" are a few tasks only,
    # so this reads files, never asks the server.
    held = seen["held"]
    if not held or "phase" in held or held.get("unreadable"):
        return False
    return _about_to_restore(seen["home"]) > seen["announced"]


def _stopping(seen):
    held = seen["held"]
    facts = held.get("facts") or {}
    stopping = held.get("phase") == "down" and facts.get("counts_before") == {}
    return stopping and seen["lms"].backend in seen["lms"].running()


def _safety_backup_writing(seen):
    held = seen["held"]
    folder = os.path.join(seen["home"], "backups")
    return (
        held.get("phase") == "down"
        and (held.get("facts") or {}).get("counts_before") == {}
        and bool(backup.leftover_partials(folder))
    )


def _counted_not_swapped(seen):
    facts = seen["held"].get("facts") or {}
    return seen["held"].get("phase") == "down" and bool(facts.get("counts_before")) and facts.get("swapped") is False


def _starting_after_swap(seen):
    facts = seen["held"].get("facts") or {}
    return (
        seen["held"].get("phase") == "down"
        and facts.get("swapped") is True
        and seen["lms"].backend in seen["lms"].running()
    )


RESTORE_PHASES = {
    # plan done, lock taken; the restore beside loads in the background (it runs on: never used)
    "beside-load": (signal.SIGKILL, _beside_loading, "restore.yml", "up"),
    # the lock says down (no counts yet) and the application is being stopped
    "stop": (signal.SIGINT, _stopping, "safe_update.yml", "down"),
    # the safety backup of the current database is being written (.partial)
    "safety-backup": (signal.SIGKILL, _safety_backup_writing, "restore.yml", "down"),
    # counted by the safety backup; waiting for the verified restore beside, not swapped yet
    "verify-beside": (signal.SIGKILL, _counted_not_swapped, "safe_update.yml", "down"),
    # swapped in; the application is started but not verified yet
    "start": (signal.SIGKILL, _starting_after_swap, "safe_update.yml", "down"),
    # the stack is verified up (change log and release remain)
    "finish": (signal.SIGKILL, lambda seen: seen["held"].get("phase") == "up", "restore.yml", "up"),
}


@pytest.mark.parametrize("phase", list(RESTORE_PHASES))
def test_a_restore_killed_at_any_phase_is_told_by_status_and_recovered(lms, inventory, tmp_path, phase):
    sig, reached, recovery, state = RESTORE_PHASES[phase]
    path, home = lock_path(lms, inventory), home_of(inventory)
    seen = {"lms": lms, "home": home, "announced": _about_to_restore(home)}
    released = changelog(inventory).count("Released the lock of an interrupted run")

    def at_phase():
        seen["held"] = lock.read(path) or {}
        return reached(seen)

    args = ["restore.yml", *CONFIRM]
    kill_playbook_at(inventory, args, sig, at_phase, "the phase %s" % phase, tmp_path / "killed-restore.log")
    left = lock.read(path)
    assert left and lock.owner_alive(left) is False, left
    assert left.get("phase") == {"beside-load": None, "finish": "up"}.get(phase, "down"), left
    if state == "up":
        assert lms.running() == sorted([lms.backend, lms.db]) and health(lms) == 200  # never stopped
    else:
        assert left["facts"]["restore"] is True

    proc = play(inventory, "status.yml")  # in between: red, naming the run, its phase and what to do
    (tmp_path / "status.log").write_text(proc.stdout)
    assert proc.returncode != 0
    said = " ".join(proc.stdout.split())
    assert "change lock: an interrupted run was found: restore of lms_slncity" in said
    assert "at phase %s" % (left.get("phase") or "before its first recorded phase") in said
    if state == "down":
        assert "the stack may be down: the next safe_update or restore brings it back up, verified" in said
    assert "the next safe_update or restore takes it over" in said

    args = CONFIRM if recovery == "restore.yml" else ("-e", "datasafe_update_build=false")
    proc = play(inventory, recovery, *args)
    (tmp_path / "recovery.log").write_text(proc.stdout)
    assert proc.returncode == 0, failure(proc)
    said = " ".join(proc.stdout.split())  # the callback wraps long lines
    assert "an interrupted run was found: restore of lms_slncity" in said
    if recovery == "safe_update.yml":
        assert ("the stack is brought back up now, verified" if state == "down" else "nothing to bring back") in said
    assert lms.counts() == lms.seeded  # not a row lost
    assert lms.running() == sorted([lms.backend, lms.db]) and health(lms) == 200
    assert lock.read(path) is None
    assert json.loads(open(path + ".interrupted").read())["pid"] == left["pid"]
    assert backup.leftover_partials(os.path.join(home, "backups")) == []
    assert changelog(inventory).count("Released the lock of an interrupted run") == released + 1
