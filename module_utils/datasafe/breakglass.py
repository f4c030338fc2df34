"""Break-glass: let one refused operation through, only right after a verified backup.

The evidence is a backup manifest (``<backup file>.json``, written by the backup module) with
``verified: true`` whose ``end`` is younger than the limit and whose backup file is on disk
with the recorded size and sha256. Anything less is refused with a message that says what
was found, so the operator knows exactly which step is missing.
"""

import datetime
import glob
import hashlib
import json
import os

DEFAULT_MAX_AGE_MINUTES = 15
DEFAULT_BACKUP_DIR = "~/backups"


class BreakGlassRefused(Exception):
    """No fresh verified backup: the destructive operation stays refused."""


def _parse_time(text):
    # fromisoformat in Python < 3.11 does not take a trailing Z
    value = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError("time without a timezone: %s" % text)
    return value


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _judge_manifest(manifest_path, now, max_age, database):
    """Return (evidence dict, None) if the manifest proves a fresh verified backup, else (None, why not)."""
    try:
        with open(manifest_path, encoding="utf-8") as handle:
            manifest = json.load(handle)
    except (OSError, ValueError) as exc:
        return None, "unreadable manifest (%s)" % exc
    if not isinstance(manifest, dict):
        return None, "manifest is not a JSON object"
    if manifest.get("verified") is not True:
        return None, "not verified"
    if database and manifest.get("database") != database:
        return None, "backup of database %r, not %r" % (manifest.get("database"), database)
    try:
        end = _parse_time(str(manifest.get("end")))
    except ValueError:
        return None, "no valid 'end' time"
    age = now - end
    if age > max_age:
        return None, "too old: finished %s ago" % _human(age)
    if age < -datetime.timedelta(minutes=1):
        return None, "'end' is in the future (%s); clock skew or a forged manifest" % manifest.get("end")
    expected = manifest.get("file") or os.path.basename(manifest_path)[: -len(".json")]
    backup_path = os.path.join(os.path.dirname(manifest_path), os.path.basename(str(expected)))
    if not os.path.isfile(backup_path):
        return None, "backup file %s is missing" % backup_path
    size = os.path.getsize(backup_path)
    if manifest.get("size") != size:
        return None, "backup file size %d differs from the manifest's %r" % (size, manifest.get("size"))
    if not manifest.get("sha256"):
        return None, "manifest has no sha256"
    if _sha256(backup_path) != manifest["sha256"]:
        return None, "backup file sha256 differs from the manifest"
    return {
        "backup": backup_path,
        "manifest": manifest_path,
        "end": manifest["end"],
        "age_seconds": int(age.total_seconds()),
        "sha256": manifest["sha256"],
        "kind": manifest.get("kind"),
    }, None


