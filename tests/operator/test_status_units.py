"""The pure logic of status.yml's judgement (module_utils/datasafe/status.py), on top of the
real-stack tests in test_status.py."""

import datetime

from ansible.module_utils.datasafe import status

NOW = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.timezone.utc)


def event(action, outcome, hours_ago, message="m"):
    return {
        "action": action,
        "outcome": outcome,
        "message": message,
        "time": (NOW - datetime.timedelta(hours=hours_ago)).isoformat(),
    }


def test_the_newest_event_decides_and_age_turns_it_red():
    events = [event("offsite", "failed", 30), event("offsite", "ok", 2)]
    c = status.event_check("off-site copy", events, "offsite", ("ok",), 26 * 3600, True, NOW, "run it")
    assert c["ok"] and c["detail"].startswith("ok 2.0 h ago")
    events.append(event("offsite", "failed", 1, "target nas failed"))
    c = status.event_check("off-site copy", events, "offsite", ("ok",), 26 * 3600, True, NOW, "run it")
    assert not c["ok"] and "FAILED 1.0 h ago: target nas failed" in c["detail"]
    old = [event("restore_drill", "completed", 24 * 9)]
    c = status.event_check("restore drill", old, "restore_drill", ("completed",), 8 * 86400, True, NOW, "drill")
    assert not c["ok"] and "older than 8.0 d: drill" in c["detail"]


def test_a_part_that_never_ran_is_red_only_where_it_is_expected():
    assert not status.event_check("off-site copy", [], "offsite", ("ok",), 1, True, NOW, "how")["ok"]
    assert status.event_check("off-site copy", [], "offsite", ("ok",), 1, False, NOW, "how")["ok"]


def test_a_free_lock_is_green(tmp_path):
    assert status.lock_check(str(tmp_path / "none.lock"), 21600, NOW.timestamp())["ok"]
