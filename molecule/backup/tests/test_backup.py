"""The throwaway stack after a labelled manual backup and the schedule's installation."""

import json
import uuid

import pytest

COUNTS_SQL = (
    "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM patients), (SELECT count(*) FROM visits), "
    "(SELECT count(*) FROM test_results), (SELECT count(*) FROM invoices)"
)
TABLES = ("users", "patients", "visits", "test_results", "invoices")


def manifests(host, backup_dir):
    out = host.check_output("ls -1 %s" % backup_dir).split()
    return [json.loads(host.file("%s/%s" % (backup_dir, n)).content_string) for n in sorted(out) if n.endswith(".json")]


def counts(host, container, db):
    out = host.check_output(
        "docker exec %s psql -X -At -U lms_user -d %s -c %s" % (container, db, json.dumps(COUNTS_SQL))
    )
    return dict(zip(TABLES, (int(n) for n in out.split("|"))))


@pytest.fixture(scope="module")
def manual(host, stack):
    made = [m for m in manifests(host, stack["datasafe_backup_dir"]) if m["kind"] == "manual"]
    assert len(made) == 1, made
    return made[0]


def test_the_manual_backup_is_verified_private_and_labelled(host, stack, manual):
    d = stack["datasafe_backup_dir"]
    assert host.file(d).mode == 0o700
    assert manual["file"].startswith("lms_backup_") and manual["file"].endswith(".sql.gz")
    assert host.file(manual["path"]).mode == 0o600 and host.file(manual["path"] + ".json").mode == 0o600
    assert manual["verified"] is True and manual["label"] == "molecule manual"
    assert manual["sha256"] == host.check_output("sha256sum %s" % manual["path"]).split()[0]
    assert manual["app_revision"] == host.check_output("git -C %s rev-parse HEAD" % stack["datasafe_compose_dir"])
    assert manual["counts"] == {"users": 10, "patients": 2000, "visits": 6000, "test_results": 18000, "invoices": 6000}


def test_the_backup_restores_into_a_fresh_database_with_identical_counts(host, stack, manual):
    pg, fresh = stack["datasafe_db_container"], "restore_check_%s" % uuid.uuid4().hex[:6]
    host.check_output("docker exec %s createdb -U lms_user %s" % (pg, fresh))
    # the protocol's own recovery command, with pipefail so a failed gunzip is not hidden
    restore = host.run(
        "bash -o pipefail -c 'gunzip -c %s | docker exec -i %s psql -X -q -v ON_ERROR_STOP=1 "
        "-U lms_user -d %s >/dev/null'" % (manual["path"], pg, fresh)
    )
    assert restore.rc == 0, restore.stderr
    assert counts(host, pg, fresh) == manual["counts"] == counts(host, pg, stack["datasafe_db_name"])


def test_the_change_log_and_metrics_record_the_backup(host, stack, manual):
    log = host.file(stack["datasafe_change_log"]).content_string
    assert "Backup (manual) %s of lms_slncity verified" % manual["file"] in log
    root = stack["datasafe_change_log"].rsplit("/", 1)[0]
    prom = host.file(root + "/datasafe_backup.prom").content_string
    assert 'datasafe_backup_last_run_success{database="lms_slncity",kind="manual"} 1' in prom


def cron_line(host, stack):
    entries = host.check_output("crontab -l").splitlines()
    name = "#Ansible: datasafe nightly backup of lms_slncity (%s)" % stack["datasafe_compose_project"]
    assert entries.count(name) == 1, entries
    return entries[entries.index(name) + 1]


def test_the_nightly_entry_is_installed_once_at_two(host, stack):
    line = cron_line(host, stack)
    assert line.startswith("0 2 * * * ")
    assert "/bin/datasafe-backup-job" in line and "--log %s/backup.log" % stack["datasafe_test_root"] in line


def test_the_line_cron_runs_makes_a_scheduled_backup_in_an_empty_environment(host, stack):
    command = cron_line(host, stack).split(" ", 5)[5]
    before = [m["file"] for m in manifests(host, stack["datasafe_backup_dir"])]
    run = host.run("env -i /bin/sh -c %s" % json.dumps(command))
    log = host.file("%s/backup.log" % stack["datasafe_test_root"]).content_string
    assert run.rc == 0, log[-3000:]
    assert "datasafe backup job finished OK" in log
    new = [m for m in manifests(host, stack["datasafe_backup_dir"]) if m["file"] not in before]
    assert [m["kind"] for m in new] == ["scheduled"] and new[0]["verified"] is True
