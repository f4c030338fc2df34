# -*- coding: utf-8 -*-
"""The two steps of a restore as the modules run them, around restore.py's pieces.

:func:`beside` checks the options and the backup's verdict (nothing is created for a backup
that is not verified), then restores it into a new database beside the live one, in this
process or detached (background.py); :func:`swap` waits for that restore, refuses an unverified
one, and swaps the names by rename (restore.swap). ``library/pg_restore_beside.py`` and
``library/pg_swap_database.py`` are their documentation and argument specs.

Both return the module's result or raise :class:`RestoreFailed` with the fields the module
returns; the live database is never written into and nothing is ever dropped.
"""

import datetime
import os

from ansible.module_utils.datasafe import background, container, manifest, restore

BESIDE_PREFIX = "datasafe-restore-beside-"


class RestoreFailed(Exception):
    """The step failed; ``result`` is what the module returns with the failure."""

    def __init__(self, message, result=None):
        super().__init__(message)
        self.result = dict(result or {})


# ------------------------------------------------------------------------------- restore beside


def checked_backup(backup, expected_database, now=None):
    """The backup as listed with its manifest, or RestoreFailed naming why it must not be restored."""
    directory = os.path.dirname(backup)
    entry = next((e for e in manifest.list_backups(directory) if os.path.abspath(e["path"]) == backup), None)
    if entry is None:
        raise RestoreFailed(
            "refusing to restore %s: it is not a backup datasafe knows (no such file, or a name "
            "that is not a backup's); only a backup with a verified manifest is restored" % backup,
            dict(problems=[]),
        )
    now = now or datetime.datetime.now(datetime.timezone.utc)
    row = restore.describe_backup(entry, expected_database, now, manifest.verify_file)
    if not row["verified"]:
        raise RestoreFailed("refusing to restore %s: %s" % (backup, "; ".join(row["problems"])), dict(problems=[]))
    return row


def _new_database(p):
    """The new database's name, checked with the other options before anything is created."""
    try:
        restore.check_db_name(p["database"])
        new_db = p["new_database"] or restore.restored_name(p["database"], p["timestamp"] or restore.timestamp())
        restore.check_db_name(new_db, "new_database")
        if p["jobs"] < 1:
            raise ValueError("jobs must be 1 or more")
        restore.session_prelude(p["session_settings"])  # refuse a bad setting before anything is created
    except ValueError as exc:
        raise RestoreFailed("pg_restore_beside: %s" % exc, dict(new_database=p["new_database"], problems=[])) from exc
    if new_db == p["database"]:
        raise RestoreFailed(
            "new_database must differ from database: a restore never writes into the live database",
            dict(new_database=new_db, problems=[]),
        )
    return new_db


def beside(p, run, check_mode=False, detached_run=container.subprocess_runner):
    """Restore backup ``p["backup"]`` beside ``p["database"]`` (the module's options ``p``).

    With ``p["detach"]`` the restore runs in a detached process (with ``detached_run``) and the
    result holds its ``job`` file for ``job_result`` or the swap.
    """
    backup = os.path.abspath(p["backup"])
    new_db = _new_database(p)
    entry = checked_backup(backup, p["expected_database"] or p["database"])
    tables = p["tables"] or sorted(entry["counts"])
    missing = [t for t in tables if t not in entry["counts"]]
    if missing:
        raise RestoreFailed(
            "the manifest of %s has no count for %s, so a restore could not be verified; restore a "
            "backup that covers them or leave them out of tables" % (backup, ", ".join(missing)),
            dict(new_database=new_db, problems=[]),
        )
    expected = {t: entry["counts"][t] for t in tables}
    entry = dict(entry, counts=expected)
    result = dict(new_database=new_db, manifest=entry, problems=[])
    if check_mode:
        result.update(changed=True, counts=expected)
        if p["detach"]:  # a result file finished from the start: there is nothing to run
            try:
                result["job"] = background.finished(dict(result, failed=False), prefix=BESIDE_PREFIX)
            except OSError as exc:
                raise RestoreFailed("cannot write the restore's result file: %s" % exc, result) from exc
        return result
    if p["detach"]:
        try:
            job = background.run_detached(
                lambda: outcome(detached_run, p, backup, new_db, entry, tables, result), prefix=BESIDE_PREFIX
            )
        except OSError as exc:
            raise RestoreFailed("the restore beside could not be started in the background: %s" % exc, result) from exc
        return dict(result, changed=True, job=job)
    done = outcome(run, p, backup, new_db, entry, tables, result)
    if done["failed"]:
        raise RestoreFailed(done.pop("msg"), done)
    return done


def _server(p):
    """The live database as the restore engine takes it: (container, user, database)."""
    return p["container"], p["user"], p["database"]


