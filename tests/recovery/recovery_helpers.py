"""Helpers for the server-loss tests: an "old server" stack, real playbooks, content fingerprints.

The old server is a real compose stack of the demo app (its own project ``dstest-rec-<id>``,
free loopback ports), deployed from a git remote as the protocol's users have it
(testbed/make-app-repo.sh), seeded with the demo data plus tests/recovery/rich_schema.sql.
Everything a test creates lives under its root (/tmp/dstest-rec-<id>) and is removed by
testbed/remove-test-stack.sh (containers, volumes and images of that project only).
"""

import csv
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import uuid

from ansible.module_utils.datasafe import container
from pgbed import CRITICAL_TABLES, LMS, REPO

HERE = os.path.dirname(os.path.abspath(__file__))
VENV_BIN = os.path.join(REPO, ".venv", "bin")
RICH_SCHEMA = os.path.join(HERE, "rich_schema.sql")
DB, USER = "lms_slncity", "lms_user"
SLOT = 17
SLOT_PORTS = (56000 + SLOT * 10, 56001 + SLOT * 10)
SLOT_LOCK = "/var/tmp/datasafe-molecule-recovery.lock"


def sh(argv, env=None, check=True, data=None):
    proc = subprocess.run(argv, input=data, capture_output=True, text=True, env=env, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError("%s failed (exit %s):\n%s\n%s" % (argv[:3], proc.returncode, proc.stdout, proc.stderr))
    return proc


class OldServer:
    """A deployed stack (app checkout, database, backend) the tests back up, destroy and recover."""

    def __init__(self, moto, bucket, recipient, identity):
        self.id = uuid.uuid4().hex[:8]
        self.project = "dstest-rec-%s" % self.id
        self.root = "/tmp/%s" % self.project
        # The stack is destroyed and started again minutes later on the same ports: free_port()
        # ports could be taken by anyone meanwhile, so it uses its slot's reserved ports (17:
        # 56170-56179, never handed out as ephemeral ports); conftest serialises runs with a lock.
        self.db_port, self.app_port = SLOT_PORTS
        self.db = "%s-pg" % self.project
        self.backend = "%s-backend" % self.project
        self.app = os.path.join(self.root, "app")
        self.remote = os.path.join(self.root, "remote.git")
        self.backups = os.path.join(self.root, "backups")
        self.change_log = os.path.join(self.root, "change-log.txt")
        self.job_log = os.path.join(self.root, "backup.log")
        self.moto, self.bucket, self.recipient, self.identity = moto, bucket, recipient, identity
        self.env = dict(
            os.environ,
            COMPOSE_PROJECT_NAME=self.project,
            LMS_DB_CONTAINER=self.db,
            LMS_BACKEND_CONTAINER=self.backend,
            LMS_DB_PORT=str(self.db_port),
            LMS_BACKEND_PORT=str(self.app_port),
            LMS_BACKEND_IMAGE="lms-backend:%s" % self.project,
        )

    # -- life cycle ------------------------------------------------------------------------

    def start(self):
        sh([os.path.join(REPO, "testbed", "make-app-repo.sh"), LMS, self.root])
        sh(
            ["docker", "compose", "-p", self.project, "-f", os.path.join(self.app, "docker-compose.prod.yml")]
            + ["up", "-d", "--build", "--wait"],
            env=self.env,
        )
        gen = sh([sys.executable, os.path.join(LMS, "generate_data.py"), "--scale", "1"])
        self.psql(gen.stdout)
        with open(RICH_SCHEMA, encoding="utf-8") as handle:
            self.psql(handle.read())
        return self

    def destroy_everything_but_the_image(self):
        """The server is lost: containers, the database volume, the checkout and the local backups.

        The backend image stays: it holds no data, and the test bed has no registry to rebuild
        its base from on a "new" machine (a real one builds it from the repository)."""
        label = "label=com.docker.compose.project=%s" % self.project
        for kind, listing in (("rm", ["ps", "-aq"]), ("volume", ["volume", "ls", "-q"])):
            ids = sh(["docker", *listing, "--filter", label]).stdout.split()
            if ids:
                sh(["docker", "rm", "-f", *ids] if kind == "rm" else ["docker", "volume", "rm", *ids])
        for path in (self.app, self.backups):
            sh(["rm", "-rf", "--", path])
        assert not os.path.exists(self.app) and not os.path.exists(self.backups)

    def remove(self):
        if os.path.exists(self.root):
            self.playbook("schedule.yml", {"datasafe_schedule_state": "absent"}, check=False)
        sh([os.path.join(REPO, "testbed", "remove-test-stack.sh"), self.project, self.root], check=False)

    # -- SQL -------------------------------------------------------------------------------

    def psql(self, sql, db=DB):
        return sh(container.psql_argv(self.db, db, USER, extra=["--csv", "-t"]), data=sql).stdout

    def counts(self):
        return container.count_rows(container.subprocess_runner, self.db, DB, USER, CRITICAL_TABLES)

    def container_ids(self):
        label = "label=com.docker.compose.project=%s" % self.project
        return sh(["docker", "ps", "-q", "--no-trunc", "--filter", label])

    # -- datasafe --------------------------------------------------------------------------

    def variables(self, **extra):
        data = {
            "datasafe_compose_dir": self.app,
            "datasafe_compose_files": ["docker-compose.prod.yml"],
            "datasafe_compose_project": self.project,
            "datasafe_compose_env": {k: self.env[k] for k in self.env if k.startswith(("LMS_", "COMPOSE_"))},
            "datasafe_db_service": "postgres",
            "datasafe_db_volume": "postgres_data",
            "datasafe_db_container": self.db,
            "datasafe_db_name": DB,
            "datasafe_db_user": USER,
            "datasafe_critical_tables": CRITICAL_TABLES,
            "datasafe_health_url": "http://127.0.0.1:%d/health" % self.app_port,
            # The machine the tests share is often loaded far beyond its 2 cores (load 40+): the
            # recovered backend has taken minutes to boot there. A wait, not a speed claim.
            "datasafe_health_retries": 540,
            "datasafe_health_delay": 1,
            "datasafe_backup_dir": self.backups,
            "datasafe_change_log": self.change_log,
            "datasafe_offsite_s3_access_key": "testing",
            "datasafe_offsite_s3_secret_key": "testing",
            "datasafe_offsite_encrypt": True,
            "datasafe_offsite_age_recipients": [self.recipient],
            "datasafe_offsite_targets": [self.s3_target()],
            "datasafe_schedule_name": "datasafe test %s" % self.project,
            "datasafe_schedule_log": self.job_log,
            "datasafe_schedule_lock": os.path.join(self.root, "backup-job.lock"),
            "datasafe_restore_lock_path": os.path.join(self.root, "restore.lock"),
        }
        data.update(extra)
        return data

    def s3_target(self, prefix="lms/old-server/", bucket=None):
        return {
            "name": "s3",
            "type": "s3",
            "bucket": bucket or self.bucket,
            "prefix": prefix,
            "endpoint_url": self.moto.endpoint,
            "region": "us-east-1",
            "verify": "download",
        }

    def files(self, name, variables):
        os.makedirs(self.root, exist_ok=True)
        inventory = os.path.join(self.root, "hosts.yml")
        with open(inventory, "w") as handle:
            handle.write(
                "all:\n  children:\n    production:\n      hosts:\n        localhost:\n"
                "          ansible_connection: local\n"
                '          ansible_python_interpreter: "{{ ansible_playbook_python }}"\n'
            )
        path = os.path.join(self.root, "%s-vars.json" % name)
        with open(path, "w") as handle:
            json.dump(variables, handle)
        return inventory, path

    def playbook(self, name, extra=None, check=True):
        inventory, variables = self.files(name.replace(".yml", ""), self.variables(**(extra or {})))
        env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_FORCE_COLOR="0")
        env["PATH"] = VENV_BIN + os.pathsep + env.get("PATH", "")
        argv = [os.path.join(VENV_BIN, "ansible-playbook"), "-i", inventory, "-e", "@" + variables]
        return sh(argv + [os.path.join(REPO, "playbooks", name)], env=env, check=check)

    def nightly_job(self, extra=None):
        """bin/datasafe-backup-job exactly as cron runs it (bare environment), with this test's inventory."""
        inventory, variables = self.files("job", self.variables(**(extra or {})))
        argv = ["env", "-i", "HOME=%s" % os.environ.get("HOME", "/root")]
        argv += [os.path.join(REPO, "bin", "datasafe-backup-job"), "--inventory", inventory, "--log", self.job_log]
        argv += ["--lock", os.path.join(self.root, "backup-job.lock"), "--", "-e", "@" + variables]
        return sh(argv, check=False)

    def diagnose(self):
        """What the stack's containers said, for a failed assertion."""
        out = sh(
            ["docker", "ps", "-a", "--filter", "label=com.docker.compose.project=%s" % self.project], check=False
        ).stdout
        for name in (self.backend, self.db):
            logs = sh(["docker", "logs", "--tail", "40", name], check=False)
            out += "\n--- %s\n%s%s" % (name, logs.stdout[-3000:], logs.stderr[-3000:])
        listeners = sh(["ss", "-ltnp"], check=False).stdout
        out += "\n--- listening on the slot's ports\n" + "\n".join(
            line for line in listeners.splitlines() if ":%d " % self.app_port in line or ":%d " % self.db_port in line
        )
        return out

    def job_log_tail(self):
        with open(self.job_log, encoding="utf-8") as handle:
            text = handle.read()
        return text[text.rfind("datasafe backup job started") :]


