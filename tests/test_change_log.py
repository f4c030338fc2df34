"""change_log writes one whole event per line to both logs, whatever the message looks like."""

import json

from ansible.module_utils.datasafe import changelog
from harness import run_module


def test_a_multi_line_message_becomes_one_line(tmp_path):
    text, jsonl = tmp_path / "change-log.txt", tmp_path / "change-log.jsonl"
    result = run_module(
        "change_log",
        path=str(text),
        action="restore",
        outcome="about_to",
        message="About to restore\n   lms_slncity\tfrom a backup\n",
        fields={"backup": "/b/x.sql.gz"},
    )
    assert result["changed"] is True and not result["failed"]
    lines = text.read_text().splitlines()
    assert len(lines) == 1 and lines[0].endswith(": About to restore lms_slncity from a backup")
    events = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(events) == 1
    assert events[0]["message"] == "About to restore lms_slncity from a backup"
    assert events[0]["backup"] == "/b/x.sql.gz" and events[0]["outcome"] == "about_to"


def test_check_mode_writes_nothing(tmp_path):
    text = tmp_path / "change-log.txt"
    result = run_module("change_log", check_mode=True, path=str(text), action="x", outcome="info", message="nothing")
    assert result["changed"] is False and not text.exists()


def test_an_empty_message_is_refused(tmp_path):
    result = run_module("change_log", path=str(tmp_path / "c.txt"), action="x", outcome="info", message=" \n ")
    assert result["failed"] and "message is empty" in result["msg"] and not (tmp_path / "c.txt").exists()


def test_human_time_matches_the_protocols_date_format():
    import datetime

    stamp = datetime.datetime(2026, 11, 3, 2, 0, 5, tzinfo=datetime.timezone.utc)
    assert changelog.human_time(stamp) == "Tue Nov 3 02:00:05 UTC 2026"
