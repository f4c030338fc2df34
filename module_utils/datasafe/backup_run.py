"""One backup run, as the pg_backup module makes it: everything around the verified dump.

:mod:`backup` makes the verified dump itself (snapshot, pg_dump in the container, streamed
verification, fsync, rename). This file is the run around it, in order: check the options,
read the previous good backup, take the directory's lock (:mod:`lock`), remove a dead run's
temporary files, check the free space, dump, judge a shrink, write the manifest, record the
metrics and the change log, and with ``retention`` prune the directory (:mod:`retention_run`).
:func:`execute` returns the module's result or raises :class:`BackupFailed` with the stage that
failed; nothing here talks to Ansible.
"""

import os
import re
import shutil
import time

from ansible.module_utils.datasafe import (
    backup,
    changelog,
    container,
    continuous,
    dbguard,
    lock,
    manifest,
    metrics,
    retention_run,
    runner,
    times,
)

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


class BackupFailed(Exception):
    """The run failed at ``stage``; ``result`` is what the module returns with the failure."""

    def __init__(self, stage, message, result=None):
        super().__init__(message)
        self.stage, self.result = stage, dict(result or {}, stage=stage)


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


def check_options(p, which=shutil.which):
    """The options as the run uses them (prefix, level, compress_on); ValueError names a bad one."""
    prefix = p["pre_change_prefix"] if p["kind"] == "pre-change" else p["prefix"]
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
    if p.get("container_compressor", "auto") == "igzip":
        if (p["format"], p["compression"], compress_on) != ("plain", "gzip", "container"):
            raise ValueError("container_compressor igzip compresses plain gzip dumps in the container only")
        if level > backup.IGZIP_MAX_LEVEL:
            raise ValueError(
                "igzip compresses at levels 1 to %d, not %d: lower compress_level or use container_compressor auto"
                % (backup.IGZIP_MAX_LEVEL, level)
            )
    if compress_on == "host" and p["compression"] == "zstd" and not which("zstd"):
        raise ValueError("zstd is not installed on the host: install it or use compression gzip")
    if p.get("retention") is not None:
        try:
            retention_run.check_options(retention_options(p, None))
        except retention_run.RetentionFailed as exc:
            raise ValueError("retention: %s" % exc.reason) from exc
    return dict(p, prefix=prefix, level=level, compress_on=compress_on)


def retention_options(p, new_backup):
    """backup_retention's options for pruning in this run: the policy ``retention``, this run's
    directory and database, and the backup just made (whose sha256 the engine re-checks)."""
    return dict(
        p["retention"],
        backup_dir=p["backup_dir"],
        database=p["database"],
        new_backup=new_backup,
        require_verified_within=0,  # unused: new_backup is given
    )


def prune(p, result, warn):
    """Prune by ``retention`` after the verified backup in ``result``; the backup stays whatever happens."""
    try:
        pruned = retention_run.execute(retention_options(p, result["path"]), False, warn or (lambda text: None))
    except retention_run.RetentionFailed as exc:
        msg = result.pop("msg", None)
        raise BackupFailed(
            "retention",
            "pg_backup: the new backup %s is verified and kept (%s), but pruning by the retention policy failed: %s"
            % (result["file"], msg, exc),
            dict(result, retention=exc.result),
        ) from exc
    result.update(retention=pruned, changed=True, msg="%s; retention %s" % (result["msg"], pruned["msg"]))


def git_revision(run, app_dir):
    if not app_dir or not os.path.isdir(app_dir):
        return None
    rc, out, _ = run(["git", "-C", app_dir, "rev-parse", "HEAD"])
    return out.strip() if rc == 0 and out.strip() else None


def _changelog(p, outcome, message, **fields):
    if p["change_log"]:
        changelog.record(
            p["change_log"], changelog.json_log_path(p["change_log"]), "backup", message, outcome, **fields
        )


def prepare_directory(directory):
    """Create the backup directory with mode 0700 (and tighten an existing one)."""
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        if os.stat(directory).st_mode & 0o777 != 0o700:
            os.chmod(directory, 0o700)
    except OSError as exc:
        raise backup.BackupError(
            "backup directory", "cannot create %s with mode 0700: %s" % (directory, exc.strerror or exc)
        ) from exc


def remove_leftovers(directory):
    """A dead run's temporary files (never backups); only called while holding the lock."""
    removed = []
    for partial in backup.leftover_partials(directory):
        os.unlink(os.path.join(directory, partial))
        removed.append(partial)
    return removed


def check_space(directory, previous):
    if previous is not None:
        free = shutil.disk_usage(directory).free
        if free < previous["size"]:
            raise backup.BackupError(
                "disk space",
                "%d bytes free in %s, less than the previous backup (%d bytes)" % (free, directory, previous["size"]),
            )


def write_manifest(data):
    path = manifest.manifest_path(data["path"])
    try:
        manifest.write(path, data)
    except OSError as exc:
        raise backup.BackupError(
            "manifest",
            "cannot write %s: %s (the backup file has no manifest and does not count as good)"
            % (path, exc.strerror or exc),
        ) from exc
    return path


