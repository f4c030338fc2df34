#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Facts about a compose stack and the database's named volume; fails when data is at risk."""

DOCUMENTATION = r"""
---
module: stack_info
short_description: State of a compose stack and the identity of its database volume
description:
  - Lists every container of a compose project with its state and health, and checks
    that the database container keeps C(/var/lib/postgresql/data) on the expected named
    volume (C(<project>_postgres_data) by default), not on an anonymous volume, a bind
    mount or the container's own layer.
  - Returns the volume's identity (name, mountpoint, the data directory's inode and the
    cluster's system identifier), which must not change across an update, and the data
    directory's C(PG_VERSION).
  - Only reads; safe in check mode.
version_added: "0.1.0"
author: datasafe maintainers
options:
  project:
    description: The compose project name (C(docker compose -p)).
    type: str
    required: true
  db_service:
    description: The compose service that runs PostgreSQL.
    type: str
    default: postgres
  volume:
    description: The volume's key in the compose file; its docker name is C(<project>_<volume>).
    type: str
    default: postgres_data
  volume_name:
    description: The full docker name of the volume, for external volumes; overrides O(volume).
    type: str
  data_path:
    description: Where the database keeps its data inside the container.
    type: str
    default: /var/lib/postgresql/data
  require_running:
    description:
      - Fail unless every container of the project is running and, where it has a
        healthcheck, healthy.
    type: bool
    default: true
  wait_healthy:
    description:
      - Seconds to wait, re-reading the stack every 0.2 s, while a running service's
        healthcheck still says C(starting) (right after a start), instead of calling the stack
        broken. V(0) judges at once.
      - Docker runs a container's first healthcheck only one interval after the start (30 s
        unless the compose file sets another), so meanwhile the module runs that same
        healthcheck itself, at most once a second per service, as Docker runs it (C(docker exec)
        with the container's user and environment, C(CMD-SHELL) through the container's shell,
        within the healthcheck's timeout). Exit 0 counts as healthy, and the service's
        C(health_checked_now) says so; a failing check is run again until Docker's own verdict
        or the end of the wait.
      - Only C(starting) is waited for; a stopped service or an C(unhealthy) one is a problem at once.
    type: int
    default: 0
  compare_volume_to:
    description:
      - An earlier RV(volume). Any change of its identity (name, mountpoint, data directory
        inode, cluster system identifier) is a problem, because the database now runs on other data.
    type: dict
  fail_on_problems:
    description: Fail when the data is not safely on the named volume (see RV(problems)).
    type: bool
    default: true
extends_documentation_fragment:
  - datasafe.read_only
"""

EXAMPLES = r"""
- name: Check the stack and the volume before touching anything
  stack_info:
    project: lms
  register: stack

- name: Remember the volume's identity to compare after the update
  ansible.builtin.set_fact:
    volume_before: "{{ stack.volume }}"
"""

RETURN = r"""
services:
  description: Every container of the project, keyed by compose service.
  returned: success
  type: dict
  sample: {"postgres": {"container": "lms-postgres", "status": "running", "running": true, "health": "healthy",
                        "health_checked_now": false}}
volume:
  description:
    - The database volume, or null when it does not exist. Its identity is C(name),
      C(mountpoint), C(data_inode) (the data directory's inode, new only when the volume is
      recreated) and C(system_identifier) (PostgreSQL's, new only when the cluster is
      re-initialised); the last two are present while the database runs.
    - C(created_at) is informational; Docker's local driver reports the data directory's
      ctime there, which changes whenever PostgreSQL starts.
  returned: success
  type: dict
  sample: {"name": "lms_postgres_data", "created_at": "2026-11-23T21:50:00Z",
           "mountpoint": "/var/lib/docker/volumes/lms_postgres_data/_data",
           "data_inode": 1474562, "system_identifier": "7576195563744862234"}
data_pg_version:
  description: The major version written in the data directory's PG_VERSION, when the database runs.
  returned: success
  type: str
  sample: "15"
problems:
  description: Every reason the data is at risk or the stack is not up.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.datasafe import modulekit, stack


def main():
    module = AnsibleModule(
        argument_spec=dict(
            project=dict(type="str", required=True),
            db_service=dict(type="str", default="postgres"),
            volume=dict(type="str", default="postgres_data"),
            volume_name=dict(type="str"),
            data_path=dict(type="str", default=stack.PGDATA),
            require_running=dict(type="bool", default=True),
            wait_healthy=dict(type="int", default=0),
            compare_volume_to=dict(type="dict"),
            fail_on_problems=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    modulekit.finish(module, lambda: stack.info_task(module.run_command, module.params), None, (stack.StackError,))


if __name__ == "__main__":
    main()
