"""bench-restore stops datasafe's clock at the verified_at its change log records, and refuses
a log that has none or one from outside the run."""

import datetime
import importlib.util
import json
import os

import pytest

_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench", "restore_bench.py")
_SPEC = importlib.util.spec_from_file_location("restore_bench", _PATH)
restore_bench = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(restore_bench)

STARTED = datetime.datetime.fromisoformat("2026-11-18T09:46:40+00:00").timestamp()


def write_log(tmp_path, *entries):
    path = tmp_path / "change-log.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))
    return str(path)


def completed(verified_at):
    return {"action": "restore", "outcome": "completed", "verified_at": verified_at}


def test_seconds_from_the_command_to_the_newest_completed_restores_verified_at(tmp_path):
    log = write_log(
        tmp_path,
        completed("2026-11-18T09:46:45.000000+00:00"),  # an earlier round
        {"action": "restore", "outcome": "about_to"},
        completed("2026-11-18T09:47:00.250000+00:00"),
        {"action": "backup", "outcome": "completed"},
    )
    assert restore_bench.verified_after(log, STARTED, 21.0) == pytest.approx(20.25)


def test_a_log_without_a_completed_restore_is_refused(tmp_path):
    log = write_log(tmp_path, {"action": "restore", "outcome": "failed"})
    with pytest.raises(SystemExit, match="no completed restore with verified_at"):
        restore_bench.verified_after(log, STARTED, 21.0)


def test_a_completed_restore_without_verified_at_is_refused(tmp_path):
    log = write_log(tmp_path, {"action": "restore", "outcome": "completed"})
    with pytest.raises(SystemExit, match="no completed restore with verified_at"):
        restore_bench.verified_after(log, STARTED, 21.0)


@pytest.mark.parametrize(
    "verified_at",
    ["2026-11-18T09:46:39.000000+00:00", "2026-11-18T09:47:02.000000+00:00"],  # before the start, after the return
)
def test_a_verified_at_outside_the_run_is_refused(tmp_path, verified_at):
    log = write_log(tmp_path, completed(verified_at))
    with pytest.raises(SystemExit, match="outside this run"):
        restore_bench.verified_after(log, STARTED, 21.0)
