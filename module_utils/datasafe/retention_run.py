# -*- coding: utf-8 -*-
"""One pruning run around retention.plan: its refusals, the off-site hold, and the deletion.

``library/backup_retention.py`` is its documentation and argument spec; this file decides.
Nothing is removed unless a new backup was verified (``new_backup`` re-hashed, or the newest
good backup is young enough), the newest good backup is never removed, and a backup without a
verified off-site copy at every configured target is held. Failures raise
:class:`RetentionFailed` with the fields the module returns.
"""

import datetime
import os

from ansible.module_utils.datasafe import ledger, manifest, offsite, retention


class RetentionFailed(Exception):
    """Nothing (more) was pruned; ``result`` is what the module returns with the failure."""

    def __init__(self, message, result=None):
        super().__init__("backup_retention: " + message)
        self.reason, self.result = message, dict(result or {})


def check_options(p):
    """Refuse counts that are negative, and floors below one (the newest backups are never all pruned)."""
    for key in ("days", "weekly", "monthly", "pre_change_days", "require_verified_within"):
        if p[key] < 0:
            raise RetentionFailed("%s must not be negative (got %d)" % (key, p[key]))
    for key in ("min_keep", "pre_change_min_keep"):
        if p[key] < 1:
            raise RetentionFailed(
                "%s must be at least 1 (got %d): the newest backups are never all pruned" % (key, p[key])
            )


def _row(entry, reason):
    return {
        "file": entry["file"],
        "kind": entry["kind"],
        "database": entry["database"],
        "end": entry["end"].isoformat() if entry["end"] else None,
        "size": entry["size"],
        "reason": reason,
    }


def offsite_hold(directory, entries, targets):
    """``({path: reason}, [held row])`` for the good backups without a verified copy at every target."""
    if not targets:
        return {}, []
    try:
        labels = [offsite.label_for(t) for t in targets]
        data = ledger.load(directory)
    except (ValueError, ledger.LedgerError) as exc:
        raise RetentionFailed("nothing pruned: %s" % exc) from exc
    hold, held = {}, []
    for entry in entries:
        if entry["problem"] or entry["manifest"] is None:
            continue
        _, missing = ledger.verified_at(data, entry, labels)
        if missing:
            hold[entry["path"]] = "no verified off-site copy at %s" % ", ".join(missing)
            size = (entry["size"] or 0) + sum(
                os.path.getsize(c) for c in manifest.companions(entry) if os.path.exists(c)
            )
            held.append({"file": entry["file"], "missing_at": missing, "bytes": size})
    return hold, held


def _refusal(p, directory, entries, now):
    """``(why nothing may be pruned or None, the newest good backup)``."""
    refusal, known_good = None, ()
    if p["new_backup"]:  # re-hashed once here, not again below
        mine = [e for e in entries if e["path"] == os.path.abspath(p["new_backup"])]
        problems = manifest.verify_file(mine[0]) if mine else ["it is not in %s" % directory]
        if problems:
            refusal = "the new backup %s is not a good backup: %s" % (p["new_backup"], "; ".join(problems))
        else:
            known_good = (mine[0]["path"],)
    newest = manifest.newest_verified(directory, database=p["database"], known_good=known_good)
    stale = newest is None or (now - newest["end"]).total_seconds() > p["require_verified_within"]
    if not p["new_backup"] and stale:
        refusal = "there is no good backup younger than %d s in %s: make a backup first" % (
            p["require_verified_within"],
            directory,
        )
    return refusal, newest


def remove(entries, directory, result):
    """Remove each backup: the file first (a manifest without its file is never "good"), then the rest."""
    for entry in entries:
        try:
            os.unlink(entry["path"])
            for companion in manifest.companions(entry):
                if os.path.exists(companion):
                    os.unlink(companion)
            os.unlink(entry["manifest_path"])
        except OSError as exc:
            raise RetentionFailed("cannot remove %s: %s" % (entry["path"], exc.strerror or exc), result) from exc
    if entries:
        manifest.fsync_dir(directory)


def execute(p, check_mode=False, warn=lambda text: None, now=None):
    """One pruning run with the module's options ``p``; the module's result, or :class:`RetentionFailed`."""
    check_options(p)
    directory = p["backup_dir"]
    if not os.path.isdir(directory):
        if check_mode:  # a dry run before the first backup: nothing there, nothing to prune
            return dict(
                changed=False,
                remove=[],
                keep=[],
                ignored=[],
                newest_verified=None,
                freed_bytes=0,
                held_for_offsite=[],
                held_bytes=0,
                msg="%s does not exist yet: nothing to prune" % directory,
            )
        raise RetentionFailed("%s does not exist: there is nothing to prune, and no backup was made there" % directory)
    now = now or datetime.datetime.now(datetime.timezone.utc)
    entries = [
        e for e in manifest.list_backups(directory) if p["database"] is None or e["database"] in (None, p["database"])
    ]
    # Prune only after a new backup was verified.
    refusal, newest = _refusal(p, directory, entries, now)
    if refusal and not check_mode:
        raise RetentionFailed("nothing pruned, %s" % refusal, dict(newest_verified=newest["file"] if newest else None))
    if refusal:  # check mode: the real run would refuse (or follow a new backup); still list the plan
        warn("backup_retention: a real run now would prune nothing: %s" % refusal)
    hold, held = offsite_hold(directory, entries, p["offsite_targets"])
    decided = retention.plan(
        entries,
        now,
        days=p["days"],
        weekly=p["weekly"],
        monthly=p["monthly"],
        min_keep=p["min_keep"],
        pre_change_days=p["pre_change_days"],
        pre_change_min_keep=p["pre_change_min_keep"],
        protect={newest["path"]} if newest else set(),
        hold=hold,
    )
    removed = [_row(e, why) for e, why in decided["remove"]]
    result = dict(
        changed=bool(removed),
        remove=removed,
        keep=[_row(e, why) for e, why in decided["keep"]],
        ignored=[_row(e, why) for e, why in decided["ignored"]],
        newest_verified=newest["file"] if newest else None,
        freed_bytes=sum(e["size"] or 0 for e, _ in decided["remove"]),
        held_for_offsite=held,
        held_bytes=sum(h["bytes"] for h in held),
    )
    if held:
        warn(
            "backup_retention: %d backup(s) (%d bytes) are kept because they have no verified off-site copy "
            "at every target: %s. Fix the off-site copy (playbooks/offsite.yml); retention never deletes "
            "the only copy of a backup" % (len(held), result["held_bytes"], ", ".join(h["file"] for h in held))
        )
    for row in result["ignored"]:
        warn("backup_retention: %s is not a good backup and was left alone: %s" % (row["file"], row["reason"]))
    if not check_mode:
        remove([e for e, _ in decided["remove"]], directory, result)
    result["msg"] = "%s %d backup(s), kept %d" % (
        "would remove" if check_mode else "removed",
        len(removed),
        len(result["keep"]),
    )
    return result
