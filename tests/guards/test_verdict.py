"""The guards' verdict, reached on the controller and carried to a managed host with a bare Python.

Real ansible runs (local connection, Debian's bare /usr/bin/python3 as the managed Python: no
pglast, no bashlex) of safe_sql and safe_command through their action plugins, and of the modules
without them; the SQL they must refuse is read from tests/fleet/sql. No database is needed: every
case here is decided before anything would reach one.
"""

import json
import os
import shutil
import subprocess

import pytest
from ansible.module_utils.datasafe import guard, verdict

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(REPO, ".venv", "bin")
BARE_PYTHON = "/usr/bin/python3"
MASS_DELETE = os.path.join(REPO, "tests", "fleet", "sql", "mass_delete.sql")


def bare_python_lacks_the_parsers():
    proc = subprocess.run([BARE_PYTHON, "-c", "import pglast"], capture_output=True, check=False)
    return proc.returncode != 0


def adhoc(module, args, tmp_path, action_plugins=True):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    env["ANSIBLE_LOCAL_TEMP"] = str(tmp_path / "ansible-tmp")
    if not action_plugins:
        env["ANSIBLE_ACTION_PLUGINS"] = str(tmp_path / "no-action-plugins")
    cmd = [os.path.join(BIN, "ansible"), "-i", "localhost,", "localhost", "-c", "local"]
    cmd += ["-e", "ansible_python_interpreter=" + BARE_PYTHON, "-m", module, "-a", json.dumps(args)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env, cwd=REPO)
    return proc.returncode, proc.stdout + proc.stderr


def test_a_verdict_covers_exactly_what_was_judged():
    found = [guard.Finding("sql-truncate", "TRUNCATE t")]
    subject = verdict.sql_subject("TRUNCATE t", [])
    made = verdict.make("safe_sql", subject, found, {"where": "test"})
    assert verdict.accept(made, "safe_sql", subject) == found
    for module, other in (
        ("safe_sql", verdict.sql_subject("TRUNCATE t ", [])),
        ("safe_sql", verdict.sql_subject("TRUNCATE t", [{"id": "x"}])),
        ("safe_command", subject),
    ):
        with pytest.raises(verdict.VerdictError):
            verdict.accept(made, module, other)
    for broken in (None, dict(made, version=0), dict(made, findings=None), dict(made, findings=[{"x": 1}])):
        with pytest.raises(verdict.VerdictError):
            verdict.accept(broken, "safe_sql", subject)


@pytest.mark.skipif(not os.path.exists(BARE_PYTHON) or not bare_python_lacks_the_parsers(), reason="no bare Python")
def test_on_a_bare_python_the_controller_judges_and_the_module_holds_to_it(tmp_path):
    with open(MASS_DELETE, encoding="utf-8") as handle:
        destructive = handle.read()
    sql_file = tmp_path / "migration.sql"
    shutil.copy(MASS_DELETE, sql_file)
    marker = tmp_path / "ran"
    db = dict(container="datasafe-no-such-container", database="d", user="u")

    # Through the action plugins: refused with the rule, the host file read for the command.
    rc, out = adhoc("safe_sql", dict(db, src=str(sql_file)), tmp_path)
    assert rc != 0 and "sql-delete-without-where" in out and "executed: false" in out, out
    rc, out = adhoc("safe_command", dict(cmd="psql -f migration.sql && touch ran", chdir=str(tmp_path)), tmp_path)
    assert rc != 0 and "sql-delete-without-where" in out and not marker.exists(), out
    # An allowed command runs on the bare Python.
    rc, out = adhoc("safe_command", dict(argv=["touch", str(marker)]), tmp_path)
    assert rc == 0 and marker.exists(), out
    marker.unlink()

    # Allowed SQL gets its statement kinds from the controller (templated values are str
    # subclasses the parser rejects): it gets as far as the missing container.
    rc, out = adhoc("safe_sql", dict(db, sql="{{ 'SELECT 1' }}"), tmp_path)
    assert rc != 0 and "could not be parsed" not in out and db["container"] in out, out

    # A verdict set in a task is refused by the plugin.
    forged = verdict.make("safe_sql", verdict.sql_subject("SELECT 1", []), [], {"where": "test"})
    rc, out = adhoc("safe_sql", dict(db, sql=destructive, _datasafe_verdict=forged), tmp_path)
    assert rc != 0 and "action plugin only" in out, out
    # Without the plugin, the module holds a verdict to the text it covers ...
    rc, out = adhoc("safe_sql", dict(db, sql=destructive, _datasafe_verdict=forged), tmp_path, action_plugins=False)
    assert rc != 0 and "not what the guard judged" in out and "executed: false" in out, out
    # ... and without any verdict it fails closed, naming what is missing where.
    rc, out = adhoc("safe_command", dict(argv=["touch", str(marker)]), tmp_path, action_plugins=False)
    assert rc != 0 and "bashlex" in out and BARE_PYTHON in out and not marker.exists(), out
