"""Compare two row-count snapshots: the assertion behind every step of a change."""

from ansible.module_utils.datasafe import container

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


class CountsFailed(Exception):
    """The row_counts task fails: ``result`` holds its fields (``problems``, and the counts when taken)."""

    def __init__(self, message, result):
        super().__init__(message)
        self.result = result


def task(run, p):
    """What the row_counts module does with its options ``p``: count ``tables`` exactly in one
    snapshot and, with ``compare_to``, judge them by ``policy``. Returns the module's result;
    raises :class:`CountsFailed` (bad options, counting failed, the policy broken with
    ``fail_on_problems``)."""
    if not p["tables"]:
        raise CountsFailed(
            "tables is empty: list the critical tables to count (datasafe_critical_tables)", {"problems": []}
        )
    try:
        for table in p["tables"]:
            container.quote_ident(table)
        now = container.count_rows(run, p["container"], p["database"], p["user"], p["tables"])
    except ValueError as exc:
        raise CountsFailed("row_counts: %s" % exc, {"problems": []}) from exc
    except container.ContainerError as exc:
        raise CountsFailed(
            "row_counts (%s): could not count rows in %s/%s: %s" % (p["label"], p["container"], p["database"], exc),
            {"problems": []},
        ) from exc
    result = dict(changed=False, counts=now, total=sum(now.values()), problems=[])
    if p["compare_to"] is not None:
        try:
            before = snapshot(p["compare_to"])
        except ValueError as exc:
            raise CountsFailed(str(exc), {"problems": []}) from exc
        result["problems"] = compare(before, now, p["policy"])
        if result["problems"] and p["fail_on_problems"]:
            raise CountsFailed(
                "row counts %s break policy %s: %s" % (p["label"], p["policy"], describe(result["problems"])), result
            )
    return result
