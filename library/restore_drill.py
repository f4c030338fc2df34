#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Prove a backup restores: restore it into a throwaway server and compare counts with its manifest."""

DOCUMENTATION = r"""
---
module: restore_drill
short_description: Restore a backup into a throwaway PostgreSQL container and compare counts with its manifest
description:
  - The protocol's "test backups regularly", done for real. Chooses O(backup) or the newest
    backup of O(database) whose manifest is verified and whose sha256 still matches, starts a
    throwaway server from O(image) (host network, listening on 127.0.0.1 only, on a free
    port, with its own volume; both labelled C(io.datasafe.restore-drill=<id>)), restores the
    backup into it exactly as an emergency restore would, counts every table of the manifest
    exactly and compares.
  - The throwaway container and volume are removed afterwards, whatever happened, found by
    their label, so nothing else is ever removed. The production stack is never touched.
  - Records the result in the change log (text and JSON) and in a Prometheus textfile
    (O(metrics_file)), on success and on failure, then fails when the drill failed, so a
    scheduled drill that finds a bad backup is loud.
version_added: "0.1.0"
author: datasafe maintainers
options:
  image:
    description: The PostgreSQL image of the production database (the same server version restores).
    type: str
    required: true
  backup_dir:
    description: Directory holding the backups and their manifests.
    type: path
    required: true
  database:
    description: The database the backups are of; the drill restores into a database of that name.
    type: str
    required: true
  user:
    description: Role the throwaway server is initialised with (the backup's objects are owned by it).
    type: str
    required: true
  backup:
    description: A file name in O(backup_dir) or a path; defaults to the newest verified backup.
    type: str
  tables:
    description: Tables to compare; defaults to every table in the manifest's counts.
    type: list
    elements: str
  port:
    description: Loopback port for the throwaway server; V(0) picks a free one.
    type: int
    default: 0
  maintenance_db:
    description: The throwaway server's maintenance database.
    type: str
    default: postgres
  ready_timeout:
    description: Seconds to wait for the throwaway server to accept connections.
    type: int
    default: 120
  change_log:
    description: The human change log; the JSON log is beside it (C(.jsonl)). Omit to record nothing.
    type: path
  metrics_file:
    description:
      - Prometheus textfile to update (atomically, serialised by a lock file C(<metrics_file>.lock) beside it).
        The samples of other databases are kept. Omit to write none.
    type: path
attributes:
  check_mode:
    support: full
    description: Chooses and re-checks the backup; starts nothing and records nothing.
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Drill the newest backup
  restore_drill:
    image: datasafe/postgres:15-bookworm
    backup_dir: ~/backups
    database: lms_slncity
    user: lms_user
    change_log: ~/change-log.txt
    metrics_file: /var/lib/node_exporter/textfile/datasafe_restore_drill.prom
"""

RETURN = r"""
ok:
  description: True when the backup restored and every count matched its manifest.
  returned: always
  type: bool
backup:
  description: The backup drilled (its listing row), or null when none could be chosen.
  returned: always
  type: dict
counts:
  description: Exact row counts in the restored throwaway database.
  returned: when the restore ran
  type: dict
problems:
  description: Tables whose count differs from the manifest.
  returned: always
  type: list
  elements: dict
removed:
  description: The throwaway container and volume removed afterwards.
  returned: always
  type: list
  elements: str
duration_seconds:
  description: Time from start to cleanup.
  returned: always
  type: float
roles:
  description:
    - What the backup's roles file did on the server before the load (see module_utils/datasafe/roles.py)
      - C(created) (roles that were missing), C(existing) (left exactly as they were), C(skipped)
      (memberships of existing roles, settings of databases that do not exist yet). Null for a
      backup made before roles were saved.
  returned: success
  type: dict
"""

import datetime
import os
import secrets
import socket
import time
import uuid

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.datasafe import changelog, container, manifest, metrics, restore

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


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    module = AnsibleModule(
        argument_spec=dict(
            image=dict(type="str", required=True),
            backup_dir=dict(type="path", required=True),
            database=dict(type="str", required=True),
            user=dict(type="str", required=True),
            backup=dict(type="str"),
            tables=dict(type="list", elements="str"),
            port=dict(type="int", default=0),
            maintenance_db=dict(type="str", default=restore.MAINTENANCE_DB),
            ready_timeout=dict(type="int", default=120),
            change_log=dict(type="path"),
            metrics_file=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    backup_dir = os.path.expanduser(p["backup_dir"])
    try:
        restore.check_db_name(p["database"])
        restore.check_db_name(p["maintenance_db"], "maintenance_db")
        if p["database"] == p["maintenance_db"]:
            raise ValueError("database and maintenance_db must differ")
    except ValueError as exc:
        module.fail_json(msg="restore_drill: %s" % exc, ok=False, problems=[], removed=[])
    if not os.path.isdir(backup_dir):
        module.fail_json(
            msg="backup directory %s does not exist: set datasafe_backup_dir" % backup_dir,
            ok=False,
            problems=[],
            removed=[],
        )

    started, now = time.monotonic(), datetime.datetime.now(datetime.timezone.utc)
    run = container.module_runner(module)
    result = dict(ok=False, backup=None, problems=[], removed=[], skipped=[], error=None)
    try:
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
            raise restore.RestoreError(
                "the manifest of %s has no count for %s" % (selected["file"], ", ".join(missing))
            )
    except (restore.RestoreError, OSError) as exc:
        result["error"] = str(exc)
    if module.check_mode:
        if result["error"]:
            module.fail_json(msg="restore drill: %s" % result["error"], duration_seconds=0.0, **result)
        module.exit_json(changed=False, duration_seconds=0.0, **result)

    if not result["error"]:
        drill_id = uuid.uuid4().hex[:12]
        result["drill_id"] = drill_id
        port = p["port"] or free_port()
        # Only the throwaway server ever sees this password; docker reads it from the environment.
        os.environ["POSTGRES_PASSWORD"] = secrets.token_urlsafe(24)
        try:
            name = restore.start_drill_server(run, p["image"], drill_id, port, p["user"], p["maintenance_db"])
            restore.wait_ready(run, name, p["user"], port, p["ready_timeout"], p["maintenance_db"])
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
    result["duration_seconds"] = round(time.monotonic() - started, 3)
    record(p, result, module)
    if not result["ok"]:
        module.fail_json(
            changed=True,
            msg="RESTORE DRILL FAILED for %s: %s"
            % ((result["backup"] or {}).get("file", p["database"]), result["error"]),
            **result,
        )
    module.exit_json(changed=True, **result)


def record(p, result, module):
    """Change log and metrics, on success and failure alike."""
    backup = result["backup"] or {}
    labels = metrics.labels_key((("database", p["database"]),))
    now = int(time.time())
    path = os.path.expanduser(p["metrics_file"]) if p["metrics_file"] else None

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

    try:
        if path:
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
    except OSError as exc:
        module.fail_json(
            msg="restore drill %s, but recording it failed: %s"
            % ("passed" if result["ok"] else "failed (%s)" % result["error"], exc),
            **result,
        )


if __name__ == "__main__":
    main()
