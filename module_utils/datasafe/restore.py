"""Restore beside, never over: the engine behind restore.yml and restore_drill.yml.

The protocol's EMERGENCY RECOVERY pipes a dump into the live database. datasafe instead
creates a NEW database next to the live one (same owner, encoding and locale), restores the
backup into it in one transaction, counts every table exactly and compares the counts with
the backup's manifest. Only a restore that matches its manifest is swapped in, by renaming:
``<db>`` becomes ``<db>_before_restore_<ts>`` and ``<db>_restore_<ts>`` becomes ``<db>``,
both renames in ONE transaction, so the swap either happens whole or not at all. Nothing is
ever dropped: the damaged database stays, under its new name, for whoever needs it.

Every function takes a ``run`` callable (see :mod:`container`); streaming a backup file
into the container uses :func:`stream_file` (the file is never read into memory).
"""

import datetime
import os
import re
import time

from ansible.module_utils.datasafe import background, container, counts, manifest, ready, roles, runner, times

MAINTENANCE_DB = "postgres"
# PostgreSQL truncates identifiers at 63 bytes; a truncated name would collide silently.
_MAX_IDENT = 63
_DB_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")
_TS = re.compile(r"^\d{8}_\d{6}$")
# Keep this much of a failed command's error output (a failed restore can print a lot).
_ERR_TAIL = 4000


class RestoreError(Exception):
    """A restore step failed; the message says what happened and what to do."""


def timestamp(now=None):
    """``YYYYMMDD_HHMMSS`` in local time, the same shape as backup names."""
    return (now or datetime.datetime.now()).strftime("%Y%m%d_%H%M%S")


def check_db_name(name, what="database name"):
    """Return ``name`` when it is a plain PostgreSQL identifier that fits; raise ValueError otherwise."""
    if not isinstance(name, str) or not _DB_NAME.match(name):
        raise ValueError("%s %r is not a plain identifier: use letters, digits and underscores" % (what, name))
    if len(name.encode("utf-8")) > _MAX_IDENT:
        raise ValueError("%s %r is longer than PostgreSQL's 63-byte limit; use a shorter database name" % (what, name))
    return name


def restored_name(database, ts):
    """The database a backup is restored into, beside ``database``."""
    return check_db_name("%s_restore_%s" % (database, _check_ts(ts)), "restore database name")


def before_name(database, ts):
    """The name the current database keeps after the swap."""
    return check_db_name("%s_before_restore_%s" % (database, _check_ts(ts)), "kept database name")


def _check_ts(ts):
    if not _TS.match(ts or ""):
        raise ValueError("timestamp %r is not YYYYMMDD_HHMMSS" % (ts,))
    return ts


def qi(name):
    """Quote a database name (validated first; never a schema-qualified name)."""
    return '"%s"' % check_db_name(name)


def literal(text):
    return "'%s'" % str(text).replace("'", "''")


# --- what is there ---------------------------------------------------------------------------

_INFO_SQL = (
    "SELECT d.oid, d.datname, pg_catalog.pg_get_userbyid(d.datdba), pg_catalog.pg_encoding_to_char(d.encoding), "
    "d.datcollate, d.datctype FROM pg_catalog.pg_database d WHERE d.datname IN (%s) ORDER BY d.datname"
)


def probe(run, cont, user, database):
    """Whether ``database`` answers a query now (a restore takes its safety backup only then):
    ``{rc, stdout, stderr}``, never raising (unreachable is an answer; ``reports.safety_note`` words it)."""
    rc, out, err = run(container.psql_argv(cont, database, user, extra=["-At", "-c", "SELECT 1"], interactive=False))
    return dict(rc=rc, stdout=(out or "").strip(), stderr=err or "")


