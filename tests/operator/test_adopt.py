"""playbooks/adopt.yml on a throwaway stack built like a real deployment: a git checkout with
docker-compose.prod.yml and a .env (no datasafe variables anywhere), the old ~/backup-database.sh
in "the user's crontab" (a file, behind a crontab stand-in: the machine's crontabs are never
touched), old backups in ~/backups. Real ansible-playbook runs; the written host_vars are then
used by verify.yml as they are."""

import json
import os
import shutil
import subprocess

import pytest
import yaml
from opbed import VENV_BIN, LmsStack, playbook_argv
from pgbed import CRITICAL_TABLES, LMS, REPO

HERE = os.path.dirname(os.path.abspath(__file__))
OLD_LINE = "0 2 * * * ~/backup-database.sh >> ~/backup.log 2>&1"
OTHER_LINE = "15 * * * * /usr/bin/true unrelated"


class DeployedStack(LmsStack):
    """The LMS stack as an operator runs it: names and ports in the checkout's .env, so plain
    `docker compose -f docker-compose.prod.yml up -d` there (and datasafe) needs no environment."""

    def start(self):
        subprocess.run(
            ["bash", os.path.join(REPO, "testbed", "make-app-repo.sh"), LMS, self.root], capture_output=True, check=True
        )
        with open(os.path.join(self.app, ".env"), "w") as handle:
            handle.writelines("%s=%s\n" % item for item in self.compose_env.items())
        with open(os.path.join(self.app, ".git", "info", "exclude"), "a") as handle:
            handle.write(".env\n")
        super().start()  # make-app-repo keeps the existing checkout
        self.psql_file("volatile_sessions.sql")
        return self


@pytest.fixture(scope="module")
def deployed():
    stack = DeployedStack()
    try:
        yield stack.start()
    finally:
        stack.remove()


@pytest.fixture(scope="module")
def site(deployed, tmp_path_factory):
    """The operator's side: an inventory naming only the host, a home with the old backup."""
    root = tmp_path_factory.mktemp("adopt")
    inventory = root / "inventory"
    inventory.mkdir()
    hosts = {
        "all": {
            "hosts": {
                "localhost": {
                    "ansible_connection": "local",
                    "ansible_python_interpreter": "{{ ansible_playbook_python }}",
                }
            },
            "children": {"production": {"hosts": {"localhost": {}}}},
        }
    }
    (inventory / "hosts.yml").write_text(json.dumps(hosts))
    home = root / "home"
    (home / "backups").mkdir(parents=True)
    for name in ("lms_backup_20261128_020000.sql.gz", "lms_backup_20261129_020000.sql.gz"):
        (home / "backups" / name).write_bytes(b"old backup, not datasafe's")
    shutil.copy2(os.path.join(HERE, "adopt", "backup-database.sh"), home / "backup-database.sh")
    bindir = root / "bin"
    bindir.mkdir()
    shutil.copy2(os.path.join(HERE, "adopt", "crontab"), bindir / "crontab")
    crontab = root / "crontab"
    crontab.write_text(OTHER_LINE + "\n" + OLD_LINE + "\n")
    env = dict(
        os.environ,
        HOME=str(home),
        DATASAFE_TEST_CRONTAB=str(crontab),
        ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_NOCOLOR="1",
        PATH=os.pathsep.join([str(bindir), VENV_BIN, os.environ.get("PATH", "")]),
    )
    return {
        "inventory": str(inventory / "hosts.yml"),
        "host_vars": inventory / "host_vars" / "localhost.yml",
        "home": home,
        "crontab": crontab,
        "env": env,
        "project": deployed.project,
    }


