"""The pure logic of status.yml's judgement (module_utils/datasafe/status.py), on top of the
real-stack tests in test_status.py."""

import datetime
import json
import os

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


# --- the agents' hook row (status.agent_hook_check) and the report's charts (report.py) ---------


def hook_settings(home, agent, command):
    from ansible.module_utils.datasafe import agent_hook

    path = agent_hook.settings_path(agent, str(home))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    settings, _ = agent_hook.merge({}, agent, agent_hook.hook_entry(agent, command, 15))
    with open(path, "w") as handle:
        json.dump(settings, handle)


def test_the_agent_hook_row_is_off_red_or_green_as_it_is_installed(tmp_path):
    agents = ["claude", "gemini"]
    row = status.agent_hook_check(str(tmp_path), agents, False)
    assert (row["state"], row["ok"]) == ("off", True)
    row = status.agent_hook_check(str(tmp_path), agents, True)
    assert not row["ok"] and "not installed for claude, gemini" in row["detail"]
    guard = os.path.join(os.path.dirname(__file__), "..", "..", "bin", "datasafe-guard")
    hook_settings(tmp_path, "claude", "%s hook --agent claude --timeout 10" % os.path.abspath(guard))
    row = status.agent_hook_check(str(tmp_path), agents, False)
    assert row["state"] == "ok" and "installed for claude" in row["detail"]
    row = status.agent_hook_check(str(tmp_path), agents, True)
    assert not row["ok"] and "but not for gemini" in row["detail"]
    hook_settings(tmp_path, "gemini", "/nonexistent/datasafe-guard hook --agent gemini")
    row = status.agent_hook_check(str(tmp_path), agents, False)
    assert not row["ok"] and "runs /nonexistent/datasafe-guard, which is missing" in row["detail"]


def manifest_for(directory, name, end, size, counts, verified=True):
    from ansible.module_utils.datasafe import manifest

    path = os.path.join(directory, name)
    with open(path, "wb") as handle:
        handle.write(b"x" * size)
    data = dict(
        file=name, path=path, database="lms", start=end, end=end, size=size, sha256="0" * 64, format="plain",
        compression="gzip", kind="nightly", verified=verified, counts=counts, duration_seconds=size / 100,
    )  # fmt: skip
    manifest.write(manifest.manifest_path(path), data)


def test_the_history_is_the_verified_backups_oldest_first_and_each_is_a_point(tmp_path):
    from ansible.module_utils.datasafe import report

    d = str(tmp_path)
    manifest_for(d, "b1.sql.gz", "2026-11-29T01:00:00+00:00", 100, {"patients": 10, "visits": 30})
    manifest_for(d, "b3.sql.gz", "2026-12-01T01:00:00+00:00", 300, {"patients": 12, "visits": 31})
    manifest_for(d, "b2.sql.gz", "2026-11-30T01:00:00+00:00", 200, {"patients": 11, "visits": 30})
    manifest_for(d, "bad.sql.gz", "2026-11-30T02:00:00+00:00", 999, {"patients": 1}, verified=False)
    points = report.history(d, "lms")
    assert [p["file"] for p in points] == ["b1.sql.gz", "b2.sql.gz", "b3.sql.gz"]
    size, duration, counts = report.charts(points, ["visits", "patients", "not_counted"])
    assert [c["value"] for c in size["series"][0]["circles"]] == [100, 200, 300]
    ys = [c["y"] for c in size["series"][0]["circles"]]
    xs = [c["x"] for c in size["series"][0]["circles"]]
    assert ys[0] > ys[1] > ys[2] and xs[0] < xs[1] < xs[2]  # bigger is higher, later is further right
    assert all(size["top"] <= y <= size["bottom"] and size["left"] <= x <= size["right"] for x, y in zip(xs, ys))
    assert [s["name"] for s in counts["series"]] == ["visits", "patients"]
    assert [c["value"] for c in counts["series"][1]["circles"]] == [10, 11, 12]
    assert report.history(d, "lms", limit=2)[0]["file"] == "b2.sql.gz"
    empty = report.charts([])
    assert all(not c["series"] and c["points"] == 0 for c in empty)
    one = report.chart("t", "u", ["a"], [("s", [5])])  # a single point is drawn, in the middle
    assert len(one["series"][0]["circles"]) == 1 and one["low"] < 5 < one["high"]


def test_axis_labels_have_the_digits_to_tell_them_apart():
    from ansible.module_utils.datasafe import report

    close = report.chart("size", "bytes", ["a", "b"], [("size", [794973, 794980])])
    texts = [t["text"] for t in close["ticks"]]
    assert len(set(texts)) == 3 and all(t.endswith("k") for t in texts), texts
