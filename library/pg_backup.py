#!/usr/bin/python
# -*- coding: utf-8 -*-
"""A verified PostgreSQL backup, dumped inside the container, with a manifest beside it."""

DOCUMENTATION = r"""
---
module: pg_backup
short_description: Verified backup of a PostgreSQL database running in a container
description:
  - Runs C(pg_dump) inside the database container (so client and server versions always
    match) on a snapshot exported by a C(REPEATABLE READ) transaction that a C(psql)
    session holds open; the same transaction counts the O(tables) exactly, so the counts
    in the manifest describe exactly what was dumped.
  - Compresses inside the container with C(pg_dump -Z) by default (gzip, so the protocol's
    C(gunzip -c file | psql) recovery keeps working); zstd, or gzip/pigz on the host, and
    C(pg_dump)'s custom format are options.
  - Writes the stream under a temporary name (C(.<name>.partial)), fsyncs it, verifies it
    from disk (sha256, full decompression, the dump's completion trailer; C(pg_restore)
    reads every block of a custom archive), and only then links it to its final name,
    never replacing an existing file. The JSON manifest (C(<name>.json), mode 0600) is
    written last, atomically.
  - Every stage's exit status is checked. On any failure the temporary file is removed,
    nothing else is touched, and the task fails naming the stage.
  - Takes an exclusive lock on the backup directory, so two backups never overlap; a lock
    left by a dead process is released by the kernel with it.
  - Flags a backup far smaller than the newest good backup of the same database (size
    under O(shrink_ratio) of it, or any critical table with fewer rows) and warns, or fails
    with O(fail_on_shrink). The new backup is kept either way; it is a faithful copy.
  - Writes a Prometheus textfile (O(metrics_file)) and a change-log entry on every run,
    success or failure.
version_added: "0.1.0"
author: datasafe maintainers
options:
  database:
    description: Database to back up.
  user:
    description: Role C(pg_dump) and C(psql) connect as (over the container's local socket).
  backup_dir:
    description: Directory for backups; created with mode 0700 (an existing one is tightened to 0700).
    type: path
    required: true
  tables:
    description: Critical tables counted exactly in the dump's snapshot (recorded in the manifest).
    type: list
    elements: str
    default: []
  kind:
    description: Why the backup is made; picks the name prefix and the retention policy.
    type: str
    choices: [manual, scheduled, pre-change]
    default: manual
  label:
    description: Free text recorded in the manifest (for example C(before migration 42)).
    type: str
    default: ""
  prefix:
    description: File name prefix of scheduled and manual backups (C(<prefix>_YYYYMMDD_HHMMSS.sql.gz)).
    type: str
    default: lms_backup
  pre_change_prefix:
    description: File name prefix of pre-change backups.
    type: str
    default: BEFORE_UPDATE
  format:
    description: V(plain) SQL (restorable with C(psql)) or C(pg_dump)'s V(custom) archive (C(pg_restore)).
    type: str
    choices: [plain, custom]
    default: plain
  compression:
    description: V(gzip) keeps C(gunzip -c file | psql) working; V(zstd) compresses on the host.
    type: str
    choices: [gzip, zstd, none]
    default: gzip
  compress_level:
    description: Compression level (gzip 1-9, default 3; zstd 1-19, default 3; measured in docs/backups.md).
    type: int
  compress_on:
    description:
      - Where to compress. V(container) uses C(pg_dump -Z) (fastest, measured in docs/backups.md);
        V(host) pipes the plain stream to C(pigz) (or C(gzip)) or C(zstd) on the host;
        V(auto) is V(container) for gzip and V(host) for zstd.
    type: str
    choices: [auto, container, host]
    default: auto
  app_dir:
    description: The application's git checkout; its C(HEAD) is recorded as C(app_revision) (null if not git).
    type: path
  fail_on_shrink:
    description: Fail (after keeping the new, verified backup) when it is flagged as far smaller than the previous one.
    type: bool
    default: false
  shrink_ratio:
    description: Flag a backup whose size is under this fraction of the previous good backup's.
    type: float
    default: 0.5
  metrics_file:
    description:
      - Prometheus textfile (node_exporter textfile collector) updated on every run, atomically and serialised
        by a lock file C(<metrics_file>.lock) beside it; the samples of other databases and kinds are kept.
    type: path
  change_log:
    description: The protocol's change log (C(~/change-log.txt)); a JSON line goes to C(change-log.jsonl) beside it.
    type: path
  lock_timeout:
    description: Seconds to wait for another backup in the same directory to finish before failing.
    type: int
    default: 0
  lock_wait_timeout:
    description: Seconds C(pg_dump) waits for its table locks (a migration holding a table) before failing.
    type: int
    default: 120
  nice:
    description:
      - Run this backup at a lower CPU priority (0 to 19, as C(nice -n)). That covers C(pg_dump)
        and its compression inside the container, and this module's own hashing and verification
        on the host. The restore uses it for its safety backup, which runs beside the restore of the
        backup and must not slow it; the backup is still complete and verified before it returns.
      - 0 (the default) keeps the normal priority. The server process answering C(pg_dump) keeps
        the server's priority.
    type: int
    default: 0
  roles:
    description:
      - Also save the cluster's roles (C(pg_dumpall --roles-only), inside the container) as
        C(<backup>.roles), mode 0600, verified (trailer, every statement a role statement,
        sha256) and recorded in the manifest's C(roles) block. Every restore path creates the
        roles a server lacks from it before loading, and never alters existing ones.
    type: bool
    default: true
  role_auth:
    description:
      - V(hashes) keeps the roles' password hashes (SCRAM verifiers, never clear text) in the roles
        file, so the application logs in on a new machine. V(none) runs C(pg_dumpall
        --no-role-passwords), and re-created login roles have no password until an operator sets one.
    type: str
    choices: [hashes, none]
    default: hashes
extends_documentation_fragment:
  - datasafe
attributes:
  check_mode:
    support: full
    description:
      - Checks that the database answers and reports the name the backup would get; writes nothing,
        takes no lock, and reports RV(changed) true because a real run would write a backup.
  diff_mode:
    support: none
notes:
  - Requires the C(docker) CLI on the host (and C(zstd) for zstd, C(pigz) or C(gzip) for host-side gzip).
  - "Test hook (documented, off unless set): with the environment variable
    C(DATASAFE_BACKUP_TEST_CRASH_BEFORE_RENAME=1) the module kills itself with SIGKILL after
    the temporary file was fsynced and verified, before the rename, so tests can prove a
    crash there leaves nothing that looks like a good backup."
seealso:
  - module: backup_retention
"""

