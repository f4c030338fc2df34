"""A command that runs on after the module that started it has returned, with a result file.

Used for the ANALYZE after a restore's swap: it runs while the application starts, and a
later task waits for its result. The file has the shape Ansible's async wrapper writes, so
:func:`wait` reads both (the restore beside is an Ansible async job): ``{"started": 1,
"finished": 0}`` while the command runs, then (renamed into place, so never half written)
``{"finished": 1, "rc", "failed", "msg", "seconds", "stdout", "stderr"}``.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

from ansible.module_utils.datasafe import ready

# Run by a fresh interpreter (no module_utils there), detached from the module's process:
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
    fd, path = tempfile.mkstemp(prefix=prefix, suffix=".json", dir=directory)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump({"started": 1, "finished": 0}, handle)
        subprocess.Popen(
            [sys.executable, "-c", _RUNNER, path] + list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=True,
            start_new_session=True,
        )
    except OSError:
        os.unlink(path)
        raise
    return path


class NotFinished(Exception):
    """A background job did not end within the time given; the message names it and its file."""


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
    NotFinished when it has not ended within ``timeout`` seconds; ``what`` names it.
    """
    ended = []

    def probe():
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
