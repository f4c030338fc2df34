#!/usr/bin/env python3
"""The guard's overhead, measured on one throwaway server (tests/pgbed.py ThrowawayPostgres).

TPS: ``pgbench -i -s 10``, then BENCH_DBGUARD_ROUNDS (default 5) pairs of rounds, alternating
unguarded and guarded (the guard is installed and removed between rounds with the engine
itself, so both measure the same data), each ``pgbench -b tpcb-like -c 2 -T BENCH_DBGUARD_SECONDS``
(default 15) inside the container. Before every round, untimed and with the guard off, the tables
are put back as pgbench itself does before a run (``-v``: ``pgbench_history`` emptied, the four
tables vacuumed) and a ``CHECKPOINT`` runs; pgbench's own preparation is skipped (``-n``) because
the guard refuses its ``TRUNCATE``. Ratio of the medians, guarded / unguarded (target >= 0.95).

Bulk: a 50,000-row DELETE from a copy of pgbench_accounts, unguarded and guarded under
``SET LOCAL datasafe.break_glass`` (the guard counts the rows and audits), each in a
transaction that is rolled back, alternating, BENCH_DBGUARD_BULK_ROUNDS (default 5) times; ratio
of the medians (target <= 1.5). The DELETE statement is in bench/dbguard_bulk_delete.sql.

Every round is printed as it ends, with the load average; then, per series, every figure and its
min / median / max, the bulk ratio, the TPS medians and the load average at the end. The last
line is ``dbguard tps ratio R``.
"""

import os
import re
import statistics
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests"))
# isort: off
from pgbed import ThrowawayPostgres, docker  # noqa: E402  (puts datasafe's module_utils on the path)
from ansible.module_utils.datasafe import container, dbguard  # noqa: E402
# isort: on

ROUNDS = int(os.environ.get("BENCH_DBGUARD_ROUNDS", "5"))
SECONDS = int(os.environ.get("BENCH_DBGUARD_SECONDS", "15"))
BULK_ROUNDS = int(os.environ.get("BENCH_DBGUARD_BULK_ROUNDS", "5"))
PGBENCH = "/usr/lib/postgresql/15/bin/pgbench"
BULK_SQL = os.path.join(REPO, "bench", "dbguard_bulk_delete.sql")


def pgbench(pg, *args):
    out = docker("exec", pg.container, PGBENCH, "-U", pg.user, *args, pg.db)
    return out.stdout + out.stderr


def tpcb(pg, seconds=SECONDS):
    """One round of the workload (tpcb-like, 2 clients, ``seconds``): (tps, transactions processed)."""
    text = pgbench(pg, "-b", "tpcb-like", "-n", "-c", "2", "-j", "2", "-T", str(seconds))
    tps = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", text)
    done = re.search(r"number of transactions actually processed: (\d+)", text)
    if not tps or not done:
        raise RuntimeError("pgbench printed no tps:\n" + text)
    return float(tps.group(1)), int(done.group(1))


def reset(pg):
    """Untimed, before every TPS round: each round starts from the same tables.

    Without this every round inherited the earlier rounds' history rows and dead row versions:
    the first round of a run (unguarded) ran on the freshest tables, and each later round on more
    bloated ones than the round before it.
    """
    guard(pg, False)  # the guard refuses TRUNCATE
    pg.psql(
        "TRUNCATE pgbench_history;\n"
        "VACUUM pgbench_branches, pgbench_tellers, pgbench_accounts, pgbench_history;\n"
        "CHECKPOINT;\n"
    )


def guard(pg, on):
    run = container.subprocess_runner
    if on:
        dbguard.install(run, pg.container, pg.db, pg.user, dbguard.normalize_settings())
    else:
        dbguard.remove(run, pg.container, pg.db, pg.user)
    assert dbguard.check(run, pg.container, pg.db, pg.user)["enabled"] is on


