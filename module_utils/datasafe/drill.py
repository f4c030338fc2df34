"""The restore drill: prove a backup restores, in a throwaway server, and record the verdict.

The protocol's "test backups regularly", done for real: choose the backup (the one named, or
the newest that verifies now, see :func:`restore.choose_backup`), start a throwaway server
(:func:`restore.start_drill_server`), wait for it (:func:`ready.wait_pg`), restore beside
exactly as an emergency restore would, compare every count with the manifest, remove the
server and its volume by their label whatever happened, and record the result in the change
log and the metrics textfile. :func:`execute` returns the result or raises :class:`DrillFailed`.
"""

import os
import secrets
import socket
import time
import uuid

from ansible.module_utils.datasafe import changelog, container, manifest, metrics, ready, restore, runner, times

SUCCESS = "datasafe_restore_drill_success"
LAST_SUCCESS = "datasafe_restore_drill_last_success_timestamp_seconds"
METRICS = (
    metrics.gauge(SUCCESS, "1 when the last restore drill restored a backup whose counts match its manifest"),
    metrics.gauge("datasafe_restore_drill_last_run_timestamp_seconds", "When the last restore drill ran (unix time)"),
    metrics.gauge(LAST_SUCCESS, "When a restore drill last passed (unix time)"),
    metrics.gauge("datasafe_restore_drill_duration_seconds", "How long the last restore drill took"),
    metrics.gauge("datasafe_restore_drill_backup_age_seconds", "Age of the backup the last drill restored"),
    metrics.gauge(
        "datasafe_restore_drill_rows_restored", "Rows counted in the critical tables after the last drill's restore"
    ),
    metrics.gauge("datasafe_restore_drill_count_mismatches", "Tables whose restored count differed from the manifest"),
)


class DrillFailed(Exception):
    """The drill failed (or could not run); ``result`` is what the module returns with the failure."""

    def __init__(self, message, result):
        super().__init__(message)
        self.result = result


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_params(p):
    """Every problem with the input, before anything runs (ValueError)."""
    restore.check_db_name(p["database"])
    restore.check_db_name(p["maintenance_db"], "maintenance_db")
    if p["database"] == p["maintenance_db"]:
        raise ValueError("database and maintenance_db must differ")


def choose(p, backup_dir, now, result):
    """The backup to restore and the tables to compare (``result`` gets ``backup`` and ``skipped``);
    RestoreError when none qualifies."""
    selected, _, result["skipped"] = restore.choose_backup(
        manifest.list_backups(backup_dir), p["database"], backup_dir, p["backup"], now, manifest.verify_file
    )
    if selected is None:
        raise restore.RestoreError(
            "no backup of %s verifies: %s"
            % (p["database"], "; ".join(result["skipped"]) or "there are no backups in %s" % backup_dir)
        )
    result["backup"] = selected
    tables = p["tables"] or sorted(selected["counts"])
    missing = [t for t in tables if t not in selected["counts"]]
    if missing:
        raise restore.RestoreError("the manifest of %s has no count for %s" % (selected["file"], ", ".join(missing)))
    return selected, tables


def restore_into_throwaway(run, p, selected, tables, result):
    """Start the throwaway server, restore, compare; the server is removed whatever happened."""
    drill_id = uuid.uuid4().hex[:12]
    result["drill_id"] = drill_id
    port = p["port"] or free_port()
    # Only the throwaway server ever sees this password; docker reads it from the environment.
    os.environ["POSTGRES_PASSWORD"] = secrets.token_urlsafe(24)
    try:
        name = restore.start_drill_server(run, p["image"], drill_id, port, p["user"], p["maintenance_db"])
        try:
            ready.wait_pg(
                run, name, p["user"], p["maintenance_db"], p["ready_timeout"], host="127.0.0.1", port=port, watch=True
            )
        except ready.NotReady as exc:
            raise restore.RestoreError("the drill server %s did not become ready: %s" % (name, exc)) from exc
        entry = dict(selected, counts={t: selected["counts"][t] for t in tables})
        done = restore.restore_beside(
            run, name, p["user"], p["database"], p["database"], entry, tables, p["maintenance_db"], analyze=False
        )
        result.update(
            counts=done["counts"], problems=done["problems"], ok=not done["problems"], roles=done.get("roles")
        )
        if done["problems"]:
            result["error"] = "restored counts do not match the manifest: %s" % restore.describe_problems(
                done["problems"]
            )
    except (restore.RestoreError, container.ContainerError, ValueError) as exc:
        result["error"] = str(exc)
    finally:
        try:
            result["removed"] = restore.remove_drill(run, drill_id)
        except restore.RestoreError as exc:
            result["error"] = "; ".join(filter(None, [result["error"], "CLEANUP FAILED: %s" % exc]))
            result["ok"] = False