def _human(delta):
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return "%d s" % seconds
    if seconds < 7200:
        return "%d min" % (seconds // 60)
    return "%.1f h" % (seconds / 3600.0)


def fresh_verified_backup(
    backup_dir=DEFAULT_BACKUP_DIR, max_age_minutes=DEFAULT_MAX_AGE_MINUTES, database=None, now=None
):
    """Evidence of the newest fresh verified backup, or raise :class:`BreakGlassRefused`."""
    directory = os.path.expanduser(backup_dir)
    now = now or datetime.datetime.now(datetime.timezone.utc)
    max_age = datetime.timedelta(minutes=max_age_minutes)
    requirement = "break-glass needs a verified backup younger than %s min in %s" % (max_age_minutes, directory)
    manifests = sorted(
        glob.glob(os.path.join(glob.escape(directory), "*.json")), key=lambda p: os.path.getmtime(p), reverse=True
    )
    if not manifests:
        raise BreakGlassRefused(
            "%s; found no backup manifest there. Run the backup first "
            "(playbooks/backup.yml or ~/backup-database.sh with verification)." % requirement
        )
    rejected = []
    for path in manifests:
        evidence, why = _judge_manifest(path, now, max_age, database)
        if evidence:
            return evidence
        rejected.append("%s: %s" % (os.path.basename(path), why))
    shown = "; ".join(rejected[:3]) + ("; ..." if len(rejected) > 3 else "")
    raise BreakGlassRefused("%s; none qualifies (%s). Take a fresh verified backup and retry." % (requirement, shown))


# --------------------------------------------------------------------------------------------
# The gate both safe_sql and safe_command put in front of anything the guards refuse.
# --------------------------------------------------------------------------------------------

# Shared argument spec (the modules document these options identically).
ARGUMENT_SPEC = dict(
    allow_destructive=dict(type="bool", default=False),
    reason=dict(type="str"),
    backup_dir=dict(type="path", default=DEFAULT_BACKUP_DIR),
    breakglass_max_age=dict(type="int", default=DEFAULT_MAX_AGE_MINUTES),
    change_log=dict(type="path", default="~/change-log.txt"),
    change_log_json=dict(type="path", default="~/change-log.jsonl"),
)
REQUIRED_IF = [("allow_destructive", True, ["reason"])]


def _log(params, outcome, message, **fields):
    from ansible.module_utils.datasafe import changelog

    return changelog.record(
        os.path.expanduser(params["change_log"]),
        os.path.expanduser(params["change_log_json"]),
        "breakglass",
        message,
        outcome,
        **fields,
    )


def gate(module, findings, action, operation, database=None, result=None):
    """Decide what happens to a refused operation; return break-glass evidence or fail the module.

    No findings: returns None (the operation is allowed, nothing to log). Findings without
    ``allow_destructive``: fails with every finding. With ``allow_destructive`` and ``reason``:
    fails unless a fresh verified backup exists; otherwise returns the evidence. Outside
    check mode every break-glass attempt, accepted or refused, is written to the change log.
    """
    if not findings:
        return None
    p = module.params
    refused = dict(result or {}, changed=False, findings=[f.to_dict() for f in findings], refused=True)
    rules = sorted({f.rule for f in findings})
    if not p["allow_destructive"]:
        module.fail_json(
            msg="%s refused by datasafe's guard: %s. If this is the rare legitimate case, set "
            "allow_destructive: true with a reason; it is accepted only with a verified backup "
            "younger than %s min in %s." % (action, _summary(findings), p["breakglass_max_age"], p["backup_dir"]),
            **refused,
        )
    reason = (p["reason"] or "").strip()
    if not reason:
        module.fail_json(msg="allow_destructive needs a reason that says why this destruction is necessary", **refused)
    if p["breakglass_max_age"] <= 0:
        module.fail_json(msg="breakglass_max_age must be a positive number of minutes", **refused)
    try:
        evidence = fresh_verified_backup(p["backup_dir"], p["breakglass_max_age"], database=database)
    except BreakGlassRefused as exc:
        if not module.check_mode:
            _log(
                p,
                "refused",
                "BREAK-GLASS REFUSED for %s (%s): %s; reason given: %s" % (action, ", ".join(rules), exc, reason),
                rules=rules,
                operation=operation,
                reason=reason,
            )
        module.fail_json(
            msg="%s refused by datasafe's guard (%s) and break-glass refused: %s" % (action, _summary(findings), exc),
            **refused,
        )
    if not module.check_mode:
        _log(
            p,
            "accepted",
            "BREAK-GLASS %s despite %s: %s (backup %s, %d s old)"
            % (action, ", ".join(rules), reason, evidence["backup"], evidence["age_seconds"]),
            rules=rules,
            operation=operation,
            reason=reason,
            backup=evidence["backup"],
        )
    return evidence


def log_outcome(module, action, evidence, outcome, **fields):
    """After a break-glass operation ran: record how it ended."""
    if evidence and not module.check_mode:
        _log(
            module.params,
            outcome,
            "BREAK-GLASS %s %s (reason: %s)" % (action, outcome, module.params["reason"]),
            backup=evidence["backup"],
            **fields,
        )


def _summary(findings):
    return "; ".join("%s (%s)" % (f.rule, f.reason) for f in findings)
