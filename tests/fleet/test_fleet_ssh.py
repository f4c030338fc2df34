"""datasafe over SSH on three sites whose managed Python is bare (no pglast, bashlex or boto3)."""

import json
import os
import subprocess

import pytest
from fleetbed import BARE_PYTHON, REPO, SEEDED

HERE = os.path.dirname(os.path.abspath(__file__))
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


def test_the_guards_judge_on_the_controller_and_run_on_a_bare_site(fleet):
    """safe_sql and safe_command refuse a destructive migration and run an ordinary one on a bare site."""
    run = fleet.playbook(os.path.join(HERE, "guard_modules.yml"), limit="site1")
    assert run.returncode == 0, run.stdout[-4000:]
    assert fleet.counts("site1") == SEEDED  # the refused DELETE took no row
    phones = subprocess.run(
        ["docker", "exec", fleet.sites["site1"]["datasafe_db_container"], "psql", "-X", "-At", "-U", "lms_user"]
        + ["-d", "lms_slncity", "-c", "SELECT phone FROM patients WHERE id IN (1, 2) ORDER BY id"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert phones == ["555-0101", "555-0102"]


def test_a_guard_module_without_its_action_plugin_fails_closed_on_a_bare_site(fleet):
    """Run on the site without the controller's verdict, safe_command refuses, names what is missing, runs nothing."""
    marker = os.path.join(fleet.root, "guarded-command-ran")
    cmd = [fleet.bin("ansible"), "-i", fleet.inventory, "site1", "-m", "safe_command", "-a"]
    cmd.append(json.dumps({"argv": ["touch", marker]}))
    env = dict(fleet.env(), ANSIBLE_ACTION_PLUGINS=os.path.join(fleet.root, "no-action-plugins"))
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env, cwd=REPO)
    assert proc.returncode != 0
    assert "bashlex" in proc.stdout and BARE_PYTHON in proc.stdout, proc.stdout
    assert not os.path.exists(marker)
