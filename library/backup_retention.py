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
  new_backup:
    description: Path of the backup just made; it must be verified (sha256 re-checked) before anything is pruned.
    type: path
  require_verified_within:
    description: Without O(new_backup), the newest good backup must be younger than this many seconds.
    type: int
    default: 93600
extends_documentation_fragment:
  - datasafe.retention_policy
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

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.datasafe import modulekit, retention_run, specs


def main():
    module = AnsibleModule(
        argument_spec=specs.spec(
            specs.RETENTION_POLICY,
            backup_dir=dict(type="path", required=True),
            database=dict(type="str"),
            new_backup=dict(type="path"),
            require_verified_within=dict(type="int", default=93600),
        ),
        supports_check_mode=True,
    )
    modulekit.finish(
        module,
        lambda: retention_run.execute(module.params, module.check_mode, module.warn),
        None,
        (retention_run.RetentionFailed,),
    )


if __name__ == "__main__":
    main()
