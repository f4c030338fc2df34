"""Break-glass: let one refused operation through, only right after a verified backup.

The evidence is a backup manifest (``<backup file>.json``, written by the backup module) with
``verified: true`` whose ``end`` is younger than the limit and whose backup file is on disk
with the recorded size and sha256. Anything less is refused with a message that says what
was found, so the operator knows exactly which step is missing.
"""

import datetime
import os

from ansible.module_utils.datasafe import changelog, container, continuous, manifest, specs

DEFAULT_MAX_AGE_MINUTES = specs.BREAKGLASS["breakglass_max_age"]["default"]
DEFAULT_BACKUP_DIR = specs.BREAKGLASS["backup_dir"]["default"]


class BreakGlassRefused(Exception):
    """No fresh verified backup: the destructive operation stays refused."""


class Refused(Exception):
    """The gate refused the operation; ``result`` holds what the module returns with the failure."""

    def __init__(self, message, result):
        super().__init__(message)
        self.result = result


def evidence(entry, now):
    """What break-glass records of the backup that lets an operation through."""
    return {
        "backup": entry["path"],
        "manifest": entry["manifest_path"],
        "end": entry["manifest"]["end"],
        "age_seconds": int((now - entry["end"]).total_seconds()),
        "sha256": entry["manifest"]["sha256"],
        "kind": entry.get("kind"),
    }


def fresh_verified_backup(
    backup_dir=DEFAULT_BACKUP_DIR, max_age_minutes=DEFAULT_MAX_AGE_MINUTES, database=None, now=None
):
    """Evidence of the newest fresh verified backup, or raise :class:`BreakGlassRefused`.

    Which backup is good and fresh is decided by :func:`manifest.verdicts` (newest first by the
    manifest's end time); this only formats the evidence, or every rejection, for the operator.
    """
    directory = os.path.expanduser(backup_dir)
    now = now or datetime.datetime.now(datetime.timezone.utc)
    requirement = "break-glass needs a verified backup younger than %s min in %s" % (max_age_minutes, directory)
    rejected = []
    for entry, problems in manifest.verdicts(directory, database, max_age_seconds=max_age_minutes * 60, now=now):
        if not problems:
            return evidence(entry, now)
        if entry["manifest"] is None and not os.path.exists(entry["manifest_path"]):
            continue  # a file without any manifest is no evidence at all
        rejected.append("%s: %s" % (os.path.basename(entry["manifest_path"]), "; ".join(problems)))
    if not rejected:
        raise BreakGlassRefused(
            "%s; found no backup manifest there. Run the backup first "
            "(playbooks/backup.yml or ~/backup-database.sh with verification)." % requirement
        )
    shown = "; ".join(rejected[:3]) + ("; ..." if len(rejected) > 3 else "")
    raise BreakGlassRefused("%s; none qualifies (%s). Take a fresh verified backup and retry." % (requirement, shown))


# --------------------------------------------------------------------------------------------
# The gate both safe_sql and safe_command put in front of anything the guards refuse.
# --------------------------------------------------------------------------------------------

# Shared argument spec (the modules document these options identically).
# The options (their one home: specs.BREAKGLASS, deny_rules included); kept here for callers.
ARGUMENT_SPEC = {k: v for k, v in specs.BREAKGLASS.items() if k != "deny_rules"}
REQUIRED_IF = specs.BREAKGLASS_REQUIRED_IF


def _log(params, outcome, message, **fields):
    return changelog.record(
        os.path.expanduser(params["change_log"]),
        os.path.expanduser(params["change_log_json"]),
        "breakglass",
        message,
        outcome,
        **fields,
    )


