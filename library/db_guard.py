#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Install, check or remove the guard inside PostgreSQL (TRUNCATE, DROP, mass DELETE/UPDATE)."""

DOCUMENTATION = r"""
---
module: db_guard
short_description: The guard inside PostgreSQL that refuses TRUNCATE, DROP and mass DELETE/UPDATE for every client
description:
  - Installs into the protected database, in plain SQL (no extension), a C(datasafe) schema with
    the guard's functions, settings and audit table; statement-level triggers (C(ENABLE ALWAYS))
    on every table of the protected schemas that refuse C(TRUNCATE) and a single C(DELETE) or
    C(UPDATE) changing every row of a table with at least two rows or more rows than the limit;
    and event triggers that guard tables created later and refuse dropping tables, materialized
    views, columns, schemas and the guard itself.
  - C(SET LOCAL datasafe.break_glass = '<reason>') in a transaction lets a refused operation
    through and records it in C(datasafe.audit) and the server log. See docs/guards.md.
  - O(state=present) installs, upgrades (the stored version names the guard's code) or repairs it;
    nothing happens when it is current, complete and configured as asked.
  - O(state=absent) removes triggers, event triggers and functions; C(datasafe.audit) (the
    break-glass history) and C(datasafe.settings) stay.
  - O(state=checked) only reads, and fails when the guard is installed but was changed (a trigger
    disabled or missing, an event trigger disabled, a function replaced or dropped, an old
    version), or when O(required) and it is not installed, naming every change.
  - Runs C(psql) inside the database container; the check reads the catalogs and never trusts the
    guard's own functions.
version_added: "0.1.0"
author: datasafe maintainers
options:
  database:
    description: The protected database.
  user:
    description:
      - Database role C(psql) connects as, over the container's local socket; installing and
        removing need a superuser (event triggers).
  state:
    description:
      - Installed (V(present)), removed (V(absent)) or only checked (V(checked)).
      - V(refusals) only reads the server log since O(log_since) and returns the guard's refusals
        (RV(refusals)); the safe update's rollback names them in its failure.
    type: str
    choices: [present, absent, checked, refusals]
    default: present
  log_since:
    description:
      - With O(state=refusals), where to start reading the server log (a Unix time, or what
        C(docker logs --since) takes).
    type: str
  default_max_rows:
    description: The most rows one DELETE or UPDATE may change in a table without an override.
    type: int
    default: 1000
  table_limits:
    description:
      - Per-table limits, C(table) or C(schema.table) (C(public) when unqualified) to a whole
        number of rows, or V(off) to switch the mass DELETE/UPDATE rule off for that table
        (TRUNCATE and DROP stay refused).
    type: dict
    default: {}
  schemas:
    description: Schemas to protect; empty means every schema but PostgreSQL's own and C(datasafe).
    type: list
    elements: str
    default: []
  required:
    description: With O(state=checked), fail when the guard is not installed at all.
    type: bool
    default: false
  metrics_file:
    description:
      - Prometheus textfile to update with the check's result (C(datasafe_dbguard_ok),
        C(datasafe_dbguard_problems), C(datasafe_dbguard_last_check_timestamp_seconds)), on
        success and on failure. Not written in check mode.
    type: path
extends_documentation_fragment:
  - datasafe
attributes:
  check_mode:
    support: full
    description: Reports what would be installed, repaired or removed (RV(actions)) and changes nothing.
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Install the guard, with a higher limit for the visits table and none for a scratch table
  db_guard:
    container: lms-postgres
    database: lms_slncity
    user: lms_user
    default_max_rows: 1000
    table_limits:
      visits: 5000
      import_staging: "off"

- name: Fail loudly when the guard was switched off or changed
  db_guard:
    container: lms-postgres
    database: lms_slncity
    user: lms_user
    state: checked
    required: true
"""

RETURN = r"""
actions:
  description: What was (in check mode, would be) installed, upgraded, repaired or removed.
  returned: always
  type: list
  elements: str
  sample: ["install the guard (version 1+5c0ffee12345)"]
guard:
  description: The check's verdict after the run (before it, in check mode).
  returned: always
  type: dict
  contains:
    installed: {description: The guard is (at least partly) installed., type: bool, returned: always}
    enabled: {description: Installed, complete and every trigger ENABLE ALWAYS., type: bool, returned: always}
    tampered:
      description: Something of an installed guard is missing, disabled or replaced.
      type: bool
      returned: always
    current: {description: The installed version is this datasafe's., type: bool, returned: always}
    version: {description: The installed version., type: str, returned: always}
    expected_version: {description: This datasafe's version of the guard., type: str, returned: always}
    problems: {description: One line per change found., type: list, elements: str, returned: always}
    tables: {description: The guarded tables., type: list, elements: str, returned: always}
    settings: {description: Default limit, schemas and per-table limits as installed., type: dict, returned: always}
    audit_rows: {description: Rows in datasafe.audit (break-glass uses)., type: int, returned: always}
refusals:
  description: The guard's refusals in the server log since O(log_since), at most the last ten.
  returned: when state is refusals
  type: list
  elements: str
metrics_file:
  description: The textfile written, when O(metrics_file) is set and not in check mode.
  returned: when written
  type: str
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.datasafe import container, dbguard, modulekit, specs


def main():
    module = AnsibleModule(
        argument_spec=specs.spec(
            specs.CONNECTION,
            state=dict(type="str", choices=["present", "absent", "checked", "refusals"], default="present"),
            log_since=dict(type="str"),
            default_max_rows=dict(type="int", default=dbguard.DEFAULT_MAX_ROWS),
            table_limits=dict(type="dict", default={}),
            schemas=dict(type="list", elements="str", default=[]),
            required=dict(type="bool", default=False),
            metrics_file=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    run = container.module_runner(module)
    where = (run, p["container"], p["database"], p["user"])
    if p["state"] == "refusals":
        if not p["log_since"]:
            module.fail_json(msg="db_guard: state refusals needs log_since (a Unix time); nothing was read")
        refusals = modulekit.call(
            module,
            lambda: dbguard.refusals_since(run, p["container"], p["log_since"]),
            "db_guard",
            (dbguard.DbGuardError,),
            refusals=[],
        )
        module.exit_json(changed=False, actions=[], refusals=refusals)
    try:
        desired = dbguard.normalize_settings(p["default_max_rows"], p["table_limits"], p["schemas"])
        if p["state"] == "present":
            done = dbguard.install(*where, desired, check_mode=module.check_mode)
        elif p["state"] == "absent":
            done = dbguard.remove(*where, check_mode=module.check_mode)
        else:
            done = {"changed": False, "actions": [], "check": dbguard.check(*where)}
    except ValueError as exc:
        module.fail_json(msg="db_guard: %s; nothing was changed" % exc, actions=[])
    except dbguard.DbGuardError as exc:
        module.fail_json(msg="db_guard: %s" % exc, actions=[])
    verdict = done["check"]
    result = dict(changed=done["changed"], actions=done["actions"], guard=verdict)
    if p["metrics_file"] and not module.check_mode:
        result["metrics_file"] = dbguard.write_metrics(p["metrics_file"], p["database"], verdict, time.time())
    failure = dbguard.checked_failure(verdict, p["required"]) if p["state"] == "checked" else None
    if failure:
        module.fail_json(msg="db_guard: %s" % failure, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
