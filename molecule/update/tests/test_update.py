"""The safe update on a throwaway stack: the release converge deployed, then every failure path.

Each failure test pushes a real breaking commit to the app's git remote, runs the real
playbook, asserts it failed loudly, that the previous version serves again and that every
row is present, then pushes a revert so the next test starts from a good release.
Tests run in file order and share the stack.
"""

import contextlib
import glob
import json
import os
import subprocess
import threading
import time

import pytest

REPO = os.environ["MOLECULE_PROJECT_DIRECTORY"]
SEEDED = {"users": 10, "patients": 2000, "visits": 6000, "test_results": 18000, "invoices": 6000}


# --- helpers -----------------------------------------------------------------------------


RUN_LOGS = os.path.join("/tmp/datasafe-test-logs", os.environ.get("MOLECULE_SCENARIO_NAME", "update"))


def playbook(name, *extra):
    """Run a playbook as an operator would; its whole output is kept under RUN_LOGS."""
    inventory = os.path.dirname(os.environ["MOLECULE_INVENTORY_FILE"])  # with the linked hosts and group_vars
    cmd = ["ansible-playbook", "-i", inventory, os.path.join(REPO, "playbooks", name)]
    proc = subprocess.run(cmd + list(extra), capture_output=True, text=True, check=False)
    os.makedirs(RUN_LOGS, exist_ok=True)
    log = os.path.join(RUN_LOGS, "%s-%s.log" % (time.strftime("%H%M%S"), name))
    with open(log, "w") as handle:
        handle.write("$ %s\nexit %d\n%s\n%s" % (" ".join(cmd + list(extra)), proc.returncode, proc.stdout, proc.stderr))
    return proc


