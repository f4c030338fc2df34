#!/usr/bin/env python3
"""What any guard built from PL/pgSQL statement triggers costs, before it counts a single row.

The guard bench's TPS target (>= 0.95) is measured against no triggers at all. This measures the
floor under it on one throwaway server (tests/pgbed.py ThrowawayPostgres), ``pgbench -i -s 10``:
three variants in rotating order, BENCH_DBGUARD_FLOOR_ROUNDS (default 5) rounds of
``pgbench -b tpcb-like -c 2 -j 2 -T BENCH_DBGUARD_FLOOR_SECONDS`` (default 10) each, every round
from the same tables (dbguard_bench.reset):

- ``none``: no triggers;
- ``noop``: on each pgbench table a statement-level ``BEFORE`` and ``AFTER`` trigger on
  ``UPDATE OR DELETE`` (``ENABLE ALWAYS``, as the guard's) whose PL/pgSQL function only returns:
  the trigger machinery and the PL/pgSQL call, nothing else;
- ``guard``: the guard as datasafe installs it (its engine, default settings).

TPS moves by 10-30 % from round to round on a 2-vCPU machine, so every round also records the
container's CPU time per transaction (its cgroup's CPU counter, server and pgbench together). That
moves too, against the TPS (the same variant took 147-172 us on the machine of round twelve: the
CPU does less per second when the four busy threads share its two vCPUs badly), so read the
ratios of both series with their spreads.

Then the cost per statement without that noise: one session runs BENCH_DBGUARD_FLOOR_STATEMENTS
(default 50,000) one-row ``UPDATE``s of a table of its own (each a different row) in a ``DO`` loop,
timed by psql, once per variant in rotating order for BENCH_DBGUARD_FLOOR_STATEMENT_ROUNDS
(default 5) rounds; microseconds per statement, and each variant's cost above ``none``.

Prints every round, the medians, the CPU ratios, the cost per statement, and as its last line
``dbguard floor: noop tps ratio R1, guard tps ratio R2`` (ratios of the medians to ``none``).
"""

import os
import re
import statistics

import dbguard_bench as bench

ROUNDS = int(os.environ.get("BENCH_DBGUARD_FLOOR_ROUNDS", "5"))
SECONDS = int(os.environ.get("BENCH_DBGUARD_FLOOR_SECONDS", "10"))
STATEMENTS = int(os.environ.get("BENCH_DBGUARD_FLOOR_STATEMENTS", "50000"))
STATEMENT_ROUNDS = int(os.environ.get("BENCH_DBGUARD_FLOOR_STATEMENT_ROUNDS", "5"))
TABLES = ("pgbench_accounts", "pgbench_branches", "pgbench_tellers", "pgbench_history", "floor_rows")
VARIANTS = ("none", "noop", "guard")

NOOP_FUNCTION = (
    "CREATE OR REPLACE FUNCTION public.floor_noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;\n"
)


def noop_sql(on):
    """The no-op triggers created (``on``) or dropped, on every table of TABLES."""
    lines = [NOOP_FUNCTION] if on else []
    for table in TABLES:
        for when in ("before", "after"):
            name = "floor_noop_%s" % when
            lines.append("DROP TRIGGER IF EXISTS %s ON public.%s;\n" % (name, table))
            if on:
                lines.append(
                    "CREATE TRIGGER %s %s UPDATE OR DELETE ON public.%s FOR EACH STATEMENT "
                    "EXECUTE FUNCTION public.floor_noop();\n" % (name, when.upper(), table)
                )
                lines.append("ALTER TABLE public.%s ENABLE ALWAYS TRIGGER %s;\n" % (table, name))
    return "".join(lines)


def cpu_ns(pg):
    """The container's CPU time so far, in nanoseconds (cgroup v1 or v2)."""
    ident = bench.docker("inspect", "-f", "{{.Id}}", pg.container).stdout.strip()
    v1 = "/sys/fs/cgroup/cpuacct/docker/%s/cpuacct.usage" % ident
    if os.path.exists(v1):
        with open(v1, encoding="ascii") as handle:
            return int(handle.read())
    with open("/sys/fs/cgroup/system.slice/docker-%s.scope/cpu.stat" % ident, encoding="ascii") as handle:
        return 1000 * int(re.search(r"^usage_usec (\d+)$", handle.read(), re.M).group(1))