# The databases earlier restores kept beside :db (psql variable): <db>_before_restore_<ts> and a
# failed restore's <db>_restore_<ts>, each with its size.
KEPT_SQL = (
    "SELECT datname || '  ' || pg_size_pretty(pg_database_size(datname)) FROM pg_database\n"
    "WHERE starts_with(datname, :'db' || '_before_restore_') OR starts_with(datname, :'db' || '_restore_')\n"
    "ORDER BY datname;\n"
)
KEPT_HEADER = "databases kept by earlier restores (datasafe never drops them; drop one by hand only when sure):"


def kept_databases(run, cont, user, database, maintenance_db=MAINTENANCE_DB):
    """The databases earlier restores kept beside ``database`` (restores never drop anything), so the
    disk they hold is visible. Read-only and never raising: ``{rc, stdout, stdout_lines, stderr}``
    of the listing (``stdout_lines``: ``"<name>  <size>"``) and ``lines``, the finished listing
    for the operator (an unreachable server is said there)."""
    argv = container.psql_argv(cont, maintenance_db, user, extra=["-At", "-v", "db=%s" % database])
    rc, out, err = run(argv, data=KEPT_SQL)
    found = (out or "").splitlines() if rc == 0 else []
    if rc == 0:
        shown = ["  " + line for line in found] or ["  (none)"]
    else:
        shown = ["(not reachable: %s)" % (err or "").strip()]
    return dict(rc=rc, stdout=out or "", stdout_lines=found, stderr=err or "", lines=[KEPT_HEADER] + shown)


def databases(run, cont, user, names, maintenance_db=MAINTENANCE_DB):
    """``{name: {oid, owner, encoding, collate, ctype}}`` for those of ``names`` that exist."""
    sql = _INFO_SQL % ", ".join(literal(check_db_name(n)) for n in names)
    rows = container.query(run, cont, maintenance_db, user, sql, stage="read pg_database")
    return {
        r[1]: {"oid": int(r[0]), "name": r[1], "owner": r[2], "encoding": r[3], "collate": r[4], "ctype": r[5]}
        for r in rows
    }


def wait_server(run, cont, user, timeout, maintenance_db=MAINTENANCE_DB, sleep=None, clock=None):
    """Wait (:func:`ready.wait_pg`, every 0.5 s, never a fixed sleep) until the server accepts
    connections or ``timeout`` passes; RestoreError then."""
    try:
        ready.wait_pg(
            run, cont, user, maintenance_db, timeout, clock=clock or time.monotonic, sleep=sleep or time.sleep
        )
    except ready.NotReady as exc:
        raise RestoreError("PostgreSQL in %s did not accept connections within %ss" % (cont, timeout)) from exc


# --- restore beside ----------------------------------------------------------------------------


def create_database_sql(name, owner, like=None):
    """CREATE DATABASE owned by ``owner``, with the encoding and locale of ``like`` (an info dict)."""
    sql = "CREATE DATABASE %s OWNER %s TEMPLATE template0" % (qi(name), container.quote_ident(owner))
    if like:
        sql += " ENCODING %s LC_COLLATE %s LC_CTYPE %s" % (
            literal(like["encoding"]),
            literal(like["collate"]),
            literal(like["ctype"]),
        )
    return sql + ";\n"


# The pipeline runs inside the container (client and server versions match, and only the
# compressed bytes cross docker exec). The transaction is explicit: BEGIN and the session
# settings go first, and COMMIT is written only after the decompressor exited 0, i.e. after
# it read the whole stream and checked its CRC and length. A truncated or corrupt stream
# therefore never reaches COMMIT, wherever it was cut (psql --single-transaction would commit
# at end of input, so a cut on a row boundary could commit half a table); psql then ends
# with the transaction open and the server rolls it back. pipefail still fails the restore.
# User and database are positional parameters, never interpolated into the script; so are
# the prelude and the epilogue, whose only variable parts are validated settings.
_DECOMPRESS = {"gzip": "gzip -dc", "zstd": "zstd -dc", "none": "cat"}
_PSQL = 'psql -X -q -v ON_ERROR_STOP=1 -U "$1" -d "$2" >/dev/null'
_PLAIN_SCRIPT = "{ printf '%%s' \"$3\" && %s && printf '%%s' \"$4\"; } | " + _PSQL

