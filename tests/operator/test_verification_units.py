"""The pure logic of verify's verdict (module_utils/datasafe/verification.py), on top of the
real-stack tests in test_verify.py."""

import json

import pytest
from ansible.module_utils.datasafe import verification


def ref(source, at, **counts):
    return {"source": source, "name": source, "at": at, "counts": counts}


def test_auto_compares_with_the_newer_reference_and_none_compares_nothing():
    backup = ref("backup", "2026-12-01T02:00:00+00:00", users=10)
    snap = ref("snapshot", "2026-12-01T09:00:00+00:00", users=12)
    assert verification.choose([backup, snap], "auto") is snap
    assert verification.choose([backup, snap], "backup") is backup
    assert verification.choose([backup], "snapshot") is None
    assert verification.choose([backup, snap], "none") is None
    with pytest.raises(verification.VerifyError, match="compare_to must be one of"):
        verification.choose([backup], "newest")


def test_a_loss_beyond_the_allowance_is_a_problem_and_new_tables_are_not():
    reference = ref("backup", "2026-12-01T02:00:00+00:00", users=10, sessions=100, gone=5)
    now = {"users": 9, "sessions": 60, "visits": 3}
    problems = verification.compare(reference, now, {"sessions": 50})
    assert [(p["table"], p["before"], p["after"]) for p in problems] == [("users", 10, 9)]
    problems = verification.compare(reference, now, {"sessions": 39})
    assert [p["table"] for p in problems] == ["sessions", "users"]
    assert problems[0]["problem"] == "lost 40 row(s) (39 allowed)"
    with pytest.raises(verification.VerifyError, match="whole numbers"):
        verification.compare(reference, now, {"users": "a few"})


def test_error_lines_are_found_unless_ignored():
    logs = {
        "app": ['127.0.0.1 - - "GET /health HTTP/1.1" 200 50', '127.0.0.1 - - "GET /health HTTP/1.1" 503 12'],
        "pg": [
            "LOG:  checkpoint complete",
            'ERROR:  relation "x" does not exist',
            "FATAL:  the end",
            "FATAL:  the database system is starting up",
            "2026-12-02 07:10:30.870 UTC [316] ERROR:  canceling autovacuum task",
            '2026-12-02 07:10:30.870 UTC [316] CONTEXT:  automatic vacuum of table "lms.public.test_results"',
            "ERROR:  canceling autovacuum task because of a user's request, and more",
        ],
    }
    found = verification.scan_logs(logs, verification.DEFAULT_LOG_PATTERNS, ["the end"])
    assert [(f["container"], f["line"][:14]) for f in found] == [
        ("app", "127.0.0.1 - - "),
        ("pg", "ERROR:  relati"),
        ("pg", "ERROR:  cancel"),  # only autovacuum's own line, whole, is benign
    ]
    with pytest.raises(verification.VerifyError, match="not a valid regular expression"):
        verification.scan_logs(logs, ["("], [])


def test_a_snapshot_datasafe_did_not_write_is_refused_naming_the_fix(tmp_path):
    path = tmp_path / "snap.json"
    path.write_text(json.dumps({"counts": [1, 2]}))
    with pytest.raises(verification.VerifyError, match="move it aside"):
        verification.read_snapshot(str(path))
    assert verification.read_snapshot(str(tmp_path / "none.json")) is None
