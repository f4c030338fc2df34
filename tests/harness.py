"""The one harness for running datasafe's modules and playbooks in tests.

Three ways to run a module, one way to run a playbook; everything they start runs for real
(docker, psql in the container, age, rsync):

- :func:`run_module` calls a module's ``main()`` in-process with ansible-core's own test
  harness (``patch_module_args``; ``exit_json``/``fail_json`` raise), the way ansible-core's
  unit tests do. Only AnsiballZ packaging and the process start are skipped, which makes whole
  corpora affordable. Each call loads the module afresh.
- :func:`run_module_process` runs ``library/NAME.py`` as a process of its own, the way Ansible
  does (``python tests/harness.py NAME ARGS.json [FAULT]``), so a test can kill, lock or starve
  it, or inject a fault into its engine (:data:`FAULTS`) without a hook in production code.
- :func:`run_module_in_playbook` runs one module task through real ``ansible-playbook``.
- :func:`run_playbook` writes plays to a file and runs them with real ``ansible-playbook``
  against localhost; it returns each task's result by task name.
"""

import json
import os
import runpy
import subprocess
import sys
import tempfile
from unittest import mock

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIBRARY = os.path.join(REPO, "library")
BIN = os.path.dirname(sys.executable)

sys.path.insert(0, os.path.join(REPO, "module_utils"))
import datasafe_path  # noqa: E402,F401  (modules import ansible.module_utils.datasafe, as under Ansible)

# --------------------------------------------------------------------------------- a module, in-process


class ModuleExit(Exception):
    def __init__(self, result):
        super().__init__(result.get("msg"))
        self.result = result


def _exit_json(self, **kwargs):
    kwargs.setdefault("changed", False)
    kwargs["failed"] = False
    raise ModuleExit(kwargs)


def _fail_json(self, msg, **kwargs):
    kwargs["failed"] = True
    kwargs["msg"] = msg
    raise ModuleExit(kwargs)


def run_module(name, args=None, check_mode=False, **kwargs):
    """The result of module ``name`` called with ``args`` (and/or keyword arguments), ``failed``
    true when it called fail_json."""
    from ansible.module_utils import basic
    from ansible.module_utils.testing import patch_module_args

    module_globals = runpy.run_path(os.path.join(LIBRARY, name + ".py"), run_name="datasafe_test_" + name)
    args = dict(args or {}, **kwargs)
    if check_mode:
        args["_ansible_check_mode"] = True
    with (
        patch_module_args(args),
        mock.patch.object(basic.AnsibleModule, "exit_json", _exit_json),
        mock.patch.object(basic.AnsibleModule, "fail_json", _fail_json),
    ):
        try:
            module_globals["main"]()
        except ModuleExit as done:
            return done.result
    raise AssertionError("%s returned without exit_json or fail_json" % name)


# --------------------------------------------------------------------------------- a module, as a process


def write_args(tmp_path, args, check_mode=False, name="args.json"):
    """``{"ANSIBLE_MODULE_ARGS": ...}`` in ``tmp_path/name``, as Ansible hands a module its arguments."""
    data = dict(args)
    if check_mode:
        data["_ansible_check_mode"] = True
    path = tmp_path / name
    path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": data}))
    return path


# Faults a test injects into the engine of the module it runs as a process (``harness.py NAME ARGS FAULT``).
FAULTS = ("crash-before-rename",)


def inject(fault):
    """crash-before-rename: SIGKILL this process once the temporary file was fsynced and verified,
    just before the rename gives it its final name (as a power cut or the OOM killer would)."""
    from ansible.module_utils.datasafe import backup

    def crash(*args, **kwargs):
        os.kill(os.getpid(), 9)

    if fault == "crash-before-rename":
        backup.link_no_clobber = crash


def module_argv(name, args_file, fault=None):
    """argv that runs library/<name>.py as a process with the arguments in ``args_file``
    (and ``fault``, one of FAULTS, injected into its engine)."""
    return [sys.executable, os.path.abspath(__file__), name, str(args_file)] + ([fault] if fault else [])


def run_module_process(tmp_path, name, args, check_mode=False, env=None, fault=None):
    """Run library/<name>.py as a process; returns (exit code, result dict)."""
    path = write_args(tmp_path, args, check_mode, name="%s-args.json" % name)
    proc = subprocess.run(module_argv(name, path, fault), capture_output=True, text=True, env=env, check=False)
    try:
        result = json.loads(proc.stdout)
    except ValueError:
        result = {"raw_stdout": proc.stdout, "raw_stderr": proc.stderr}
    return proc.returncode, result


# --------------------------------------------------------------------------------- a playbook


def run_playbook(plays, workdir=None, extra_env=None, check=False):
    """Write ``plays`` to ``workdir`` (a temporary directory when None), run them against localhost
    with real ansible-playbook; returns ({task name: result}, process).

    The repository's ansible.cfg stays out of the way (its profile callback would wrap the JSON):
    the library and module_utils come from the environment, the JSON callback prints the results.
    """
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="datasafe-play-") as tmp:
            return run_playbook(plays, tmp, extra_env, check)
    playbook = os.path.join(workdir, "playbook.yml")
    with open(playbook, "w", encoding="utf-8") as handle:
        json.dump(plays, handle)
    env = dict(
        os.environ,
        ANSIBLE_LIBRARY=LIBRARY,
        ANSIBLE_MODULE_UTILS=os.path.join(REPO, "module_utils"),
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_PIPELINING="True",
        ANSIBLE_RETRY_FILES_ENABLED="False",
        ANSIBLE_LOCAL_TEMP=os.path.join(workdir, ".ansible-tmp"),
        ANSIBLE_HOME=os.path.join(workdir, ".ansible"),
        ANSIBLE_FORKS="1",
        PATH="%s:%s" % (BIN, os.environ["PATH"]),
        **(extra_env or {}),
    )
    env.pop("ANSIBLE_CONFIG", None)  # also when `make` exported it
    argv = [
        os.path.join(BIN, "ansible-playbook"),
        "-i",
        "localhost,",
        "-c",
        "local",
        "-e",
        "ansible_python_interpreter=%s" % sys.executable,
        playbook,
    ]
    if check:
        argv.append("--check")
    proc = subprocess.run(argv, cwd=workdir, env=env, capture_output=True, text=True, check=False)
    try:
        report = json.loads(proc.stdout)
    except ValueError as exc:
        raise AssertionError("ansible-playbook printed no JSON:\n%s\n%s" % (proc.stdout[-3000:], proc.stderr)) from exc
    results = {}
    for play in report["plays"]:
        for task in play["tasks"]:
            results[task["task"]["name"]] = task["hosts"]["localhost"]
    return results, proc


def run_module_in_playbook(module, args, check=False):
    """Run one datasafe module as a task of a real ansible-playbook run; returns its result dict."""
    play = [{"hosts": "localhost", "gather_facts": False, "tasks": [{"name": "run", module: args, "register": "r"}]}]
    results, _ = run_playbook(play, check=check)
    return results["run"]


if __name__ == "__main__":
    # python tests/harness.py NAME ARGS.json: the module prints its JSON result and exits 0 or 1.
    name, args_file = sys.argv[1], sys.argv[2]
    if len(sys.argv) > 3:
        if sys.argv[3] not in FAULTS:
            sys.exit("harness.py: unknown fault %r (known: %s)" % (sys.argv[3], ", ".join(FAULTS)))
        inject(sys.argv[3])
    sys.argv = [name, args_file]
    runpy.run_path(os.path.join(LIBRARY, name + ".py"), run_name="__main__")