# Session settings for the restore's own session (SET LOCAL, inside its transaction): they
# change nothing for any other session and end with the restore. Index builds and the
# foreign-key checks of a plain dump's post-data section sort and hash in
# maintenance_work_mem (the default 64MB spills to disk and allows at most one parallel
# worker per index build); synchronous_commit=off spares the one commit's WAL flush - the
# swap that follows commits synchronously, which flushes the restore's commit record too.
# Measured in docs/restore.md.
RESTORE_SETTINGS = {"maintenance_work_mem": "512MB", "work_mem": "64MB", "synchronous_commit": "off"}
_SETTING_NAME = re.compile(r"^[a-z_][a-z0-9_.]*$")
_SETTING_VALUE = re.compile(r"^[A-Za-z0-9_.:-]+$")


def session_prelude(settings=None):
    """``BEGIN;`` and one ``SET LOCAL`` per setting (names and values validated, values quoted)."""
    lines = ["BEGIN;"]
    for name, value in sorted((RESTORE_SETTINGS if settings is None else settings).items()):
        if not _SETTING_NAME.match(str(name)) or not _SETTING_VALUE.match(str(value)):
            raise ValueError("session setting %r = %r is not a plain name and value" % (name, value))
        lines.append("SET LOCAL %s = %s;" % (name, literal(value)))
    return "\n".join(lines) + "\n"


def session_epilogue(analyze=True):
    """What ends the restore's transaction: ANALYZE (statistics for the application's first
    queries, in the same transaction, no second connection) and COMMIT."""
    return ("ANALYZE;\n" if analyze else "") + "COMMIT;\n"


def restore_argv(cont, user, database, fmt, compression, jobs=1, container_path=None, settings=None, analyze=True):
    """argv that restores a backup (fed on stdin, or at ``container_path`` for parallel pg_restore)."""
    if fmt == "plain":
        if compression not in _DECOMPRESS:
            raise ValueError("compression %r is not one of %s" % (compression, ", ".join(sorted(_DECOMPRESS))))
        script = _PLAIN_SCRIPT % _DECOMPRESS[compression]
        return container.docker_exec(
            cont,
            [
                "bash",
                "-o",
                "errexit",
                "-o",
                "nounset",
                "-o",
                "pipefail",
                "-c",
                script,
                "datasafe-restore",
                user,
                database,
                session_prelude(settings),
                session_epilogue(analyze),
            ],
            interactive=True,
        )
    if fmt == "custom":
        base = ["pg_restore", "--exit-on-error", "--no-password", "-U", user, "-d", database]
        if jobs > 1:
            if not container_path:
                raise ValueError("parallel pg_restore needs the backup copied into the container")
            return container.docker_exec(cont, base + ["--jobs", str(jobs), container_path])
        return container.docker_exec(cont, base + ["--single-transaction"], interactive=True)
    raise ValueError("format %r is not plain or custom" % (fmt,))


def stream_file(argv, path, popen=None):
    """Run ``argv`` with the file at ``path`` on stdin; return (rc, stderr tail)."""
    with open(path, "rb") as src:
        proc = (popen or runner.spawn)(argv, stdin=src, stdout=runner.DEVNULL, stderr=runner.PIPE)
        _, err = proc.communicate()
    return proc.returncode, err.decode("utf-8", "replace")[-_ERR_TAIL:]


