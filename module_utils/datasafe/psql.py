"""Run SQL the guard allowed in the database container with psql, and read back what each
statement did (safe_sql's engine).

psql runs the statements from stdin (``psql -X -v ON_ERROR_STOP=1 --csv`` via ``docker exec``),
each between two ``\\echo`` markers carrying a random token; the second marker carries
``:ROW_COUNT``. The output is split at the markers into each statement's row count and rows, so
a failure names the statement it stopped at. By default all statements run in one transaction;
check mode runs them in one that is rolled back, or not at all when they cannot be rolled back.
"""

import csv
import io
import uuid

from ansible.module_utils.datasafe import container

DML = ("InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt")
# Statements that only touch the session, never stored data or schema.
SESSION_ONLY = (
    "SelectStmt",
    "VariableSetStmt",
    "VariableShowStmt",
    "TransactionStmt",
    "ExplainStmt",
    "PrepareStmt",
    "DeallocateStmt",
    "ListenStmt",
    "UnlistenStmt",
    "NotifyStmt",
    "DiscardStmt",
    "CheckPointStmt",
    "LockStmt",
    "DeclareCursorStmt",
    "FetchStmt",
    "ClosePortalStmt",
)


class StatementFailed(Exception):
    """psql stopped at a statement; ``result`` says what ran (``rc``, ``stderr``, ``failed_statement``)."""

    def __init__(self, msg, result):
        super().__init__(msg)
        self.result = result


def build_script(kinds, marker, wrap):
    """psql input: each statement between two \\echo markers, the second carrying :ROW_COUNT."""
    lines = []
    if wrap:
        lines.append("BEGIN;")
    for i, kind in enumerate(kinds):
        lines.append("\\echo %s start %d" % (marker, i))
        # the newline before ';' keeps a trailing -- comment from swallowing it
        lines.append(kind["statement"] + "\n;")
        lines.append("\\echo %s end %d :ROW_COUNT" % (marker, i))
    if wrap:
        lines.append(wrap + ";")
    return "\n".join(lines) + "\n"


def parse_output(out, marker, kinds):
    """Split psql's CSV output by markers into per-statement row counts and rows."""
    results, current, buffer = [], None, []
    for line in out.splitlines():
        if line.startswith(marker + " "):
            parts = line.split()
            if parts[1] == "start":
                current, buffer = int(parts[2]), []
            elif parts[1] == "end" and current is not None:
                rows = list(csv.reader(io.StringIO("\n".join(buffer))))
                header, data = (rows[0], rows[1:]) if rows else ([], [])
                count = int(parts[3]) if len(parts) > 3 and parts[3].isdigit() else None
                results.append(dict(kinds[current], row_count=count, rows=[dict(zip(header, r)) for r in data]))
                current = None
            continue
        if current is not None:
            buffer.append(line)
    return results, current


def statement_changed(stmt):
    """Did this statement change stored data or schema? (honest ``changed``)"""
    if stmt["read_only"]:
        return False
    if stmt["type"] in DML or stmt["type"] == "CopyStmt":
        return bool(stmt.get("row_count"))
    return stmt["type"] not in SESSION_ONLY or stmt["type"] in ("ExplainStmt", "SelectStmt")


def execute(run, cont, database, user, kinds, single_transaction=True, check_mode=False):
    """Run the statements ``kinds`` (guard_sql.statement_kinds of SQL already judged) as ``user``
    in ``database`` of container ``cont``; ``run(argv, data=None) -> (rc, stdout, stderr)``.

    Returns ``changed``, ``executed``, and once run ``statements`` (each with ``row_count`` and
    ``rows``), ``transaction`` (commit, rollback or none) and ``rows_affected``; ``msg`` when
    nothing ran. Raises :class:`StatementFailed` when psql fails.
    """
    if not kinds:
        return dict(changed=False, executed=False, msg="no SQL statements to run")
    wrappable = all(k["transactional"] for k in kinds)
    if check_mode and not wrappable:
        return dict(
            changed=not all(k["read_only"] or k["type"] in SESSION_ONLY for k in kinds),
            executed=False,
            statements=[dict(k, row_count=None, rows=[]) for k in kinds],
            msg="check mode: not run, because it cannot be rolled back (statements that cannot run "
            "in a transaction, or BEGIN/COMMIT of its own)",
        )
    if check_mode:
        wrap = "ROLLBACK"
    else:
        wrap = "COMMIT" if (single_transaction and wrappable) else None
    marker = "__datasafe_%s__" % uuid.uuid4().hex
    argv = container.psql_argv(cont, database, user, extra=["--csv"])
    rc, out, err = run(argv, data=build_script(kinds, marker, wrap))
    statements, unfinished = parse_output(out, marker, kinds)
    result = dict(
        executed=True,
        statements=statements,
        transaction={"ROLLBACK": "rollback", "COMMIT": "commit", None: "none"}[wrap],
        rows_affected=sum(s["row_count"] or 0 for s in statements if s["type"] in DML),
    )
    if rc != 0:
        failed_at = unfinished if unfinished is not None else len(statements)
        # Inside a wrapping transaction a failure undoes everything; without one, earlier statements stay done.
        kept = [] if wrap else statements
        result.update(
            changed=any(statement_changed(s) for s in kept) and not check_mode,
            rc=rc,
            stderr=err,
            failed_statement=kinds[min(failed_at, len(kinds) - 1)]["statement"],
        )
        raise StatementFailed(
            "psql failed (exit %d) at statement %d of %d: %s"
            % (rc, failed_at + 1, len(kinds), (err or "").strip() or "no error output"),
            result,
        )
    result["changed"] = any(statement_changed(s) for s in statements)
    return result
