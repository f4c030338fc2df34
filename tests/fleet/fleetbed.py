"""A fleet of three throwaway laboratory sites, each its own inventory host reached over SSH.

Every site is a real, git-backed LMS stack (PostgreSQL + backend, seeded at scale 1) under its
own compose project (``dstest-fleet-site1`` ...) on the ports of molecule slots 23-25. One
sshd, started here with throwaway keys, listens on 127.0.0.1 on one port per site (56239,
56249, 56259), so each site is a separate SSH destination with its own host-key entry; the
client checks host keys strictly against a known_hosts written here. The managed side runs
Debian's bare ``/usr/bin/python3`` (no pglast, bashlex or boto3): whatever datasafe's
playbooks need there must either be stdlib or come from datasafe itself.

Creating the stacks is test-bed work and uses a local connection; everything the tests judge
runs datasafe over SSH.
"""

import contextlib
import fcntl
import json
import os
import socket
import subprocess
import tempfile
import time

import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.join(REPO, ".venv", "bin")
SSHD = "/usr/sbin/sshd"
BARE_PYTHON = "/usr/bin/python3"
SLOTS = {"site1": 23, "site2": 24, "site3": 25}
LOCK = "/var/tmp/datasafe-molecule-fleet.lock"  # the slots are fixed: one fleet bed at a time
LOGS = "/tmp/datasafe-test-logs/fleet"
SEEDED = {"users": 10, "patients": 2000, "visits": 6000, "test_results": 18000, "invoices": 6000}
TABLES = list(SEEDED)


def _keygen(path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "datasafe-fleet", "-f", path], check=True)
    with open(path + ".pub") as handle:
        return handle.read().split()[:2]