def restore_file(
    run, cont, user, database, path, fmt, compression, jobs=1, stream=stream_file, settings=None, analyze=True
):
    """Restore the backup at ``path`` into the (existing, empty) ``database``; raise RestoreError on failure.

    For the plain format ``settings`` (SET LOCAL) and ``analyze`` go into the restore's own
    transaction; the custom format is analyzed separately by :func:`restore_beside`.
    """
    if fmt == "custom" and jobs > 1:
        inside = "/tmp/datasafe-restore-%s.dump" % database
        rc, _, err = run(["docker", "cp", path, "%s:%s" % (cont, inside)])
        if rc != 0:
            raise RestoreError("could not copy %s into %s (exit %s): %s" % (path, cont, rc, (err or "").strip()))
        try:
            rc, _, err = run(restore_argv(cont, user, database, fmt, compression, jobs, inside))
        finally:
            run(container.docker_exec(cont, ["rm", "-f", inside]))
    else:
        rc, err = stream(
            restore_argv(cont, user, database, fmt, compression, jobs, settings=settings, analyze=analyze), path
        )
    if rc != 0:
        raise RestoreError(
            "restoring %s into database %s failed (exit %s): %s"
            % (os.path.basename(path), database, rc, (err or "").strip()[-_ERR_TAIL:])
        )


def count_problems(expected, actual):
    """Differences between the manifest's counts and the restored database's, one per table."""
    problems = counts.compare(expected, actual, "equal")
    for table in sorted(set(actual) - set(expected)):
        problems.append(
            {"table": table, "before": None, "after": actual[table], "problem": "the manifest has no count for it"}
        )
    return problems


def describe_problems(problems):
    return "; ".join(
        "%s: manifest %s, restored %s (%s)"
        % (
            p["table"],
            "none" if p["before"] is None else p["before"],
            "missing" if p["after"] is None else p["after"],
            p["problem"],
        )
        for p in problems
    )


def restore_beside(
    run,
    cont,
    user,
    target,
    new_db,
    entry,
    tables,
    maintenance_db=MAINTENANCE_DB,
    jobs=1,
    analyze=True,
    stream=stream_file,
    settings=None,
    ready_timeout=0,
    sleep=None,
    clock=None,
):
    """Create ``new_db`` beside ``target``, restore the backup ``entry`` into it and compare counts.

    ``entry`` is a loaded manifest (``path``, ``format``, ``compression``, ``counts``). Returns
    ``{"created", "counts", "problems", "like"}``; never drops or alters ``target``. A failed restore
    leaves ``new_db`` behind (named in the error) rather than dropping anything. ``settings`` are
    the restore session's SET LOCAL settings (default :data:`RESTORE_SETTINGS`); with
    ``ready_timeout``, a server that does not answer the first query is polled with pg_isready
    for up to that many seconds.
    Every table is counted once, exactly, after the commit.
    """
    try:
        existing = databases(run, cont, user, [target, new_db], maintenance_db)
    except container.ContainerError:
        if not ready_timeout:
            raise
        # The server may still be starting (the restore role launches the restore beside before
        # it makes sure PostgreSQL runs): poll pg_isready, then read again. A server that answers
        # at once costs no probe, which keeps a round trip off the outage's critical path.
        wait_server(run, cont, user, ready_timeout, maintenance_db, sleep, clock)
        existing = databases(run, cont, user, [target, new_db], maintenance_db)
    if new_db in existing:
        raise RestoreError(
            "database %s already exists: restore never writes into an existing database; pick another name" % new_db
        )
    like = existing.get(target)
    roles_done = ensure_roles(run, cont, user, entry, maintenance_db)
    container.query(
        run, cont, maintenance_db, user, create_database_sql(new_db, user, like), stage="create database %s" % new_db
    )
    restore_file(
        run,
        cont,
        user,
        new_db,
        entry["path"],
        entry.get("format", "plain"),
        entry.get("compression", "gzip"),
        jobs=jobs,
        stream=stream,
        settings=settings,
        analyze=analyze,
    )
    if analyze and entry.get("format", "plain") != "plain":  # the plain restore analyzed in its transaction
        container.query(run, cont, new_db, user, "ANALYZE;\n", stage="analyze %s" % new_db)
    restored = container.count_rows(run, cont, new_db, user, tables)
    expected = {t: int(n) for t, n in (entry.get("counts") or {}).items()}
    return {
        "created": new_db,
        "like": like,
        "counts": restored,
        "problems": count_problems(expected, restored),
        "roles": roles_done,
    }


