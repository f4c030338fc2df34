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
  compose_dir:
    description: Directory holding the compose files.
    type: path
    required: true
  compose_files:
    description: Compose files, relative to O(compose_dir).
    type: list
    elements: str
    required: true
  project:
    description: Compose project name.
    type: str
    required: true
  compose_env:
    description: Environment for C(docker compose config) (ports, names, image variables).
    type: dict
    default: {}
  db_service:
    description: The compose service running PostgreSQL.
    type: str
    default: postgres
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
attributes:
  check_mode:
    support: full
    description: It only reads.
  diff_mode:
    support: none
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

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.datasafe import compose, container, runner


def nearest_existing(path):
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def main():
    module = AnsibleModule(
        argument_spec=dict(
            compose_dir=dict(type="path", required=True),
            compose_files=dict(type="list", elements="str", required=True),
            project=dict(type="str", required=True),
            compose_env=dict(type="dict", default={}),
            db_service=dict(type="str", default="postgres"),
            container=dict(type="str", required=True),
            database=dict(type="str", required=True),
            user=dict(type="str", required=True),
            data_pg_version=dict(type="str", required=True),
            backup_dir=dict(type="path"),
            space_factor=dict(type="float", default=1.0),
        ),
        supports_check_mode=True,
    )
    p = module.params
    # Only the compose variables: run_command keeps the rest of the environment as it is.
    env = {k: str(v) for k, v in p["compose_env"].items()}

    run = runner.for_module(module)

    base = compose.compose_argv(p["project"], p["compose_files"], p["compose_dir"])
    result = dict(
        changed=False,
        compose_argv=base,
        compose_files=compose.effective_files(p["project"], p["compose_files"], p["compose_dir"]),
    )
    problems = []
    try:
        result["image"] = compose.service_image(run, base, p["db_service"], env)
        result["image_pg_major"] = compose.image_pg_major(run, result["image"])
    except (RuntimeError, LookupError) as exc:
        module.fail_json(msg="preflight: %s" % exc, problems=[str(exc)], **result)
    if result["image_pg_major"] != p["data_pg_version"].strip():
        problems.append(
            "the compose files run %s (PostgreSQL %s) but the data directory was made by PostgreSQL %s: "
            "it would not start after the old server stops. Upgrade with pg_upgrade or a dump and "
            "restore, not with an update" % (result["image"], result["image_pg_major"], p["data_pg_version"])
        )
    if p["backup_dir"]:
        try:
            rows = container.query(
                container.module_runner(module),
                p["container"],
                p["database"],
                p["user"],
                "SELECT pg_database_size(current_database())",
                stage="measure the database",
            )
        except container.ContainerError as exc:
            module.fail_json(msg="preflight: %s" % exc, problems=[str(exc)], **result)
        result["db_size_bytes"] = int(rows[0][0])
        where = nearest_existing(os.path.expanduser(p["backup_dir"]))
        stat = os.statvfs(where)
        result["free_bytes"] = stat.f_bavail * stat.f_frsize
        needed = int(result["db_size_bytes"] * p["space_factor"])
        if result["free_bytes"] < needed:
            problems.append(
                "only %d MiB free in %s for a backup of a %d MiB database (need %d MiB): free space "
                "first; datasafe never deletes backups to make room"
                % (result["free_bytes"] >> 20, where, result["db_size_bytes"] >> 20, needed >> 20)
            )
    if problems:
        module.fail_json(msg="preflight: " + "; ".join(problems), problems=problems, **result)
    module.exit_json(problems=[], **result)


if __name__ == "__main__":
    main()
