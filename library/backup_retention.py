#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Prune old backups by policy, only after a new backup was verified, never the newest good one."""

DOCUMENTATION = r"""
---
module: backup_retention
short_description: Prune old verified backups by a daily/weekly/monthly policy with a minimum-count floor
description:
  - Reads every backup in O(backup_dir) through its manifest and removes (backup file, then
    manifest) the good backups that no rule keeps.
  - Scheduled and manual backups are kept while younger than O(days); the newest of each of
    the last O(weekly) ISO weeks and O(monthly) calendar months are kept too; the newest
    O(min_keep) are always kept. Pre-change backups follow O(pre_change_days) and
    O(pre_change_min_keep).
  - The newest good backup (its sha256 re-checked) is never removed. Files without a
    manifest, with a manifest that is not verified, or with a problem are never removed;
    they are reported in RV(ignored) for a human to look at.
  - Prunes only after a new backup was verified; O(new_backup) must pass a sha256 re-check,
    or, without it, the newest good backup must be younger than O(require_verified_within).
    Otherwise nothing is removed and the task fails.
version_added: "0.1.0"
author: datasafe maintainers
options:
  backup_dir:
    description: The backup directory.
    type: path
    required: true
  database:
    description: Only consider backups of this database (others are left alone).
    type: str
  days:
    description: Keep scheduled and manual backups younger than this many days.
    type: int
    default: 7
  weekly:
    description: Also keep the newest backup of each of the last N ISO weeks (0 disables the tier).
    type: int
    default: 0
  monthly:
    description: Also keep the newest backup of each of the last N calendar months (0 disables the tier).
    type: int
    default: 0
  min_keep:
    description: Never keep fewer than this many scheduled/manual backups, whatever their age.
    type: int
    default: 7
  pre_change_days:
    description: Keep pre-change backups younger than this many days.
    type: int
    default: 30
  pre_change_min_keep:
    description: Never keep fewer than this many pre-change backups.
    type: int
    default: 3
  new_backup:
    description: Path of the backup just made; it must be verified (sha256 re-checked) before anything is pruned.
    type: path
  require_verified_within:
    description: Without O(new_backup), the newest good backup must be younger than this many seconds.
    type: int
    default: 93600
  offsite_targets:
    description:
      - The off-site targets (the items of C(datasafe_offsite_targets)). While any is set, a backup
        without a verified copy at every one of them (per the off-site ledger
        C(<backup_dir>/offsite-ledger.json), which the off-site modules write) is never removed,
        whatever its age; it is listed in RV(held_for_offsite) with the disk it holds.
    type: list
    elements: dict
    default: []
attributes:
  check_mode:
    support: full
    description: Lists in RV(remove) what a real run would remove, and removes nothing.
  diff_mode:
    support: none
seealso:
  - module: pg_backup
"""

EXAMPLES = r"""
- name: Prune by the protocol's policy, after the new backup was verified
  backup_retention:
    backup_dir: ~/backups
    database: lms_slncity
    new_backup: "{{ backup.path }}"
    days: 7
    weekly: 4
    monthly: 6

- name: What would be pruned (dry run)
  backup_retention:
    backup_dir: ~/backups
  check_mode: true
  register: would
"""

RETURN = r"""
remove:
  description: Backups removed (in check mode, that would be removed), with the reason.
  returned: always
  type: list
  elements: dict
  sample: [{"file": "lms_backup_20261101_020000.sql.gz", "reason": "older than 7 days and not kept by any tier"}]
keep:
  description: Backups kept, with every rule that keeps them.
  returned: always
  type: list
  elements: dict
ignored:
  description: Files that are not good backups (no manifest, not verified, size mismatch); never removed here.
  returned: always
  type: list
  elements: dict
newest_verified:
  description: The newest good backup (sha256 re-checked); it is never removed.
  returned: always
  type: str
freed_bytes:
  description: Bytes removed (or that would be).
  returned: always
  type: int
held_for_offsite:
  description:
    - Good backups with no verified copy at every off-site target (never removed while so),
      the targets they lack and the bytes they hold.
  returned: always
  type: list
  elements: dict
held_bytes:
  description: Disk space those held backups take.
  returned: always
  type: int
"""

import datetime
import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.datasafe import ledger, manifest, offsite, retention


def _row(entry, reason):
    return {
        "file": entry["file"],
        "kind": entry["kind"],
        "database": entry["database"],
        "end": entry["end"].isoformat() if entry["end"] else None,
        "size": entry["size"],
        "reason": reason,
    }


