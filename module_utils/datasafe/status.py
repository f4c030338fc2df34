"""Am I protected right now? The state of one stack at a glance, from what datasafe already
writes: the backups' manifests, the JSON change log (off-site copies, drills) and the change lock;
and, read live, the guards (the guard inside PostgreSQL, the volume pin, the agents' hook) and
continuous recovery (WAL archiving, pgBackRest's newest full and differential backups).

Each check is green or red with one line of detail; the caller fails when any is red, so cron,
AWX and monitoring can act on the exit status. A guard or continuous recovery that is neither
set up nor expected on the host is "off" (shown, never a failure); one that is set up is judged
whether expected or not, and one that is expected must be there. Pure of Ansible: it returns data.
"""

import datetime
import json
import os

from ansible.module_utils.datasafe import agent_hook, container, continuous, dbguard, lock, manifest, pin, times


def _age(moment, now):
    return max(0.0, (now - moment).total_seconds())


def human_age(seconds):
    if seconds is None:
        return "never"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return "%.1f %s ago" % (seconds / size, unit)
    return "%d s ago" % seconds


def check(name, ok, detail, age=None, at=None, off=False):
    """One row: ``state`` is ok, red, or off (not set up here and not expected; never a failure)."""
    state = "off" if off and ok else ("ok" if ok else "red")
    return {"name": name, "ok": bool(ok), "state": state, "detail": detail, "age_seconds": age, "at": at}


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
        return check(
            name, not expected, "never ran" + (": %s" % how if expected else " (not expected here)"), off=not expected
        )
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
        who = (
            "the next safe_update takes it over, finishes the rollback and brings the stack back up"
            " (a restore takes it over too: it finishes the rollback's code and images, then restores)"
            if holder.get("phase") == "rollback"
            else "the next safe_update or restore takes it over, says what it left and brings the stack back up"
        )
        return check("change lock", False, "%s; %s" % (lock.describe_interrupted(holder, lock_path), who))
    age = now_epoch - float(holder.get("epoch") or now_epoch)
    if age > stale_after:
        return check("change lock", False, lock.describe(holder, lock_path, stale_after))
    return check("change lock", True, "held by a running change: " + lock.describe(holder, lock_path, stale_after))


def dbguard_check(run, db, expected):
    """The guard inside PostgreSQL (``db``: container, database, user): installed and intact."""
    try:
        verdict = dbguard.check(run, db["container"], db["database"], db["user"])
    except (dbguard.DbGuardError, container.ContainerError) as exc:
        detail = "%s; is the database container running?" % exc
        return check("dbguard", not expected, detail if expected else "unknown: " + detail, off=True)
    if not verdict["installed"]:
        if expected:
            return check("dbguard", False, dbguard.checked_failure(verdict, required=True))
        return check(
            "dbguard",
            True,
            "not installed (not expected here; playbooks/dbguard.yml installs it, datasafe_dbguard_required insists)",
            off=True,
        )
    failure = dbguard.checked_failure(verdict)
    if failure:
        return check("dbguard", False, failure)
    return check(
        "dbguard",
        True,
        "installed and intact (version %s): %d table(s) guarded, %d break-glass use(s) recorded"
        % (verdict["version"], len(verdict["tables"]), verdict["audit_rows"]),
    )


def pin_checks(run, volumes, expected):
    """The volume pin of each volume: a running datasafe pin container holding it."""
    out = []
    for volume in volumes:
        name = "volume pin" if len(volumes) == 1 else "pin %s" % volume
        try:
            found = pin.status(run, volume)
        except pin.PinError as exc:
            out.append(check(name, False, "cannot read the pin of %s: %s" % (volume, exc)))
            continue
        if not found["exists"] and not expected:
            out.append(
                check(name, True, "no pin holds %s (not expected here; playbooks/pin.yml pins it)" % volume, off=True)
            )
        elif found["problems"]:
            out.append(check(name, False, "; ".join(found["problems"]) + "; repair with playbooks/pin.yml"))
        else:
            out.append(
                check(
                    name,
                    True,
                    "%s is held by the running pin %s (restart %s)" % (volume, found["container"], found["restart"]),
                )
            )
    return out


def _hook_guard(entry_command):
    """The guard executable an installed hook entry runs (its first word), or None."""
    words = (entry_command or "").split()
    return words[0].strip("'\"") if words else None


def agent_hook_check(home, agents, expected):
    """datasafe's entry in each agent's settings under ``home``, and the guard it runs is there."""
    installed, missing, problems = [], [], []
    for agent in agents:
        path = agent_hook.settings_path(agent, home)
        try:
            settings = agent_hook.read_settings(path)
        except agent_hook.SettingsError as exc:
            problems.append(str(exc))
            continue
        hooks = ((settings or {}).get("hooks") or {}) if isinstance(settings, dict) else {}
        items = hooks.get(agent_hook.EVENT_OF[agent]) if isinstance(hooks, dict) else None
        commands = []
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict):
                continue
            for hook in [item] + [h for h in item.get("hooks") or [] if isinstance(h, dict)]:
                if agent_hook.is_hook_command(hook.get("command")):
                    commands.append(hook["command"])
        if not commands:
            missing.append(agent)
            continue
        installed.append(agent)
        guard = _hook_guard(commands[0])
        if guard and os.path.isabs(guard) and not os.access(guard, os.X_OK):
            problems.append(
                "%s's hook runs %s, which is missing or not executable: every command is blocked; "
                "run playbooks/agent_hook.yml from this checkout" % (agent, guard)
            )
    if problems:
        return check("agent hook", False, "; ".join(problems))
    if not installed:
        if expected:
            return check(
                "agent hook",
                False,
                "not installed for %s under %s: run playbooks/agent_hook.yml" % (", ".join(agents), home),
            )
        return check("agent hook", True, "not installed (not expected here; playbooks/agent_hook.yml)", off=True)
    if expected and missing:
        return check(
            "agent hook",
            False,
            "installed for %s but not for %s: run playbooks/agent_hook.yml"
            % (", ".join(installed), ", ".join(missing)),
        )
    return check("agent hook", True, "installed for %s under %s" % (", ".join(installed), home))


