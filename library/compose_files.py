#!/usr/bin/python
# -*- coding: utf-8 -*-
"""The compose files datasafe passes for a stack: the stack's own, then datasafe's override."""

DOCUMENTATION = r"""
---
module: compose_files
short_description: The compose files of a stack as datasafe passes them (with its own override)
description:
  - Returns the stack's compose files as absolute paths and, last, datasafe's own compose
    override for the project when it exists (continuous recovery writes it; see
    C(playbooks/continuous.yml)), exactly as every datasafe module that runs compose passes them
    (C(module_utils/datasafe/compose.py)). Tasks that call C(community.docker.docker_compose_v2)
    use this list, so a database started there keeps its WAL archiving.
  - Reads only.
version_added: "0.2.0"
author: datasafe maintainers
options:
  project:
    description: Compose project name.
    type: str
    required: true
  compose_dir:
    description: The checkout holding the compose files.
    type: path
    required: true
  files:
    description: The stack's own compose files, relative to O(compose_dir) or absolute.
    type: list
    elements: str
    required: true
extends_documentation_fragment:
  - datasafe.read_only
"""

EXAMPLES = r"""
- name: The compose files, with datasafe's override
  compose_files:
    project: lms
    compose_dir: /srv/lms
    files: [docker-compose.prod.yml]
  register: compose
"""

RETURN = r"""
files:
  description: Absolute paths, datasafe's override last when it exists.
  returned: always
  type: list
  elements: str
override:
  description: Path of datasafe's override for the project (it may not exist).
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.datasafe import compose


def main():
    module = AnsibleModule(
        argument_spec=dict(
            project=dict(type="str", required=True),
            compose_dir=dict(type="path", required=True),
            files=dict(type="list", elements="str", required=True),
        ),
        supports_check_mode=True,
    )
    p = module.params
    module.exit_json(
        changed=False,
        files=compose.effective_files(p["project"], p["files"], p["compose_dir"]),
        override=compose.override_path(p["project"]),
    )


if __name__ == "__main__":
    main()
