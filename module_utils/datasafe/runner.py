"""The one way datasafe runs a command: an argv list, never a shell string.

Every engine takes a ``run`` callable with one signature (the shape of community.docker's
``call_cli``)::

    run(argv, data=None, env=None, cwd=None, timeout=None, binary=False) -> (rc, stdout, stderr)

``data`` is fed on stdin; ``env`` holds variables added to the inherited environment (values
never appear in argv); ``binary`` returns bytes instead of text. :func:`run` is the plain
implementation (tests, the CLI, a detached background job); :func:`for_module` adapts
``AnsibleModule.run_command`` (which also hides ``no_log`` values in what it returns) to the
same signature. Tests inject their own ``run`` (``tests/fakes.py``).

Pipelines that stream (a dump into a file, a file into pg_restore) start their processes with
:func:`spawn`, the one place a ``Popen`` is made, so a test can replace it to inject a fault.
"""

import os
import subprocess

PIPE = subprocess.PIPE
DEVNULL = subprocess.DEVNULL


class CommandTimeout(Exception):
    """A command ran longer than its timeout and was killed."""

    def __init__(self, argv, timeout):
        self.argv, self.timeout = list(argv), timeout
        super().__init__("%s did not finish within %ss and was stopped" % (argv[0], timeout))


def _environ(env):
    if not env:
        return None
    merged = dict(os.environ)
    merged.update({k: str(v) for k, v in env.items()})
    return merged


def run(argv, data=None, env=None, cwd=None, timeout=None, binary=False):
    """Run ``argv`` and wait; ``(rc, stdout, stderr)``. A missing program is rc 127, as in a shell."""
    if isinstance(data, str) and binary:
        data = data.encode("utf-8")
    try:
        proc = subprocess.run(
            list(argv),
            input=data,
            stdin=None if data is not None else DEVNULL,
            capture_output=True,
            text=not binary,
            env=_environ(env),
            cwd=cwd,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise CommandTimeout(argv, timeout) from exc
    except OSError as exc:
        return 127, b"" if binary else "", "cannot run %s: %s" % (argv[0], exc.strerror or exc)
    return proc.returncode, proc.stdout, proc.stderr


def for_module(module):
    """``run`` on top of ``AnsibleModule.run_command`` (which has no timeout: ``timeout`` uses :func:`run`)."""

    def module_run(argv, data=None, env=None, cwd=None, timeout=None, binary=False):
        if timeout is not None:
            return run(argv, data, env, cwd, timeout, binary)
        return module.run_command(
            list(argv),
            data=data,
            binary_data=binary,
            environ_update={k: str(v) for k, v in (env or {}).items()},
            cwd=cwd,
            encoding=None if binary else "utf-8",
        )

    return module_run


def spawn(argv, stdin=None, stdout=PIPE, stderr=PIPE, env=None, **kwargs):
    """Start ``argv`` without waiting (a ``subprocess.Popen``); the caller checks its exit status."""
    return subprocess.Popen(list(argv), stdin=stdin, stdout=stdout, stderr=stderr, env=_environ(env), **kwargs)
