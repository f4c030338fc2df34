"""After the disaster and the restore: every row back, health answers, the damaged database kept."""

import datetime
import json
import re


def psql(host, stack, sql, db=None):
    return host.check_output(
        "docker exec %s psql -X -At -U %s -d %s -c %s"
        % (stack["datasafe_db_container"], stack["datasafe_db_user"], db or stack["datasafe_db_name"], json.dumps(sql))
    )


COUNTS = (
    "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM patients), (SELECT count(*) FROM visits), "
    "(SELECT count(*) FROM test_results), (SELECT count(*) FROM invoices)"
)


def databases(host, stack):
    return psql(host, stack, "SELECT datname FROM pg_database ORDER BY 1", db="postgres").split()


def test_every_row_is_back(host, stack):
    assert psql(host, stack, COUNTS) == "10|2000|6000|18000|6000"


def test_health_endpoint_answers_ok(host, stack):
    out = host.check_output("curl --silent --show-error --fail %s" % stack["datasafe_health_url"])
    assert json.loads(out)["database"] == "ok"


def test_pre_restore_database_is_kept_with_its_damaged_contents(host, stack):
    kept = [d for d in databases(host, stack) if d.startswith(stack["datasafe_db_name"] + "_before_restore_")]
    assert len(kept) == 1, databases(host, stack)
    assert psql(host, stack, COUNTS, db=kept[0]) == "10|2000|6000|0|6000"


def test_only_the_restore_refused_at_the_swap_left_its_database_for_inspection(host, stack):
    # the refused and unconfirmed runs created nothing; the confirmed one was renamed into place;
    # the one whose counts did not match its manifest was never swapped in and is kept, whole
    left = [d for d in databases(host, stack) if d.startswith(stack["datasafe_db_name"] + "_restore_")]
    assert len(left) == 1, databases(host, stack)
    assert psql(host, stack, COUNTS, db=left[0]) == "10|2000|6000|18000|6000"


def test_restored_database_keeps_owner_encoding_and_locale(host, stack):
    sql = (
        "SELECT pg_get_userbyid(datdba), pg_encoding_to_char(encoding), datcollate, datctype FROM pg_database "
        "WHERE datname IN ('%s', '%s') ORDER BY datname"
    )
    kept = [d for d in databases(host, stack) if "_before_restore_" in d][0]
    rows = psql(host, stack, sql % (stack["datasafe_db_name"], kept), db="postgres").splitlines()
    assert len(rows) == 2 and rows[0] == rows[1]
    assert rows[0].startswith(stack["datasafe_db_user"] + "|")


def test_safety_backup_of_the_damaged_database_was_taken(host, stack):
    backups = host.file(stack["datasafe_backup_dir"]).listdir()
    manifests = [
        json.loads(host.file("%s/%s" % (stack["datasafe_backup_dir"], m)).content_string)
        for m in backups
        if m.endswith(".json")
    ]
    safety = [m for m in manifests if m["kind"] == "pre-change" and m["label"].startswith("before restore")]
    assert len(safety) == 1
    assert safety[0]["counts"]["test_results"] == 0
    assert safety[0]["file"].startswith("BEFORE_RESTORE_")


def test_change_log_records_the_restore(host, stack):
    text = host.file(stack["datasafe_change_log"]).content_string
    assert "About to restore %s from" % stack["datasafe_db_name"] in text
    assert "Restored %s from" % stack["datasafe_db_name"] in text
    events = [
        json.loads(line)
        for line in host.file(stack["datasafe_change_log"].replace(".txt", ".jsonl")).content_string.splitlines()
    ]
    outcomes = [e["outcome"] for e in events if e["action"] == "restore"]
    assert outcomes == ["about_to", "failed", "about_to", "completed"]
    assert "RESTORE FAILED at" in text and "nothing was swapped" in text and "was NOT replaced" in text


def test_restored_database_was_analyzed_after_the_swap(host, stack):
    tables = "', '".join(["users", "patients", "visits", "test_results", "invoices"])
    sql = "SELECT count(*) FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL AND relname IN ('%s')" % tables
    assert psql(host, stack, sql) == "5"  # an ANALYZE, not autovacuum's (that sets last_autoanalyze)
    text = host.file(stack["datasafe_change_log"]).content_string
    assert re.search(r"Restored %s from .*; statistics: ANALYZE done in [0-9.]+ s;" % stack["datasafe_db_name"], text)


def test_database_still_on_the_named_volume(host, stack):
    mounts = json.loads(
        host.check_output("docker inspect --format '{{json .Mounts}}' %s" % stack["datasafe_db_container"])
    )
    data = [m for m in mounts if m["Destination"] == "/var/lib/postgresql/data"]
    expected = "%s_postgres_data" % stack["datasafe_compose_project"]
    assert [(m["Type"], m["Name"]) for m in data] == [("volume", expected)]


def test_change_log_records_the_downtime_and_when_the_stack_was_verified(host, stack):
    events = [
        json.loads(line)
        for line in host.file(stack["datasafe_change_log"].replace(".txt", ".jsonl")).content_string.splitlines()
    ]
    completed = [e for e in events if e["action"] == "restore" and e["outcome"] == "completed"]
    assert len(completed) == 1
    entry = completed[0]
    about = [e for e in events if e["action"] == "restore" and e["outcome"] == "about_to"][-1]
    verified = datetime.datetime.fromisoformat(entry["verified_at"])
    # verified after the announcement and before the completed entry (whole seconds there)
    assert datetime.datetime.fromisoformat(about["time"]) - datetime.timedelta(seconds=1) <= verified
    assert verified <= datetime.datetime.fromisoformat(entry["time"]) + datetime.timedelta(seconds=1)
    # the converge stopped a running backend: its downtime is measured, and said in the text log
    assert 0 < entry["downtime_seconds"] < 600
    text = host.file(stack["datasafe_change_log"]).content_string
    assert "application down %s s;" % entry["downtime_seconds"] in text
