#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Prove a backup restores: restore it into a throwaway server and compare counts with its manifest."""

DOCUMENTATION = r"""
---
module: restore_drill
short_description: Restore a backup into a throwaway PostgreSQL container and compare counts with its manifest
description:
  - The protocol's "test backups regularly", done for real. Chooses O(backup) or the newest
    backup of O(database) whose manifest is verified and whose sha256 still matches, starts a
    throwaway server from O(image) (host network, listening on 127.0.0.1 only, on a free
    port, with its own volume; both labelled C(io.datasafe.restore-drill=<id>)), restores the
    backup into it exactly as an emergency restore would, counts every table of the manifest
    exactly and compares.
  - The throwaway container and volume are removed afterwards, whatever happened, found by
    their label, so nothing else is ever removed. The production stack is never touched.
  - Records the result in the change log (text and JSON) and in a Prometheus textfile
    (O(metrics_file)), on success and on failure, then fails when the drill failed, so a
    scheduled drill that finds a bad backup is loud.
version_added: "0.1.0"
author: datasafe maintainers
options:
  image:
    description: The PostgreSQL image of the production database (the same server version restores).
    type: str
    required: true
  backup_dir:
    description: Directory holding the backups and their manifests.
    type: path
    required: true
  database:
    description: The database the backups are of; the drill restores into a database of that name.
    type: str
    required: true
  user:
    description: Role the throwaway server is initialised with (the backup's objects are owned by it).
    type: str
    required: true
  backup:
    description: A file name in O(backup_dir) or a path; defaults to the newest verified backup.
    type: str
  tables:
    description: Tables to compare; defaults to every table in the manifest's counts.
    type: list
    elements: str
  port:
    description: Loopback port for the throwaway server; V(0) picks a free one.
    type: int
    default: 0
  maintenance_db:
    description: The throwaway server's maintenance database.
    type: str
    default: postgres
  ready_timeout:
    description: Seconds to wait for the throwaway server to accept connections.
    type: int
    default: 120
  change_log:
    description: The human change log; the JSON log is beside it (C(.jsonl)). Omit to record nothing.
    type: path
  metrics_file:
    description:
      - Prometheus textfile to update (atomically, serialised by a lock file C(<metrics_file>.lock) beside it).
        The samples of other databases are kept. Omit to write none.
    type: path
attributes:
  check_mode:
    support: full
    description: Chooses and re-checks the backup; starts nothing and records nothing.
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Drill the newest backup
  restore_drill:
    image: datasafe/postgres:15-bookworm
    backup_dir: ~/backups
    database: lms_slncity
    user: lms_user
    change_log: ~/change-log.txt
    metrics_file: /var/lib/node_exporter/textfile/datasafe_restore_drill.prom
"""

RETURN = r"""
ok:
  description: True when the backup restored and every count matched its manifest.
  returned: always
  type: bool
backup:
  description: The backup drilled (its listing row), or null when none could be chosen.
  returned: always
  type: dict
counts:
  description: Exact row counts in the restored throwaway database.
  returned: when the restore ran
  type: dict
problems:
  description: Tables whose count differs from the manifest.
  returned: always
  type: list
  elements: dict
removed:
  description: The throwaway container and volume removed afterwards.
  returned: always
  type: list
  elements: str
duration_seconds:
  description: Time from start to cleanup.
  returned: always
  type: float
roles:
  description:
    - What the backup's roles file did on the server before the load (see module_utils/datasafe/roles.py)
      - C(created) (roles that were missing), C(existing) (left exactly as they were), C(skipped)
      (memberships of existing roles, settings of databases that do not exist yet). Null for a
      backup made before roles were saved.
  returned: success
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.datasafe import drill, modulekit, restore, runner


def main():
    module = AnsibleModule(
        argument_spec=dict(
            image=dict(type="str", required=True),
            backup_dir=dict(type="path", required=True),
            database=dict(type="str", required=True),
            user=dict(type="str", required=True),
            backup=dict(type="str"),
            tables=dict(type="list", elements="str"),
            port=dict(type="int", default=0),
            maintenance_db=dict(type="str", default=restore.MAINTENANCE_DB),
            ready_timeout=dict(type="int", default=120),
            change_log=dict(type="path"),
            metrics_file=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    modulekit.finish(
        module,
        lambda: drill.execute(module.params, runner.for_module(module), module.check_mode),
        None,
        (drill.DrillFailed,),
    )


if __name__ == "__main__":
    main()