def ensure_roles(run, cont, user, entry, maintenance_db=MAINTENANCE_DB):
    """Create the roles the server lacks from the backup's roles file (see :mod:`roles`); None for a
    backup made before roles were saved. Existing roles are never altered."""
    block = entry.get("roles")
    if not isinstance(block, dict):
        return None
    path = os.path.join(os.path.dirname(entry["path"]), os.path.basename(block["file"]))
    try:
        return roles.ensure(run, cont, user, path, block.get("sha256"), block.get("size"), maintenance_db)
    except roles.RolesError as exc:
        raise RestoreError("%s; nothing was restored" % exc) from exc


# --- the background restore's result ----------------------------------------------------------


def wait_job(path, timeout, interval=0.1, clock=None, sleep=None):
    """Wait for the background ``pg_restore_beside`` (Ansible async) job whose results file is
    ``path`` (see :func:`background.wait`); return its final result. A timeout swaps nothing."""
    try:
        return background.wait(path, timeout, interval, clock, sleep, what="the restore beside")
    except background.NotFinished as exc:
        raise RestoreError("%s; nothing was swapped" % exc) from exc


def analyze_argv(cont, user, db):
    """ANALYZE of every table of ``db``, as a background job runs it (names as arguments)."""
    return container.psql_argv(cont, db, user, extra=["-c", "ANALYZE;"], interactive=False)


def verified_restore(result, restored):
    """Raise RestoreError unless ``result`` is a successful pg_restore_beside of ``restored``: it
    ended without failing, restored into exactly that database, and every count matched."""
    if result.get("failed"):
        raise RestoreError(
            "the restore beside failed, nothing was swapped: %s" % (result.get("msg") or "no message").strip()
        )
    if result.get("new_database") != restored:
        raise RestoreError(
            "the background job restored %r, not %r: refusing to swap in a database it did not verify"
            % (result.get("new_database"), restored)
        )
    if result.get("problems") or not isinstance(result.get("counts"), dict):
        raise RestoreError(
            "the restore beside of %s reported no clean count comparison (problems: %s); nothing was swapped"
            % (restored, result.get("problems") or "no counts")
        )
    return result


# --- swap by rename ----------------------------------------------------------------------------


def swap_sql(target, restored, keep_as, target_exists=True, terminate_timeout_ms=5000):
    """One transaction: end every session on both databases, then rename both. All or nothing."""
    names = [target, restored] if target_exists else [restored]
    sql = [
        "BEGIN;",
        "SELECT count(pg_catalog.pg_terminate_backend(pid, %d)) FROM pg_catalog.pg_stat_activity "
        "WHERE datname IN (%s) AND pid <> pg_catalog.pg_backend_pid();"
        % (int(terminate_timeout_ms), ", ".join(literal(n) for n in names)),
    ]
    if target_exists:
        sql.append("ALTER DATABASE %s RENAME TO %s;" % (qi(target), qi(keep_as)))
    sql.append("ALTER DATABASE %s RENAME TO %s;" % (qi(restored), qi(target)))
    sql.append("COMMIT;")
    return "\n".join(sql) + "\n"


