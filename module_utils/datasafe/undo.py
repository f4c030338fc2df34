"""Undo one mistake: bring back exactly the rows it destroyed, keep everything written after it.

The moment just before the mistake is recovered into a throwaway server (continuous recovery,
:func:`continuous.recover`; without it the newest verified logical backup older than the
mistake, restored by :func:`restore.restore_beside` into a throwaway server). The live tables
are copied INTO the throwaway server (never the other way round), compared there by primary
key, and only what was found goes into the live database, as review tables in a schema of the
run's own (``datasafe_undo_<UTC time>``):

- ``bring_back``: the row existed at the moment and its key is gone now;
- ``revert``: the row exists with other values now, and the transaction that last wrote it is
  one the operator named as the mistake (``mistake_xids``; for a target of kind ``xid`` the
  target itself);
- ``conflict``: the row exists with other values now, written by another transaction (changed
  again after the mistake, or its key reused): listed, never overwritten.

Rows added since are left alone (they are not in the moment). Which transaction wrote a live
row is its ``xmin``; every review lists the changed rows grouped by it, so the operator can
name the mistake's transaction(s) and review again.

The apply (:func:`apply_sql`) is one transaction in the live database: it locks the tables
against writes (reads continue), re-checks that nothing it is about to touch changed since the
review, inserts parents before children, reverts, moves sequences past the keys brought back,
and asserts each table's count is its count before plus the rows brought back. The in-database
guard's break-glass (``SET LOCAL datasafe.break_glass``) is set with the run's name as reason,
so the guard lets a revert above its row limit through and audits it.

Functions take a ``run`` callable of :mod:`runner`'s signature; they return results or raise
:class:`UndoError`. The SQL builders are pure and unit-tested.
"""

import datetime
import json
import os
import re
import secrets
import uuid

from ansible.module_utils.datasafe import breakglass, container, continuous, manifest, ready, restore, runner, times

ACTIONS = ("bring_back", "revert", "conflict")
WORK_SCHEMA = "datasafe_undo"  # in the throwaway server only
REVIEW_PREFIX = "datasafe_undo_"
META_COLUMNS = ("_action", "_reason", "_live_xmin", "_live")
XID_MODULO = 1 << 32
_RUN = re.compile(r"^[0-9]{8}T[0-9]{6}Z$")


class UndoError(Exception):
    """Undo cannot do what was asked; the message names the problem and the fix."""


# --- names ------------------------------------------------------------------------------------


