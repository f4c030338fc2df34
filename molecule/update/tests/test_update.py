"""The safe update on a throwaway stack: the release converge deployed, then every failure path.

Each failure test pushes a real breaking commit to the app's git remote, runs the real
playbook, asserts it failed loudly, that the previous version serves again and that every
row is present, then pushes a revert so the next test starts from a good release.
Tests run in file order and share the stack.
"""

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


def playbook(name, *extra):
    cmd = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], os.path.join(REPO, "playbooks", name)]
    return subprocess.run(cmd + list(extra), capture_output=True, text=True, check=False)


def git(stack, *args, where="dev"):
    return subprocess.run(["git", "-C", os.path.join(stack["datasafe_test_root"], where), *args],
                          capture_output=True, text=True, check=True).stdout.strip()


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
    git(stack, "-c", "user.name=datasafe-test", "-c", "user.email=test@datasafe.invalid", "revert", "-q", "--no-edit",
        "HEAD")
    git(stack, "push", "-q", "origin", "HEAD:main")


def health(stack):
    proc = subprocess.run(["curl", "--silent", "--max-time", "5", stack["datasafe_health_url"]],
                          capture_output=True, text=True, check=False)
    return json.loads(proc.stdout) if proc.returncode == 0 and proc.stdout else None


def counts(stack):
    sql = ("SELECT json_build_object('users', (SELECT count(*) FROM users), 'patients', (SELECT count(*) FROM patients),"
           " 'visits', (SELECT count(*) FROM visits), 'test_results', (SELECT count(*) FROM test_results),"
           " 'invoices', (SELECT count(*) FROM invoices))")
    out = subprocess.run(["docker", "exec", stack["datasafe_db_container"], "psql", "-X", "-At", "-U", "lms_user",
                          "-d", "lms_slncity", "-c", sql], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def started_at(stack):
    """When each container of the stack last started: unchanged means nothing was stopped."""
    names = [stack["datasafe_db_container"], stack["datasafe_compose_env"]["LMS_BACKEND_CONTAINER"]]
    out = subprocess.run(["docker", "inspect", "--format", "{{.Name}} {{.State.StartedAt}}"] + names,
                         capture_output=True, text=True, check=True).stdout
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


def test_volume_identity_is_unchanged(host, stack):
    before = json.load(open(os.path.join(stack["datasafe_test_root"], "volume_before.json")))
    volume = json.loads(host.check_output("docker volume inspect %s_postgres_data" % stack["datasafe_compose_project"]))
    assert (volume[0]["Name"], volume[0]["CreatedAt"], volume[0]["Mountpoint"]) == (
        before["name"], before["created_at"], before["mountpoint"])


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
    push(stack, "release 1.2.0", {"backend/VERSION": "1.2.0\n"})
    run = playbook("safe_update.yml", "--check")
    assert run.returncode == 0, run.stdout[-3000:]
    assert "1 new commit(s)" in run.stdout and "docker compose down (volumes kept)" in run.stdout
    assert (started_at(stack), app_revision(stack), backups(stack), change_log(stack)) == before
    revert_last(stack)


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
    push(stack, "add a dependency the wheelhouse does not have",
         {"backend/requirements.txt": lambda old: old + "not-in-the-wheelhouse==9.9.9\n"})
    run = playbook("safe_update.yml")
    assert run.returncode != 0
    assert "UPDATE FAILED at Build the new images" in run.stdout
    assert "No row was lost" in run.stdout
    assert app_revision(stack) == good
    assert started_at(stack) == before, "the old stack was stopped although the build failed first"
    assert health(stack)["version"] == "1.1.0"
    assert counts(stack) == SEEDED
    revert_last(stack)


def test_failing_health_after_up_rolls_back(stack):
    good = app_revision(stack)
    push(stack, "release 1.3.0 with a broken health endpoint", {
        "backend/VERSION": "1.3.0\n",
        "backend/lms_backend/app.py": lambda old: old.replace(
            "def health():\n", "def health():\n    return jsonify(status=\"broken\"), 500\n", 1),
    })
    run = playbook("safe_update.yml", "-e", "datasafe_update_wait_timeout=30")
    assert run.returncode != 0
    assert "UPDATE FAILED" in run.stdout and "Rolled back to %s" % good[:12] in run.stdout
    assert app_revision(stack) == good
    assert health(stack) == {"database": "ok", "status": "ok", "version": "1.1.0"}
    assert counts(stack) == SEEDED
    _, events = change_log(stack)
    assert events[-1]["outcome"] == "rolled_back"
    revert_last(stack)


MIGRATION = '''
# release 2.0.0 "migration": archives old results by deleting them (the bug under test)
_conn = _connect()
_conn.run("DELETE FROM test_results WHERE id > 17900")
_conn.close()
'''


def test_migration_that_deletes_rows_is_caught_and_restored_when_allowed(stack):
    push(stack, "release 2.0.0 with a destructive migration", {
        "backend/VERSION": "2.0.0\n",
        "backend/lms_backend/app.py": lambda old: old + MIGRATION,
    })
    run = playbook("safe_update.yml", "-e", "datasafe_update_restore_on_data_loss=true")
    assert run.returncode != 0
    assert "lost 100 row(s)" in run.stdout
    assert "ROWS WERE LOST: test_results; restored from" in run.stdout
    assert health(stack)["version"] == "1.1.0"
    assert counts(stack) == SEEDED
    revert_last(stack)


def test_migration_that_deletes_rows_is_caught_and_the_restore_command_printed(stack):
    push(stack, "release 2.0.1 with the same destructive migration", {
        "backend/VERSION": "2.0.1\n",
        "backend/lms_backend/app.py": lambda old: old + MIGRATION,
    })
    run = playbook("safe_update.yml")
    assert run.returncode != 0
    assert "lost 100 row(s)" in run.stdout
    assert "NOT restored automatically" in run.stdout
    assert health(stack)["version"] == "1.1.0"
    assert counts(stack)["test_results"] == SEEDED["test_results"] - 100
    # The printed command is the way back: run it as the operator would.
    command = run.stdout.split("To restore the pre-change backup: ", 1)[1].split("ansible-playbook ", 1)[1]
    args = command.split()[: command.split().index("-e") + 4]
    backup = [a for a in args if a.startswith("datasafe_restore_backup=")][0].split("=", 1)[1]
    restore = playbook("restore.yml", "-e", "datasafe_restore_backup=%s" % backup,
                       "-e", "datasafe_restore_confirm=lms_slncity")
    assert restore.returncode == 0, restore.stdout[-3000:]
    assert counts(stack) == SEEDED
    revert_last(stack)


# --- one change at a time ----------------------------------------------------------------------


def test_a_second_update_at_the_same_time_is_refused(stack):
    push(stack, "release 1.4.0", {"backend/VERSION": "1.4.0\n"})
    lock = os.path.expanduser("~/.datasafe/%s.lock" % stack["datasafe_compose_project"])
    results = {}
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
