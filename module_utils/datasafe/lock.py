"""One change at a time: the one lock engine of datasafe.

Every lock file holds the same JSON owner record: who took it (``pid`` and that process's start
time ``pid_start``, so a reused pid is told apart from the owner, ``host``, ``user``), when
(``started``, ``epoch``) and for what (``purpose``, and the taker's ``token`` where there is
one). :func:`owner_alive` answers whether the recorded owner still runs. Two kinds of lock use
the record:

* :class:`FileLock`: the lock *is* the file, created with ``O_CREAT|O_EXCL`` and removed by
  its token's owner. It spans many processes (the ``run_lock`` module takes it in one task of
  a playbook and releases it in a later one), so a dead owner leaves it behind and it is
  reported, never broken silently.
* :class:`ProcessLock`: an exclusive ``flock`` on the file, held for the life of one process
  (a backup run, the nightly job) and released by the kernel when that process dies; the
  record says who holds it.

This file only uses the standard library, so it also runs as a command (the nightly job's
lock, see ``bin/datasafe-backup-job``)::

    python3 lock.py [--purpose TEXT] [--conflict-exit N] LOCKFILE -- COMMAND...

runs COMMAND while holding a ProcessLock on LOCKFILE and exits with its status, or exits N
(default 75, EX_TEMPFAIL) at once, naming the holder, when another process holds it.
"""

import contextlib
import datetime
import fcntl
import getpass
import json
import os
import socket
import subprocess
import sys
import time
import uuid

DEFAULT_STALE_AFTER = 21600

# The lock beside a user's crontab (in that user's home) that every datasafe edit of the crontab
# holds: crontab has no locking of its own, and one crontab may hold the entries of several stacks.
# roles/datasafe/tasks/crontab.yml takes the same file through the run_lock module (crontab_user).
CRONTAB_LOCK = "~%s/.datasafe-crontab.lock"

# The run a refusal names (run_lock's refuse_phases) for an interrupted run's phase: a rollback puts
# the previous code and images back, which the safe update does (and the restore, which finishes
# the same code and images: roles/datasafe/tasks/finish_rollback.yml, so it refuses no phase).
FINISHED_BY = {"rollback": "the safe update (playbooks/safe_update.yml)"}


def crontab_lock_path(user=None):
    """The lock beside ``user``'s crontab (this user's when None or empty), its ``~`` expanded."""
    return os.path.expanduser(CRONTAB_LOCK % (user or ""))


class LockHeld(Exception):
    """Another owner holds the lock; ``holder`` is its record (or None when it could not be read)."""

    def __init__(self, message, holder=None):
        super().__init__(message)
        self.holder = holder
        self.result = {"holder": holder}


def pid_start(pid):
    """The start time of process ``pid`` (clock ticks since boot, from /proc), or None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid, encoding="utf-8") as handle:
            stat = handle.read()
    except (OSError, ValueError):
        return None
    # the command name (field 2) may hold spaces and parentheses: count from the last ')'
    return int(stat.rpartition(")")[2].split()[19])


def _user():
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def owner_record(purpose, token=None, pid=None, owner=None):
    """The record a lock file holds for its owner (this process unless ``pid`` is given).

    ``owner`` ({pid, pid_start, host}) names a process elsewhere as the owner: a lock a playbook
    takes through a module belongs to the ansible-playbook process, not to the module's own
    short-lived process (see plugins/lookup/datasafe_run_owner.py)."""
    pid = pid or os.getpid()
    record = {
        "purpose": purpose,
        "pid": pid,
        "pid_start": pid_start(pid),
        "host": socket.gethostname(),
        "user": _user(),
        "started": datetime.datetime.now(datetime.timezone.utc).astimezone().isoformat(timespec="seconds"),
        "epoch": time.time(),
    }
    if owner:
        record.update({k: owner[k] for k in ("pid", "pid_start", "host") if owner.get(k) is not None})
    if token is not None:
        record["token"] = token
    return record


def owner_alive(holder):
    """True when the recorded owner process still runs, False when it is gone, None when unknown
    (another host, or a record without pid and start time)."""
    if not isinstance(holder, dict) or holder.get("host") != socket.gethostname():
        return None
    if not isinstance(holder.get("pid"), int) or holder.get("pid_start") is None:
        return None
    return pid_start(holder["pid"]) == holder["pid_start"]


def read(path):
    """The owner record in ``path``; None when there is no file, ``{"unreadable": True, "text": ...}``
    when it holds no record (an empty file, an older format)."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        return {"unreadable": True, "text": str(exc)}
    try:
        record = json.loads(text)
    except ValueError:
        record = None
    return record if isinstance(record, dict) else {"unreadable": True, "text": text.strip()}