EXAMPLES = r"""
- name: Back up before the update
  pg_backup:
    container: lms-postgres
    database: lms_slncity
    user: lms_user
    backup_dir: ~/backups
    tables: [users, patients, visits, test_results, invoices]
    kind: pre-change
    label: before release 2.4
    app_dir: ~/LMS-SLNCity-V1
  register: backup

- name: Nightly zstd backup, compressed on the host
  pg_backup:
    container: lms-postgres
    database: lms_slncity
    user: lms_user
    backup_dir: /srv/backups
    kind: scheduled
    compression: zstd
    metrics_file: /var/lib/node_exporter/textfile/datasafe_backup.prom
"""

RETURN = r"""
path:
  description: Absolute path of the verified backup (in check mode, the path it would get).
  returned: always
  type: str
  sample: /home/lms/backups/lms_backup_20261123_020000.sql.gz
manifest_path:
  description: Path of its manifest.
  returned: success
  type: str
file:
  description: Base name of the backup.
  returned: always
  type: str
sha256:
  description: SHA-256 of the backup file.
  returned: success
  type: str
size:
  description: Size of the backup file in bytes.
  returned: success
  type: int
counts:
  description: Exact row count of every table in O(tables), taken in the dump's snapshot.
  returned: success
  type: dict
  sample: {"users": 10, "patients": 2000}
kind:
  description: O(kind) as given.
  returned: always
  type: str
start:
  description: When the backup started (ISO 8601 with timezone).
  returned: success
  type: str
end:
  description: When it was verified and named (ISO 8601 with timezone).
  returned: success
  type: str
duration_seconds:
  description: Wall time of the backup.
  returned: success
  type: float
checks:
  description: What was verified.
  returned: success
  type: list
  elements: str
shrink:
  description: Why the backup was flagged as far smaller than the previous one (empty when it was not).
  returned: success
  type: list
  elements: str
previous:
  description: The newest good backup of the database before this one (compared for shrinkage), or null.
  returned: always
  type: str
manifest:
  description: The whole manifest as written.
  returned: success
  type: dict
removed_partials:
  description: Temporary files of earlier runs that died (never backups), removed under the lock.
  returned: success
  type: list
  elements: str
stage:
  description: The stage that failed.
  returned: failure
  type: str
"""