def _offsite_hold(module, directory, entries, targets):
    """``({path: reason}, [held row])`` for the good backups without a verified copy at every target."""
    if not targets:
        return {}, []
    try:
        labels = [offsite.label_for(t) for t in targets]
        data = ledger.load(directory)
    except (ValueError, ledger.LedgerError) as exc:
        module.fail_json(msg="backup_retention: nothing pruned: %s" % exc)
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


def main():
    module = AnsibleModule(
        argument_spec=dict(
            backup_dir=dict(type="path", required=True),
            database=dict(type="str"),
            days=dict(type="int", default=7),
            weekly=dict(type="int", default=0),
            monthly=dict(type="int", default=0),
            min_keep=dict(type="int", default=7),
            pre_change_days=dict(type="int", default=30),
            pre_change_min_keep=dict(type="int", default=3),
            new_backup=dict(type="path"),
            require_verified_within=dict(type="int", default=93600),
            offsite_targets=dict(type="list", elements="dict", default=[]),
        ),
        supports_check_mode=True,
    )
    p = module.params
    for key in ("days", "weekly", "monthly", "pre_change_days", "require_verified_within"):
        if p[key] < 0:
            module.fail_json(msg="backup_retention: %s must not be negative (got %d)" % (key, p[key]))
    for key in ("min_keep", "pre_change_min_keep"):
        if p[key] < 1:
            module.fail_json(
                msg="backup_retention: %s must be at least 1 (got %d): the newest backups are "
                "never all pruned" % (key, p[key])
            )
    directory = p["backup_dir"]
    if not os.path.isdir(directory):
        if module.check_mode:  # a dry run before the first backup: nothing there, nothing to prune
            module.exit_json(
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
        module.fail_json(
            msg="backup_retention: %s does not exist: there is nothing to prune, and no backup "
            "was made there" % directory
        )
    now = datetime.datetime.now(datetime.timezone.utc)
    entries = [
        e for e in manifest.list_backups(directory) if p["database"] is None or e["database"] in (None, p["database"])
    ]

    # Prune only after a new backup was verified (re-hashed once here, not again below).
    refusal, known_good = None, ()
    if p["new_backup"]:
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
    if refusal and not module.check_mode:
        module.fail_json(
            msg="backup_retention: nothing pruned, %s" % refusal, newest_verified=newest["file"] if newest else None
        )
    if refusal:  # check mode: the real run would refuse (or follow a new backup); still list the plan
        module.warn("backup_retention: a real run now would prune nothing: %s" % refusal)
    protect = {newest["path"]} if newest else set()
    hold, held = _offsite_hold(module, directory, entries, p["offsite_targets"])
    decided = retention.plan(
        entries,
        now,
        days=p["days"],
        weekly=p["weekly"],
        monthly=p["monthly"],
        min_keep=p["min_keep"],
        pre_change_days=p["pre_change_days"],
        pre_change_min_keep=p["pre_change_min_keep"],
        protect=protect,
        hold=hold,
    )
    remove = [_row(e, why) for e, why in decided["remove"]]
    result = dict(
        changed=bool(remove),
        remove=remove,
        keep=[_row(e, why) for e, why in decided["keep"]],
        ignored=[_row(e, why) for e, why in decided["ignored"]],
        newest_verified=newest["file"] if newest else None,
        freed_bytes=sum(e["size"] or 0 for e, _ in decided["remove"]),
        held_for_offsite=held,
        held_bytes=sum(h["bytes"] for h in held),
    )
    if held:
        module.warn(
            "backup_retention: %d backup(s) (%d bytes) are kept because they have no verified off-site copy "
            "at every target: %s. Fix the off-site copy (playbooks/offsite.yml); retention never deletes "
            "the only copy of a backup" % (len(held), result["held_bytes"], ", ".join(h["file"] for h in held))
        )
    for row in result["ignored"]:
        module.warn("backup_retention: %s is not a good backup and was left alone: %s" % (row["file"], row["reason"]))
    if not module.check_mode:
        for entry, _ in decided["remove"]:
            try:
                os.unlink(entry["path"])  # the file first: a manifest without its file is never "good"
                for companion in manifest.companions(entry):
                    if os.path.exists(companion):
                        os.unlink(companion)
                os.unlink(entry["manifest_path"])
            except OSError as exc:
                module.fail_json(
                    msg="backup_retention: cannot remove %s: %s" % (entry["path"], exc.strerror or exc), **result
                )
        if remove:
            manifest.fsync_dir(directory)
    module.exit_json(
        msg="%s %d backup(s), kept %d"
        % ("would remove" if module.check_mode else "removed", len(remove), len(result["keep"])),
        **result,
    )


if __name__ == "__main__":
    main()