def outcome(run, p, backup, new_db, entry, tables, result):
    """Restore beside and compare the counts; the module's result, ``failed`` and ``msg`` included."""
    result = dict(result)
    try:
        done = restore.restore_beside(
            run,
            *_server(p),
            new_db,
            entry,
            tables,
            p["maintenance_db"],
            p["jobs"],
            p["analyze"],
            settings=p["session_settings"],
            ready_timeout=p["ready_timeout"],
        )
    except (restore.RestoreError, container.ContainerError, ValueError) as exc:
        result.update(
            failed=True,
            changed=False,
            msg="restore of %s into new database %s failed; the live database %s was not touched "
            "(a partly restored %s may be left for inspection, it is never dropped): %s"
            % (os.path.basename(backup), new_db, p["database"], new_db, exc),
        )
        return result
    result.update(
        changed=True, counts=done["counts"], problems=done["problems"], like=done["like"], roles=done.get("roles")
    )
    if done["problems"]:
        result.update(
            failed=True,
            msg="restored %s into %s, but its row counts do not match the manifest: %s. The live "
            "database %s was not touched; %s is left for inspection"
            % (os.path.basename(backup), new_db, restore.describe_problems(done["problems"]), p["database"], new_db),
        )
        return result
    result["failed"] = False
    return result


# ------------------------------------------------------------------------------- swap by rename


def _keep_as(p):
    """The name the live database is kept under, all four names checked (RestoreFailed otherwise)."""
    try:
        for name in (p["database"], p["restored"], p["maintenance_db"]):
            restore.check_db_name(name)
        keep_as = p["keep_as"] or restore.before_name(p["database"], p["timestamp"] or restore.timestamp())
        restore.check_db_name(keep_as, "keep_as")
    except ValueError as exc:
        raise RestoreFailed("pg_swap_database: %s" % exc, dict(renames=[])) from exc
    names = {p["database"], p["restored"], keep_as}
    if len(names) != 3 or p["maintenance_db"] in names:
        raise RestoreFailed(
            "database, restored, keep_as and maintenance_db must be four different names", dict(renames=[])
        )
    if p["attempts"] < 1:
        raise RestoreFailed("attempts must be 1 or more", dict(renames=[]))
    if p["restore_job_timeout"] < 1 or not 0.05 <= p["restore_job_poll"] <= 10:
        raise RestoreFailed(
            "restore_job_timeout must be at least 1 s and restore_job_poll 0.05 to 10 s", dict(renames=[])
        )
    return keep_as


def consumed(path):
    """The job's result is read and returned (RV(restore)); its file is not needed any more."""
    try:
        os.unlink(path)
    except OSError:
        pass  # gone already, or not ours to remove: the result was read either way


def swap(p, run, check_mode=False, warn=lambda text: None):
    """Swap ``p["restored"]`` in as ``p["database"]`` by rename, keeping the old one (module options ``p``)."""
    keep_as = _keep_as(p)
    extra = {}
    if p["restore_job"]:
        # Before anything else: the swap waits for the restore beside and refuses an unverified one.
        try:
            extra["restore"] = restore.wait_job(p["restore_job"], p["restore_job_timeout"], p["restore_job_poll"])
            consumed(p["restore_job"])  # read once; the result goes on in RV(restore), accepted or not
            restore.verified_restore(extra["restore"], p["restored"])
        except restore.RestoreError as exc:
            raise RestoreFailed("pg_swap_database: %s" % exc, dict(renames=[], **extra)) from exc

    def planned(present):
        return dict(
            renames=(["%s -> %s" % (p["database"], keep_as)] if p["database"] in present else [])
            + ["%s -> %s" % (p["restored"], p["database"])],
            kept_as=keep_as if p["database"] in present else None,
        )

    if check_mode:
        names = [p["database"], p["restored"], keep_as]
        try:
            present = restore.databases(run, p["container"], p["user"], names, p["maintenance_db"])
        except container.ContainerError as exc:
            raise RestoreFailed(
                "pg_swap_database: cannot read the databases in %s: %s" % (p["container"], exc), dict(renames=[])
            ) from exc
        return dict(changed=True, databases=present, **planned(present), **extra)
    # The swap reads the databases itself, before it renames anything (one round trip fewer on
    # the outage's critical path than reading them here as well).
    try:
        done = restore.swap(
            run,
            *_server(p),
            p["restored"],
            keep_as,
            p["maintenance_db"],
            p["attempts"],
            p["terminate_timeout_ms"],
        )
    except (restore.RestoreError, container.ContainerError) as exc:
        raise RestoreFailed("SWAP FAILED: %s" % exc, dict(renames=[])) from exc
    if p["analyze"]:
        # The swap is done and proven; statistics are not worth failing it over.
        try:
            extra["analyze_job"] = background.start(
                restore.analyze_argv(p["container"], p["user"], p["database"]), prefix="datasafe-analyze-"
            )
        except OSError as exc:
            extra["analyze_job"] = None
            warn("ANALYZE of %s could not be started (%s); autovacuum will analyze it later" % (p["database"], exc))
    return dict(changed=True, attempts=done["attempts"], databases=done["after"], **planned(done["before"]), **extra)
