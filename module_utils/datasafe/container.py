"""Run PostgreSQL client programs inside the database container.

Everything here builds argv lists (never a shell string) for ``docker exec``, so the client
always has the server's own version and nothing is interpolated by a shell. Functions take
a ``run`` callable of :mod:`runner`'s signature: modules pass ``runner.for_module(module)``,
tests and the CLI ``runner.run``.
"""

import csv
import io
import re

from ansible.module_utils.datasafe import runner

# /dev/shm of the throwaway servers datasafe starts (restore drill, recovery, undo): docker's default
# of 64 MB is too small for PostgreSQL's parallel workers on a database of a few GB (a VACUUM or a
# hash join fails with "could not resize shared memory segment ... No space left on device"). A
# tmpfs limit, not a reservation: memory is used only as PostgreSQL needs it.
THROWAWAY_SHM_SIZE = "1g"

# PostgreSQL identifiers as datasafe accepts them in its own configuration: plain names,
# optionally schema-qualified. Anything else is refused rather than quoted cleverly.
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")


class ContainerError(Exception):
    """A command inside the container failed; ``stage`` names what was being done."""

    def __init__(self, stage, rc, stderr):
        self.stage, self.rc, self.stderr = stage, rc, (stderr or "").strip()
        super().__init__("%s failed (exit %s): %s" % (stage, rc, self.stderr or "no error output"))


# The runner's two implementations under the names the modules and tests know (see runner.py).
subprocess_runner = runner.run
module_runner = runner.for_module


def quote_ident(name):
    """Quote a (possibly schema-qualified) table name after validating every part."""
    parts = name.split(".")
    if not 1 <= len(parts) <= 2 or not all(_IDENT.match(p) for p in parts):
        raise ValueError(
            "%r is not a plain table name: use letters, digits and underscores, optionally as schema.table" % (name,)
        )
    return ".".join('"%s"' % p for p in parts)


def docker_exec(container, argv, interactive=False, env_names=(), user=None):
    """argv for ``docker exec``; ``env_names`` are passed by name only (values stay out of argv)."""
    cmd = ["docker", "exec"]
    if interactive:
        cmd.append("-i")
    if user:
        cmd += ["--user", user]
    for name in env_names:
        cmd += ["-e", name]
    return cmd + [container] + list(argv)


def psql_argv(container, db, user, extra=(), interactive=True):
    """psql that stops at the first error and reads no ~/.psqlrc."""
    return docker_exec(
        container,
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-U", user, "-d", db] + list(extra),
        interactive=interactive,
    )


def query(run, container, db, user, sql, stage="query"):
    """Run SQL (fed on stdin) and return the rows of its last result as lists of strings."""
    rc, out, err = run(psql_argv(container, db, user, extra=["--csv", "-t"]), data=sql)
    if rc != 0:
        raise ContainerError(stage, rc, err)
    return [row for row in csv.reader(io.StringIO(out)) if row]


def count_rows_sql(tables):
    """One statement counting every table exactly, in one snapshot."""
    if not tables:
        raise ValueError("no tables to count")
    selects = [
        "SELECT %s AS table_name, count(*)::bigint AS n FROM %s" % (_sql_literal(t), quote_ident(t)) for t in tables
    ]
    return "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;\n" + "\nUNION ALL ".join(selects) + ";\nCOMMIT;\n"


def count_rows(run, container, db, user, tables):
    """Exact row counts ``{table: int}`` of ``tables``, all taken in one snapshot."""
    rows = query(run, container, db, user, count_rows_sql(tables), stage="count rows")
    counts = {name: int(n) for name, n in rows}
    missing = [t for t in tables if t not in counts]
    if missing:
        raise ContainerError("count rows", 0, "no count returned for %s" % ", ".join(missing))
    return counts


def _sql_literal(text):
    return "'%s'" % text.replace("'", "''")
