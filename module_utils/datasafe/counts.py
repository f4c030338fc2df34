"""Compare two row-count snapshots: the assertion behind every step of a change."""

POLICIES = ("no_decrease", "equal")


def snapshot(mapping, what="compare_to"):
    """``{table: int}`` from an earlier snapshot as row_counts returns it (Ansible may hand the
    numbers over as strings); ValueError naming ``what`` when it is not one."""
    try:
        return {table: int(n) for table, n in mapping.items()}
    except (AttributeError, TypeError, ValueError):
        raise ValueError("%s must map table names to whole numbers, as row_counts returns them" % what) from None


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
