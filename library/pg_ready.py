#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Wait until PostgreSQL in its container accepts connections (pg_isready, never a fixed sleep)."""

DOCUMENTATION = r"""
---
module: pg_ready
short_description: Wait until PostgreSQL in its container accepts connections
description:
  - Polls C(pg_isready) inside the database container every O(interval) seconds until the
    server accepts connections to O(database), and returns how long that took. It never
    sleeps a fixed time.
  - A container that exits, vanishes or turns C(unhealthy) while it is waited for ends the
    wait at once, with its log tail, instead of running out O(timeout).
  - It only reads, so it runs in check mode too and never reports a change.
version_added: "0.3.0"
author: datasafe maintainers
options:
  database:
    description: Database to wait for.
  user:
    description: Database role C(pg_isready) asks as.
  timeout:
    description: Seconds to wait before failing.
    type: int
    default: 60
  interval:
    description: Seconds between two polls.
    type: float
    default: 0.5
extends_documentation_fragment:
  - datasafe
attributes:
  check_mode:
    support: full
    description: Waiting changes nothing, so check mode waits exactly like a real run.
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Wait until PostgreSQL accepts connections
  pg_ready:
    container: lms-postgres
    database: postgres
    user: lms_user
    timeout: 60
"""

RETURN = r"""
waited:
  description: Seconds waited until the server answered.
  returned: success
  type: float
  sample: 1.52
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.datasafe import modulekit, ready, runner, specs


def main():
    module = AnsibleModule(
        argument_spec=specs.spec(
            specs.CONNECTION,
            timeout=dict(type="int", default=60),
            interval=dict(type="float", default=0.5),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if p["timeout"] < 1 or not 0.01 <= p["interval"] <= 10:
        module.fail_json(msg="pg_ready: timeout must be at least 1 s and interval 0.01 to 10 s", changed=False)
    waited = modulekit.call(
        module,
        lambda: ready.wait_pg(
            runner.for_module(module),
            p["container"],
            p["user"],
            p["database"],
            p["timeout"],
            watch=True,
            interval=p["interval"],
        ),
        "pg_ready",
        (ready.NotReady,),
        changed=False,
    )
    module.exit_json(changed=False, waited=waited)


if __name__ == "__main__":
    main()
