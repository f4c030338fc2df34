"""The test bed for pytest: datasafe's engine on the import path, and throwaway PostgreSQL.

Tests import from here (``from pgbed import ThrowawayPostgres``), never from ``conftest``:
with several conftest.py files in the tree, ``conftest`` names whichever was imported first.

A throwaway database is a real container of the test bed's PostgreSQL image, on host
networking and a free loopback port, with its own labelled named volume. It is removed,
volume included, when the fixture ends; only resources labelled ``io.datasafe.test`` are
ever removed. Each is also labelled with its owner, the pytest process (``io.datasafe.test.owner``,
``<pid>:<start time>``), so ``make clean-testbed`` can remove the servers of a run that was killed
before its fixtures ended, and never those of a run still going.
"""

import os
import socket
import subprocess
import sys
import time
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Modules import ansible.module_utils.datasafe.*, exactly as they do under Ansible.
sys.path.insert(0, os.path.join(REPO, "module_utils"))
import datasafe_path  # noqa: E402,F401

sys.path.insert(0, os.path.join(REPO, "library"))

from ansible.module_utils.datasafe import container  # noqa: E402

PG_IMAGE = os.environ.get("DATASAFE_PG_IMAGE", "datasafe/postgres:15-bookworm")
LMS = os.path.join(REPO, "examples", "lms")
TEST_LABEL = "io.datasafe.test"
OWNER_LABEL = TEST_LABEL + ".owner"
READY_TIMEOUT = 240  # seconds a throwaway server may take to accept connections


def process_owner(pid):
    """``<pid>:<start time>`` of a running (or not yet reaped) process: its identity even after
    the pid is reused. testbed/remove-abandoned-test-servers.sh reads the same two fields."""
    with open("/proc/%d/stat" % pid) as handle:
        fields = handle.read().rsplit(") ", 1)[1].split()
    return "%d:%s" % (pid, fields[19])  # field 22 of stat, the 20th after the command name


def throwaway_labels(owner=None):
    """docker --label arguments for a throwaway resource owned by this test run."""
    return ["--label", "%s=1" % TEST_LABEL, "--label", "%s=%s" % (OWNER_LABEL, owner or process_owner(os.getpid()))]


CRITICAL_TABLES = ["users", "patients", "visits", "test_results", "invoices"]


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def flip_byte(path, offset, mask=0xFF):
    """Damage a file in place the way bit rot or a bad copy does: one byte XORed with ``mask``."""
    with open(path, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ mask]))


def docker(*args, check=True, data=None):
    return subprocess.run(["docker", *args], input=data, capture_output=True, text=True, check=check)


class ThrowawayPostgres:
    """A real PostgreSQL container with the LMS schema, for one test module."""

    db = "lms_slncity"
    user = "lms_user"
    password = "throwaway-test-password"

    def __init__(self, image=None, command=None, run_args=()):
        """``image``, ``command`` (the server's argv, default ``postgres`` on 127.0.0.1 without
        fsync) and ``run_args`` (more ``docker run`` options, e.g. mounts) vary the server: an
        archiving one runs the pgBackRest image with continuous.server_settings."""
        self.id = uuid.uuid4().hex[:10]
        self.container = "datasafe-test-pg-%s" % self.id
        self.volume = "datasafe-test-%s_postgres_data" % self.id
        self.port = free_port()
        self.run = container.subprocess_runner
        self.image = image or PG_IMAGE
        self.command = list(command or ["postgres", "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
        self.run_args = list(run_args)

    def start(self, timeout=READY_TIMEOUT):
        """Start the server and wait up to ``timeout`` seconds for it to accept connections."""
        docker("volume", "create", *throwaway_labels(), self.volume)
        docker(
            "run",
            "-d",
            "--name",
            self.container,
            *throwaway_labels(),
            "--network",
            "host",
            "-e",
            "POSTGRES_DB=%s" % self.db,
            "-e",
            "POSTGRES_USER=%s" % self.user,
            "-e",
            "POSTGRES_PASSWORD=%s" % self.password,
            "-e",
            "PGPORT=%d" % self.port,
            "-v",
            "%s:/var/lib/postgresql/data" % self.volume,
            "-v",
            "%s:/docker-entrypoint-initdb.d:ro" % os.path.join(LMS, "db", "init"),
            *self.run_args,
            self.image,
            *self.command,
        )
        # initdb and the schema take a few seconds on a quiet machine; a loaded one (a whole suite
        # spread over workers beside other builds) can take minutes: waiting longer costs nothing
        # when the server is up sooner.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready = docker(
                "exec",
                self.container,
                "pg_isready",
                "-q",
                "-h",
                "127.0.0.1",
                "-U",
                self.user,
                "-d",
                self.db,
                check=False,
            )
            if ready.returncode == 0:
                return self
            time.sleep(0.3)
        logs = docker("logs", self.container, check=False)
        raise RuntimeError(
            "throwaway PostgreSQL did not become ready in %d s:\n%s%s" % (timeout, logs.stdout, logs.stderr)
        )

    def seed(self, scale=1):
        gen = subprocess.Popen(
            [sys.executable, os.path.join(LMS, "generate_data.py"), "--scale", str(scale)], stdout=subprocess.PIPE
        )
        load = subprocess.run(
            container.psql_argv(self.container, self.db, self.user),
            stdin=gen.stdout,
            capture_output=True,
            text=True,
            check=False,
        )
        gen.stdout.close()
        if gen.wait() != 0 or load.returncode != 0:
            raise RuntimeError("seeding failed: %s" % load.stderr)
        return self

    def psql(self, sql, check=True):
        """Run SQL through psql inside the container; returns the CompletedProcess."""
        proc = subprocess.run(
            container.psql_argv(self.container, self.db, self.user, extra=["--csv", "-t"]),
            input=sql,
            capture_output=True,
            text=True,
            check=False,
        )
        if check and proc.returncode != 0:
            raise RuntimeError("psql failed: %s" % proc.stderr)
        return proc

    def counts(self, tables=None):
        return container.count_rows(self.run, self.container, self.db, self.user, tables or CRITICAL_TABLES)

    def volume_identity(self):
        out = docker("volume", "inspect", "--format", "{{.Name}} {{.CreatedAt}} {{.Mountpoint}}", self.volume)
        return out.stdout.strip()

    def remove(self):
        docker("rm", "-f", self.container, check=False)
        labels = docker(
            "volume", "inspect", "--format", '{{ index .Labels "%s" }}' % TEST_LABEL, self.volume, check=False
        ).stdout.strip()
        if labels == "1":  # never remove anything the tests did not create
            docker("volume", "rm", self.volume, check=False)