def describe(holder, path, stale_after=DEFAULT_STALE_AFTER):
    """One line for an operator: who holds the lock at ``path`` since when, and whether it looks stale.

    ``stale_after`` None is for a flock (:class:`ProcessLock`): the kernel releases it with its
    process, so it is never stale and never to be removed by hand.
    """
    if not holder or holder.get("unreadable"):
        shown = (holder or {}).get("text") or "nothing readable"
        advice = "; if no change is running, remove it" if stale_after is not None else ""
        return "the lock %s is held, but its record cannot be read (%s)%s" % (path, shown, advice)
    age = time.time() - holder.get("epoch", time.time())
    text = "%s holds the lock %s since %s (%s@%s, pid %s, %d s ago)" % (
        holder.get("purpose"),
        path,
        holder.get("started"),
        holder.get("user"),
        holder.get("host"),
        holder.get("pid"),
        age,
    )
    if stale_after is not None and age > stale_after:
        text += "; it is older than %d s and probably stale: if no change is running, remove %s" % (stale_after, path)
    return text


def describe_interrupted(holder, path):
    """One line about a run found interrupted (its owner gone), or "" when there is none."""
    if not holder:
        return ""
    phase = holder.get("phase") or "before its first recorded phase"
    line = "an interrupted run was found: %s (pid %s on %s, started %s) ended without releasing %s, at phase %s" % (
        holder.get("purpose", "a change"),
        holder.get("pid"),
        holder.get("host"),
        holder.get("started"),
        path,
        phase,
    )
    facts = holder.get("facts") or {}
    if facts.get("restore") and phase == "down":
        line += " (a restore: the application was stopped; the restored database %s)" % (
            "was swapped in, the one before it kept as %s" % facts.get("kept_as")
            if facts.get("swapped")
            else "was not swapped in yet, the database is the one from before the restore"
        )
    # What state that leaves the stack in, phase by phase (the phases the update and the restore
    # record: none yet, "down" from just before anything stops, "rollback" from the first step of
    # an update's rollback, "up" once the stack is verified).
    if phase == "rollback":
        line += (
            "; it was rolling back a failed update (to revision %s): the stack may be down and the checkout "
            "may still be the new, failed revision: the next safe_update finishes the rollback (the code back "
            "at that revision, every image name back at the image that ran before) and brings the stack up, "
            "verified (every critical table counted against the counts recorded before the update); "
            "a restore finishes the code and images the same way, then restores"
            % (facts.get("revision_before") or "?")[:12]
        )
    elif phase == "down":
        line += (
            "; the stack may be down: the next safe_update or restore brings it back up, verified "
            "(every critical table counted against the counts recorded before down)"
        )
    elif phase == "up":
        line += "; the stack was verified up: nothing was left down"
    elif not holder.get("phase"):
        line += "; it ended before anything was stopped: the stack was not stopped"
    return line