def run_id(now=None):
    return (now or times.now_utc()).astimezone(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def review_schema(run):
    if not _RUN.match(run or ""):
        raise UndoError("review run %r is not one undo creates (e.g. 20261201T160300Z): see the review's output" % run)
    return REVIEW_PREFIX + run.lower()  # lower case: usable in SQL without quotes


def flat_name(table):
    """The review table's name for ``table`` (``schema.table`` becomes ``schema__table``)."""
    container.quote_ident(table)
    return table.replace(".", "__")


def qi(name):
    return '"%s"' % name.replace('"', '""')


def literal(text):
    return "'%s'" % str(text).replace("'", "''")


def normalize_xids(xids):
    """Transaction ids as a row's xmin shows them: ``txid_current()``'s 64-bit value modulo 2^32."""
    out = []
    for xid in xids or ():
        text = str(xid).strip()
        if not text.isdigit():
            raise UndoError(
                "transaction id %r is not a number (take it from the review's list or the change log)" % xid
            )
        out.append(int(text) % XID_MODULO)
    return sorted(set(out))


# --- the tables' shape -----------------------------------------------------------------------


def shape_sql(tables):
    """One query: for each table its regclass, columns, primary key, sequences and FK parents (JSON)."""
    rows = ", ".join("(%d, %s)" % (i, literal(container.quote_ident(t))) for i, t in enumerate(tables))
    return (
        "SELECT coalesce(json_agg(json_build_object(\n"
        "  'asked', t.pos, 'regclass', c.oid::regclass::text, 'kind', c.relkind,\n"
        "  'columns', (SELECT json_agg(json_build_object('name', a.attname, 'type',\n"
        "      format_type(a.atttypid, a.atttypmod), 'generated', a.attgenerated <> '') ORDER BY a.attnum)\n"
        "    FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),\n"
        "  'pk', (SELECT json_agg(a.attname ORDER BY array_position(i.indkey::int2[], a.attnum))\n"
        "    FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)\n"
        "    WHERE i.indrelid = c.oid AND i.indisprimary),\n"
        "  'sequences', (SELECT json_agg(json_build_array(a.attname, s.seq)) FROM pg_attribute a,\n"
        "    LATERAL (SELECT pg_get_serial_sequence(c.oid::regclass::text, a.attname) AS seq) s\n"
        "    WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND s.seq IS NOT NULL),\n"
        "  'parents', (SELECT json_agg(DISTINCT f.confrelid::regclass::text) FROM pg_constraint f\n"
        "    WHERE f.conrelid = c.oid AND f.contype = 'f' AND f.confrelid <> c.oid)\n"
        ") ORDER BY t.pos), '[]')\n"
        "FROM (VALUES %s) AS t(pos, name) LEFT JOIN pg_class c ON c.oid = to_regclass(t.name);\n" % rows
    )


def read_shapes(run, cont, db, user, tables, where="the live database"):
    """``{table: shape}``; UndoError for a table that does not exist or has no primary key."""
    if not tables:
        raise UndoError("no tables to undo: name them (datasafe_undo_tables) or set datasafe_critical_tables")
    data = json.loads(container.query(run, cont, db, user, shape_sql(tables), stage="read the tables' shape")[0][0])
    return judge_shapes(tables, data, where)


def judge_shapes(tables, data, where="the live database"):
    shapes, missing, no_pk = {}, [], []
    for item in data:
        table = tables[item["asked"]]
        if item["regclass"] is None or item["kind"] not in ("r", "p"):
            missing.append(table)
            continue
        if not item["pk"]:
            no_pk.append(table)
            continue
        shapes[table] = {
            "regclass": item["regclass"],
            "columns": [(c["name"], c["type"], c["generated"]) for c in item["columns"]],
            "pk": list(item["pk"]),
            "sequences": [tuple(s) for s in item["sequences"] or []],
            "parents": sorted(item["parents"] or []),
        }
    if missing:
        raise UndoError(
            "no table %s in %s: check the names (datasafe_undo_tables; schema.table for another schema than public)"
            % (", ".join(missing), where)
        )
    if no_pk:
        raise UndoError(
            "table %s has no primary key: undo compares rows by primary key, and without one a row that was "
            "deleted cannot be told from an identical row that is still there or was added since. Add a primary "
            "key, or bring the rows back by hand from the recovered server (playbooks/recover.yml)" % ", ".join(no_pk)
        )
    return shapes


def shape_changes(live, then):
    """Sentences for every table whose columns differ between the moment and now."""
    problems = []
    for table in sorted(live):
        was = [(n, t) for n, t, _ in then[table]["columns"]]
        now = [(n, t) for n, t, _ in live[table]["columns"]]
        if was != now:
            gone = ["%s %s" % c for c in was if c not in now]
            new = ["%s %s" % c for c in now if c not in was]
            problems.append(
                "%s: columns then %s, now %s (%s)"
                % (
                    table,
                    len(was),
                    len(now),
                    "; ".join(
                        filter(
                            None, ["gone: " + ", ".join(gone) if gone else "", "new: " + ", ".join(new) if new else ""]
                        )
                    )
                    or "order differs",
                )
            )
        elif then[table]["pk"] != live[table]["pk"]:
            problems.append(
                "%s: primary key then (%s), now (%s)"
                % (table, ", ".join(then[table]["pk"]), ", ".join(live[table]["pk"]))
            )
    return problems


def fk_order(shapes):
    """The tables, parents before children (among the tables undone); a cycle keeps the given order."""
    by_reg = {s["regclass"]: t for t, s in shapes.items()}
    order, seen = [], set()

    def visit(table, path):
        if table in seen or table in path:
            return
        for parent in shapes[table]["parents"]:
            if parent in by_reg:
                visit(by_reg[parent], path | {table})
        seen.add(table)
        order.append(table)

    for table in shapes:
        visit(table, frozenset())
    return order


# --- SQL in the throwaway server -------------------------------------------------------------


def columns(shape):
    return [name for name, _, _ in shape["columns"]]


def writable(shape):
    return [name for name, _, generated in shape["columns"] if not generated]


def live_copy_out_sql(table, shape):
    """COPY of the live table with each row's xmin (the transaction that last wrote it)."""
    cols = ", ".join(qi(c) for c in columns(shape))
    return "COPY (SELECT %s, xmin::text::bigint FROM %s) TO STDOUT" % (cols, container.quote_ident(table))


def work_setup_sql(tables):
    stmts = ["CREATE SCHEMA IF NOT EXISTS %s;" % WORK_SCHEMA]
    for i, table in enumerate(tables):
        stmts.append(
            "CREATE TABLE %s.live_%d (LIKE %s, _xmin bigint);" % (WORK_SCHEMA, i, container.quote_ident(table))
        )
    return "\n".join(stmts) + "\n"


def live_copy_in_sql(index, shape):
    cols = ", ".join(qi(c) for c in columns(shape) + ["_xmin"])
    return "COPY %s.live_%d (%s) FROM STDIN" % (WORK_SCHEMA, index, cols)


def compare_sql(index, table, shape, mistake_xids):
    """``found_<index>``: the moment's rows gone now (bring_back) and changed now (revert or conflict)."""
    then = container.quote_ident(table)
    live = "%s.live_%d" % (WORK_SCHEMA, index)
    pk_match = " AND ".join("l.%s = t.%s" % (qi(c), qi(c)) for c in shape["pk"])
    differs = "ROW(%s) IS DISTINCT FROM ROW(%s)" % (
        ", ".join("t.%s::text" % qi(c) for c in columns(shape)),
        ", ".join("l.%s::text" % qi(c) for c in columns(shape)),
    )
    t_cols = ", ".join("t.%s" % qi(c) for c in columns(shape))
    xids = "ARRAY[%s]::bigint[]" % ", ".join(str(x) for x in mistake_xids)
    return (
        f"CREATE TABLE {WORK_SCHEMA}.found_{index} AS\n"
        "SELECT 'bring_back'::text AS _action, 'gone since the moment'::text AS _reason,\n"
        f"       NULL::bigint AS _live_xmin, NULL::jsonb AS _live, {t_cols}\n"
        f"  FROM {then} t WHERE NOT EXISTS (SELECT 1 FROM {live} l WHERE {pk_match})\n"
        "UNION ALL\n"
        f"SELECT CASE WHEN l._xmin = ANY ({xids}) THEN 'revert' ELSE 'conflict' END,\n"
        f"       CASE WHEN l._xmin = ANY ({xids}) THEN 'changed by the mistake (transaction ' || l._xmin || ')'\n"
        "            ELSE 'changed since by transaction ' || l._xmin || ' (changed again after the mistake, a key "
        "reused, or the mistake itself if that is its transaction: review with it named)' END,\n"
        f"       l._xmin, to_jsonb(l) - '_xmin', {t_cols}\n"
        f"  FROM {then} t JOIN {live} l ON {pk_match} WHERE {differs};\n"
    )


def summary_sql(count):
    """Per table: rows by action, and the changed rows grouped by the transaction that wrote them."""
    parts = []
    for i in range(count):
        parts.append("SELECT %d, 'action', _action, count(*) FROM %s.found_%d GROUP BY _action" % (i, WORK_SCHEMA, i))
        parts.append(
            "SELECT %d, 'xid', _live_xmin::text, count(*) FROM %s.found_%d WHERE _live_xmin IS NOT NULL "
            "GROUP BY _live_xmin" % (i, WORK_SCHEMA, i)
        )
    return "\nUNION ALL ".join(parts) + ";\n"


def found_copy_out_sql(index, shape):
    cols = ", ".join(qi(c) for c in list(META_COLUMNS) + columns(shape))
    return "COPY (SELECT %s FROM %s.found_%d ORDER BY _action) TO STDOUT" % (cols, WORK_SCHEMA, index)


# --- SQL in the live database ----------------------------------------------------------------


def review_create_sql(schema, tables, meta):
    """The review schema and its (empty) tables, in the live database, in one transaction."""
    stmts = [
        "BEGIN;",
        "CREATE SCHEMA %s;" % qi(schema),
        "COMMENT ON SCHEMA %s IS %s;"
        % (
            qi(schema),
            literal("datasafe undo review (docs/undo.md): what the mistake destroyed, and whether it was applied"),
        ),
        "CREATE TABLE %s._run (key text PRIMARY KEY, value jsonb NOT NULL);" % qi(schema),
        "INSERT INTO %s._run VALUES %s;"
        % (
            qi(schema),
            ", ".join("(%s, %s::jsonb)" % (literal(k), literal(json.dumps(v))) for k, v in sorted(meta.items())),
        ),
    ]
    for table in tables:
        stmts.append(
            "CREATE TABLE %s.%s (_action text NOT NULL, _reason text NOT NULL, _live_xmin bigint, _live jsonb,"
            " LIKE %s);" % (qi(schema), qi(flat_name(table)), container.quote_ident(table))
        )
    stmts.append("COMMIT;")
    return "\n".join(stmts) + "\n"


def review_copy_in_sql(schema, table, shape):
    cols = ", ".join(qi(c) for c in list(META_COLUMNS) + columns(shape))
    return "COPY %s.%s (%s) FROM STDIN" % (qi(schema), qi(flat_name(table)), cols)


def apply_sql(schema, shapes, order, reason):
    """The apply: one transaction in the live database (see the module docstring).

    Ends with one SELECT: per table ``table, before, after, brought_back, reverted``.
    """
    review = {t: "%s.%s" % (qi(schema), qi(flat_name(t))) for t in order}
    live = {t: container.quote_ident(t) for t in order}
    s = [
        "BEGIN;",
        "SET LOCAL lock_timeout = '60s';",
        # The guard refuses a statement changing more rows than its limit; this is the undo's own,
        # reasoned, audited way through (a verified backup was taken just before).
        "SET LOCAL datasafe.break_glass = %s;" % literal(reason),
        "LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE;" % ", ".join(live[t] for t in order),
        "DO $undo$ BEGIN IF EXISTS (SELECT 1 FROM %s._run WHERE key = 'applied') THEN\n"
        "  RAISE EXCEPTION 'undo: review %s was applied already (see its _run table); nothing was changed';"
        " END IF; END $undo$;" % (qi(schema), schema),
        "CREATE TEMP TABLE datasafe_undo_counts (t text PRIMARY KEY, before bigint, brought bigint, reverted bigint,"
        " after bigint) ON COMMIT DROP;",
    ]
    for t in order:
        s.append(
            "INSERT INTO datasafe_undo_counts VALUES (%s, (SELECT count(*) FROM %s),"
            " (SELECT count(*) FROM %s WHERE _action = 'bring_back'),"
            " (SELECT count(*) FROM %s WHERE _action = 'revert'), NULL);" % (literal(t), live[t], review[t], review[t])
        )
    for t in order:
        pk_match = " AND ".join("l.%s = r.%s" % (qi(c), qi(c)) for c in shapes[t]["pk"])
        s.append(
            "DO $undo$ DECLARE n bigint; BEGIN\n"
            "  SELECT count(*) INTO n FROM %(r)s r JOIN %(l)s l ON %(m)s WHERE r._action = 'bring_back';\n"
            "  IF n > 0 THEN RAISE EXCEPTION 'undo: %% row(s) of %(tn)s to bring back have a key that is in use "
            "again since the "
            "review; nothing was changed: run the review again', n; END IF;\n"
            "  SELECT count(*) INTO n FROM %(r)s r LEFT JOIN %(l)s l ON %(m)s WHERE r._action = 'revert'\n"
            "    AND (l.xmin IS NULL OR l.xmin::text::bigint <> r._live_xmin);\n"
            "  IF n > 0 THEN RAISE EXCEPTION 'undo: %% row(s) of %(tn)s to revert were changed or deleted since "
            "the review; "
            "nothing was changed: run the review again', n; END IF;\n"
            "END $undo$;" % {"r": review[t], "l": live[t], "m": pk_match, "tn": t.replace("'", "")}
        )
    for t in order:
        cols = ", ".join(qi(c) for c in writable(shapes[t]))
        s.append(
            "INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM %s WHERE _action = 'bring_back';"
            % (live[t], cols, cols, review[t])
        )
    for t in order:
        sets = [c for c in writable(shapes[t]) if c not in shapes[t]["pk"]]
        if not sets:
            continue
        pk_match = " AND ".join("l.%s = r.%s" % (qi(c), qi(c)) for c in shapes[t]["pk"])
        s.append(
            "UPDATE %s AS l SET (%s) = ROW(%s) FROM %s r WHERE %s AND r._action = 'revert';"
            % (live[t], ", ".join(qi(c) for c in sets), ", ".join("r.%s" % qi(c) for c in sets), review[t], pk_match)
        )
    for t in order:
        for column, seq in shapes[t]["sequences"]:
            s.append(
                "DO $undo$ DECLARE m bigint; BEGIN SELECT max(%s) INTO m FROM %s;\n"
                "  IF m IS NOT NULL AND m > (SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END"
                " FROM %s)"
                " THEN PERFORM setval(%s, m); END IF; END $undo$;" % (qi(column), live[t], seq, literal(seq))
            )
    for t in order:
        s.append(
            "UPDATE datasafe_undo_counts SET after = (SELECT count(*) FROM %s) WHERE t = %s;" % (live[t], literal(t))
        )
    s += [
        "DO $undo$ DECLARE bad text; BEGIN\n"
        "  SELECT string_agg(format('%s: before %s + brought back %s <> after %s', t, before, brought, after), '; ')\n"
        "    INTO bad FROM datasafe_undo_counts WHERE after <> before + brought;\n"
        "  IF bad IS NOT NULL THEN\n"
        "    RAISE EXCEPTION 'undo: counts do not add up (%), nothing was changed', bad;\n"
        "  END IF;\n"
        "END $undo$;",
        "INSERT INTO %s._run SELECT 'applied', jsonb_build_object('at', now(), 'counts', jsonb_object_agg(t, "
        "jsonb_build_object('before', before, 'after', after, 'brought_back', brought, 'reverted', reverted))) "
        "FROM datasafe_undo_counts;" % qi(schema),
        "SELECT t, before, after, brought, reverted FROM datasafe_undo_counts ORDER BY t;",
        "COMMIT;",
    ]
    return "\n".join(s) + "\n"


# --- moving rows between servers -------------------------------------------------------------


def pipe(out_argv, in_argv, stage):
    """``out_argv``'s stdout into ``in_argv``'s stdin; UndoError naming ``stage`` when either fails."""
    producer = runner.spawn(out_argv, stdout=runner.PIPE, stderr=runner.PIPE)
    consumer = runner.spawn(in_argv, stdin=producer.stdout, stdout=runner.DEVNULL, stderr=runner.PIPE)
    producer.stdout.close()
    _, in_err = consumer.communicate()
    _, out_err = producer.communicate()
    if producer.returncode != 0 or consumer.returncode != 0:
        raise UndoError(
            "%s failed (exit %s / %s): %s"
            % (
                stage,
                producer.returncode,
                consumer.returncode,
                (out_err + in_err).decode("utf-8", "replace").strip()[-1500:],
            )
        )


def _psql_c(cont, db, user, sql, interactive=False):
    return container.psql_argv(cont, db, user, extra=["-c", sql], interactive=interactive)


# --- the moment: where it comes from ---------------------------------------------------------


def choose_backup(backup_dir, database, before, now=None):
    """The newest verified logical backup of ``database`` whose snapshot is older than ``before``."""
    skipped, older = [], False
    for entry, problems in manifest.verdicts(os.path.expanduser(backup_dir), database, now=now):
        start = entry.get("manifest", {}) and entry["manifest"].get("start")
        try:
            taken = times.parse_time(start) if start else entry["end"]
        except ValueError:
            taken = entry["end"]
        if taken is None or taken >= before:
            continue
        older = True
        if problems:
            skipped.append("%s: %s" % (entry["file"], "; ".join(problems)))
            continue
        return entry, taken, skipped
    if not older:
        raise UndoError(
            "the target %s is older than any backup of %s in %s: nothing holds the rows as they were then"
            % (before.isoformat(sep=" "), database, backup_dir)
        )
    raise UndoError(
        "no verified backup of %s older than %s: %s" % (database, before.isoformat(sep=" "), "; ".join(skipped))
    )


def oldest_recoverable(stanza_info):
    """The start of the oldest pgBackRest backup (a datetime) or None."""
    starts = [b.get("timestamp", {}).get("start") for b in stanza_info.get("backup") or []]
    starts = [s for s in starts if s]
    if not starts:
        return None
    return datetime.datetime.fromtimestamp(min(starts), datetime.timezone.utc)


def check_target(p, now=None):
    """The target as (kind, value, inclusive, time-or-None, mistake xids); UndoError when unusable."""
    kind, value = p["target_kind"], p["target"]
    if kind == "latest":
        raise UndoError(
            "undo needs the moment just before the mistake: a time (with zone), an xid or a restore point name"
        )
    try:
        continuous.target_options(kind, value, False)
        when = times.parse_time(continuous.parse_target_time(value, now).replace(" ", "T")) if kind == "time" else None
    except continuous.ContinuousError as exc:
        raise UndoError(str(exc)) from None
    xids = normalize_xids(p.get("mistake_xids"))
    if kind == "xid":
        # the target IS the mistake: recovery stops just before it, and its rows are the ones to revert
        xids = sorted(set(xids) | set(normalize_xids([value])))
    # "just before": a commit at exactly the given time, transaction or position is not replayed
    return kind, value, False, when, xids


def source_plan(p, when):
    """Which moment source is used, as a sentence (for check mode and the review's record)."""
    if p["source"] == "continuous":
        return "pgBackRest repository %s (stanza %s), recovered to %s %s" % (
            p["repo_dir"],
            p["stanza"],
            p["target_kind"],
            p["target"],
        )
    return "the newest verified logical backup in %s older than %s" % (p["backup_dir"], when.isoformat(sep=" "))


def start_moment(run, p, kind, value, inclusive, when, name, port, labels):
    """Start the throwaway server holding the moment; returns (container, notes, cleanup)."""
    if p["source"] == "continuous":
        if kind == "time" and p.get("live_container"):
            try:
                # repository 1: the one undo recovers from (an S3 repository 2 may keep other backups)
                oldest = oldest_recoverable(continuous.info(run, p["live_container"], p["stanza"], repo=1))
            except (continuous.ContinuousError, container.ContainerError, ValueError):
                oldest = None
            if oldest is not None and when < oldest:
                raise UndoError(
                    "the target %s is older than any backup in the pgBackRest repository (oldest starts %s): "
                    "try the logical backups (datasafe_undo_source=backup)"
                    % (when.isoformat(sep=" "), oldest.isoformat(sep=" "))
                )

        def cleanup():
            run(["docker", "rm", "--force", name])
            run(["docker", "volume", "rm", name])

        try:
            continuous.recover(
                run, p["image"], p["stanza"], p["repo_dir"], p["conf_dir"], name, port, p["user"], p["database"], [],
                kind=kind, value=value, inclusive=inclusive, labels=labels, pgdata=p["pgdata"], timeout=p["timeout"],
            )  # fmt: skip
        except (continuous.ContinuousError, container.ContainerError) as exc:
            cleanup()
            raise UndoError("recovering the moment failed: %s" % exc) from None
        return name, {"source": "continuous", "window_not_seen": None}, cleanup
    # logical backup fallback
    if kind != "time":
        raise UndoError(
            "without continuous recovery the moment must be a time (target_kind=time): a transaction id or a "
            "restore point exists only in the WAL archive"
        )
    entry, taken, skipped = choose_backup(p["backup_dir"], p["database"], when)
    drill_id = "undo-" + uuid.uuid4().hex[:10]
    os.environ["POSTGRES_PASSWORD"] = secrets.token_urlsafe(24)  # only the throwaway server sees it

    def cleanup():
        restore.remove_drill(run, drill_id)

    try:
        cont = restore.start_drill_server(run, p["image"], drill_id, port, p["user"])
        ready.wait_pg(
            run, cont, p["user"], restore.MAINTENANCE_DB, p["timeout"], host="127.0.0.1", port=port, watch=True
        )
        counted = [t for t in p["tables"] if t in (entry.get("counts") or {})] or p["tables"]
        done = restore.restore_beside(run, cont, p["user"], p["database"], p["database"], entry, counted, analyze=False)
        problems = [x for x in done["problems"] if x["before"] is not None]
        if problems:
            raise restore.RestoreError(
                "restored counts differ from the manifest: " + restore.describe_problems(problems)
            )
    except (restore.RestoreError, container.ContainerError, ready.NotReady, ValueError) as exc:
        cleanup()
        raise UndoError("restoring the backup %s into a throwaway server failed: %s" % (entry["file"], exc)) from None
    window = (
        "the backup %s was taken at %s; everything between then and the target %s is invisible to this undo: "
        "rows written in that window and destroyed by the mistake cannot be brought back, and rows deleted on "
        "purpose in that window show as 'bring_back' (review them)"
        % (entry["file"], taken.isoformat(sep=" "), when.isoformat(sep=" "))
    )
    return cont, {"source": "backup", "backup": entry["path"], "window_not_seen": window, "skipped": skipped}, cleanup


# --- review ----------------------------------------------------------------------------------


def review(run, p, now=None, check_mode=False):
    """Recover the moment, compare, write the review schema into the live database; the result."""
    kind, value, inclusive, when, xids = check_target(p, now)
    live, db, user = p["live_container"], p["database"], p["user"]
    shapes = read_shapes(run, live, db, user, p["tables"])
    run_name = run_id(now)
    schema = review_schema(run_name)
    result = {
        "run": run_name,
        "schema": schema,
        "tables": fk_order(shapes),
        "mistake_xids": xids,
        "source": source_plan(p, when or times.now_utc()),
    }
    if check_mode:
        if p["source"] == "backup":
            entry, taken, _ = choose_backup(p["backup_dir"], db, when)
            result["backup"] = entry["path"]
        result["would"] = (
            "recover %s into a throwaway server, compare %s by primary key, write the review into schema %s"
            % (result["source"], ", ".join(result["tables"]), schema)
        )
        return result
    name = p["name"] or "datasafe-undo-%s-%s" % (run_name.lower(), uuid.uuid4().hex[:6])
    port = p["port"] or _free_port()
    cont, notes, cleanup = start_moment(run, p, kind, value, inclusive, when, name, port, p["labels"])
    result.update(notes)
    try:
        then = read_shapes(run, cont, db, user, p["tables"], where="the recovered moment")
        changed = shape_changes(shapes, then)
        if changed:
            raise UndoError(
                "the live database changed shape since the moment, so rows cannot be compared column by column: %s. "
                "Bring the rows back by hand from a recovered server (playbooks/recover.yml)" % "; ".join(changed)
            )
        order = result["tables"]
        container.query(run, cont, db, user, work_setup_sql(order), stage="prepare the comparison")
        for i, t in enumerate(order):
            pipe(
                _psql_c(live, db, user, live_copy_out_sql(t, shapes[t])),
                _psql_c(cont, db, user, live_copy_in_sql(i, shapes[t]), interactive=True),
                "copy live %s into the throwaway server" % t,
            )
            container.query(run, cont, db, user, compare_sql(i, t, shapes[t], xids), stage="compare %s" % t)
        found = {t: {a: 0 for a in ACTIONS} for t in order}
        by_xid = {t: {} for t in order}
        for i, what, key, n in container.query(run, cont, db, user, summary_sql(len(order)), stage="summarize"):
            t = order[int(i)]
            if what == "action":
                found[t][key] = int(n)
            else:
                by_xid[t][key] = int(n)
        meta = {
            "target": {"kind": kind, "value": value, "inclusive": inclusive},
            "mistake_xids": xids,
            "tables": order,
            "created": times.now_iso(),
            "source": notes,
        }
        container.query(run, live, db, user, review_create_sql(schema, order, meta), stage="create review schema")
        for i, t in enumerate(order):
            pipe(
                _psql_c(cont, db, user, found_copy_out_sql(i, shapes[t])),
                _psql_c(live, db, user, review_copy_in_sql(schema, t, shapes[t]), interactive=True),
                "write the review of %s" % t,
            )
        # last: a review that stopped half-way is never applied (apply requires this row)
        container.query(
            run, live, db, user,
            "INSERT INTO %s._run VALUES ('complete', %s::jsonb);" % (qi(schema), literal(json.dumps(found))),
            stage="complete the review",
        )  # fmt: skip
    finally:
        if not p.get("keep_server"):
            cleanup()
    result.update(found=found, changed_by_xid=by_xid, summary=summary_lines(found, by_xid, xids))
    if notes.get("window_not_seen"):
        result["summary"].append("NOT SEEN: " + notes["window_not_seen"])
    return result


def summary_lines(found, by_xid, xids):
    lines = []
    for t in found:
        f = found[t]
        line = "%s: %d to bring back, %d to revert, %d conflicts" % (t, f["bring_back"], f["revert"], f["conflict"])
        if by_xid[t]:
            line += "; changed rows by transaction: %s" % ", ".join(
                "%s (%d%s)" % (x, n, ", named as the mistake" if int(x) in xids else "")
                for x, n in sorted(by_xid[t].items())
            )
        lines.append(line)
    return lines


def _free_port():
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- apply -----------------------------------------------------------------------------------


def read_review(run, cont, db, user, schema):
    """The review's record (``_run`` rows as a dict); UndoError when there is no such review."""
    rows = container.query(
        run, cont, db, user,
        "SELECT CASE WHEN to_regclass(%s) IS NULL THEN 'null' ELSE "
        "(SELECT json_object_agg(key, value)::text FROM %s._run) END;" % (literal(qi(schema) + "._run"), qi(schema)),
        stage="read the review",
    )  # fmt: skip
    meta = json.loads(rows[0][0]) if rows and rows[0][0] else None
    if not meta:
        raise UndoError(
            "there is no review %s in the database: run playbooks/undo.yml in review mode first and apply the "
            "run it names" % schema
        )
    return meta


def apply(run, p, check_mode=False):
    """Apply the review ``p['review']`` (one transaction); the per-table counts."""
    live, db, user = p["live_container"], p["database"], p["user"]
    if p["confirm"] != db:
        raise UndoError(
            "apply changes the live database %s: confirm it by naming it (datasafe_undo_confirm=%s). "
            "Nothing was changed" % (db, db)
        )
    schema = review_schema(p["review"])
    meta = read_review(run, live, db, user, schema)
    if "complete" not in meta:
        raise UndoError(
            "review %s is incomplete (it stopped before all its tables were written): review again; nothing was "
            "changed" % p["review"]
        )
    if "applied" in meta:
        raise UndoError(
            "review %s was applied already at %s; nothing was changed" % (p["review"], meta["applied"].get("at"))
        )
    tables = meta["tables"]
    shapes = read_shapes(run, live, db, user, tables)
    order = fk_order(shapes)
    counts = _review_counts(run, live, db, user, schema, order)
    result = {"review": p["review"], "schema": schema, "tables": order, "planned": counts}
    if check_mode:
        result["would"] = "; ".join(
            "%s: bring back %d, revert %d, leave %d conflicts" % (t, c["bring_back"], c["revert"], c["conflict"])
            for t, c in counts.items()
        )
        return result
    try:
        result["backup"] = breakglass.fresh_verified_backup(p["backup_dir"], p["backup_max_age_minutes"], db)
    except breakglass.BreakGlassRefused as exc:
        raise UndoError("apply writes to the live database only right after a verified backup: %s" % exc) from None
    reason = "datasafe undo %s: bring back what the mistake destroyed (%s); backup %s" % (
        p["review"],
        p.get("reason") or "review applied",
        os.path.basename(result["backup"]["backup"]),
    )
    rows = container.query(run, live, db, user, apply_sql(schema, shapes, order, reason), stage="apply the undo")
    result["counts"] = {
        t: {"before": int(b), "after": int(a), "brought_back": int(n), "reverted": int(r)} for t, b, a, n, r in rows
    }
    result["conflicts"] = {t: c["conflict"] for t, c in counts.items() if c["conflict"]}
    return result


def _review_counts(run, cont, db, user, schema, order):
    sql = "\nUNION ALL ".join(
        "SELECT %s, _action, count(*) FROM %s.%s GROUP BY _action" % (literal(t), qi(schema), qi(flat_name(t)))
        for t in order
    )
    counts = {t: {a: 0 for a in ACTIONS} for t in order}
    for t, action, n in container.query(run, cont, db, user, sql + ";\n", stage="read the review"):
        counts[t][action] = int(n)
    return counts


# What undo_review and undo_apply turn into a failed task.
ERRORS = (UndoError, container.ContainerError, ValueError)


def review_task(run, params, check_mode=False):
    """undo_review's result for its options (``container`` is the live server): :func:`review`;
    changed, since a review always writes its own schema (in check mode: it would)."""
    return dict(review(run, dict(params, live_container=params["container"]), check_mode=check_mode), changed=True)


def apply_task(run, params, check_mode=False):
    """undo_apply's result for its options: :func:`apply`; changed when it wrote (in check mode:
    when it would write something; conflicts alone are never written)."""
    result = apply(run, dict(params, live_container=params["container"]), check_mode=check_mode)
    would = any(c["bring_back"] or c["revert"] for c in result["planned"].values())
    return dict(result, changed="counts" in result or (check_mode and would))
