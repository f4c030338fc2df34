"""After a passing and a failing drill: results recorded, nothing left behind, production untouched."""

import json
import os
import re


def metrics(host, stack):
    path = os.path.join(os.path.dirname(stack["datasafe_change_log"]), "datasafe_restore_drill.prom")
    samples = {}
    for line in host.file(path).content_string.splitlines():
        match = re.match(r"^(datasafe_restore_drill_[a-z_]+)\{[^}]*\} (\S+)$", line)
        if match:
            samples[match.group(1)] = float(match.group(2))
    return samples


def test_metrics_show_the_last_drill_failed_on_one_table(host, stack):
    m = metrics(host, stack)
    assert m["datasafe_restore_drill_success"] == 0
    assert m["datasafe_restore_drill_count_mismatches"] == 1
    assert m["datasafe_restore_drill_rows_restored"] == 32010
    assert m["datasafe_restore_drill_last_success_timestamp_seconds"] > 0


def test_change_log_records_both_drills(host, stack):
    events = [
        json.loads(line)
        for line in host.file(stack["datasafe_change_log"].replace(".txt", ".jsonl")).content_string.splitlines()
    ]
    drills = [e for e in events if e["action"] == "restore_drill"]
    assert [e["outcome"] for e in drills] == ["completed", "failed"]
    assert drills[1]["problems"][0]["table"] == "test_results"
    text = host.file(stack["datasafe_change_log"]).content_string
    assert "RESTORE DRILL FAILED" in text and "test_results" in text


def test_no_drill_container_or_volume_is_left(host):
    assert host.check_output("docker ps -aq --filter label=io.datasafe.restore-drill") == ""
    assert host.check_output("docker volume ls -q --filter label=io.datasafe.restore-drill") == ""


def test_production_stack_untouched(host, stack):
    sql = (
        "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM patients), (SELECT count(*) FROM visits), "
        "(SELECT count(*) FROM test_results), (SELECT count(*) FROM invoices)"
    )
    out = host.check_output(
        "docker exec %s psql -X -At -U lms_user -d lms_slncity -c %s"
        % (stack["datasafe_db_container"], json.dumps(sql))
    )
    assert out == "10|2000|6000|18000|6000"
    dbs = host.check_output(
        "docker exec %s psql -X -At -U lms_user -d postgres -c 'SELECT datname FROM pg_database'"
        % stack["datasafe_db_container"]
    ).split()
    assert sorted(dbs) == ["lms_slncity", "postgres", "template0", "template1"]


def test_cron_entry_runs_the_drill_at_0230(host, stack):
    crontab = host.check_output("crontab -l")
    marker = "#Ansible: datasafe restore drill (%s/%s)" % (stack["datasafe_compose_project"], stack["datasafe_db_name"])
    lines = crontab.splitlines()
    assert marker in lines
    job = lines[lines.index(marker) + 1]
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    assert job.startswith("30 2 * * * cd %s && " % repo)
    assert host.file(os.path.join(repo, "playbooks", "restore_drill.yml")).exists
    assert "/usr/bin/flock -n " in job and "playbooks/restore_drill.yml" in job and "/ansible-playbook " in job
