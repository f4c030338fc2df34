"""Work that runs on after the module that started it has returned, with a result file.

:func:`start` runs a command (the ANALYZE after a restore's swap, while the application
starts); :func:`run_detached` runs a function of the module itself (the restore beside, while
the application stops and the safety backup runs). A later task waits for the result. The file
has the shape Ansible's async wrapper writes, so :func:`wait` reads both: ``{"started": 1,
"finished": 0}`` while the work runs, then (renamed into place, so never half written)
``{"finished": 1, "rc", "failed", "msg", "seconds", ...}`` (a detached function's ``rc`` is 1
when it failed, else 0).
"""

import json
import os
import sys
import tempfile
import time

from ansible.module_utils.datasafe import ready, runner

# Run by a fresh interpreter (no module_utils there, so it cannot import runner.py), detached
# from the module's process:
# argv[1] is the result file, the rest the command. It never raises; every outcome is written.
_RUNNER = r"""
import json, os, subprocess, sys, time
path, argv = sys.argv[1], sys.argv[2:]
t0 = time.monotonic()
try:
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    rc, out, err = p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
except OSError as exc:
    rc, out, err = 127, "", "cannot run %s: %s" % (argv[0], exc)
result = {"started": 1, "finished": 1, "rc": rc, "failed": rc != 0, "seconds": round(time.monotonic() - t0, 3),
          "stdout": out[-2000:], "stderr": err[-2000:]}
if rc != 0:
    result["msg"] = "%s exited %s: %s" % (argv[0], rc, " ".join(err.split())[-600:] or "no error output")
tmp = path + ".tmp"
with open(tmp, "w") as handle:
    json.dump(result, handle)
os.replace(tmp, path)
"""


def start(argv, directory=None, prefix="datasafe-job-"):
    """Start ``argv`` detached (own session, no inherited descriptors); return its result file.

    The file says ``started`` before this returns, so a waiter never mistakes a job that has not
    written yet for a missing one. Raises OSError when the job cannot be started (the file is
    then removed).
    """
    path = _result_file(STARTED, directory, prefix)
    try:
        runner.spawn(
            [sys.executable, "-c", _RUNNER, path] + list(argv),
            stdin=runner.DEVNULL,
            stdout=runner.DEVNULL,
            stderr=runner.DEVNULL,
            close_fds=True,
            start_new_session=True,
        )
    except OSError:
        os.unlink(path)
        raise
    return path


STARTED = {"started": 1, "finished": 0}


def _result_file(content, directory, prefix):
    """A new result file (the user's own, 0600) holding ``content``; its path."""
    fd, path = tempfile.mkstemp(prefix=prefix, suffix=".json", dir=directory)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(content, handle)
    except OSError:
        os.unlink(path)
        raise
    return path


def _write(path, result):
    """Replace the result file at ``path`` whole (renamed into place, never half written)."""
    tmp = path + ".tmp"
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
        json.dump(result, handle)
    os.replace(tmp, path)


def finished(result, directory=None, prefix="datasafe-job-"):
    """A result file holding ``result`` as a finished job's (for work there was no need to run),
    in the shape run_detached writes, ``rc`` included, so job_result reads (and removes) it too."""
    return _result_file(dict(result, started=1, finished=1, rc=1 if result.get("failed") else 0), directory, prefix)


