"""A throwaway LMS deployment for the operator's playbooks (verify, status, interrupted runs).

One real compose stack (the demo's compose file under its own project name, ports and
container names, from a git checkout with an "origin" as make-app-repo.sh makes it), seeded
once, shared by every test of the package through a session fixture, removed at the end by
testbed/remove-test-stack.sh (containers, volume, images of its project only). Playbooks run
through real ansible-playbook with an inventory written here that sets only what an operator
must set (no repository group_vars).
"""

import json
import os
import re
import subprocess
import tempfile
import uuid

from ansible.module_utils.datasafe import container
from pgbed import CRITICAL_TABLES, LMS, REPO, free_port

VENV_BIN = os.path.join(REPO, ".venv", "bin")

# What an operator must set (roles/datasafe/defaults/main.yml leaves them empty).
MUST_SET = (
    "datasafe_compose_dir",
    "datasafe_compose_project",
    "datasafe_db_container",
    "datasafe_db_name",
    "datasafe_db_user",
    "datasafe_critical_tables",
    "datasafe_health_url",
)


class LmsStack:
    def __init__(self):
        self.project = "dstest-op-%s" % uuid.uuid4().hex[:8]
        self.root = tempfile.mkdtemp(prefix="datasafe-op-", dir="/var/tmp")
        self.app = os.path.join(self.root, "app")
        self.db_port, self.app_port = free_port(), free_port()
        self.db = self.project + "-pg"
        self.backend = self.project + "-backend"
        self.url = "http://127.0.0.1:%d/health" % self.app_port
        # The demo's compose file takes names and ports from the environment; a real
        # deployment's usually needs none of this.
        self.compose_env = {
            "COMPOSE_PROJECT_NAME": self.project,
            "LMS_DB_CONTAINER": self.db,
            "LMS_BACKEND_CONTAINER": self.backend,
            "LMS_DB_PORT": str(self.db_port),
            "LMS_BACKEND_PORT": str(self.app_port),
            "LMS_BACKEND_IMAGE": "lms-backend:%s" % self.project,
        }
        # Error lines tests put into the logs on purpose; later verify runs ignore them.
        self.log_noise = []

    # -- the stack --------------------------------------------------------------------------------
    def compose(self, *args, check=True):
        argv = ["docker", "compose", "-p", self.project, "-f", os.path.join(self.app, "docker-compose.prod.yml"), *args]
        env = dict(os.environ, **self.compose_env)
        return subprocess.run(argv, env=env, capture_output=True, text=True, check=check)

    def start(self):
        subprocess.run(
            ["bash", os.path.join(REPO, "testbed", "make-app-repo.sh"), LMS, self.root], capture_output=True, check=True
        )
        self.compose("build")
        self.compose("up", "-d", "--wait")
        gen = subprocess.run(
            ["python3", os.path.join(LMS, "generate_data.py"), "--scale", "1"], capture_output=True, check=True
        )
        subprocess.run(container.psql_argv(self.db, "lms_slncity", "lms_user"), input=gen.stdout, check=True)
        self.seeded = self.counts()
        return self

    def remove(self):
        subprocess.run(
            [os.path.join(REPO, "testbed", "remove-test-stack.sh"), self.project, self.root],
            capture_output=True,
            check=False,
        )

    def psql_file(self, path):
        """Run a SQL file of tests/operator/sql in the stack's database (ON_ERROR_STOP)."""
        with open(os.path.join(os.path.dirname(__file__), "sql", path)) as handle:
            sql = handle.read()
        argv = container.psql_argv(self.db, "lms_slncity", "lms_user")
        return subprocess.run(argv, input=sql, capture_output=True, text=True, check=True)

    def counts(self):
        return container.count_rows(container.subprocess_runner, self.db, "lms_slncity", "lms_user", CRITICAL_TABLES)

    def running(self):
        """Names of this project's running containers."""
        proc = subprocess.run(
            [
                "docker",
                "ps",
                "--filter",
                "label=com.docker.compose.project=%s" % self.project,
                "--format",
                "{{.Names}}",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        return sorted(proc.stdout.split())

    # -- the operator's side ----------------------------------------------------------------------
    def must_set(self):
        return {
            "datasafe_compose_dir": self.app,
            "datasafe_compose_project": self.project,
            "datasafe_db_container": self.db,
            "datasafe_db_name": "lms_slncity",
            "datasafe_db_user": "lms_user",
            "datasafe_critical_tables": CRITICAL_TABLES,
            "datasafe_health_url": self.url,
        }

    def inventory(self, path, drop=(), **extra):
        """An inventory like an operator's own: the must-set variables (minus ``drop``), the
        stack's compose environment, and ``extra``."""
        variables = dict(self.must_set(), datasafe_compose_env=self.compose_env)
        variables.update(extra)
        # The error lines earlier tests left in this shared stack's logs on purpose are ignored
        # too, whatever the caller ignores itself (a test's own list adds to them, never hides them).
        own = [p for p in extra.get("datasafe_verify_log_ignore", ()) if p not in self.log_noise]
        ignore = list(self.log_noise) + own
        if ignore:
            variables["datasafe_verify_log_ignore"] = ignore
        for name in drop:
            variables.pop(name)
        data = {
            "all": {
                "hosts": {
                    "localhost": {
                        "ansible_connection": "local",
                        "ansible_python_interpreter": "{{ ansible_playbook_python }}",
                    }
                },
                "children": {"production": {"hosts": {"localhost": {}}}},
                "vars": variables,
            }
        }
        with open(path, "w") as handle:
            json.dump(data, handle)  # JSON is YAML
        return str(path)


def playbook_argv(inventory, playbook, *args):
    return [
        os.path.join(VENV_BIN, "ansible-playbook"),
        "-i",
        inventory,
        os.path.join(REPO, "playbooks", playbook),
        *args,
    ]


def home_of(inventory):
    home = os.path.join(os.path.dirname(os.path.abspath(inventory)), "home")
    os.makedirs(home, exist_ok=True)
    return home


def playbook_env(home):
    return dict(
        os.environ,
        HOME=home,
        ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_NOCOLOR="1",
        PATH=VENV_BIN + os.pathsep + os.environ.get("PATH", ""),
    )


def play(inventory, playbook, *args, timeout=900):
    """ansible-playbook, run to its end; returns the CompletedProcess (stdout and stderr joined).

    HOME is a directory beside the inventory, so the defaults' ``~/backups``, ``~/change-log.txt``
    and verify snapshot land in the test's own directory, never in the real home."""
    return subprocess.run(
        playbook_argv(inventory, playbook, *args),
        env=playbook_env(home_of(inventory)),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )


def recap(output):
    """{ok, changed, unreachable, failed} of the play recap for localhost."""
    found = re.search(r"localhost\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", output)
    assert found, output[-4000:]
    return dict(zip(("ok", "changed", "unreachable", "failed"), map(int, found.groups())))
