#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Stop named compose services, and nothing else (the stack engine's stop, beside stack_start)."""

DOCUMENTATION = r"""
---
module: stack_stop
short_description: Stop named services of a compose stack; never create, recreate or remove a container
description:
  - Runs C(docker compose stop -- SERVICE...) for the named O(services) that are running, with
    the same compose command line C(stack_start) uses (C(-p), C(--project-directory), absolute
    C(-f)). Services that are not running are left alone; when none of them runs, nothing runs.
  - It only stops. M(community.docker.docker_compose_v2) with C(state=stopped) first runs
    C(up --no-start) for the services and their dependencies, which recreates a container whose
    compose configuration changed since it was started; during a restore that container is the
    database the restore beside is loading into.
  - O(services) must name at least one service; an empty list would stop every service, the
    database too.
version_added: "0.3.0"
author: datasafe maintainers
options:
  services:
    description: The services to stop, by compose service name (at least one).
    type: list
    elements: str
    required: true
extends_documentation_fragment:
  - datasafe.compose
attributes:
  check_mode:
    support: full
    description: Lists the running services (one C(docker ps)) and returns the command that would run; stops nothing.
  diff_mode:
    support: none
seealso:
  - module: stack_start
"""

EXAMPLES = r"""
- name: Stop the application before the restore swaps the database
  stack_stop:
    project_src: /srv/lms
    project_name: lms
    files: [docker-compose.prod.yml]
    services: [backend]
"""

RETURN = r"""
commands:
  description: The compose command that ran (or would run, in check mode); empty when no named service was running.
  returned: always
  type: list
  elements: list
  sample: [[docker, compose, -p, lms, --project-directory, /srv/lms, -f, /srv/lms/docker-compose.prod.yml, stop, --,
            backend]]
stopped:
  description: The named services that were running, so this run stopped them (or would, in check mode).
  returned: always
  type: list
  elements: str
  sample: [backend]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.datasafe import modulekit, runner, specs, stack


def main():
    module = AnsibleModule(
        argument_spec=specs.spec(
            specs.COMPOSE,
            services=dict(type="list", elements="str", required=True),
        ),
        supports_check_mode=True,
    )
    p = module.params
    modulekit.finish(
        module,
        lambda: stack.stop(
            runner.for_module(module),
            p["project_name"],
            p["files"],
            p["project_src"],
            p["services"],
            check_mode=module.check_mode,
        ),
        "stack_stop",
        (ValueError, stack.StackError),
        changed=False,
    )


if __name__ == "__main__":
    main()