import datetime
import os
import re
import shutil
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.datasafe import backup, changelog, container, manifest, metrics

_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")

# The backup's textfile for node_exporter; an alert on
# ``time() - datasafe_backup_last_success_timestamp_seconds > 26*3600`` sees a job that stopped.
METRICS = (
    metrics.gauge(
        "datasafe_backup_last_run_timestamp_seconds", "Unix time the last backup run ended, successful or not."
    ),
    metrics.gauge("datasafe_backup_last_run_success", "1 when the last backup run produced a verified backup, else 0."),
    metrics.gauge(
        "datasafe_backup_last_success_timestamp_seconds", "Unix time the last verified backup was completed."
    ),
    metrics.gauge("datasafe_backup_last_size_bytes", "Size of the last verified backup file."),
    metrics.gauge("datasafe_backup_last_duration_seconds", "Wall time of the last backup run."),
    metrics.gauge("datasafe_backup_last_verified", "1 when the last verified backup passed every check."),
    metrics.gauge(
        "datasafe_backup_last_shrink_flagged",
        "1 when the last verified backup was far smaller than the one before it.",
    ),
)


def record_run(path, database, kind, success, ended, duration, size=None, verified=False, shrink=False):
    """Update the textfile for one run of ``database``/``kind``; ``ended`` is a Unix time.

    The samples of other databases and kinds are kept. A failed run updates only the run's own
    samples, so the last success time (and that backup's size and checks) carry over.
    """
    labels = metrics.labels_key((("database", database), ("kind", kind)))

    def change(samples):
        def put(short, value):
            text = ("%.3f" % value) if isinstance(value, float) else str(int(value))
            samples[("datasafe_backup_" + short, labels)] = text

        put("last_run_timestamp_seconds", float(ended))
        put("last_run_success", 1 if success else 0)
        put("last_duration_seconds", float(duration))
        if success:
            put("last_success_timestamp_seconds", float(ended))
            put("last_size_bytes", size or 0)
            put("last_verified", 1 if verified else 0)
            put("last_shrink_flagged", 1 if shrink else 0)

    return metrics.update(path, METRICS, change)


def _git_revision(module, app_dir):
    if not app_dir or not os.path.isdir(app_dir):
        return None
    rc, out, _ = module.run_command(["git", "-C", app_dir, "rev-parse", "HEAD"])
    return out.strip() if rc == 0 and out.strip() else None


def _fail(module, stage, message, **extra):
    module.fail_json(msg="pg_backup failed at stage %s: %s" % (stage, message), stage=stage, **extra)


def _changelog(p, outcome, message, **fields):
    if p["change_log"]:
        changelog.record(
            p["change_log"], changelog.json_log_path(p["change_log"]), "backup", message, outcome, **fields
        )


