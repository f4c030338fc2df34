#!/usr/bin/python
# -*- coding: utf-8 -*-
"""What a restore reads before it acts: does the database answer, which databases did earlier restores keep."""

DOCUMENTATION = r"""
---
module: restore_probe
short_description: Read whether the database answers, or which databases earlier restores kept
description:
  - O(probe=reachable) runs C(SELECT 1) in O(database); the restore takes its safety backup only
    when the current database answers. Unreachable is an answer (RV(rc), RV(stderr)), not a failure.
  - O(probe=kept) lists the databases earlier restores kept beside O(database)
    (C(<database>_before_restore_<ts>), a failed restore's C(<database>_restore_<ts>)) with their
    sizes, read from O(maintenance_db), and returns the finished lines an operator reads in
    RV(lines). A restore never drops anything, so these show the disk it holds.
  - Only reads; it never fails for an unreachable server and never reports a change.
version_added: "0.9.0"
author: datasafe maintainers
options:
  database:
    description: The live database (the one a restore replaces).
  probe:
    description: V(reachable) (does O(database) answer a query) or V(kept) (the databases earlier restores kept).
    type: str
    choices: [reachable, kept]
    required: true
  maintenance_db:
    description: The database O(probe=kept) connects to (it reads C(pg_database)).
    type: str
    default: postgres
extends_documentation_fragment:
  - datasafe
  - datasafe.read_only
"""

EXAMPLES = r"""
- name: Find out whether the current database is reachable
  restore_probe:
    container: lms-postgres
    database: lms_slncity
    user: lms_user
    probe: reachable
  register: reachable

- name: List the databases earlier restores kept
  restore_probe:
    container: lms-postgres
    database: lms_slncity
    user: lms_user
    probe: kept
  register: kept
"""

RETURN = r"""
rc:
  description: psql's exit status; 0 when the database answered.
  returned: always
  type: int
stdout:
  description: psql's output (O(probe=reachable), C(1) when it answered; O(probe=kept), one database a line).
  returned: always
  type: str
stdout_lines:
  description: With O(probe=kept), each kept database as C(<name>  <size>); else the lines of RV(stdout).
  returned: always
  type: list
  elements: str
stderr:
  description: psql's error output (why the database is not reachable).
  returned: always
  type: str
lines:
  description: With O(probe=kept), the finished lines for the operator (a heading, each database or why none shows).
  returned: when probe is kept
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.datasafe import restore, runner, specs


def main():
    module = AnsibleModule(
        argument_spec=specs.spec(
            specs.CONNECTION,
            probe=dict(type="str", choices=["reachable", "kept"], required=True),
            maintenance_db=dict(type="str", default=restore.MAINTENANCE_DB),
        ),
        supports_check_mode=True,
    )
    p, run = module.params, runner.for_module(module)
    if p["probe"] == "kept":
        result = restore.kept_databases(run, p["container"], p["user"], p["database"], p["maintenance_db"])
    else:
        result = restore.probe(run, p["container"], p["user"], p["database"])
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
