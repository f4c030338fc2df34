"""Which backups to keep and which to prune: a pure function, unit-tested on simulated weeks.

Rules, in order (a backup kept by any rule is kept):

* only good backups (verified manifest) are ever candidates: a file with a problem, no
  manifest, or an unknown kind is never pruned here, only reported;
* the newest good backup of each database is always kept;
* scheduled and manual backups: kept while younger than ``days``; the newest of each of the
  last ``weekly`` ISO weeks and of the last ``monthly`` calendar months; the newest ``min_keep``;
* pre-change backups have their own policy: ``pre_change_days`` and ``pre_change_min_keep``;
* while off-site copies are configured, a backup without a verified copy at every target
  (``hold``: path -> reason, from the off-site ledger) is kept whatever its age.
"""

import datetime

REGULAR = ("scheduled", "manual")
PRE_CHANGE = "pre-change"


def _months_back(now, n):
    """The (year, month) keys of the current month and the n-1 before it."""
    keys, year, month = [], now.year, now.month
    for _ in range(n):
        keys.append((year, month))
        month -= 1
        if month == 0:
            year, month = year - 1, 12
    return set(keys)


def _weeks_back(now, n):
    keys = set()
    for i in range(n):
        iso = (now - datetime.timedelta(weeks=i)).isocalendar()
        keys.add((iso[0], iso[1]))
    return keys


def plan(
    entries,
    now,
    days=7,
    weekly=0,
    monthly=0,
    min_keep=7,
    pre_change_days=30,
    pre_change_min_keep=3,
    protect=(),
    hold=None,
):
    """Split ``entries`` (from manifest.list_backups, newest first) into keep / remove / ignore.

    Returns a dict of three lists of (entry, reason). ``protect`` is a set of paths that are
    always kept (the newest backup that passed a checksum re-check).
    """
    keep, remove, ignored = [], [], []
    good = [e for e in entries if not e["problem"] and e["manifest"] is not None]
    for e in entries:
        if e["problem"] or e["manifest"] is None:
            ignored.append((e, e["problem"] or "no manifest"))
    newest_per_db = {}
    for e in good:  # entries are newest first
        newest_per_db.setdefault(e["database"], e["path"])
    week_keys, month_keys = _weeks_back(now, weekly), _months_back(now, monthly)
    seen_weeks, seen_months = set(), set()
    regular_seen, pre_seen = {}, {}
    for e in good:
        age = (now - e["end"]).total_seconds()
        local = e["end"].astimezone(now.tzinfo)
        reasons = []
        if e["path"] in protect:
            reasons.append("newest verified backup")
        if newest_per_db.get(e["database"]) == e["path"]:
            reasons.append("newest good backup of %s" % e["database"])
        if age < 0:
            reasons.append("dated in the future (clock skew?): kept")
        if hold and e["path"] in hold:
            reasons.append(hold[e["path"]])
        if e["kind"] in REGULAR:
            regular_seen[e["database"]] = regular_seen.get(e["database"], 0) + 1
            if age < days * 86400:
                reasons.append("younger than %d days" % days)
            iso = local.isocalendar()
            week = (e["database"], iso[0], iso[1])
            if (iso[0], iso[1]) in week_keys and week not in seen_weeks:
                seen_weeks.add(week)
                reasons.append("newest of week %d-W%02d" % (iso[0], iso[1]))
            month = (e["database"], local.year, local.month)
            if (local.year, local.month) in month_keys and month not in seen_months:
                seen_months.add(month)
                reasons.append("newest of month %d-%02d" % (local.year, local.month))
            if regular_seen[e["database"]] <= min_keep:
                reasons.append("within the newest %d (min_keep)" % min_keep)
            why_not = "older than %d days and not kept by any tier" % days
        elif e["kind"] == PRE_CHANGE:
            pre_seen[e["database"]] = pre_seen.get(e["database"], 0) + 1
            if age < pre_change_days * 86400:
                reasons.append("pre-change backup younger than %d days" % pre_change_days)
            if pre_seen[e["database"]] <= pre_change_min_keep:
                reasons.append("within the newest %d pre-change backups" % pre_change_min_keep)
            why_not = "pre-change backup older than %d days, beyond the newest %d" % (
                pre_change_days,
                pre_change_min_keep,
            )
        else:
            ignored.append((e, "unknown kind %r: left alone" % e["kind"]))
            continue
        if reasons:
            keep.append((e, "; ".join(reasons)))
        else:
            remove.append((e, why_not))
    return {"keep": keep, "remove": remove, "ignored": ignored}
