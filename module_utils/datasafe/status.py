"""Am I protected right now? The state of one stack at a glance, from what datasafe already
writes: the backups' manifests, the JSON change log (off-site copies, drills) and the change lock.

Each check is green or red with one line of detail; the caller fails when any is red, so cron,
AWX and monitoring can act on the exit status. Pure of Ansible: it returns data.
"""

import datetime
import json
import os

from ansible.module_utils.datasafe import lock, manifest, times


def _age(moment, now):
    return max(0.0, (now - moment).total_seconds())


def human_age(seconds):
    if seconds is None:
        return "never"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return "%.1f %s ago" % (seconds / size, unit)
    return "%d s ago" % seconds


def check(name, ok, detail, age=None, at=None):
    return {"name": name, "ok": bool(ok), "detail": detail, "age_seconds": age, "at": at}


def backup_check(backup_dir, database, max_age, now):
    entry = manifest.newest_verified(backup_dir, database=database) if os.path.isdir(backup_dir) else None
    if entry is None:
        return check(
            "backup", False, "no verified backup of %s in %s: run playbooks/backup.yml" % (database, backup_dir)
        )
    age = _age(entry["end"], now)
    detail = "%s, verified, %s (%d bytes)" % (entry["file"], human_age(age), entry["size"] or 0)
    if age > max_age:
        detail += "; older than %s: the nightly backup is not running (playbooks/schedule.yml, ~/backup.log)" % (
            human_age(max_age).replace(" ago", "")
        )
    return check("backup", age <= max_age, detail, age, entry["end"].isoformat())


def read_events(json_log):
    """Every JSON change log entry, oldest first (a torn or foreign line is skipped)."""
    events = []
    try:
        with open(json_log, encoding="utf-8") as handle:
            for line in handle:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if isinstance(entry, dict) and "action" in entry and "time" in entry:
                    events.append(entry)
    except FileNotFoundError:
        pass
    return events


def event_check(name, events, action, good, max_age, expected, now, how):
    """The newest event of ``action``: green when its outcome is good and it is recent enough."""
    mine = [e for e in events if e["action"] == action and e.get("outcome") != "about_to"]
    if not mine:
        return check(name, not expected, "never ran" + (": %s" % how if expected else " (not expected here)"))
    last = mine[-1]
    at = times.parse_time(last["time"])
    age = _age(at, now)
    ok = last.get("outcome") in good
    detail = "%s %s: %s" % ("ok" if ok else "FAILED", human_age(age), last.get("message", "")[:200])
    if ok and age > max_age:
        detail += "; older than %s: %s" % (human_age(max_age).replace(" ago", ""), how)
    return check(name, ok and age <= max_age, detail, age, last["time"])


def lock_check(lock_path, stale_after, now_epoch):
    holder = lock.read(lock_path)
    if holder is None:
        return check("change lock", True, "free: no change running, none interrupted")
    alive = lock.owner_alive(holder)
    if alive is False:
        return check(
            "change lock",
            False,
            "%s; the next safe_update or restore takes it over, says what it left and brings the stack back up"
            % lock.describe_interrupted(holder, lock_path),
        )
    age = now_epoch - float(holder.get("epoch") or now_epoch)
    if age > stale_after:
        return check("change lock", False, lock.describe(holder, lock_path, stale_after))
    return check("change lock", True, "held by a running change: " + lock.describe(holder, lock_path, stale_after))


def gather(backup_dir, database, json_log, lock_path, limits, expect, now=None, now_epoch=None):
    now = now or datetime.datetime.now(datetime.timezone.utc)
    now_epoch = now_epoch if now_epoch is not None else now.timestamp()
    events = read_events(json_log)
    checks = [
        backup_check(backup_dir, database, limits["backup"], now),
        event_check(
            "off-site copy",
            events,
            "offsite",
            ("ok", "completed"),
            limits["offsite"],
            expect["offsite"],
            now,
            "playbooks/offsite.yml",
        ),
        event_check(
            "restore drill",
            events,
            "restore_drill",
            ("completed",),
            limits["drill"],
            expect["drill"],
            now,
            "playbooks/restore_drill.yml",
        ),
        lock_check(lock_path, limits["lock"], now_epoch),
    ]
    failures = ["%s: %s" % (c["name"], c["detail"]) for c in checks if not c["ok"]]
    lines = ["%-14s %-3s %s" % (c["name"], "OK" if c["ok"] else "RED", c["detail"]) for c in checks]
    return {"checks": checks, "failures": failures, "lines": lines, "ok": not failures}