class FileLock:
    """A lock that is a file, taken and released by a token (it outlives the process that took it)."""

    def __init__(self, path, token, purpose="change", stale_after=DEFAULT_STALE_AFTER, owner=None):
        self.path = os.path.expanduser(path)
        self.token, self.purpose, self.stale_after, self.owner = token, purpose, stale_after, owner
        # The record of a run whose owner was gone when this lock was taken over (take_over_dead).
        self.interrupted = None

    def take(
        self, wait=0, check_mode=False, sleep=time.sleep, clock=time.monotonic, take_over_dead=False, refuse_phases=()
    ):
        """Take the lock; returns True when taken now, False when this token already held it.

        Waits up to ``wait`` seconds for another holder, then raises :class:`LockHeld`. In check
        mode nothing is written (and True means "would take it"). With ``take_over_dead``, a lock
        whose recorded owner process is gone (:func:`owner_alive` False: same host, that pid with
        that start time no longer runs) is an interrupted run's: its record is kept beside the lock
        (``<path>.interrupted``), returned in :attr:`interrupted`, and the lock is taken. An owner
        that cannot be checked (another host, an old record) is never taken over. An interrupted
        run whose phase is in ``refuse_phases`` (one this run cannot finish) is not taken over
        either: :class:`LockHeld` names it and the run that finishes it, and the lock stays as it is.
        """
        deadline = clock() + max(0, wait)
        while True:
            holder = read(self.path)
            if holder is not None and holder.get("token") == self.token:
                return False
            if holder is not None and take_over_dead and owner_alive(holder) is False:
                if holder.get("phase") in refuse_phases:
                    raise LockHeld(
                        "refusing to start: %s. This %s cannot finish it: run %s first (it finishes the %s and "
                        "brings the stack up, verified), then this one if it is still needed; the lock is left as it is"
                        % (
                            describe_interrupted(holder, self.path),
                            self.purpose,
                            FINISHED_BY.get(holder.get("phase"), "the run that recorded it"),
                            holder.get("phase"),
                        ),
                        holder,
                    )
                self.interrupted = holder
                if check_mode:
                    return True
                self._set_aside(holder)
                continue
            if holder is None:
                if check_mode:
                    return True
                if self._create():
                    return True
                continue  # someone else took it between our read and our create
            if clock() >= deadline:
                raise LockHeld(
                    "refusing to start: another run is in progress: %s" % describe(holder, self.path, self.stale_after),
                    holder,
                )
            sleep(1)

    def _create(self):
        os.makedirs(os.path.dirname(self.path) or ".", mode=0o700, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(owner_record(self.purpose, self.token, owner=self.owner), handle)
            handle.flush()
            os.fsync(handle.fileno())
        return True

    def _set_aside(self, holder):
        """Move a dead owner's lock to ``<path>.interrupted`` (only if it is still that record)."""
        aside = self.path + ".interrupted"
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return  # another run took it over first; the loop reads again
        if read(aside) != holder:  # someone replaced the lock between our read and the rename
            os.rename(aside, self.path)
            raise LockHeld("refusing to start: the lock %s changed while it was read" % self.path, read(self.path))

    def note(self, phase, facts=None, check_mode=False):
        """Record the phase this token's run is in (and ``facts`` for whoever finds it interrupted),
        replacing the lock file atomically; the lock is never absent meanwhile."""
        holder = read(self.path)
        if holder is None or holder.get("token") != self.token:
            raise LockHeld("not noting phase %r in %s: this run does not hold it" % (phase, self.path), holder)
        if check_mode:
            return True
        record = dict(holder, phase=phase, phase_at=time.time())
        if facts:
            record["facts"] = dict(holder.get("facts") or {}, **facts)
        tmp = "%s.%d.tmp" % (self.path, os.getpid())
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(record, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(tmp, self.path)
        return True

    def release(self, check_mode=False):
        """Remove the lock when this token holds it; returns whether it was (or would be) removed."""
        holder = read(self.path)
        if holder is None:
            return False
        if holder.get("token") != self.token:
            raise LockHeld("not releasing %s: another run holds it" % self.path, holder)
        if not check_mode:
            os.unlink(self.path)
        return True


@contextlib.contextmanager
def crontab_edit(purpose, user=None, wait=120, check_mode=False):
    """Hold the lock beside ``user``'s crontab (this user's when None) while the block edits it;
    waits up to ``wait`` seconds for another edit, then raises :class:`LockHeld` naming the holder.
    A holder whose process is gone (an interrupted run) is taken over. Check mode takes nothing."""
    if check_mode:
        yield
        return
    held = FileLock(crontab_lock_path(user), uuid.uuid4().hex, purpose="crontab edit: %s" % purpose)
    held.take(wait=wait, take_over_dead=True)
    try:
        yield
    finally:
        held.release()


def task(p, check_mode=False):
    """What the run_lock module does with its options ``p``: take (``state`` present), note a
    ``phase`` in, or release (``state`` absent) the lock at ``path`` or beside ``crontab_user``'s
    crontab; raises :class:`LockHeld`. Returns the module's result."""
    path = p["path"] if p.get("path") else crontab_lock_path(p.get("crontab_user"))
    held = FileLock(os.path.expanduser(path), p["token"], p["purpose"], p["stale_after"], p["owner"])
    if p["state"] == "absent":
        changed = held.release(check_mode)
    elif p["phase"]:
        changed = held.note(p["phase"], p["facts"], check_mode)
    else:
        changed = held.take(
            p["wait"], check_mode, take_over_dead=p["take_over_dead"], refuse_phases=p.get("refuse_phases") or ()
        )
    return dict(
        changed=changed,
        interrupted=held.interrupted,
        interrupted_summary=describe_interrupted(held.interrupted, held.path),
    )


class ProcessLock:
    """An exclusive flock on ``path`` for the life of this process; the file names the holder."""

    def __init__(self, path, purpose):
        self.path, self.purpose = os.path.expanduser(path), purpose
        self.fd = None

    def acquire(self, timeout=0, sleep=time.sleep, clock=time.monotonic):
        """Take the lock, waiting up to ``timeout`` seconds; :class:`LockHeld` names the holder."""
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), mode=0o700, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        deadline = clock() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError as exc:
                if clock() >= deadline:
                    holder = read(self.path)
                    os.close(fd)
                    raise LockHeld(describe(holder, self.path, stale_after=None), holder) from exc
                sleep(0.2)
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(owner_record(self.purpose)) + "\n").encode("utf-8"), 0)
        self.fd = fd
        return self

    def release(self):
        if self.fd is not None:
            os.ftruncate(self.fd, 0)
            os.close(self.fd)
            self.fd = None

    def __enter__(self):
        return self.acquire() if self.fd is None else self

    def __exit__(self, *exc):
        self.release()


def _main(argv):
    purpose, conflict = "command", 75
    while argv and argv[0].startswith("--") and argv[0] != "--":
        option, _, value = argv[0].partition("=")
        if not value:
            value, argv = argv[1], argv[1:]
        argv = argv[1:]
        if option == "--purpose":
            purpose = value
        elif option == "--conflict-exit":
            conflict = int(value)
        else:
            sys.stderr.write("lock.py: unknown option %s\n" % option)
            return 2
    if len(argv) < 3 or argv[1] != "--":
        sys.stderr.write("usage: lock.py [--purpose TEXT] [--conflict-exit N] LOCKFILE -- COMMAND...\n")
        return 2
    lock = ProcessLock(argv[0], purpose)
    try:
        lock.acquire()
    except LockHeld as exc:
        sys.stderr.write("lock.py: %s\n" % exc)
        return conflict
    try:
        return subprocess.call(argv[2:])  # the lock's descriptor is close-on-exec: only this process holds it
    finally:
        lock.release()


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
