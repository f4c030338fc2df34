#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Am I protected right now? (engine: module_utils/datasafe/status.py)"""

DOCUMENTATION = r"""
---
module: stack_status
short_description: The protection state of one stack - last verified backup, off-site copy, drill, change lock
description:
  - Reads what datasafe already writes and judges each part green or red - the newest verified
    backup of O(database) in O(backup_dir) (age at most O(backup_max_age)); the newest off-site copy
    and restore drill in the JSON change log beside O(change_log) (succeeded, and not older than
    O(offsite_max_age) / O(drill_max_age)); the change lock O(lock_path) (free, or held by a
    running change; red when an interrupted run left it or it is older than O(lock_stale_after)).
  - Does not fail on what it finds; RV(failures) lists the red parts, so the caller shows the
    whole table first and fails with the reasons last. Reads only.
version_added: "0.2.0"
author: datasafe maintainers
options:
  backup_dir:
    description: Where the backups and their manifests are.
    type: path
    required: true
  database:
    description: The database whose backups count.
    type: str
    required: true
  change_log:
    description: The human change log; its JSON lines are read from C(.jsonl) beside it.
    type: path
    required: true
  lock_path:
    description: The stack's change lock.
    type: path
    required: true
  backup_max_age:
    description: Seconds after which the newest verified backup is stale.
    type: int
    default: 93600
  offsite_max_age:
    description: Seconds after which the newest off-site copy is stale.
    type: int
    default: 93600
  drill_max_age:
    description: Seconds after which the newest restore drill is stale.
    type: int
    default: 691200
  lock_stale_after:
    description: Seconds after which a held lock is red.
    type: int
    default: 21600
  expect_offsite:
    description: Whether an off-site copy must exist (red when there never was one).
    type: bool
    default: true
  expect_drill:
    description: Whether a restore drill must have run (red when it never did).
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: It only reads; check mode reports exactly what a real run does.
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Read the protection state
  stack_status:
    backup_dir: ~/backups
    database: lms_slncity
    change_log: ~/change-log.txt
    lock_path: ~/.datasafe/lms.lock
  register: status
"""

RETURN = r"""
checks:
  description: One entry per part (name, ok, detail, age_seconds, at).
  returned: always
  type: list
  elements: dict
failures:
  description: One line per red part; empty when protected.
  returned: always
  type: list
  elements: str
lines:
  description: The table as text lines.
  returned: always
  type: list
  elements: str
ok:
  description: Whether every part is green.
  returned: always
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.datasafe import changelog, status


def main():
    module = AnsibleModule(
        argument_spec=dict(
            backup_dir=dict(type="path", required=True),
            database=dict(type="str", required=True),
            change_log=dict(type="path", required=True),
            lock_path=dict(type="path", required=True),
            backup_max_age=dict(type="int", default=93600),
            offsite_max_age=dict(type="int", default=93600),
            drill_max_age=dict(type="int", default=691200),
            lock_stale_after=dict(type="int", default=21600),
            expect_offsite=dict(type="bool", default=True),
            expect_drill=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    p = module.params
    result = status.gather(
        p["backup_dir"],
        p["database"],
        changelog.json_log_path(p["change_log"]),
        p["lock_path"],
        {
            "backup": p["backup_max_age"],
            "offsite": p["offsite_max_age"],
            "drill": p["drill_max_age"],
            "lock": p["lock_stale_after"],
        },
        {"offsite": p["expect_offsite"], "drill": p["expect_drill"]},
    )
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
