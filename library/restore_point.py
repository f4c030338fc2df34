#!/usr/bin/python
# -*- coding: utf-8 -*-
"""A named restore point before a datasafe change, so "just before it" is a recovery target."""

DOCUMENTATION = r"""
---
module: restore_point
short_description: Create a named PostgreSQL restore point before a change
description:
  - Calls C(pg_create_restore_point) with C(datasafe-<action>-<UTC time>) (or O(name)), so
    C(playbooks/recover.yml -e datasafe_recover_target_kind=name -e datasafe_recover_target=NAME)
    recovers to just before the change.
  - When the server does not archive WAL (continuous recovery is off) there is nothing to
    recover to; it creates nothing and reports C(changed=false) with the reason.
version_added: "0.2.0"
author: datasafe maintainers
options:
  action:
    description: What is about to happen (update, restore, break-glass ...); part of the name.
    type: str
    required: true
  name:
    description: The restore point's name instead of the generated one.
    type: str
extends_documentation_fragment:
  - datasafe
attributes:
  check_mode:
    support: full
    description: Reports the name it would create; creates nothing.
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Restore point before the update
  restore_point:
    container: lms-postgres
    database: lms_slncity
    user: lms_user
    action: update
"""

RETURN = r"""
name:
  description: The restore point created, or null when none was.
  returned: always
  type: str
lsn:
  description: Its WAL position.
  returned: when created
  type: str
skipped:
  description: Why none was created.
  returned: when none was created
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.datasafe import container, continuous, modulekit, runner, specs


def main():
    module = AnsibleModule(
        argument_spec=specs.spec(
            specs.CONNECTION,
            action=dict(type="str", required=True),
            name=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    name = p["name"] or continuous.restore_point_name(p["action"])
    if module.check_mode:
        module.exit_json(changed=False, name=name, skipped="check mode")
    point = modulekit.call(
        module,
        lambda: continuous.create_restore_point(
            runner.for_module(module), p["container"], p["database"], p["user"], name
        ),
        "restore point",
        (continuous.ContinuousError, container.ContainerError),
        name=None,
    )
    module.exit_json(changed=point["name"] is not None, **point)


if __name__ == "__main__":
    main()