def _wait_port(port, proc, what, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("%s did not start: %s" % (what, proc.stderr.read())) from None
            time.sleep(0.2)


def site_vars(name, root):
    """One site's stack, in datasafe's own vocabulary (what an operator puts in host_vars)."""
    slot = SLOTS[name]
    project = "dstest-fleet-%s" % name
    db_port, backend_port = 56000 + slot * 10, 56001 + slot * 10
    site_root = os.path.join(root, name)
    return {
        "datasafe_test_root": site_root,
        "datasafe_compose_dir": os.path.join(site_root, "app"),
        "datasafe_compose_files": ["docker-compose.prod.yml"],
        "datasafe_compose_project": project,
        "datasafe_compose_env": {
            "COMPOSE_PROJECT_NAME": project,
            "LMS_DB_CONTAINER": project + "-pg",
            "LMS_BACKEND_CONTAINER": project + "-backend",
            "LMS_DB_PORT": str(db_port),
            "LMS_BACKEND_PORT": str(backend_port),
            "LMS_BACKEND_IMAGE": "lms-backend:" + project,
        },
        "datasafe_db_service": "postgres",
        "datasafe_db_container": project + "-pg",
        "datasafe_db_volume": "postgres_data",
        "datasafe_db_name": "lms_slncity",
        "datasafe_db_user": "lms_user",
        "datasafe_critical_tables": TABLES,
        "datasafe_health_url": "http://127.0.0.1:%d/health" % backend_port,
        "datasafe_health_retries": 60,
        "datasafe_health_delay": 1,
        "datasafe_backup_dir": os.path.join(site_root, "backups"),
        "datasafe_change_log": os.path.join(site_root, "change-log.txt"),
    }


class Fleet:
    """The three sites, their sshd and the inventory that reaches them over SSH."""

    def __init__(self):
        os.makedirs(LOGS, exist_ok=True)
        self.root = tempfile.mkdtemp(prefix="datasafe-fleet-", dir="/var/tmp")
        self.ssh_dir = os.path.join(self.root, "ssh")
        os.makedirs(self.ssh_dir, mode=0o700)
        self.sites = {name: site_vars(name, self.root) for name in SLOTS}
        self.ports = {name: 56009 + slot * 10 for name, slot in SLOTS.items()}
        self.inventory = os.path.join(self.root, "inventory.yml")
        self.bed_inventory = os.path.join(self.root, "bed-inventory.yml")
        self.key = os.path.join(self.ssh_dir, "client_ed25519")
        self.known_hosts = os.path.join(self.ssh_dir, "known_hosts")
        self.sshd = None
        self._lock = None

    # --- bring up and tear down --------------------------------------------------------

    def start(self):
        self._lock = open(LOCK, "w")  # noqa: SIM115 (held for the fleet's lifetime)
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        for site in self.sites.values():  # a killed earlier run's leftovers under the same names
            subprocess.run(
                [os.path.join(REPO, "testbed/remove-test-stack.sh"), site["datasafe_compose_project"]],
                check=True,
                capture_output=True,
            )
        self._start_sshd()
        self._write_inventories()
        self._make_stacks()
        return self

    def remove(self):
        try:
            for site in self.sites.values():
                subprocess.run(
                    [
                        os.path.join(REPO, "testbed/remove-test-stack.sh"),
                        site["datasafe_compose_project"],
                        site["datasafe_test_root"],
                    ],
                    check=False,
                    capture_output=True,
                )
        finally:
            if self.sshd is not None:
                self.sshd.terminate()
                self.sshd.wait(timeout=30)
            subprocess.run(["rm", "-rf", "--", self.root], check=False)
            if self._lock is not None:
                self._lock.close()

    def _start_sshd(self):
        host_key = os.path.join(self.ssh_dir, "host_ed25519")
        key_type, key = _keygen(host_key)
        _keygen(self.key)
        authorized = os.path.join(self.ssh_dir, "authorized_keys")
        with open(self.key + ".pub") as src, open(authorized, "w") as dst:
            dst.write(src.read())
        with open(self.known_hosts, "w") as handle:
            for port in self.ports.values():
                handle.write("[127.0.0.1]:%d %s %s\n" % (port, key_type, key))
        config = os.path.join(self.ssh_dir, "sshd_config")
        lines = ["Port %d" % port for port in self.ports.values()] + [
            "ListenAddress 127.0.0.1",
            "HostKey " + host_key,
            "AuthorizedKeysFile " + authorized,
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            # root: the sites' docker engine is root's (a real site would use a docker-group user).
            "PermitRootLogin prohibit-password",
            "UsePAM no",
            "StrictModes no",
            "MaxStartups 30:30:60",
            "MaxSessions 30",
            "PidFile " + os.path.join(self.ssh_dir, "sshd.pid"),
            "",
        ]
        with open(config, "w") as handle:
            handle.write("\n".join(lines))
        os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege-separation directory
        self.sshd = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", config], stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        for port in self.ports.values():
            _wait_port(port, self.sshd, "sshd")

    def _write_inventories(self):
        ssh_args = "-o StrictHostKeyChecking=yes -o UserKnownHostsFile=%s -o IdentitiesOnly=yes" % self.known_hosts
        hosts, bed_hosts = {}, {}
        for name, site in self.sites.items():
            hosts[name] = dict(
                site,
                ansible_connection="ssh",
                ansible_host="127.0.0.1",
                ansible_port=self.ports[name],
                ansible_user="root",
                ansible_ssh_private_key_file=self.key,
                ansible_ssh_common_args=ssh_args,
                ansible_python_interpreter=BARE_PYTHON,
            )
            bed_hosts[name] = dict(
                site, ansible_connection="local", ansible_python_interpreter=os.path.join(BIN, "python")
            )
        with open(self.inventory, "w") as handle:
            yaml.safe_dump({"all": {"children": {"production": {"hosts": hosts}}}}, handle)
        with open(self.bed_inventory, "w") as handle:
            yaml.safe_dump({"all": {"children": {"production": {"hosts": bed_hosts}}}}, handle)

    def _make_stacks(self):
        for site in self.sites.values():
            subprocess.run(
                [
                    os.path.join(REPO, "testbed/make-app-repo.sh"),
                    os.path.join(REPO, "examples/lms"),
                    site["datasafe_test_root"],
                ],
                check=True,
                capture_output=True,
            )
        # One site first: the other two builds then come from docker's layer cache.
        for limit in ("site1", "site2:site3"):
            proc = self.playbook(
                os.path.join(os.path.dirname(__file__), "make_stacks.yml"), inventory=self.bed_inventory, limit=limit
            )
            assert proc.returncode == 0, "the fleet's stacks did not come up:\n" + proc.stdout[-4000:]

    # --- running things --------------------------------------------------------------

    @staticmethod
    def bin(name):
        return os.path.join(BIN, name)

    def env(self):
        env = dict(os.environ)
        env.update(
            PATH=BIN + os.pathsep + env.get("PATH", ""),
            ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
            ANSIBLE_FORCE_COLOR="0",
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_SSH_CONTROL_PATH_DIR=os.path.join(self.root, "cp"),
            ANSIBLE_LOCAL_TEMP=os.path.join(self.root, "tmp"),
        )
        return env

    def playbook(self, playbook, *extra, inventory=None, limit=None):
        """Run a playbook as an operator would; the whole output is kept under LOGS."""
        if not os.path.isabs(playbook):
            playbook = os.path.join(REPO, "playbooks", playbook)
        cmd = [os.path.join(BIN, "ansible-playbook"), "-i", inventory or self.inventory, playbook]
        if limit:
            cmd += ["--limit", limit]
        cmd += list(extra)
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=self.env(), cwd=REPO)
        self.keep_log(os.path.basename(playbook), cmd, proc)
        return proc

    @staticmethod
    def keep_log(name, cmd, proc):
        log = os.path.join(LOGS, "%s-%s.log" % (time.strftime("%H%M%S"), name))
        with open(log, "w") as handle:
            handle.write("$ %s\nexit %d\n%s\n%s" % (" ".join(cmd), proc.returncode, proc.stdout, proc.stderr))

    # --- looking at a site -------------------------------------------------------------

    def counts(self, name):
        sql = "SELECT json_build_object(%s)" % ", ".join("'%s', (SELECT count(*) FROM %s)" % (t, t) for t in TABLES)
        out = subprocess.run(
            ["docker", "exec", self.sites[name]["datasafe_db_container"], "psql", "-X", "-At", "-U", "lms_user"]
            + ["-d", "lms_slncity", "-c", sql],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return json.loads(out)

    def health(self, name):
        proc = subprocess.run(
            ["curl", "--silent", "--max-time", "10", self.sites[name]["datasafe_health_url"]],
            capture_output=True,
            text=True,
            check=False,
        )
        return json.loads(proc.stdout) if proc.returncode == 0 and proc.stdout else None

    def started_at(self, name):
        """When each container of the site last started: unchanged means nothing was stopped."""
        site = self.sites[name]
        names = [site["datasafe_db_container"], site["datasafe_compose_env"]["LMS_BACKEND_CONTAINER"]]
        out = subprocess.run(
            ["docker", "inspect", "--format", "{{.Name}} {{.State.StartedAt}}"] + names,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return dict(line.split() for line in out.splitlines())

    def git(self, name, *args, where="app"):
        return subprocess.run(
            ["git", "-C", os.path.join(self.sites[name]["datasafe_test_root"], where), *args],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

    def push(self, name, message, changes):
        """Commit ``{path: new content or callable(old) -> new}`` to a site's remote; returns the revision."""
        root = self.sites[name]["datasafe_test_root"]
        dev = os.path.join(root, "dev")
        if not os.path.isdir(dev):
            subprocess.run(["git", "clone", "-q", os.path.join(root, "remote.git"), dev], check=True)
        self.git(name, "pull", "-q", "--ff-only", where="dev")
        for path, change in changes.items():
            full = os.path.join(dev, path)
            with open(full) as handle:
                old = handle.read()
            with open(full, "w") as handle:
                handle.write(change(old) if callable(change) else change)
        ident = ["-c", "user.name=datasafe-test", "-c", "user.email=test@datasafe.invalid"]
        self.git(name, "add", "-A", where="dev")
        self.git(name, *ident, "commit", "-q", "-m", message, where="dev")
        self.git(name, "push", "-q", "origin", "HEAD:main", where="dev")
        return self.git(name, "rev-parse", "HEAD", where="dev")

    def change_log_events(self, name):
        path = self.sites[name]["datasafe_change_log"]
        jsonl = os.path.splitext(path)[0] + ".jsonl"
        with contextlib.suppress(FileNotFoundError), open(jsonl) as handle:
            return [json.loads(line) for line in handle if line.strip()]
        return []