def dump_under_lock(spec, previous, run):
    """Lock, clean up, check space, dump and verify, write the manifest; returns (data, removed partials)."""
    directory = spec["backup_dir"]
    prepare_directory(directory)
    try:
        held = lock.ProcessLock(os.path.join(directory, backup.LOCK_NAME), "backup").acquire(spec["lock_timeout"])
    except lock.LockHeld as exc:
        raise backup.BackupError(
            "lock",
            "another backup is running in this directory (holder: %s); wait for it to finish, or raise lock_timeout"
            % exc,
        ) from exc
    try:
        removed = remove_leftovers(directory)
        check_space(directory, previous)
        spec["app_revision"] = git_revision(run, spec["app_dir"])
        data = backup.run_backup(spec)
        shrink = backup.shrink_problems(
            previous, data["size"], data["counts"], spec["format"], spec["compression"], spec["shrink_ratio"]
        )
        data.update(previous=previous["file"] if previous else None, shrink=shrink, flagged=bool(shrink))
        write_manifest(data)
        return data, removed
    finally:
        held.release()


def start_side_checks(p):
    """Reads the backup's playbook would otherwise start a module run for after the backup, begun
    beside the dump (each a short query in its own ``docker exec``): the guard's check
    (``guard_check``) and whether the server archives WAL (``archiving_probe``)."""
    where = (runner.run, p["container"], p["database"], p["user"])
    jobs = {}
    if p.get("guard_check"):
        jobs["guard"] = backup.Beside(dbguard.check, *where)
    if p.get("archiving_probe"):
        jobs["archiving"] = backup.Beside(continuous.archiver, *where)
    for job in jobs.values():
        job.start()
    return jobs


def side_results(p, jobs):
    """The side checks' answers for the module's result. Never raises: whatever did not pass (a
    changed guard, a reading that failed) is left to the playbook's own task, which reads again and
    fails naming it. A passing guard check writes the guard's metrics, as db_guard does."""
    out = {}
    if "guard" in jobs:
        try:
            verdict = jobs["guard"].result()
            problem = dbguard.checked_failure(verdict, p["guard_required"])
            if problem is None and p.get("guard_metrics_file"):
                dbguard.write_metrics(p["guard_metrics_file"], p["database"], verdict, time.time())
        except Exception as exc:  # noqa: BLE001 - not understood is not passed: db_guard runs itself
            problem = "the guard's check beside the backup failed: %s" % (str(exc) or type(exc).__name__)
        out["guard_ok"] = problem is None
        if problem is not None:
            out["guard_problem"] = problem
    if "archiving" in jobs:
        try:
            out["archiving_enabled"] = continuous.archives(jobs["archiving"].result())
        except Exception:  # noqa: BLE001 - unknown: continuous_status reads it itself
            out["archiving_enabled"] = None
    return out


def execute(p, run=runner.run, check_mode=False, warn=None):
    """One backup run with the module's options ``p``; the module's result, or :class:`BackupFailed`.

    ``warn(text)`` is told of a flagged (far smaller) backup, which is kept and still succeeds
    unless ``fail_on_shrink``.
    """
    try:
        spec = check_options(p)
    except ValueError as exc:
        raise BackupFailed("options", "pg_backup: %s" % exc) from exc
    directory = spec["backup_dir"]
    name = backup.backup_name(spec["prefix"], times.now_utc().astimezone(), p["format"], p["compression"])
    previous = manifest.newest_verified(directory, database=p["database"]) if os.path.isdir(directory) else None
    previous_file = previous["file"] if previous else None
    planned = dict(path=os.path.join(directory, name), file=name, kind=p["kind"], previous=previous_file)
    if check_mode:
        try:
            container.query(run, p["container"], p["database"], p["user"], "SELECT 1;", stage="connect")
        except container.ContainerError as exc:
            raise BackupFailed("connect", "pg_backup failed at stage connect: %s" % exc, planned) from exc
        return dict(
            planned, changed=True, msg="would write a verified %s backup %s in %s" % (p["kind"], name, directory)
        )

    if p["nice"]:
        os.nice(p["nice"])  # this process, its threads and the docker clients it starts
    t0 = time.monotonic()
    side = start_side_checks(p)
    try:
        data, removed = dump_under_lock(spec, previous, run)
    except (backup.BackupError, container.ContainerError, OSError) as exc:
        for job in side.values():
            job.join()
        stage = getattr(exc, "stage", "backup")
        if p["metrics_file"]:
            record_run(p["metrics_file"], p["database"], p["kind"], False, time.time(), time.monotonic() - t0)
        _changelog(
            p,
            "failed",
            "Backup (%s) of %s FAILED at stage %s: %s" % (p["kind"], p["database"], stage, exc),
            stage=stage,
        )
        raise BackupFailed(
            stage,
            "pg_backup failed at stage %s: %s. No file that looks like a backup was written and no earlier "
            "backup was touched." % (stage, exc),
            dict(previous=previous_file, kind=p["kind"]),
        ) from exc
    shrink = data["shrink"]
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
    result = dict(
        changed=True,
        path=data["path"],
        manifest_path=manifest.manifest_path(data["path"]),
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
    result.update(side_results(p, side))
    for problem in shrink:
        if warn:
            warn("backup %s is flagged: %s" % (data["file"], problem))
    if shrink and p["fail_on_shrink"]:
        del result["msg"]
        raise BackupFailed(
            "shrink",
            "pg_backup: the new backup %s is verified and kept, but flagged: %s" % (data["file"], "; ".join(shrink)),
            result,
        )
    if p.get("retention") is not None:
        prune(p, result, warn)
    return result
