"""datasafe over SSH on three sites whose managed Python is bare (no pglast, bashlex or boto3)."""

import json
import os
import subprocess

import pytest
from fleetbed import BARE_PYTHON, REPO, SEEDED

pytestmark = pytest.mark.slow


def test_the_managed_python_is_bare():
    for lib in ("pglast", "bashlex", "boto3"):
        proc = subprocess.run([BARE_PYTHON, "-c", "import %s" % lib], capture_output=True, check=False)
        assert proc.returncode != 0, "%s is importable by %s: the fleet would not prove a bare host works" % (
            lib,
            BARE_PYTHON,
        )


def test_verify_reaches_every_site_over_ssh(fleet):
    run = fleet.playbook("verify.yml")
    assert run.returncode == 0, run.stdout[-3000:]
    recap = run.stdout[run.stdout.index("PLAY RECAP") :]
    for name in fleet.sites:
        assert name + " " in recap and "failed=0" in recap.split(name, 1)[1].splitlines()[0]
    for name in fleet.sites:
        assert fleet.counts(name) == SEEDED


def test_every_site_is_a_separate_ssh_destination_with_a_bare_python(fleet):
    """Each inventory host is reached by ssh on its own port and runs modules with the bare Python."""
    for name, port in fleet.ports.items():
        cmd = [fleet.bin("ansible"), "-i", fleet.inventory, name, "-m", "ansible.builtin.command", "-a"]
        cmd.append("%s -c 'import os, sys; print(os.environ.get(\"SSH_CONNECTION\"), sys.executable)'" % BARE_PYTHON)
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=fleet.env())
        assert proc.returncode == 0, proc.stdout + proc.stderr
        connection = proc.stdout.split(">>", 1)[1].split()
        assert connection[2:4] == ["127.0.0.1", str(port)], proc.stdout


def test_a_guard_module_on_a_bare_host_fails_closed_naming_what_is_missing(fleet):
    """safe_command needs its parsers on the site; without them it refuses and runs nothing."""
    marker = os.path.join(fleet.root, "guarded-command-ran")
    cmd = [fleet.bin("ansible"), "-i", fleet.inventory, "site1", "-m", "safe_command", "-a"]
    cmd.append(json.dumps({"argv": ["touch", marker]}))
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=fleet.env(), cwd=REPO)
    assert proc.returncode != 0
    assert "bashlex" in proc.stdout and BARE_PYTHON in proc.stdout, proc.stdout
    assert not os.path.exists(marker)