def swap(
    run, cont, user, target, restored, keep_as, maintenance_db=MAINTENANCE_DB, attempts=5, terminate_timeout_ms=5000
):
    """Put ``restored`` in place of ``target``; the current ``target`` is kept as ``keep_as``.

    Identity is tracked by OID, so the outcome is proven, not assumed. When the result is not
    exactly "restored is target, old target is keep_as", the old database gets its name back
    and RestoreError is raised. Returns ``{"before": {...}, "after": {...}, "attempts": n}``.
    """
    try:
        before = databases(run, cont, user, [target, restored, keep_as], maintenance_db)
    except container.ContainerError as exc:
        raise RestoreError("cannot read the databases in %s (%s); nothing was renamed" % (cont, exc)) from exc
    if restored not in before:
        raise RestoreError("database %s does not exist: there is nothing to swap in" % restored)
    if keep_as in before:
        raise RestoreError("database %s already exists: the current database cannot be kept under that name" % keep_as)
    old = before.get(target)
    new_oid = before[restored]["oid"]
    errors = []
    for _attempt in range(attempts):
        try:
            container.query(
                run,
                cont,
                maintenance_db,
                user,
                swap_sql(target, restored, keep_as, old is not None, terminate_timeout_ms),
                stage="swap databases",
            )
            break
        except container.ContainerError as exc:
            # A client that connected between terminate and rename makes the transaction fail
            # whole; nothing was renamed, so trying again is safe.
            errors.append(str(exc))
    after = databases(run, cont, user, [target, restored, keep_as], maintenance_db)
    in_place = after.get(target, {}).get("oid") == new_oid
    kept = old is None or after.get(keep_as, {}).get("oid") == old["oid"]
    if in_place and kept:
        return {"before": before, "after": after, "attempts": len(errors) + 1, "errors": errors}
    put_back = _put_back(run, cont, user, maintenance_db, target, restored, keep_as, old, new_oid, after)
    raise RestoreError(
        "swapping %s into %s failed after %d attempt(s): %s; %s"
        % (restored, target, len(errors), " | ".join(errors[-2:]) or "the names did not end up as expected", put_back)
    )


def _put_back(run, cont, user, maintenance_db, target, restored, keep_as, old, new_oid, after):
    """Give every database its pre-swap name again; return what was done, in words."""
    by_oid = {info["oid"]: name for name, info in after.items()}
    steps = []
    try:
        if new_oid in by_oid and by_oid[new_oid] != restored:
            container.query(
                run,
                cont,
                maintenance_db,
                user,
                "ALTER DATABASE %s RENAME TO %s;\n" % (qi(by_oid[new_oid]), qi(restored)),
                stage="put back %s" % restored,
            )
            steps.append("%s renamed back to %s" % (by_oid[new_oid], restored))
        if old and old["oid"] in by_oid and by_oid[old["oid"]] != target:
            container.query(
                run,
                cont,
                maintenance_db,
                user,
                "ALTER DATABASE %s RENAME TO %s;\n" % (qi(by_oid[old["oid"]]), qi(target)),
                stage="put back %s" % target,
            )
            steps.append("%s renamed back to %s" % (by_oid[old["oid"]], target))
    except container.ContainerError as exc:
        return (
            "PUTTING THE OLD NAME BACK FAILED (%s): the current data is in database oid %s; rename it to %s "
            "by hand" % (exc, old["oid"] if old else "?", target)
        )
    return "; ".join(steps) or "the current database still has its name %s" % target


# --- choosing a backup -------------------------------------------------------------------------


def human_size(size):
    value = float(size or 0)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return "%.0f %s" % (value, unit) if unit == "B" else "%.1f %s" % (value, unit)
        value /= 1024
    return "%.1f GiB" % value


