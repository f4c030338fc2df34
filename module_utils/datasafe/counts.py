"""Compare two row-count snapshots: the assertion behind every step of a change."""

POLICIES = ("no_decrease", "equal")


def compare(before, after, policy="no_decrease"):
    """Return a list of problems, one per table, empty when ``after`` satisfies ``policy``.

    A table present before and missing after is always a problem: a lost table is lost rows.
    """
    if policy not in POLICIES:
        raise ValueError("policy must be one of %s, not %r" % (", ".join(POLICIES), policy))
    problems = []
    for table in sorted(before):
        was = int(before[table])
        if table not in after:
            problems.append({"table": table, "before": was, "after": None, "problem": "table missing"})
            continue
        now = int(after[table])
        if now < was:
            problems.append({"table": table, "before": was, "after": now, "problem": "lost %d row(s)" % (was - now)})
        elif policy == "equal" and now != was:
            problems.append(
                {
                    "table": table,
                    "before": was,
                    "after": now,
                    "problem": "gained %d row(s) where none were expected" % (now - was),
                }
            )
    return problems


def describe(problems):
    """One line naming every table with its counts before and after."""
    return "; ".join(
        "%s: %s -> %s (%s)" % (p["table"], p["before"], "missing" if p["after"] is None else p["after"], p["problem"])
        for p in problems
    )