def run_detached(work, directory=None, prefix="datasafe-job-"):
    """Run ``work()`` in a detached process and return its result file at once.

    The process is a fork of the caller (an Ansible module), so ``work`` runs with everything the
    module has already imported and checked; it leaves the caller's session and gives up every
    inherited descriptor, so Ansible, which reads the module's output until it closes, does not
    wait for it. ``work`` returns the result the module would have returned, ``failed`` and
    ``msg`` included; an exception becomes a failed result naming it. Raises OSError when the
    process cannot be started (the file is then removed).
    """
    path = _result_file(STARTED, directory, prefix)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
    except OSError:
        os.unlink(path)
        raise
    if pid:
        os.waitpid(pid, 0)  # the first child leaves at once; the work runs in its child
        return path
    try:  # the first child: a new session, then fork again so the work is no session leader
        try:
            os.setsid()
            if os.fork():
                os._exit(0)
        except OSError as exc:  # no work runs, so say so rather than leave "started" behind
            _write(path, {"started": 1, "finished": 1, "rc": 1, "failed": True, "msg": "cannot detach: %s" % exc})
            os._exit(0)
        devnull = os.open(os.devnull, os.O_RDWR)
        for target in (0, 1, 2):
            os.dup2(devnull, target)
        os.closerange(3, _max_fd())
        t0 = time.monotonic()
        try:
            result = dict(work())
        except BaseException as exc:  # every outcome is written, none is lost with the process
            result = {"failed": True, "msg": "the background job raised %s: %s" % (type(exc).__name__, exc)}
        result.setdefault("failed", False)
        result.update(started=1, finished=1, rc=1 if result["failed"] else 0, seconds=round(time.monotonic() - t0, 3))
        _write(path, result)
    finally:
        os._exit(0)


def _max_fd():
    try:
        return os.sysconf("SC_OPEN_MAX")
    except (ValueError, OSError):
        return 4096


class NotFinished(Exception):
    """A background job did not end within the time given; the message names it and its file."""


class Missing(NotFinished):
    """A background job's result file does not exist: there is nothing to wait for."""


def state(path):
    """The job's result file, parsed: None while the job runs (or the file is absent or not yet
    whole JSON), the job's final result once it ended."""
    try:
        with open(path) as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or (data.get("started") and not data.get("finished")):
        return None
    return data


def wait(path, timeout, interval=0.1, clock=None, sleep=None, what="the background job"):
    """Wait for the job whose result file is ``path``; return its final result.

    Reading a small file every ``interval`` costs nothing next to the job it waits for. Raises
    NotFinished when it has not ended within ``timeout`` seconds, and at once (Missing) when there
    is no such file, as no job that was started leaves none; ``what`` names it.
    """
    ended = []

    def probe():
        if not os.path.isfile(path):
            raise Missing(
                "%s has no result file %s (was it started, or was its result read and removed already?)" % (what, path)
            )
        result = state(path)
        if result is None:
            return False, "still running"
        ended.append(result)
        return True, ""

    try:
        ready.wait_for(
            what,
            probe,
            None,
            timeout=timeout,
            interval=interval,
            clock=clock or time.monotonic,
            sleep=sleep or time.sleep,
        )
    except ready.NotReady as exc:
        raise NotFinished("%s did not finish within %ss (its result file: %s)" % (what, timeout, path)) from exc
    return ended[0]


class JobFailed(Exception):
    """The job_result task fails: the job failed (``result``: its rc, seconds, stderr), did not end,
    or the file is not a job's result file."""

    def __init__(self, message, result=None):
        super().__init__(message)
        self.result = result or {}


def collect(p):
    """What the job_result module does with its options ``p``: wait for the job at ``path``, remove
    its result file and return ``{rc, seconds, stderr}``; raises :class:`JobFailed`."""
    if p["timeout"] < 1 or not 0.05 <= p["poll"] <= 10:
        raise JobFailed("job_result: timeout must be at least 1 s and poll 0.05 to 10 s")
    try:
        result = wait(p["path"], p["timeout"], p["poll"], what=p["what"])
    except Missing as exc:
        raise JobFailed("job_result: %s" % exc) from exc
    except NotFinished as exc:
        raise JobFailed("job_result: %s; it may still be running" % exc) from exc
    if "rc" not in result or "finished" not in result:
        raise JobFailed("job_result: %s is not the result file of a datasafe job" % p["path"])
    os.unlink(p["path"])
    fields = dict(rc=result["rc"], seconds=result.get("seconds"), stderr=result.get("stderr", ""))
    if result.get("failed"):
        raise JobFailed("%s failed: %s" % (p["what"], result.get("msg") or "exit status %s" % result["rc"]), fields)
    return dict(changed=False, **fields)
