"""A command that runs on after the module that started it has returned, with a result file.

Used for the ANALYZE after a restore's swap: it runs while the application starts, and a
later task waits for its result. The file has the shape Ansible's async wrapper writes, so
:func:`ansible.module_utils.datasafe.restore.wait_job` reads both: ``{"started": 1,
"finished": 0}`` while the command runs, then (renamed into place, so never half written)
``{"finished": 1, "rc", "failed", "msg", "seconds", "stdout", "stderr"}``.
"""

import json
import os
import subprocess
import sys
import tempfile

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
