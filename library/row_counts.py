#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Exact row counts of the critical tables, compared against an earlier snapshot."""

DOCUMENTATION = r"""
---
module: row_counts
short_description: Exact row counts of critical tables, asserted against an earlier snapshot
description:
  - Counts the rows of every listed table exactly (C(count(*)), never the planner's estimate),
    all in one C(REPEATABLE READ) read-only transaction, with C(psql) inside the database
    container, so the counts belong to one consistent snapshot.
  - With O(compare_to), fails when the new counts break O(policy) and names every table
    with its count before and after.
  - Reads only; it never changes anything, so it runs in check mode too.
version_added: "0.1.0"
author: datasafe maintainers
options:
  database:
    description: Database to count in.
  tables:
    description:
      - Tables to count, plain names or C(schema.table).
      - A name that is not a plain identifier is refused before anything runs.
    type: list
    elements: str
    required: true
  compare_to:
    description:
      - An earlier snapshot, as returned in RV(counts). Tables missing from it are counted
        but not compared.
    type: dict
  policy:
    description:
      - V(no_decrease) fails when any table has fewer rows than in O(compare_to) (rows may be added).
      - V(equal) fails on any difference.
    type: str
    choices: [no_decrease, equal]
    default: no_decrease
  fail_on_problems:
    description:
      - Fail when the counts break O(policy). Set false where the caller decides what to do
        (a rollback that must restore data rather than stop); RV(problems) says what broke.
    type: bool
    default: true
  label:
    description: A name for this snapshot (for example C(after down)), repeated in messages.
    type: str
    default: snapshot
extends_documentation_fragment:
  - datasafe
attributes:
  check_mode:
    support: full
    description: It only reads, so check mode counts exactly as a real run does.
  diff_mode:
    support: none
notes:
  - Requires the C(docker) CLI on the host and C(psql) in the container (the official
    PostgreSQL image has it).
"""

EXAMPLES = r"""
- name: Snapshot the row counts before the change
  row_counts:
    container: lms-postgres
    database: lms_slncity
    user: lms_user
    tables: [users, patients, visits, test_results, invoices]
  register: counts_before

- name: Assert no table lost a row
  row_counts:
    container: lms-postgres
    database: lms_slncity
    user: lms_user
    tables: [users, patients, visits, test_results, invoices]
    compare_to: "{{ counts_before.counts }}"
    policy: no_decrease
    label: after up
"""

RETURN = r"""
counts:
  description: Exact row count of every table.
  returned: success
  type: dict
  sample: {"users": 10, "patients": 2000, "visits": 6000}
total:
  description: Sum of RV(counts).
  returned: success
  type: int
  sample: 8010
problems:
  description: One entry per table that breaks O(policy); empty when all is well.
  returned: always
  type: list
  elements: dict
  sample: [{"table": "visits", "before": 6000, "after": 5990, "problem": "lost 10 row(s)"}]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.datasafe import container, counts, modulekit, specs


def main():
    module = AnsibleModule(
        argument_spec=specs.spec(
            specs.CONNECTION,
            tables=dict(type="list", elements="str", required=True),
            compare_to=dict(type="dict"),
            policy=dict(type="str", choices=list(counts.POLICIES), default="no_decrease"),
            fail_on_problems=dict(type="bool", default=True),
            label=dict(type="str", default="snapshot"),
        ),
        supports_check_mode=True,
    )
    modulekit.finish(
        module, lambda: counts.task(container.module_runner(module), module.params), None, (counts.CountsFailed,)
    )


if __name__ == "__main__":
    main()
