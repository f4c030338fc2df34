#!/usr/bin/python
# -*- coding: utf-8 -*-
"""List backups, or choose the one to restore, re-checking sha256 before anything is touched."""

DOCUMENTATION = r"""
---
module: restore_plan
short_description: List backups or choose the backup to restore, with its sha256 re-checked
description:
  - O(mode=list) lists every backup in O(backup_dir), newest first, with its age, size, kind
    and whether it is verified now (manifest says verified and the file's size and sha256
    still match it).
  - O(mode=plan) chooses the backup to restore, O(backup) when given, else the newest backup
    of O(database) that verifies now (newer backups that fail are named in RV(skipped)), and
    fails when there is none. This is the check that refuses a corrupted or truncated backup
    before anything is stopped.
  - Safety backups a restore took of the database it replaced (label C(before restore ...))
    hold the damaged state, so they are skipped unless named in O(backup).
  - Only reads.
version_added: "0.1.0"
author: datasafe maintainers
options:
  backup_dir:
    description: Directory holding the backups and their C(.json) manifests.
    type: path
    required: true
  database:
    description: Only backups of this database are candidates (the manifest's C(database)).
    type: str
    required: true
  mode:
    description: V(list) every backup, or V(plan) (choose the one to restore).
    type: str
    choices: [list, plan]
    default: plan
  backup:
    description:
      - The backup to restore, as a file name in O(backup_dir) or a full path. Defaults to the
        newest verified backup of O(database).
    type: str
attributes:
  check_mode:
    support: full
    description: It only reads; check mode does exactly what a real run does.
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: List the backups
  restore_plan:
    backup_dir: ~/backups
    database: lms_slncity
    mode: list

- name: Choose the newest verified backup (fails when none verifies)
  restore_plan:
    backup_dir: ~/backups
    database: lms_slncity
  register: plan
"""

RETURN = r"""
backups:
  description: Every backup looked at, newest first (in V(plan) mode only those checked).
  returned: always
  type: list
  elements: dict
  sample: [{"file": "lms_backup_20261123_020000.sql.gz", "kind": "scheduled", "size": 2051234,
            "size_human": "2.0 MiB", "age_seconds": 3600, "age_human": "1h 0m", "verified": true, "problems": []}]
selected:
  description: The backup chosen (V(plan) mode), with its manifest fields.
  returned: when mode is plan
  type: dict
skipped:
  description: Newer backups that were not chosen, each with the reason.
  returned: when mode is plan
  type: list
  elements: str
lines:
  description: One printable line per backup.
  returned: always
  type: list
  elements: str
report:
  description: With O(mode=list), the finished listing for the operator (a heading, then RV(lines) or C((none))).
  returned: when mode is list
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.datasafe import modulekit, restore


def main():
    module = AnsibleModule(
        argument_spec=dict(
            backup_dir=dict(type="path", required=True),
            database=dict(type="str", required=True),
            mode=dict(type="str", choices=["list", "plan"], default="plan"),
            backup=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    modulekit.finish(module, lambda: restore.plan_task(module.params), None, (restore.PlanFailed,))


if __name__ == "__main__":
    main()