def main():
    module = AnsibleModule(
        argument_spec=dict(
            container=dict(type="str", required=True),
            database=dict(type="str", required=True),
            user=dict(type="str", required=True),
            backup_dir=dict(type="path", required=True),
            tables=dict(type="list", elements="str", default=[]),
            kind=dict(type="str", choices=["manual", "scheduled", "pre-change"], default="manual"),
            label=dict(type="str", default=""),
            prefix=dict(type="str", default="lms_backup"),
            pre_change_prefix=dict(type="str", default="BEFORE_UPDATE"),
            format=dict(type="str", choices=list(backup.FORMATS), default="plain"),
            compression=dict(type="str", choices=list(backup.COMPRESSIONS), default="gzip"),
            compress_level=dict(type="int"),
            compress_on=dict(type="str", choices=["auto", "container", "host"], default="auto"),
            app_dir=dict(type="path"),
            fail_on_shrink=dict(type="bool", default=False),
            shrink_ratio=dict(type="float", default=0.5),
            metrics_file=dict(type="path"),
            change_log=dict(type="path"),
            lock_timeout=dict(type="int", default=0),
            lock_wait_timeout=dict(type="int", default=120),
            nice=dict(type="int", default=0),
            roles=dict(type="bool", default=True),
            role_auth=dict(type="str", choices=["hashes", "none"], default="hashes"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    prefix = p["pre_change_prefix"] if p["kind"] == "pre-change" else p["prefix"]
    # Bad input: a clear error, nothing changed.
    try:
        level, compress_on = backup.check_options(p["format"], p["compression"], p["compress_level"], p["compress_on"])
        for table in p["tables"]:
            container.quote_ident(table)
        if not _PREFIX.match(prefix):
            raise ValueError("prefix %r must be letters, digits, '_', '-' or '.', with no '/'" % prefix)
        if not 0 < p["shrink_ratio"] <= 1:
            raise ValueError("shrink_ratio must be between 0 and 1, not %s" % p["shrink_ratio"])
        if p["lock_timeout"] < 0 or p["lock_wait_timeout"] < 0:
            raise ValueError("lock_timeout and lock_wait_timeout must not be negative")
        if not 0 <= p["nice"] <= 19:
            raise ValueError("nice must be between 0 (normal priority) and 19 (lowest), not %s" % p["nice"])
    except ValueError as exc:
        module.fail_json(msg="pg_backup: %s" % exc, stage="options")
    if compress_on == "host" and p["compression"] == "zstd" and not shutil.which("zstd"):
        module.fail_json(
            msg="pg_backup: zstd is not installed on the host: install it or use compression gzip", stage="options"
        )
    directory = p["backup_dir"]
    spec = dict(p, prefix=prefix, level=level, compress_on=compress_on, backup_dir=directory)
    name = backup.backup_name(prefix, datetime.datetime.now().astimezone(), p["format"], p["compression"])
    previous = None
    if os.path.isdir(directory):
        previous = manifest.newest_verified(directory, database=p["database"])
    previous_file = previous["file"] if previous else None

    if module.check_mode:
        try:
            container.query(
                container.module_runner(module), p["container"], p["database"], p["user"], "SELECT 1;", stage="connect"
            )
        except container.ContainerError as exc:
            _fail(
                module,
                "connect",
                str(exc),
                previous=previous_file,
                path=os.path.join(directory, name),
                file=name,
                kind=p["kind"],
            )
        module.exit_json(
            changed=True,
            path=os.path.join(directory, name),
            file=name,
            kind=p["kind"],
            previous=previous_file,
            msg="would write a verified %s backup %s in %s" % (p["kind"], name, directory),
        )

    if p["nice"]:
        os.nice(p["nice"])  # this process, its threads and the docker clients it starts
    t0 = time.monotonic()
    lock = None
    try:
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
            if os.stat(directory).st_mode & 0o777 != 0o700:
                os.chmod(directory, 0o700)
        except OSError as exc:
            raise backup.BackupError(
                "backup directory", "cannot create %s with mode 0700: %s" % (directory, exc.strerror or exc)
            ) from exc
        lock = backup.DirLock(directory).acquire(p["lock_timeout"])
        removed = []
        for partial in backup.leftover_partials(directory):
            os.unlink(os.path.join(directory, partial))  # a dead run's temporary file, never a backup
            removed.append(partial)
        if previous is not None:
            free = shutil.disk_usage(directory).free
            if free < previous["size"]:
                raise backup.BackupError(
                    "disk space",
                    "%d bytes free in %s, less than the previous backup (%d bytes)"
                    % (free, directory, previous["size"]),
                )
        spec["app_revision"] = _git_revision(module, p["app_dir"])
        data = backup.run_backup(spec)
        shrink = backup.shrink_problems(
            previous, data["size"], data["counts"], p["format"], p["compression"], p["shrink_ratio"]
        )
        data["previous"] = previous_file
        data["shrink"] = shrink
        data["flagged"] = bool(shrink)
        manifest_path = manifest.manifest_path(data["path"])
        try:
            manifest.write(manifest_path, data)
        except OSError as exc:
            raise backup.BackupError(
                "manifest",
                "cannot write %s: %s (the backup file has no manifest and "
                "does not count as good)" % (manifest_path, exc.strerror or exc),
            ) from exc
    except (backup.BackupError, container.ContainerError, OSError) as exc:
        stage = getattr(exc, "stage", "backup")
        message = str(exc)
        if lock is not None:
            lock.release()
        if p["metrics_file"]:
            record_run(p["metrics_file"], p["database"], p["kind"], False, time.time(), time.monotonic() - t0)
        _changelog(
            p,
            "failed",
            "Backup (%s) of %s FAILED at stage %s: %s" % (p["kind"], p["database"], stage, message),
            stage=stage,
        )
        _fail(
            module,
            stage,
            "%s. No file that looks like a backup was written and no earlier backup was touched." % message,
            previous=previous_file,
            kind=p["kind"],
        )
    lock.release()
    if p["metrics_file"]:
        record_run(
            p["metrics_file"],
            p["database"],
            p["kind"],
            True,
            time.time(),
            time.monotonic() - t0,
            size=data["size"],
            verified=True,
            shrink=bool(shrink),
        )
    summary = "Backup (%s) %s of %s verified: %d bytes, %d rows in %d critical tables, sha256 %s" % (
        p["kind"],
        data["file"],
        p["database"],
        data["size"],
        data["counts_total"],
        len(data["counts"]),
        data["sha256"][:16],
    )
    _changelog(
        p,
        "ok",
        summary + (" (FLAGGED: %s)" % "; ".join(shrink) if shrink else ""),
        file=data["path"],
        sha256=data["sha256"],
        kind=p["kind"],
        label=p["label"] or None,
    )
    for problem in shrink:
        module.warn("backup %s is flagged: %s" % (data["file"], problem))
    result = dict(
        changed=True,
        path=data["path"],
        manifest_path=manifest_path,
        file=data["file"],
        sha256=data["sha256"],
        size=data["size"],
        counts=data["counts"],
        kind=p["kind"],
        label=p["label"],
        start=data["start"],
        end=data["end"],
        duration_seconds=data["duration_seconds"],
        checks=data["checks"],
        shrink=shrink,
        previous=previous_file,
        manifest=data,
        removed_partials=removed,
        msg=summary,
    )
    if shrink and p["fail_on_shrink"]:
        del result["msg"]
        module.fail_json(
            msg="pg_backup: the new backup %s is verified and kept, but flagged: %s"
            % (data["file"], "; ".join(shrink)),
            stage="shrink",
            **result,
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
