# -*- coding: utf-8 -*-
"""The finished lines an operator reads at the end of a restore and of a rolled-back update.

Roles pass the facts they gathered (what ran, what it returned); these functions write the
sentences: the change log's message and the lines shown or failed with. ``library/report_lines.py``
calls :func:`lines`. The texts are the ones the roles wrote in Jinja before; tests hold them
to the letter (molecule's restore and update scenarios read them too).
"""

import json
import os
import re

KINDS = ("restore", "update_rolled_back", "update_rollback_failed")

# Facts each kind needs (others are optional, with the default given where they are read).
REQUIRED = {
    "restore": ("database", "backup_file", "check_mode"),
    "update_rolled_back": ("project", "failure", "revision_before", "restore_command"),
    "update_rollback_failed": ("project", "failure", "revision_before", "restore_command", "compose_dir"),
}


def truncate(text, length, end="...", leeway=5):
    """Jinja's ``truncate`` filter (whole words, ``...``, a leeway of 5), as the roles used it."""
    text = str(text)
    if len(text) <= length + leeway:
        return text
    return text[: length - len(end)].rsplit(" ", 1)[0] + end


def _bool(value):
    """A fact that is a boolean, as Ansible's ``bool`` filter reads it ("false", "no", 0 are false)."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on", "y", "t")
    return bool(value)


def _one_line(text):
    return re.sub(r"\s+", " ", str(text))


# -------------------------------------------------------------------------------------- restore


def safety_note(enabled, reachable, backup_path=None):
    """The safety backup taken before the swap, or why there is none.

    ``reachable`` is the probe's result (``rc``, ``stderr``); ``backup_path`` is None in check mode.
    """
    if enabled and reachable.get("rc") == 0:
        return "safety backup " + os.path.basename(backup_path or "(check mode)")
    if not enabled:
        return "no safety backup: disabled"
    return "no safety backup: database unreachable (%s)" % _one_line((reachable.get("stderr") or "").strip())


def downtime_note(check_mode, downtime):
    """How long the application was down (``downtime`` seconds, None when nothing was running)."""
    if check_mode:
        return "application downtime: none (check mode)"
    if downtime is not None:
        return "application down %s s" % downtime
    return "no application service was running before the restore"


def analyze_note(enabled, check_mode, analyzed):
    """The ANALYZE after the swap: ``analyzed`` is job_result's result (``skipped`` when none was started)."""
    if not enabled:
        return "statistics: ANALYZE not run (datasafe_restore_analyze is false)"
    if check_mode:
        return "statistics: ANALYZE after the swap (check mode: not run)"
    analyzed = analyzed or {"skipped": True}
    if analyzed.get("skipped"):
        return "statistics: ANALYZE could not be started, autovacuum will analyze"
    if analyzed.get("rc", -1) == 0:
        return "statistics: ANALYZE done in %s s" % analyzed.get("seconds")
    return "statistics: ANALYZE FAILED, autovacuum will analyze (%s)" % truncate(
        _one_line(analyzed.get("msg", "?")), 300
    )


def restore(f):
    """The restore's notes, its change log message and its report lines."""
    counts, check_mode = f.get("counts") or {}, _bool(f["check_mode"])
    kept_as = f.get("kept_as") or "(none existed)"
    notes = dict(
        safety_note=safety_note(_bool(f.get("safety_enabled", True)), f.get("reachable") or {}, f.get("safety_backup")),
        downtime_note=downtime_note(check_mode, f.get("downtime")),
        analyze_note=analyze_note(_bool(f.get("analyze", True)), check_mode, f.get("analyzed")),
    )
    message = (
        "Restored %s from %s: every count matches the manifest (%d rows), health OK; %s; %s; %s; "
        "the previous database is kept as %s"
        % (
            f["database"],
            f["backup_file"],
            sum(int(v) for v in counts.values()),
            notes["downtime_note"],
            notes["analyze_note"],
            notes["safety_note"],
            kept_as,
        )
    )
    downtime = notes["downtime_note"]
    if not check_mode and f.get("downtime") is not None:
        downtime += " (from its stop until the stack was verified, at %s)" % f.get("verified_at")
    report = [
        "%s %s from %s"
        % (
            "CHECK MODE, nothing was changed: would restore" if check_mode else "restored",
            f["database"],
            f["backup_file"],
        ),
        "rows: %s" % json.dumps(counts),
        downtime,
        notes["analyze_note"],
        notes["safety_note"],
        "previous database kept as %s (inspect it; drop it by hand only when you are sure it is not needed)" % kept_as,
    ]
    return dict(notes, message=message, lines=report)


# --------------------------------------------------------------------------------------- update


def _lost(f):
    return [p["table"] for p in f.get("problems") or []]


def update_rolled_back(f):
    """The rolled-back update: its change log message and the failure shown to the operator."""
    lost, restored = _lost(f), _bool(f.get("restore_on_data_loss"))
    backup = f.get("backup_path")
    revision = f["revision_before"][:12]
    if lost:
        logged = "rows lost: %s%s%s" % (
            ", ".join(lost),
            ", restored from " if restored else ", NOT restored: run ",
            os.path.basename(backup) if restored else f["restore_command"],
        )
        shown = "ROWS WERE LOST: %s%s" % (
            ", ".join(lost),
            "; restored from %s and counts re-checked" % backup
            if restored
            else "; NOT restored automatically. To restore the pre-change backup: %s" % f["restore_command"],
        )
    else:
        logged, shown = "no row lost", "No row was lost."
    return dict(
        message="Update of %s FAILED at %s; rolled back to %s, healthy; %s"
        % (f["project"], truncate(f["failure"], 200), revision, logged),
        msg="UPDATE FAILED at %s. Rolled back to %s and the previous version is healthy. %s"
        % (f["failure"], revision, shown),
    )


def update_rollback_failed(f):
    """The update and its rollback both failed: the change log message and the failure."""
    task = f.get("rollback_task") or "unknown task"
    return dict(
        message="Update of %s FAILED at %s and the ROLLBACK FAILED at %s; volumes untouched"
        % (f["project"], truncate(f["failure"], 200), task),
        msg="UPDATE FAILED at %s -- and the ROLLBACK FAILED at %s: %s. No volume was removed. The code should "
        "be at %s (git -C %s log -1). Pre-change backup: %s. If data is missing: %s"
        % (
            f["failure"],
            task,
            f.get("rollback_msg") or "",
            f["revision_before"][:12],
            f["compose_dir"],
            f.get("backup_path") or "none was taken",
            f["restore_command"],
        ),
    )


def lines(kind, facts):
    """The finished lines of ``kind`` from ``facts``; ValueError names a missing fact."""
    if kind not in KINDS:
        raise ValueError("unknown kind %r: one of %s" % (kind, ", ".join(KINDS)))
    missing = [k for k in REQUIRED[kind] if facts.get(k) is None]
    if missing:
        raise ValueError("facts for %s lack %s" % (kind, ", ".join(missing)))
    return {
        "restore": restore,
        "update_rolled_back": update_rolled_back,
        "update_rollback_failed": update_rollback_failed,
    }[kind](facts)
