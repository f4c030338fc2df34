#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Undo, step 2: bring back what a review found, in one transaction, after a verified backup."""

DOCUMENTATION = r"""
---
module: undo_apply
short_description: Apply an undo review to the live database in one transaction
description:
  - Reads the review O(review) (written by M(undo_review) into the schema C(datasafe_undo_<review>))
    and, in one transaction, re-inserts the rows to bring back (parents before children) and
    reverts the rows the mistake changed; conflicts are listed and never written.
  - Refuses to run without O(confirm) naming the database, without a verified backup younger
    than O(backup_max_age_minutes) in O(backup_dir), for a review applied already, or when a row
    it would write changed since the review (run the review again).
  - Takes a write lock on the tables for the transaction (reads continue), moves each serial or
    identity sequence past the keys brought back, and asserts every table's count is its count
    before plus the rows brought back. The in-database guard's break-glass is set with the review
    and the backup as reason, so a revert above the guard's row limit goes through, audited.
version_added: "0.3.0"
author: datasafe maintainers
options:
  review:
    description: The review to apply (its run name, for example C(20261201T160300Z)).
    type: str
    required: true
  confirm:
    description: The database's name, to confirm the change.
    type: str
    default: ""
  reason:
    description: Why (written into the guard's audit with the review's name).
    type: str
    default: ""
  backup_dir:
    description: Where the verified backup taken just before is.
    type: path
    default: ~/backups
  backup_max_age_minutes:
    description: How old that backup may be.
    type: int
    default: 15
extends_documentation_fragment:
  - datasafe
attributes:
  check_mode:
    support: full
    description: Reports per table what would be brought back, reverted and left as a conflict; writes nothing.
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Bring back what review 20261201T160300Z found
  undo_apply:
    container: lms-postgres
    database: lms_slncity
    user: lms_user
    review: 20261201T160300Z
    confirm: lms_slncity
"""

RETURN = r"""
counts:
  description: Per table C(before), C(after), C(brought_back), C(reverted).
  returned: when applied
  type: dict
planned:
  description: Per table the review's rows by action.
  returned: always
  type: dict
conflicts:
  description: Per table the conflicts left alone (see the review table's C(_live) column).
  returned: when applied
  type: dict
backup:
  description: The verified backup the apply relied on.
  returned: when applied
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.datasafe import modulekit, runner, specs, undo


def main():
    module = AnsibleModule(
        argument_spec=specs.spec(
            specs.CONNECTION,
            review=dict(type="str", required=True),
            confirm=dict(type="str", default=""),
            reason=dict(type="str", default=""),
            backup_dir=dict(type="path", default="~/backups"),
            backup_max_age_minutes=dict(type="int", default=15),
        ),
        supports_check_mode=True,
    )
    modulekit.finish(
        module,
        lambda: undo.apply_task(runner.for_module(module), module.params, check_mode=module.check_mode),
        "undo apply",
        undo.ERRORS,
    )


if __name__ == "__main__":
    main()