def measure(pg):
    """One round of the guard bench's workload: (tps, CPU microseconds per transaction)."""
    before = cpu_ns(pg)
    tps, done = bench.tpcb(pg, SECONDS)
    return tps, (cpu_ns(pg) - before) / 1000 / done


def per_statement(pg):
    """Microseconds per one-row UPDATE, STATEMENTS of them in one DO loop (one session)."""
    script = (
        "VACUUM public.floor_rows;\n\\timing on\n"
        "DO $$ BEGIN FOR i IN 1..%d LOOP UPDATE public.floor_rows SET v = v + 1 WHERE id = i; END LOOP; END $$;\n"
        % STATEMENTS
    )
    out = pg.psql(script).stdout
    match = re.search(r"^Time: ([0-9.]+) ms", out, re.M)
    if not match:
        raise RuntimeError("psql printed no time:\n" + out)
    return float(match.group(1)) * 1000 / STATEMENTS


def rotated(i):
    """The variants in round ``i``'s order: each runs first, second and last in turn."""
    return VARIANTS[i % len(VARIANTS) :] + VARIANTS[: i % len(VARIANTS)]


def variant(pg, name):
    bench.reset(pg)  # also takes the guard off
    pg.psql(noop_sql(name == "noop"))
    if name == "guard":
        bench.guard(pg, True)


def main():
    pg = bench.ThrowawayPostgres()
    try:
        print("start: %s (%d cpus)" % (bench.load(), os.cpu_count() or 0), flush=True)
        pg.start(timeout=600)
        bench.pgbench(pg, "-i", "-q", "-s", "10")
        pg.psql(
            "CREATE TABLE public.floor_rows (id int PRIMARY KEY, v bigint NOT NULL);\n"
            "INSERT INTO public.floor_rows SELECT g, 0 FROM generate_series(1, %d) g;\n" % STATEMENTS
        )
        results = {name: [] for name in VARIANTS}
        cpu = {name: [] for name in VARIANTS}
        for i in range(ROUNDS):
            for name in rotated(i):
                variant(pg, name)
                tps, per_transaction = measure(pg)
                results[name].append(tps)
                cpu[name].append(per_transaction)
                print(
                    "round %d %s: %.1f tps, %.1f us CPU per transaction (%s)"
                    % (i + 1, name, tps, per_transaction, bench.load()),
                    flush=True,
                )
        for name in VARIANTS:
            print(bench.spread("tps " + name, results[name], "tps", "%.1f"))
            print(bench.spread("CPU per transaction " + name, cpu[name], "us", "%.1f"))
        base = statistics.median(results["none"])
        ratios = {name: statistics.median(results[name]) / base for name in VARIANTS}
        cpu_base = statistics.median(cpu["none"])
        print(
            "CPU per transaction against none (medians; above 1 costs): noop %.3f, guard %.3f"
            % (statistics.median(cpu["noop"]) / cpu_base, statistics.median(cpu["guard"]) / cpu_base)
        )
        statement = {name: [] for name in VARIANTS}
        for i in range(STATEMENT_ROUNDS):
            for name in rotated(i):
                variant(pg, name)
                statement[name].append(per_statement(pg))
                print("statements %d %s: %.2f us per UPDATE" % (i + 1, name, statement[name][-1]), flush=True)
        for name in VARIANTS:
            print(bench.spread("us per UPDATE " + name, statement[name], "us", "%.2f"))
        plain = statistics.median(statement["none"])
        print(
            "per one-row UPDATE (one session, %d in a DO loop; medians): none %.2f us, noop +%.2f us, guard +%.2f us"
            % (
                STATEMENTS,
                plain,
                statistics.median(statement["noop"]) - plain,
                statistics.median(statement["guard"]) - plain,
            )
        )
        print("end: %s" % bench.load())
        print("dbguard floor: noop tps ratio %.3f, guard tps ratio %.3f" % (ratios["noop"], ratios["guard"]))
    finally:
        pg.remove()


if __name__ == "__main__":
    main()
