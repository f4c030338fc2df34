"""The restore's stop (roles/datasafe_restore/tasks/stop.yml) through real ansible-playbook, on a
real throwaway compose stack: it stops the application and nothing else.

The restore beside is loading into the running database while the application stops. The
stop used community.docker.docker_compose_v2 with state=stopped, which first runs
``up --no-start`` for the services and their dependencies: when the database's compose
configuration has changed since it was started (here its password, as after an edit of .env
that was not applied yet), that recreates the database container, ending the server the
restore is loading into and leaving a new container that is not started.
"""

import json
import os
import subprocess
import uuid

import pytest
from harness import run_module
from pgbed import CRITICAL_TABLES, LMS, REPO, free_port

BIN = os.path.join(REPO, ".venv", "bin")


def compose_env(project, db_port, app_port, password):
    return {
        "COMPOSE_PROJECT_NAME": project,
        "LMS_DB_CONTAINER": "%s-pg" % project,
        "LMS_BACKEND_CONTAINER": "%s-backend" % project,
        "LMS_DB_PORT": str(db_port),
        "LMS_BACKEND_PORT": str(app_port),
        "LMS_BACKEND_IMAGE": "lms-backend:%s" % project,
        "LMS_DB_PASSWORD": password,
    }


def inspect(name, fmt):
    proc = subprocess.run(["docker", "inspect", "--format", fmt, name], capture_output=True, text=True, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


@pytest.fixture
def serving_stack():
    project = "dstest-rstop-%s" % uuid.uuid4().hex[:8]
    env = compose_env(project, free_port(), free_port(), "started-with-this-password")
    compose = ["docker", "compose", "-p", project, "-f", os.path.join(LMS, "docker-compose.prod.yml")]
    try:
        subprocess.run([*compose, "build"], env=dict(os.environ, **env), capture_output=True, check=True)
        subprocess.run([*compose, "up", "-d", "--wait"], env=dict(os.environ, **env), capture_output=True, check=True)
        yield project, env
    finally:
        subprocess.run(
            [os.path.join(REPO, "testbed", "remove-test-stack.sh"), project], capture_output=True, check=False
        )


def run_stop(tmp_path, project, env):
    playbook = tmp_path / "stop.yml"
    playbook.write_text(
        "- hosts: localhost\n"
        "  gather_facts: false\n"
        "  tasks:\n"
        "    - ansible.builtin.include_role:\n"
        "        name: datasafe_restore\n"
        "        tasks_from: stop.yml\n"
    )
    variables = {
        "datasafe_compose_project": project,
        "datasafe_compose_dir": LMS,
        "datasafe_compose_files": ["docker-compose.prod.yml"],
        "datasafe_compose_env": env,
        # the rest of the stack's must-set vocabulary (roles/datasafe checks it before any task)
        "datasafe_db_container": env["LMS_DB_CONTAINER"],
        "datasafe_db_name": "lms_slncity",
        "datasafe_db_user": "lms_user",
        "datasafe_critical_tables": CRITICAL_TABLES,
        "datasafe_health_url": "http://127.0.0.1:%s/health" % env["LMS_BACKEND_PORT"],
        "_datasafe_restore_app_services": ["backend"],
    }
    (tmp_path / "vars.json").write_text(json.dumps(variables))
    return subprocess.run(
        [os.path.join(BIN, "ansible-playbook"), "-e", "@%s" % (tmp_path / "vars.json"), str(playbook)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=dict(os.environ, NO_COLOR="1"),
        check=False,
    )


def test_stop_leaves_a_database_whose_configuration_changed_running_untouched(serving_stack, tmp_path):
    project, env = serving_stack
    db, backend = env["LMS_DB_CONTAINER"], env["LMS_BACKEND_CONTAINER"]
    db_id = inspect(db, "{{.Id}}")
    drifted = dict(env, LMS_DB_PASSWORD="rotated-in-env-not-applied-yet")
    proc = run_stop(tmp_path, project, drifted)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert inspect(backend, "{{.State.Running}}") == "false"  # the application is stopped
    assert inspect(db, "{{.Id}}") == db_id  # the same database container, never recreated
    assert inspect(db, "{{.State.Running}}") == "true"  # and still serving the restore beside
    assert inspect(db, "{{range .Config.Env}}{{println .}}{{end}}").count("started-with-this-password") == 1


def test_stack_stop_reports_honestly_check_run_then_nothing(serving_stack, monkeypatch):
    """The module the stop uses, in the four steps: check mode reports the stop and stops nothing,
    the run stops, then a second check and a second run report no change."""
    project, env = serving_stack
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    args = dict(project_src=LMS, project_name=project, files=["docker-compose.prod.yml"], services=["backend"])
    backend = env["LMS_BACKEND_CONTAINER"]
    checked = run_module("stack_stop", args, check_mode=True)
    assert checked["changed"] and checked["stopped"] == ["backend"] and not checked["failed"]
    assert inspect(backend, "{{.State.Running}}") == "true"
    stopped = run_module("stack_stop", args)
    assert stopped["changed"] and stopped["commands"][0][-3:] == ["stop", "--", "backend"]
    assert inspect(backend, "{{.State.Running}}") == "false"
    assert inspect(env["LMS_DB_CONTAINER"], "{{.State.Running}}") == "true"
    for check_mode in (True, False):
        again = run_module("stack_stop", args, check_mode=check_mode)
        assert not again["changed"] and again["commands"] == [] and not again["failed"]