# --- the content fingerprint -------------------------------------------------------------------

_TABLES = """
SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname IN ('public', 'lab') ORDER BY 1
"""
_FACTS = {
    "sequences": "SELECT format('%I.%I', schemaname, sequencename), last_value FROM pg_sequences "
    "WHERE schemaname IN ('public', 'lab') ORDER BY 1",
    "large_objects": "SELECT m.oid, pg_get_userbyid(m.lomowner), md5(lo_get(m.oid)), m.lomacl::text "
    "FROM pg_largeobject_metadata m ORDER BY 1",
    "grants": "SELECT grantee, table_schema, table_name, privilege_type FROM information_schema.role_table_grants "
    "WHERE table_schema IN ('public', 'lab') ORDER BY 1, 2, 3, 4",
    "owners": "SELECT format('%I.%I', n.nspname, c.relname), pg_get_userbyid(c.relowner), c.relkind "
    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname IN ('public', 'lab') ORDER BY 1",
    "roles": "SELECT rolname, rolcanlogin, rolsuper, rolinherit, rolconnlimit, rolconfig::text, "
    "shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname !~ '^pg_' ORDER BY 1",
    "password_hashes": "SELECT rolname, md5(coalesce(rolpassword, '')) FROM pg_authid "
    "WHERE rolname NOT IN ('lms_user') AND rolname !~ '^pg_' ORDER BY 1",
    "memberships": "SELECT pg_get_userbyid(roleid), pg_get_userbyid(member), admin_option FROM pg_auth_members "
    "WHERE pg_get_userbyid(roleid) !~ '^pg_' ORDER BY 1, 2",
    "extensions": "SELECT extname, extversion FROM pg_extension ORDER BY 1",
    "enum": "SELECT enumlabel FROM pg_enum WHERE enumtypid = 'lab.sample_state'::regtype ORDER BY enumsortorder",
    "triggers": "SELECT tgname, tgrelid::regclass::text FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1",
    "views": "SELECT viewname, md5(definition) FROM pg_views WHERE schemaname = 'lab' ORDER BY 1",
    "encoding": "SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = current_database()",
}


def fingerprint(server):
    """Every table's rows (hashed in a stable order), sequences, large objects, grants, roles."""
    out = {}
    tables = [row[0] for row in csv.reader(io.StringIO(server.psql(_TABLES))) if row]
    for table in tables:
        sql = "SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) FROM %s t" % table
        out["table " + table] = server.psql(sql).strip()
    for name, sql in _FACTS.items():
        out[name] = hashlib.sha256(server.psql(sql).encode()).hexdigest()[:16] + " " + server.psql(sql).strip()[:2000]
    return out


def sanity(fp):
    """The fingerprint really saw the rich schema (so a recovery that lost it cannot pass by accident)."""
    assert re.match(r"^300,", fp["table lab.samples"]), fp["table lab.samples"]
    assert fp['table lab."Audit Trail ""v2"""'].startswith("330,")  # 300 inserts, 30 updates
    assert "lab_reporter" in fp["roles"] and "Lab Auditor" in fp["roles"]
    assert "7000004249" in fp["sequences"]
    assert "424242,lab_reporter" in fp["large_objects"]
    assert "pgcrypto" in fp["extensions"] and "citext" in fp["extensions"]
    assert "déjà vu" in fp["enum"]