def bulk_seconds(pg, break_glass):
    with open(BULK_SQL, encoding="utf-8") as handle:
        sql = handle.read()
    prelude = "BEGIN;\nSET LOCAL datasafe.break_glass = 'bench: bulk delete';\n" if break_glass else "BEGIN;\n"
    script = prelude + "\\timing on\n" + sql + "\\timing off\nROLLBACK;\n"
    proc = docker(
        "exec", "-i", pg.container, "psql", "-X", "-v", "ON_ERROR_STOP=1", "-U", pg.user, "-d", pg.db, data=script
    )
    match = re.search(r"^DELETE 50000\s*\nTime: ([0-9.]+) ms", proc.stdout, re.M)
    if not match:
        raise RuntimeError("the bulk DELETE did not delete 50000 rows:\n%s%s" % (proc.stdout, proc.stderr))
    return float(match.group(1)) / 1000


def spread(name, values, unit, fmt):
    """One summary line: every round's figure, then min / median / max."""
    return "%s (%s, %d rounds): %s; min %s, median %s, max %s" % (
        name,
        unit,
        len(values),
        " ".join(fmt % v for v in values),
        fmt % min(values),
        fmt % statistics.median(values),
        fmt % max(values),
    )


def paired(guarded, plain):
    return [g / p for g, p in zip(guarded, plain)]


def load():
    return "load average %.2f %.2f %.2f" % os.getloadavg()


def main():
    pg = ThrowawayPostgres()
    try:
        print("start: %s (%d cpus)" % (load(), os.cpu_count() or 0), flush=True)
        pg.start(timeout=600)  # initdb on a busy machine can take minutes
        pgbench(pg, "-i", "-q", "-s", "10")
        pg.psql(
            "CREATE TABLE bulk_accounts AS SELECT * FROM pgbench_accounts WHERE aid <= 100000;"
            "ALTER TABLE bulk_accounts ADD PRIMARY KEY (aid); VACUUM ANALYZE;"
        )
        plain, guarded = [], []
        for i in range(ROUNDS):
            for on, into in ((False, plain), (True, guarded)) if i % 2 == 0 else ((True, guarded), (False, plain)):
                reset(pg)
                guard(pg, on)
                into.append(tpcb(pg)[0])
                what = "guarded" if on else "unguarded"
                print("round %d %s: %.1f tps (%s)" % (i + 1, what, into[-1], load()), flush=True)
        bulk_plain, bulk_guarded = [], []
        for i in range(BULK_ROUNDS):
            for on in (False, True) if i % 2 == 0 else (True, False):
                guard(pg, on)
                into = bulk_guarded if on else bulk_plain
                into.append(bulk_seconds(pg, on))
                what = "guarded+break-glass" if on else "unguarded"
                print("bulk %d %s: %.3f s (%s)" % (i + 1, what, into[-1], load()), flush=True)
        print(spread("tps unguarded", plain, "tps", "%.1f"))
        print(spread("tps guarded", guarded, "tps", "%.1f"))
        print(spread("bulk delete unguarded", bulk_plain, "s", "%.3f"))
        print(spread("bulk delete guarded+break-glass", bulk_guarded, "s", "%.3f"))
        # Each round's two runs are next to each other in time, so they share the machine's load:
        # the median of the per-round ratios is the figure least moved by a busy machine.
        print(spread("tps ratio per round (guarded/unguarded)", paired(guarded, plain), "ratio", "%.3f"))
        print(spread("bulk ratio per round (guarded/unguarded)", paired(bulk_guarded, bulk_plain), "ratio", "%.2f"))
        bulk_ratio = statistics.median(bulk_guarded) / statistics.median(bulk_plain)
        print(
            "dbguard bulk delete ratio %.2f (guarded %.3f s / unguarded %.3f s, 50000 rows, medians of %d; "
            "target <= 1.5)" % (bulk_ratio, statistics.median(bulk_guarded), statistics.median(bulk_plain), BULK_ROUNDS)
        )
        ratio = statistics.median(guarded) / statistics.median(plain)
        print(
            "dbguard tps medians: guarded %.1f, unguarded %.1f (%d rounds of %d s, pgbench tpcb-like -c 2; "
            "target >= 0.95)" % (statistics.median(guarded), statistics.median(plain), ROUNDS, SECONDS)
        )
        print("end: %s" % load())
        print("dbguard tps ratio %.3f" % ratio)
    finally:
        pg.remove()


if __name__ == "__main__":
    main()
