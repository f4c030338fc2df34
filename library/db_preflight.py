#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Checks that must pass before a change stops the database: version match and room for a backup."""

DOCUMENTATION = r"""
---
module: db_preflight
short_description: Refuse a change the data directory could not survive, or that has no room for its backup
description:
  - Reads which image the compose files give the database service (as they are on disk now,
    so run it again after a C(git pull)) and that image's PostgreSQL major version, and
    compares it with the data directory's C(PG_VERSION). A new major version cannot open an
    old data directory; starting it would fail after the old server is already down.
  - Measures the database and the free space where backups go, and fails when the free
    space is under O(space_factor) times the database size.
  - Only reads.
version_added: "0.1.0"
author: datasafe maintainers
options:
  database:
    description: The database that will be backed up.
  data_pg_version:
    description: The data directory's PG_VERSION (as RV(stack_info.data_pg_version) returns it).
    type: str
    required: true
  backup_dir:
    description: Where the backup will be written; its nearest existing parent is measured.
    type: path
  space_factor:
    description: Free space needed, as a multiple of the database size (a compressed dump is far smaller).
    type: float
    default: 1.0
extends_documentation_fragment:
  - datasafe
  - datasafe.stack
  - datasafe.read_only
"""

EXAMPLES = r"""
- name: The new compose file's PostgreSQL can open the data directory, and a backup fits
  db_preflight:
    compose_dir: /home/lab/LMS-SLNCity-V1
    compose_files: [docker-compose.prod.yml]
    project: lms
    container: lms-postgres
    database: lms_slncity
    user: lms_user
    data_pg_version: "15"
    backup_dir: ~/backups
"""

RETURN = r"""
compose_argv:
  description: The C(docker compose -p ... -f ...) argv for this stack, to extend with a subcommand.
  returned: always
  type: list
  elements: str
compose_files:
  description:
    - The compose files as absolute paths, datasafe's own override (continuous recovery) last
      when it exists; pass these to every other compose call for the stack.
  returned: always
  type: list
  elements: str
image:
  description: The image the compose files give the database service.
  returned: success
  type: str
image_pg_major:
  description: The PostgreSQL major version that image runs.
  returned: success
  type: str
db_size_bytes:
  description: Size of the database.
  returned: when backup_dir is set
  type: int
free_bytes:
  description: Free space where the backup goes.
  returned: when backup_dir is set
  type: int
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.datasafe import modulekit, runner, specs, stack


def main():
    module = AnsibleModule(
        argument_spec=specs.spec(
            specs.CONNECTION,
            specs.STACK,
            data_pg_version=dict(type="str", required=True),
            backup_dir=dict(type="path"),
            space_factor=dict(type="float", default=1.0),
        ),
        supports_check_mode=True,
    )
    modulekit.finish(
        module,
        lambda: stack.preflight_task(runner.for_module(module), module.params),
        None,
        (stack.PreflightFailed,),
    )


if __name__ == "__main__":
    main()