def continuous_checks(run, db, stanza, expected, max_lag, max_backup_age, now_epoch):
    """Continuous recovery: WAL archiving (working, age of the last segment) and pgBackRest's
    newest full and differential backups. Returns (rows, the repository summary or None)."""
    try:
        arch = continuous.archiver(run, db["container"], db["database"], db["user"])
    except container.ContainerError as exc:
        detail = "cannot read pg_stat_archiver: %s; is the database container running?" % exc
        row = check("WAL archiving", not expected, detail if expected else "unknown: " + detail, off=True)
        return [row], None
    if not continuous.archives(arch) and not expected:
        return [check("WAL archiving", True, "off (not set up here; playbooks/continuous.yml)", off=True)], None
    problems = continuous.health(arch, None, stanza, max_lag)
    age = arch["last_archived_age_seconds"]
    if problems:
        rows = [check("WAL archiving", False, "; ".join(problems), age)]
    else:
        rows = [
            check(
                "WAL archiving",
                True,
                "working: last segment %s archived %s, %d waiting, %d failed attempts in all"
                % (arch["last_archived_wal"], human_age(age), arch["ready_segments"], arch["failed_count"]),
                age,
            )
        ]
    if not continuous.archives(arch):
        return rows, None
    try:
        summary = continuous.backups_summary(continuous.info(run, db["container"], stanza), now=now_epoch)
    except (continuous.ContinuousError, container.ContainerError, ValueError) as exc:
        rows.append(check("pgBackRest", False, "pgbackrest info failed: %s" % exc))
        return rows, None
    newest = {k: summary[k] for k in ("full", "diff", "incr") if k in summary}
    said = ", ".join("last %s %s" % (k, human_age(v["age_seconds"])) for k, v in newest.items()) or "no backup"
    for key, one in sorted((summary.get("repos") or {}).items()):
        if key != "1":  # the off-site repository's own newest backups, after repository 1's
            said += "; %s: %s" % (
                continuous.repo_name(key),
                ", ".join(
                    "last %s %s" % (k, human_age(one[k]["age_seconds"])) for k in ("full", "diff", "incr") if k in one
                )
                or "no backup",
            )
    problems = [p for p in continuous.health(arch, summary, stanza, max_lag, max_backup_age) if p not in problems]
    full = newest.get("full")
    rows.append(
        check(
            "pgBackRest",
            not problems,
            "%s (%d in the repository)%s" % (said, summary["count"], ("; " + "; ".join(problems)) if problems else ""),
            min(v["age_seconds"] for v in newest.values()) if newest else None,
            None if full is None else datetime.datetime.fromtimestamp(full["stop"], datetime.timezone.utc).isoformat(),
        )
    )
    return rows, summary


def live_checks(run, live, now_epoch):
    """The guards' and continuous recovery's rows, as ``live`` asks for them (see stack_status)."""
    rows = []
    db = live["db"]
    rows.append(dbguard_check(run, db, live["expect_dbguard"]))
    rows += pin_checks(run, live["pin_volumes"], live["expect_pin"])
    if live.get("agent_hook_agents"):
        rows.append(agent_hook_check(live["agent_hook_home"], live["agent_hook_agents"], live["expect_agent_hook"]))
    expect_continuous = live.get("expect_continuous")
    if expect_continuous is None:  # set up for this host when continuous.yml wrote its configuration
        expect_continuous = bool(live.get("continuous_conf_dir")) and os.path.isdir(live["continuous_conf_dir"])
    rows += continuous_checks(
        run,
        db,
        live["stanza"],
        expect_continuous,
        live["continuous_max_lag"],
        live["continuous_max_backup_age"],
        now_epoch,
    )[0]
    return rows


def gather(backup_dir, database, json_log, lock_path, limits, expect, now=None, now_epoch=None, run=None, live=None):
    """Every row, failures (the red rows' reasons), the table as text, and ``ok``. With ``run``
    and ``live``, the guards' and continuous recovery's rows too (read live; see live_checks)."""
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
    if live:
        checks += live_checks(run, live, now_epoch)
    failures = ["%s: %s" % (c["name"], c["detail"]) for c in checks if not c["ok"]]
    lines = ["%-14s %-3s %s" % (c["name"], c["state"].upper() if c["ok"] else "RED", c["detail"]) for c in checks]
    return {"checks": checks, "failures": failures, "lines": lines, "ok": not failures}
