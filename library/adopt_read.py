#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Read a running deployment's datasafe_* variables from its containers (adopt)."""

DOCUMENTATION = r"""
---
module: adopt_read
short_description: Read a running compose deployment's PostgreSQL facts, for its host_vars
description:
  - Finds the running PostgreSQL container of a compose project (the one mounting
    C(/var/lib/postgresql/data), or the one named by O(container)) and reads from its
    C(docker inspect) and its volume's labels the compose project name (as compose recorded it;
    C(docker-compose) v1 and C(docker compose) v2 derive different names from one directory), the
    working directory and compose files, the database service, the container, the named volume's
    key, the database and the user (from the container's environment; the password is never read).
  - Lists the database's tables with a guess of which are critical (application data, not
    sessions, migrations, logs or queues) for the operator to confirm.
  - Refuses a database whose data is not on a named volume.
version_added: "0.1.0"
author: datasafe maintainers
options:
  container:
    description: The PostgreSQL container to adopt, when more than one runs.
    type: str
  project:
    description: Only look in this compose project.
    type: str
extends_documentation_fragment:
  - datasafe.read_only
requirements:
  - the C(docker) CLI on the managed host and C(psql) in the container
seealso:
  - module: adopt_host_vars
  - module: adopt_old_backup
"""
EXAMPLES = r"""
- name: Read the deployment
  adopt_read:
  register: adopted
"""
RETURN = r"""
facts:
  description: The datasafe_* variables read (datasafe_critical_tables excluded; see RV(tables)).
  returned: success
  type: dict
tables:
  description: Every table, with rows_estimate, referenced_by (foreign keys), critical (the guess) and why.
  returned: success
  type: list
  elements: dict
volume:
  description: The Docker name of the database's volume.
  returned: success
  type: str
compose_version:
  description: The compose version that started the stack (its label).
  returned: success
  type: str
health_source:
  description: Where the health URL was found (empty when none was).
  returned: success
  type: str
services:
  description: The project's running services.
  returned: success
  type: list
  elements: str
notes:
  description: What the operator should know (compose v1, a project name compose v2 would derive differently).
  returned: success
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.datasafe import adopt, container, modulekit, runner
from ansible.module_utils.datasafe.stack import DockerError


def main():
    module = AnsibleModule(
        argument_spec=dict(container=dict(type="str"), project=dict(type="str")),
        supports_check_mode=True,
    )
    p = module.params
    modulekit.finish(
        module,
        lambda: dict(adopt.read(runner.for_module(module), p["container"], p["project"]), changed=False),
        None,
        (adopt.AdoptError, DockerError, container.ContainerError),
    )


if __name__ == "__main__":
    main()