def gate(params, findings, action, operation, check_mode=False, database=None):
    """Decide what happens to a refused operation: return break-glass evidence or raise :class:`Refused`.

    ``params`` are the module's options (see ARGUMENT_SPEC). No findings: returns None (the
    operation is allowed, nothing to log). Findings without ``allow_destructive``: refused with
    every finding. With ``allow_destructive`` and ``reason``: refused unless a fresh verified
    backup exists; otherwise returns the evidence. Outside check mode every break-glass attempt,
    accepted or refused, is written to the change log.
    """
    if not findings:
        return None
    p = params
    refused = dict(changed=False, findings=[f.to_dict() for f in findings], refused=True)
    rules = sorted({f.rule for f in findings})
    if not p["allow_destructive"]:
        raise Refused(
            "%s refused by datasafe's guard: %s. If this is the rare legitimate case, set "
            "allow_destructive: true with a reason; it is accepted only with a verified backup "
            "younger than %s min in %s." % (action, _summary(findings), p["breakglass_max_age"], p["backup_dir"]),
            refused,
        )
    reason = (p["reason"] or "").strip()
    if not reason:
        raise Refused("allow_destructive needs a reason that says why this destruction is necessary", refused)
    if p["breakglass_max_age"] <= 0:
        raise Refused("breakglass_max_age must be a positive number of minutes", refused)
    try:
        found = fresh_verified_backup(p["backup_dir"], p["breakglass_max_age"], database=database)
    except BreakGlassRefused as exc:
        if not check_mode:
            _log(
                p,
                "refused",
                "BREAK-GLASS REFUSED for %s (%s): %s; reason given: %s" % (action, ", ".join(rules), exc, reason),
                rules=rules,
                operation=operation,
                reason=reason,
            )
        raise Refused(
            "%s refused by datasafe's guard (%s) and break-glass refused: %s" % (action, _summary(findings), exc),
            refused,
        ) from exc
    if not check_mode:
        _log(
            p,
            "accepted",
            "BREAK-GLASS %s despite %s: %s (backup %s, %d s old)"
            % (action, ", ".join(rules), reason, found["backup"], found["age_seconds"]),
            rules=rules,
            operation=operation,
            reason=reason,
            backup=found["backup"],
        )
    return found


def restore_point(run, found, target, check_mode=False):
    """Before a break-glass operation runs: a named restore point (``datasafe-break-glass-<UTC
    time>``) in the database it may touch, so "just before it" is a recovery target
    (playbooks/recover.yml, target kind name). The one place safe_sql and safe_command make it.

    ``found``: the gate's evidence (None: no break-glass, nothing to do). ``target``: the
    database as (container, database, user), or None when the operation names none. Sets and
    returns ``found['restore_point']`` (the name, or None with ``restore_point_skipped`` saying
    why: check mode, no database given, or the server does not archive WAL). Raises
    :class:`Refused` when the restore point cannot be created: then nothing may run.
    """
    if not found:
        return None
    found["restore_point"] = None
    if check_mode:
        found["restore_point_skipped"] = "check mode"
        return None
    if not target or not all(target):
        found["restore_point_skipped"] = (
            "no database given (container, database, user): nothing to mark; give them when the "
            "operation touches a database, so recovery to just before it is possible"
        )
        return None
    cont, db, user = target
    try:
        point = continuous.create_restore_point(run, cont, db, user, continuous.restore_point_name("break-glass"))
    except (continuous.ContinuousError, container.ContainerError) as exc:
        raise Refused(
            "break-glass: the restore point before it failed, nothing ran: %s" % exc,
            dict(changed=False, refused=True, breakglass=found),
        ) from exc
    found["restore_point"] = point["name"]
    if point["name"] is None:
        found["restore_point_skipped"] = point["skipped"]
    else:
        found["restore_point_lsn"] = point["lsn"]
    return point["name"]


def log_outcome(params, action, found, outcome, check_mode=False, **fields):
    """After a break-glass operation ran: record how it ended."""
    if found and not check_mode:
        _log(
            params,
            outcome,
            "BREAK-GLASS %s %s (reason: %s; restore point before it: %s)"
            % (action, outcome, params["reason"], found.get("restore_point") or "none"),
            backup=found["backup"],
            restore_point=found.get("restore_point"),
            **fields,
        )


def _summary(findings):
    return "; ".join("%s (%s)" % (f.rule, f.reason) for f in findings)