def play(site, playbook, *args):
    """ansible-playbook as the operator runs it; the project is named, since this machine runs
    other stacks too (adopt refuses to pick one of several: tests/operator/test_adopt_units.py)."""
    which = json.dumps({"datasafe_adopt_project": site["project"]})
    return subprocess.run(
        playbook_argv(site["inventory"], playbook, *args, "-e", which),
        env=site["env"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=1200,
        check=False,
    )


def flat(proc):
    return " ".join(proc.stdout.replace("''", "'").split())


def state(site):
    """Everything adopt may change on the operator's side."""
    home = site["home"]
    return (
        site["host_vars"].exists(),
        site["crontab"].read_text(),
        (home / "backup-database.sh").read_text(),
        sorted(os.listdir(home / "backups")),
    )


def confirm(deployed):
    return json.dumps({"datasafe_adopt_critical_tables": CRITICAL_TABLES, "datasafe_adopt_health_url": deployed.url})


def test_check_mode_shows_what_it_read_and_changes_nothing(deployed, site):
    before = state(site)
    proc = play(site, "adopt.yml", "--check", "--diff", "-e", json.dumps({"datasafe_adopt_health_url": deployed.url}))
    assert proc.returncode == 0, proc.stdout[-5000:]
    text = flat(proc)
    assert "project %s" % deployed.project in text
    assert "container %s, volume %s_postgres_data (key postgres_data)" % (deployed.db, deployed.project) in text
    assert "database lms_slncity, user lms_user" in text
    assert "sessions | False | looks refilled or pruned by the application" in text
    assert "visits | True | application data" in text
    assert '+datasafe_compose_project: "%s"' % deployed.project in proc.stdout  # the host_vars it would write
    assert "GUESSED from the schema, not confirmed" in text  # the diff of the host_vars it would write
    assert "to comment out: ['%s']" % OLD_LINE in text
    assert state(site) == before


def test_a_real_run_needs_the_tables_confirmed_and_a_health_url(deployed, site):
    before = state(site)
    proc = play(site, "adopt.yml")
    assert proc.returncode != 0
    text = flat(proc)
    assert "No health URL was found: set datasafe_adopt_health_url" in text
    guess = json.dumps({"datasafe_adopt_critical_tables": sorted(CRITICAL_TABLES)})
    assert "Confirm the critical tables" in text and guess in text, text[-3000:]
    proc = play(site, "adopt.yml", "-e", json.dumps({"datasafe_adopt_critical_tables": ["users", "no_such_table"]}))
    assert proc.returncode != 0 and "names tables that do not exist: no_such_table" in flat(proc)
    assert state(site) == before


def test_adopt_protects_the_deployment_and_verify_uses_what_it_wrote(deployed, site):
    proc = play(site, "adopt.yml", "-e", confirm(deployed))
    assert proc.returncode == 0, proc.stdout[-6000:]
    written = yaml.safe_load(site["host_vars"].read_text())
    assert written == {
        "datasafe_compose_dir": deployed.app,
        "datasafe_compose_files": ["docker-compose.prod.yml"],
        "datasafe_compose_project": deployed.project,
        "datasafe_db_service": "postgres",
        "datasafe_db_container": deployed.db,
        "datasafe_db_volume": "postgres_data",
        "datasafe_db_name": "lms_slncity",
        "datasafe_db_user": "lms_user",
        "datasafe_critical_tables": CRITICAL_TABLES,
        "datasafe_health_url": deployed.url,
    }
    assert oct(site["host_vars"].stat().st_mode & 0o777) == "0o600"

    crontab = site["crontab"].read_text().splitlines()
    assert OTHER_LINE in crontab and OLD_LINE not in crontab  # the old line is no longer active ...
    assert any(line.startswith("# datasafe adopt:") and line.endswith(OLD_LINE) for line in crontab)  # ... but kept
    jobs = [line for line in crontab if "datasafe-backup-job" in line and not line.startswith("#")]
    assert len(jobs) == 2
    assert any(line.startswith("0 2 ") for line in jobs) and any(line.startswith("30 2 ") for line in jobs)

    home = site["home"]
    script = (home / "backup-database.sh").read_text()
    original = (home / "backup-database.sh.before-datasafe-adopt").read_text()
    assert original == open(os.path.join(HERE, "adopt", "backup-database.sh")).read()
    active = [line for line in script.splitlines() if not line.lstrip().startswith((":", "#"))]
    assert not [line for line in active if "-delete" in line or "rm " in line], script
    assert subprocess.run(["bash", "-n", str(home / "backup-database.sh")], check=False).returncode == 0
    assert os.access(home / "backup-database.sh", os.X_OK)

    backups = sorted(os.listdir(home / "backups"))
    assert {"lms_backup_20261128_020000.sql.gz", "lms_backup_20261129_020000.sql.gz"} <= set(backups)  # kept
    assert "kept (never deleted" in flat(proc) and "lms_backup_20261128_020000.sql.gz" in proc.stdout
    assert any(name.endswith(".sql.gz.json") for name in backups)  # the first verified backup's manifest
    assert deployed.counts() == deployed.seeded

    proc = play(site, "verify.yml")  # every later playbook reads the written host_vars
    assert proc.returncode == 0, proc.stdout[-5000:]

    before = state(site)
    proc = play(site, "adopt.yml", "--check", "-e", confirm(deployed))  # adopted again: nothing to do
    assert proc.returncode == 0, proc.stdout[-5000:]
    assert "(unchanged)" in proc.stdout and "to comment out: []" in flat(proc)
    assert state(site) == before


def test_a_host_vars_file_the_operator_edited_is_never_overwritten(deployed, site):
    path = site["host_vars"]
    if not path.exists():
        pytest.skip("needs the host_vars the previous test wrote")
    edited = path.read_text() + "datasafe_backup_retention_days: 14\n"
    path.write_text(edited)
    proc = play(site, "adopt.yml", "-e", confirm(deployed))
    assert proc.returncode != 0
    assert "was not written by adopt (or was edited since): it is never overwritten" in flat(proc)
    assert "-datasafe_backup_retention_days: 14" in proc.stdout  # the difference, shown
    assert path.read_text() == edited