def record(p, result):
    """Change log and metrics, on success and failure alike (OSError when they cannot be written)."""
    backup = result["backup"] or {}
    labels = metrics.labels_key((("database", p["database"]),))
    now = int(time.time())

    def change(samples):
        # The last success survives failed runs: "no passing drill for 8 days" is the alert that matters.
        if result["ok"]:
            samples[(LAST_SUCCESS, labels)] = now
        samples[(SUCCESS, labels)] = 1 if result["ok"] else 0
        for name, value in (
            ("datasafe_restore_drill_last_run_timestamp_seconds", now),
            ("datasafe_restore_drill_duration_seconds", result["duration_seconds"]),
            ("datasafe_restore_drill_backup_age_seconds", int(backup.get("age_seconds") or 0)),
            ("datasafe_restore_drill_rows_restored", sum((result.get("counts") or {}).values())),
            ("datasafe_restore_drill_count_mismatches", len(result["problems"])),
        ):
            samples[(name, labels)] = value

    if p["metrics_file"]:
        path = os.path.expanduser(p["metrics_file"])
        metrics.update(path, METRICS, change)
        result["metrics_file"] = path
    if p["change_log"]:
        path = os.path.expanduser(p["change_log"])
        message = (
            "Restore drill of %s: restored into a throwaway server, every count matches its manifest "
            "(%d rows, %.0f s)" % (backup.get("file"), sum(result["counts"].values()), result["duration_seconds"])
            if result["ok"]
            else "RESTORE DRILL FAILED for %s: %s" % (backup.get("file", p["database"]), result["error"])
        )
        changelog.record(
            path,
            changelog.json_log_path(path),
            "restore_drill",
            message,
            "completed" if result["ok"] else "failed",
            backup=backup.get("path"),
            counts=result.get("counts"),
            problems=result["problems"] or None,
            duration_seconds=result["duration_seconds"],
        )


def execute(p, run=runner.run, check_mode=False):
    """One drill with the module's options ``p``; the result dict, or :class:`DrillFailed`."""
    try:
        check_params(p)
    except ValueError as exc:
        raise DrillFailed("restore_drill: %s" % exc, dict(ok=False, problems=[], removed=[])) from exc
    backup_dir = os.path.expanduser(p["backup_dir"])
    if not os.path.isdir(backup_dir):
        raise DrillFailed(
            "backup directory %s does not exist: set datasafe_backup_dir" % backup_dir,
            dict(ok=False, problems=[], removed=[]),
        )
    started = time.monotonic()
    result = dict(ok=False, backup=None, problems=[], removed=[], skipped=[], error=None)
    selected = tables = None
    try:
        selected, tables = choose(p, backup_dir, times.now_utc(), result)
    except (restore.RestoreError, OSError) as exc:
        result["error"] = str(exc)
    if check_mode:
        result.update(changed=False, duration_seconds=0.0)
        if result["error"]:
            raise DrillFailed("restore drill: %s" % result["error"], result)
        return result
    if not result["error"]:
        restore_into_throwaway(run, p, selected, tables, result)
    result["duration_seconds"] = round(time.monotonic() - started, 3)
    try:
        record(p, result)
    except OSError as exc:
        raise DrillFailed(
            "restore drill %s, but recording it failed: %s"
            % ("passed" if result["ok"] else "failed (%s)" % result["error"], exc),
            result,
        ) from exc
    result["changed"] = True
    if not result["ok"]:
        raise DrillFailed(
            "RESTORE DRILL FAILED for %s: %s" % ((result["backup"] or {}).get("file", p["database"]), result["error"]),
            result,
        )
    return result