def git(stack, *args, where="dev"):
    return subprocess.run(
        ["git", "-C", os.path.join(stack["datasafe_test_root"], where), *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def push(stack, message, changes):
    """Commit ``{path: new content or callable(old) -> new}`` to the remote; returns the revision."""
    root = stack["datasafe_test_root"]
    dev = os.path.join(root, "dev")
    if not os.path.isdir(dev):
        subprocess.run(["git", "clone", "-q", os.path.join(root, "remote.git"), dev], check=True)
    git(stack, "pull", "-q", "--ff-only")
    for path, change in changes.items():
        full = os.path.join(dev, path)
        old = open(full).read() if os.path.exists(full) else ""
        with open(full, "w") as handle:
            handle.write(change(old) if callable(change) else change)
    git(stack, "add", "-A")
    git(stack, "-c", "user.name=datasafe-test", "-c", "user.email=test@datasafe.invalid", "commit", "-q", "-m", message)
    git(stack, "push", "-q", "origin", "HEAD:main")
    return git(stack, "rev-parse", "HEAD")


def revert_last(stack):
    git(stack, "-c", "user.name=datasafe-test", "-c", "user.email=test@datasafe.invalid", "revert", "--no-edit", "HEAD")
    git(stack, "push", "-q", "origin", "HEAD:main")


@contextlib.contextmanager
def release(stack, message, changes):
    """A release pushed to the remote for one test, reverted afterwards whatever happens."""
    push(stack, message, changes)
    try:
        yield
    finally:
        revert_last(stack)


def health(stack):
    proc = subprocess.run(
        ["curl", "--silent", "--max-time", "5", stack["datasafe_health_url"]],
        capture_output=True,
        text=True,
        check=False,
    )
    return json.loads(proc.stdout) if proc.returncode == 0 and proc.stdout else None


def counts(stack):
    sql = (
        "SELECT json_build_object('users', (SELECT count(*) FROM users), 'patients', (SELECT count(*) FROM patients),"
        " 'visits', (SELECT count(*) FROM visits), 'test_results', (SELECT count(*) FROM test_results),"
        " 'invoices', (SELECT count(*) FROM invoices))"
    )
    out = subprocess.run(
        [
            "docker",
            "exec",
            stack["datasafe_db_container"],
            "psql",
            "-X",
            "-At",
            "-U",
            "lms_user",
            "-d",
            "lms_slncity",
            "-c",
            sql,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out)


def started_at(stack):
    """When each container of the stack last started: unchanged means nothing was stopped."""
    names = [stack["datasafe_db_container"], stack["datasafe_compose_env"]["LMS_BACKEND_CONTAINER"]]
    out = subprocess.run(
        ["docker", "inspect", "--format", "{{.Name}} {{.State.StartedAt}}"] + names,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(line.split() for line in out.splitlines())


def app_revision(stack):
    return git(stack, "rev-parse", "HEAD", where="app")


def change_log(stack):
    path = stack["datasafe_change_log"]
    jsonl = os.path.splitext(path)[0] + ".jsonl"
    text = open(path).read() if os.path.exists(path) else ""
    events = [json.loads(line) for line in open(jsonl)] if os.path.exists(jsonl) else []
    return text, events


def backups(stack):
    return sorted(glob.glob(os.path.join(stack["datasafe_backup_dir"], "BEFORE_UPDATE_*.sql.gz")))


# --- the successful update (converge) ----------------------------------------------------


def test_release_is_deployed(stack):
    assert health(stack) == {"database": "ok", "status": "ok", "version": "1.1.0"}
    assert app_revision(stack) == git(stack, "rev-parse", "HEAD", where="remote.git")


def test_every_row_is_kept(stack):
    assert counts(stack) == SEEDED


def test_the_data_is_the_same_data(host, stack):
    before = json.load(open(os.path.join(stack["datasafe_test_root"], "volume_before.json")))
    volume = json.loads(host.check_output("docker volume inspect %s_postgres_data" % stack["datasafe_compose_project"]))
    container = stack["datasafe_db_container"]
    inode = int(host.check_output("docker exec %s stat -c %%i /var/lib/postgresql/data" % container))
    control = host.check_output("docker exec %s pg_controldata /var/lib/postgresql/data" % container)
    system_identifier = control.split("Database system identifier:")[1].split()[0]
    assert (volume[0]["Name"], volume[0]["Mountpoint"], inode, system_identifier) == (
        before["name"],
        before["mountpoint"],
        before["data_inode"],
        before["system_identifier"],
    )


def test_a_verified_pre_change_backup_was_taken(stack):
    files = backups(stack)
    assert len(files) == 1
    manifest = json.load(open(files[0] + ".json"))
    assert manifest["verified"] is True and manifest["kind"] == "pre-change"
    assert manifest["counts"] == SEEDED
    assert oct(os.stat(files[0]).st_mode & 0o777) == "0o600"


def test_change_log_documents_before_and_after(stack):
    text, events = change_log(stack)
    lines = text.splitlines()
    assert any(": About to update %s" % stack["datasafe_compose_project"] in line for line in lines)
    assert any(": Change completed successfully" in line for line in lines)
    done = [e for e in events if e["action"] == "safe_update" and e["outcome"] == "completed"][-1]
    assert done["counts_before"] == SEEDED and done["counts_after"] == SEEDED
    assert done["backup"].endswith(".sql.gz") and os.path.exists(done["backup"])
    for key in ("time", "user", "host", "revision_before", "revision_after"):
        assert done[key]


# --- nothing changes in check mode or before preflight passes -----------------------------


def test_check_mode_shows_the_plan_and_changes_nothing(stack):
    before = (started_at(stack), app_revision(stack), backups(stack), change_log(stack))
    with release(stack, "release 1.2.0", {"backend/VERSION": "1.2.0\n"}):
        run = playbook("safe_update.yml", "--check")
        assert run.returncode == 0, run.stdout[-3000:]
        assert "1 new commit(s)" in run.stdout and "docker compose down (volumes kept)" in run.stdout
        assert (started_at(stack), app_revision(stack), backups(stack), change_log(stack)) == before


def test_dirty_tree_is_refused_before_anything_stops(stack):
    before = (started_at(stack), counts(stack), backups(stack))
    stray = os.path.join(stack["datasafe_compose_dir"], "hotfix-notes.txt")
    with open(stray, "w") as handle:
        handle.write("edited on the server, never committed\n")
    try:
        run = playbook("safe_update.yml")
    finally:
        os.unlink(stray)
    assert run.returncode != 0
    assert "uncommitted or untracked" in run.stdout
    assert (started_at(stack), counts(stack), backups(stack)) == before


# --- failures after the pull roll back ------------------------------------------------------


def test_failing_build_rolls_back_while_the_old_version_serves(stack):
    good = app_revision(stack)
    before = started_at(stack)
    broken = {"backend/requirements.txt": lambda old: old + "not-in-the-wheelhouse==9.9.9\n"}
    with release(stack, "add a dependency the wheelhouse does not have", broken):
        run = playbook("safe_update.yml")
    assert run.returncode != 0
    assert "UPDATE FAILED at Build the new images" in run.stdout
    assert "No row was lost" in run.stdout
    assert app_revision(stack) == good
    assert started_at(stack) == before, "the old stack was stopped although the build failed first"
    assert health(stack)["version"] == "1.1.0"
    assert counts(stack) == SEEDED


def test_a_bad_restart_setting_fails_before_anything_stops(stack):
    # datasafe_update_wait_timeout=0 passes the argument spec (an int) but stack_start refuses
    # it; its check-mode call before `down` must find that while the old version still serves.
    good = app_revision(stack)
    before = started_at(stack)
    with release(stack, "release 1.2.5", {"backend/VERSION": "1.2.5\n"}):
        run = playbook("safe_update.yml", "-e", "datasafe_update_wait_timeout=0")
    assert run.returncode != 0
    assert "UPDATE FAILED at Check the restart's arguments" in run.stdout, run.stdout[-3000:]
    assert "wait_timeout must be at least 1 s" in run.stdout
    assert app_revision(stack) == good
    assert started_at(stack) == before, "the old stack was stopped although the restart's arguments were wrong"
    assert health(stack)["version"] == "1.1.0"
    assert counts(stack) == SEEDED


BROKEN_HEALTH = {
    "backend/VERSION": "1.3.0\n",
    "backend/lms_backend/app.py": lambda old: old.replace(
        "def health():\n", 'def health():\n    return jsonify(status="broken"), 500\n', 1
    ),
}


def image_id(reference):
    """The image ID a reference names, or None when there is none."""
    proc = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", reference], capture_output=True, text=True, check=False
    )
    return proc.stdout.strip() if proc.returncode == 0 else None


def test_failing_health_after_up_rolls_back(stack):
    good = app_revision(stack)
    backend = stack["datasafe_compose_env"]["LMS_BACKEND_CONTAINER"]
    running = subprocess.run(
        ["docker", "inspect", "--format", "{{.Image}}", backend], capture_output=True, text=True, check=True
    ).stdout.strip()
    repository = stack["datasafe_compose_env"]["LMS_BACKEND_IMAGE"].rsplit(":", 1)[0]
    shared = image_id(repository + ":datasafe-rollback")  # the tag every stack used to share
    with release(stack, "release 1.3.0 with a broken health endpoint", BROKEN_HEALTH):
        run = playbook("safe_update.yml", "-e", "datasafe_update_wait_timeout=30")
    assert run.returncode != 0
    assert "UPDATE FAILED" in run.stdout and "Rolled back to %s" % good[:12] in run.stdout
    assert app_revision(stack) == good
    assert health(stack) == {"database": "ok", "status": "ok", "version": "1.1.0"}
    assert counts(stack) == SEEDED
    _, events = change_log(stack)
    assert events[-1]["outcome"] == "rolled_back"
    # The image that ran before stays tagged for this project and service only; another stack
    # sharing the repository keeps its own rollback tag.
    own = "%s:datasafe-rollback-%s-backend" % (repository, stack["datasafe_compose_project"])
    assert image_id(own) == running
    assert image_id(repository + ":datasafe-rollback") == shared


MIGRATION = """
# release 2.0.0 "migration": archives old results by deleting them (the bug under test)
_conn = _connect()
_conn.run("DELETE FROM test_results WHERE id > 17900")
_conn.close()
"""


def destructive_release(version):
    return {"backend/VERSION": version + "\n", "backend/lms_backend/app.py": lambda old: old + MIGRATION}


def test_migration_that_deletes_rows_is_caught_and_restored_when_allowed(stack):
    with release(stack, "release 2.0.0 with a destructive migration", destructive_release("2.0.0")):
        run = playbook("safe_update.yml", "-e", "datasafe_update_restore_on_data_loss=true")
    assert run.returncode != 0
    assert "lost 100 row(s)" in run.stdout
    assert "ROWS WERE LOST: test_results; restored from" in run.stdout
    assert health(stack)["version"] == "1.1.0"
    assert counts(stack) == SEEDED


def test_migration_that_deletes_rows_is_caught_and_the_restore_command_printed(stack):
    with release(stack, "release 2.0.1 with the same destructive migration", destructive_release("2.0.1")):
        run = playbook("safe_update.yml")
    assert run.returncode != 0
    assert "lost 100 row(s)" in run.stdout
    assert "NOT restored automatically" in run.stdout
    assert health(stack)["version"] == "1.1.0"
    assert counts(stack)["test_results"] == SEEDED["test_results"] - 100
    # The printed command is the way back: run it as the operator would.
    printed = run.stdout.split("To restore the pre-change backup: ", 1)[1].split()
    backup = next(a for a in printed if a.startswith("datasafe_restore_backup=")).split("=", 1)[1]
    confirm = next(a for a in printed if a.startswith("datasafe_restore_confirm=")).split("=", 1)[1]
    assert confirm == "lms_slncity" and os.path.exists(backup)
    restore = playbook(
        "restore.yml", "-e", "datasafe_restore_backup=%s" % backup, "-e", "datasafe_restore_confirm=%s" % confirm
    )
    assert restore.returncode == 0, restore.stdout[-3000:]
    assert counts(stack) == SEEDED
    assert health(stack)["version"] == "1.1.0"


GUARDED_MIGRATION = """
# release 3.0.0 "migration": clears every result with a WHERE that matches them all
_conn = _connect()
_conn.run("DELETE FROM test_results WHERE id > 0")
_conn.close()
"""


def test_a_migration_the_guard_refuses_fails_the_update_which_rolls_back_naming_the_refusal(stack):
    installed = playbook("dbguard.yml")
    assert installed.returncode == 0, installed.stdout[-3000:]
    try:
        changes = {"backend/VERSION": "3.0.0\n", "backend/lms_backend/app.py": lambda old: old + GUARDED_MIGRATION}
        with release(stack, "release 3.0.0 with a migration the guard inside PostgreSQL refuses", changes):
            run = playbook("safe_update.yml", "-e", "datasafe_update_wait_timeout=30")
        assert run.returncode != 0
        out = " ".join(run.stdout.split())  # the YAML callback folds long messages at 80 columns
        assert "UPDATE FAILED" in out and "No row was lost." in out
        assert "the guard inside PostgreSQL refused: " in out
        assert "datasafe guard: refused DELETE on public.test_results (rule mass-delete-over-limit" in out
        assert health(stack)["version"] == "1.1.0"
        assert counts(stack) == SEEDED
    finally:
        removed = playbook("dbguard.yml", "-e", "datasafe_dbguard_state=absent")
        assert removed.returncode == 0, removed.stdout[-3000:]


# --- one change at a time ----------------------------------------------------------------------


def test_a_second_update_at_the_same_time_is_refused(stack):
    lock = os.path.expanduser("~/.datasafe/%s.lock" % stack["datasafe_compose_project"])
    results = {}
    with release(stack, "release 1.4.0", {"backend/VERSION": "1.4.0\n"}):
        first = threading.Thread(target=lambda: results.setdefault("first", playbook("safe_update.yml")))
        first.start()
        deadline = time.monotonic() + 120
        while not os.path.exists(lock) and time.monotonic() < deadline and first.is_alive():
            time.sleep(0.2)
        assert os.path.exists(lock), "the first update never took the lock"
        second = playbook("safe_update.yml")
        first.join(timeout=600)
    assert second.returncode != 0
    assert "another run is in progress" in second.stdout
    assert results["first"].returncode == 0, results["first"].stdout[-3000:]
    assert health(stack)["version"] == "1.4.0"
    assert counts(stack) == SEEDED
    assert not os.path.exists(lock), "the lock outlived the update"


@pytest.fixture(scope="module", autouse=True)
def _no_stray_lock(stack):
    yield
    lock = os.path.expanduser("~/.datasafe/%s.lock" % stack["datasafe_compose_project"])
    assert not os.path.exists(lock)