def human_age(seconds):
    if seconds is None:
        return "unknown"
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    return ("%dd %dh" % (days, hours)) if days else ("%dh %02dm" % (hours, rest // 60))


def age_seconds(end, now):
    """Seconds since ``end`` (a datetime or ISO 8601 text with timezone), or None when unknown."""
    try:
        if not isinstance(end, datetime.datetime):
            end = times.parse_time(end)
        return max(0.0, (now - end).total_seconds())
    except (TypeError, ValueError):
        return None


_LISTED = (
    "database",
    "kind",
    "label",
    "format",
    "compression",
    "sha256",
    "start",
    "server_version",
    "app_revision",
    "counts",
    "verified_at",
    "roles",
)


def describe_backup(entry, database, now, verify_file):
    """A backup as listed and chosen: manifest fields plus ``verified`` (true only when it checks out NOW).

    ``entry`` is one of manifest.list_backups(); ``verify_file`` is manifest.verify_file (size and
    sha256 re-read). ``problems`` says why the backup is not a good backup of ``database``.
    """
    data = entry.get("manifest") or {}
    problems = list(verify_file(entry))
    if not problems and data.get("database") != database:
        problems.append("a backup of database %r, not %r" % (data.get("database"), database))
    if not problems and (not isinstance(data.get("counts"), dict) or not data["counts"]):
        problems.append("its manifest holds no row counts to verify a restore against")
    end = entry.get("end")
    age = age_seconds(end, now)
    row = {k: data.get(k) for k in _LISTED}
    size = entry.get("size") if entry.get("size") is not None else data.get("size")
    row.update(
        file=entry.get("file"),
        path=entry.get("path"),
        manifest_path=entry.get("manifest_path"),
        end=end.isoformat() if isinstance(end, datetime.datetime) else end,
        size=size,
        size_human=human_size(size),
        age_seconds=age,
        age_human=human_age(age),
        verified=not problems,
        problems=problems,
    )
    row["format"] = row["format"] or "plain"
    row["compression"] = row["compression"] or "gzip"
    return row


def backup_line(row):
    status = "verified" if row["verified"] else "NOT VERIFIED: " + "; ".join(row["problems"])
    return "%-44s age %-8s %10s  %-10s %s" % (
        row["file"],
        row["age_human"],
        row["size_human"],
        row["kind"] or "?",
        status,
    )


# The label restore gives its own safety backup. Such a backup holds the damaged state being
# replaced, so it is never picked as "the newest good backup" (a second restore would restore
# the damage); naming it explicitly still restores it.
SAFETY_LABEL_PREFIX = "before restore"


def choose_backup(entries, database, backup_dir, backup, now, verify_file, skip_safety=False):
    """(selected row or None, rows checked, skipped reasons): ``backup`` or the newest that verifies now.

    ``entries`` is manifest.list_backups() (newest first). Newer backups that fail are skipped,
    each with its reason, so the operator sees why an older backup was chosen.
    """
    if backup:
        wanted = os.path.abspath(os.path.expanduser(backup) if os.sep in backup else os.path.join(backup_dir, backup))
        entries = [e for e in entries if os.path.abspath(e.get("path") or "") == wanted]
        if not entries:
            raise RestoreError(
                "backup %s is not in %s (or has no manifest): list the backups with "
                "datasafe_restore_mode=list" % (backup, backup_dir)
            )
    rows, skipped = [], []
    for entry in entries:
        label = str((entry.get("manifest") or {}).get("label") or "")
        if skip_safety and not backup and label.startswith(SAFETY_LABEL_PREFIX):
            skipped.append(
                "%s: a safety backup taken by a restore (the state it replaced); name it with "
                "datasafe_restore_backup to restore it" % entry.get("file")
            )
            continue
        row = describe_backup(entry, database, now, verify_file)
        rows.append(row)
        if row["verified"]:
            return row, rows, skipped
        skipped.append("%s: %s" % (row["file"], "; ".join(row["problems"])))
    return None, rows, skipped


# --- restore drill: a throwaway server, removed afterwards ------------------------------------

DRILL_LABEL = "io.datasafe.restore-drill"


def drill_name(drill_id):
    return "datasafe-drill-%s" % drill_id


def drill_start_argv(image, drill_id, port, user, maintenance_db=MAINTENANCE_DB):
    """``docker run`` of a throwaway server: host network, loopback only, its own labelled volume.

    The password is passed by name (``-e POSTGRES_PASSWORD``): docker reads it from the
    environment, so it never appears in argv. fsync is off: the drill's data is thrown away.
    """
    name = drill_name(drill_id)
    return [
        "docker",
        "run",
        "-d",
        "--name",
        name,
        "--label",
        "%s=%s" % (DRILL_LABEL, drill_id),
        "--network",
        "host",
        "--shm-size",
        container.THROWAWAY_SHM_SIZE,
        "-e",
        "POSTGRES_USER=%s" % user,
        "-e",
        "POSTGRES_PASSWORD",
        "-e",
        "POSTGRES_DB=%s" % maintenance_db,
        "-e",
        "PGPORT=%d" % int(port),
        "-v",
        "%s:/var/lib/postgresql/data" % name,
        image,
        "postgres",
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        "fsync=off",
        "-c",
        "synchronous_commit=off",
        "-c",
        "full_page_writes=off",
    ]


def start_drill_server(run, image, drill_id, port, user, maintenance_db=MAINTENANCE_DB):
    name = drill_name(drill_id)
    for argv, what in (
        (["docker", "volume", "create", "--label", "%s=%s" % (DRILL_LABEL, drill_id), name], "create the drill volume"),
        (drill_start_argv(image, drill_id, port, user, maintenance_db), "start the drill server"),
    ):
        rc, _, err = run(argv)
        if rc != 0:
            raise RestoreError("could not %s %s (exit %s): %s" % (what, name, rc, (err or "").strip()))
    return name


def remove_drill(run, drill_id):
    """Remove the drill's container and volume, found by their label only; return what was removed."""
    label = "label=%s=%s" % (DRILL_LABEL, drill_id)
    removed = []
    for kind, rm in (("container", ["docker", "rm", "-f", "-v"]), ("volume", ["docker", "volume", "rm"])):
        listing = (
            ["docker", "ps", "-aq", "--filter", label]
            if kind == "container"
            else ["docker", "volume", "ls", "-q", "--filter", label]
        )
        rc, out, err = run(listing)
        if rc != 0:
            raise RestoreError("could not list the drill's %ss: %s" % (kind, (err or "").strip()))
        ids = out.split()
        if ids:
            rc, _, err = run(rm + ids)
            if rc != 0:
                raise RestoreError(
                    "could not remove the drill's %s(s) %s: %s" % (kind, " ".join(ids), (err or "").strip())
                )
            removed += ["%s %s" % (kind, i) for i in ids]
    return removed


class PlanFailed(RestoreError):
    """The restore_plan task fails; ``result`` holds its fields (backups, lines, skipped)."""

    def __init__(self, message, result):
        super().__init__(message)
        self.result = result


def plan_task(p, now=None):
    """What the restore_plan module does with its options ``p``: ``list`` every backup in
    ``backup_dir`` (with the finished listing in ``report``), or ``plan``: choose the backup to
    restore (``backup``, else the newest of ``database`` that verifies now). Only reads. Returns
    the module's result; raises :class:`PlanFailed` (nothing was stopped or changed)."""
    backup_dir = os.path.expanduser(p["backup_dir"])
    now = now or datetime.datetime.now(datetime.timezone.utc)
    if not os.path.isdir(backup_dir):
        raise PlanFailed(
            "backup directory %s does not exist: set datasafe_backup_dir to where the backups are" % backup_dir,
            dict(backups=[], lines=[]),
        )
    try:
        entries = manifest.list_backups(backup_dir)
    except OSError as exc:
        raise PlanFailed("cannot list backups in %s: %s" % (backup_dir, exc), dict(backups=[], lines=[])) from exc
    if p["mode"] == "list":
        rows = [describe_backup(e, p["database"], now, manifest.verify_file) for e in entries]
        lines = [backup_line(r) for r in rows]
        report = ["backups in %s, newest first:" % p["backup_dir"]] + (lines or ["(none)"])
        return dict(changed=False, backups=rows, lines=lines, report=report)
    try:
        selected, rows, skipped = choose_backup(
            entries, p["database"], backup_dir, p["backup"], now, manifest.verify_file, skip_safety=True
        )
    except RestoreError as exc:
        raise PlanFailed("%s. Nothing was stopped or changed." % exc, dict(backups=[], lines=[])) from exc
    lines = [backup_line(r) for r in rows]
    if selected is None:
        raise PlanFailed(
            "no backup of %s can be restored: %s. Nothing was stopped or changed."
            % (p["database"], "; ".join(skipped) or "there are no backups in %s" % backup_dir),
            dict(backups=rows, skipped=skipped, lines=lines),
        )
    return dict(changed=False, selected=selected, skipped=skipped, backups=rows, lines=lines)
