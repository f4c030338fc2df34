"""Run a generated playbook with real ansible-playbook and return its results per task name."""

import json
import os
import subprocess
import sys

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)


def run_playbook(plays, workdir, extra_env=None):
    """Write ``plays`` to ``workdir``, run it against localhost, return ({task name: result}, process)."""
    playbook = os.path.join(workdir, "playbook.yml")
    with open(playbook, "w", encoding="utf-8") as handle:
        yaml.safe_dump(plays, handle, sort_keys=False, width=1000)
    env = dict(
        os.environ,
        ANSIBLE_LIBRARY=os.path.join(REPO, "library"),
        ANSIBLE_MODULE_UTILS=os.path.join(REPO, "module_utils"),
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_PIPELINING="True",
        ANSIBLE_RETRY_FILES_ENABLED="False",
        ANSIBLE_LOCAL_TEMP=os.path.join(workdir, ".ansible-tmp"),
        ANSIBLE_HOME=os.path.join(workdir, ".ansible"),
        ANSIBLE_FORKS="1",
        **(extra_env or {}),
    )
    # The repository's ansible.cfg (inventory, profile callback) stays out of the way: workdir as
    # cwd, and no ANSIBLE_CONFIG inherited from `make` (its extra callback would wrap the JSON).
    env.pop("ANSIBLE_CONFIG", None)
    proc = subprocess.run(
        [
            os.path.join(BIN, "ansible-playbook"),
            "-i",
            "localhost,",
            "-c",
            "local",
            "-e",
            "ansible_python_interpreter=%s" % sys.executable,
            playbook,
        ],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        report = json.loads(proc.stdout)
    except ValueError as exc:
        raise AssertionError("ansible-playbook printed no JSON:\n%s\n%s" % (proc.stdout[-3000:], proc.stderr)) from exc
    results = {}
    for play in report["plays"]:
        for task in play["tasks"]:
            results[task["task"]["name"]] = task["hosts"]["localhost"]
    return results, proc
