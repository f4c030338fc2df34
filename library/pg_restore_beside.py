#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Restore a verified backup into a new database beside the live one and compare its counts."""

DOCUMENTATION = r"""
---
module: pg_restore_beside
short_description: Restore a verified backup into a new database beside the live one
description:
  - Loads the backup's manifest and re-checks the backup file's size and sha256 against it;
    a backup without a verified manifest, or whose bytes changed, is refused before anything
    is created.
  - Creates a NEW database O(new_database) beside O(database), owned by O(user) with the
    encoding and locale of O(database), and restores the backup into it inside the container
    (C(gzip -dc | psql -v ON_ERROR_STOP=1) in one explicit transaction under C(pipefail), whose
    C(COMMIT) is sent only after the decompressor read the whole stream and exited 0; or
    C(pg_restore) for the custom format), so a truncated or failing restore commits nothing.
  - The restore's own session gets O(session_settings) (C(SET LOCAL), nothing else is affected)
    and, for the plain format, runs C(ANALYZE) inside the same transaction.
  - Counts every table of the manifest exactly in the new database and compares the counts
    with the manifest; any difference fails the module.
  - Never writes into, alters or drops O(database) or any existing database. A failed restore
    leaves O(new_database) behind for inspection (named in the error); it is never dropped.
version_added: "0.1.0"
author: datasafe maintainers
options:
  user:
    description: Role that connects (over the container's local socket) and owns the new database.
  database:
    description:
      - The live database the backup is restored beside. It is only read (its owner,
        encoding and locale are copied); it may be missing after a disaster.
  backup:
    description: Path of the backup file on the host; its manifest is C(<backup>.json).
    type: path
    required: true
  new_database:
    description:
      - The database to create and restore into. Must not exist.
      - Defaults to C(<database>_restore_<timestamp>).
    type: str
  timestamp:
    description:
      - C(YYYYMMDD_HHMMSS) used to name O(new_database), so one restore's names belong together.
      - Defaults to now.
    type: str
  tables:
    description:
      - Tables to count and compare. Defaults to every table in the manifest's counts.
      - A table listed here but absent from the manifest is a failure (it cannot be verified).
    type: list
    elements: str
  expected_database:
    description:
      - The database the backup must have been taken of (the manifest's C(database)).
      - Defaults to O(database); a backup of another database is refused.
    type: str
  maintenance_db:
    description: Database to connect to for C(CREATE DATABASE).
    type: str
    default: postgres
  jobs:
    description: Parallel jobs for C(pg_restore) (custom format only; the plain format is one transaction).
    type: int
    default: 1
  analyze:
    description: Run C(ANALYZE) on the restored database, so the application does not start on empty statistics.
    type: bool
    default: true
  session_settings:
    description:
      - Settings for the restore's own session (plain format), applied with C(SET LOCAL) inside its
        transaction; no other session and no server setting changes.
      - Defaults to C(maintenance_work_mem=512MB) (index builds and foreign-key checks of the
        post-data section sort in memory and may use parallel workers), C(work_mem=64MB) and
        C(synchronous_commit=off) (the swap that follows commits synchronously and so flushes the
        restore's commit record too).
    type: dict
  detach:
    description:
      - Return at once, after the checks above (manifest, size, sha256, tables), and restore in a
        detached process of this module; RV(job) names the file its result appears in, with the
        same fields this module returns, in the shape of an Ansible async job's results file
        (M(pg_swap_database) O(pg_swap_database#module:restore_job) and M(job_result) read it).
      - Instead of Ansible's C(async), which starts its wrapper and the module as extra processes
        and so adds a few tenths of a second before the restore starts.
      - In check mode the file is written at once with the check-mode result.
    type: bool
    default: false
  ready_timeout:
    description:
      - Seconds to wait (C(pg_isready), polled) for a server that does not answer the first query
        to accept connections; 0 does not wait. A server that answers at once is not probed.
    type: int
    default: 60
extends_documentation_fragment:
  - datasafe
attributes:
  check_mode:
    support: full
    description:
      - The manifest and the file's sha256 are checked exactly as in a real run; nothing is created
        and RV(changed) says a database would be created.
  diff_mode:
    support: none
notes:
  - Requires the C(docker) CLI on the host, and C(bash), C(gzip) and C(psql) in the container
    (the official PostgreSQL image has them).
"""

EXAMPLES = r"""
- name: Restore the chosen backup beside the live database
  pg_restore_beside:
    container: lms-postgres
    user: lms_user
    database: lms_slncity
    backup: /home/lab/backups/lms_backup_20261123_020000.sql.gz
    timestamp: "20261123_101500"
  register: restored
"""

RETURN = r"""
new_database:
  description: The database created and restored into.
  returned: always
  type: str
  sample: lms_slncity_restore_20261123_101500
manifest:
  description: The backup's manifest as loaded.
  returned: success
  type: dict
counts:
  description: Exact row counts in the restored database.
  returned: success
  type: dict
  sample: {"users": 10, "patients": 2000}
problems:
  description: Tables whose restored count differs from the manifest; empty when all match.
  returned: always
  type: list
  elements: dict
job:
  description:
    - With O(detach), the result file of the detached restore. It says C(finished) 0 while the
      restore runs, then holds this module's result (RV(new_database), RV(counts), RV(problems),
      C(failed), C(msg)).
  returned: when O(detach)
  type: str
  sample: /tmp/datasafe-restore-beside-k2j4.json
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
from ansible.module_utils.datasafe import container, modulekit, restore, restore_run, specs


def main():
    module = AnsibleModule(
        argument_spec=specs.spec(
            specs.CONNECTION,
            backup=dict(type="path", required=True),
            new_database=dict(type="str"),
            timestamp=dict(type="str"),
            tables=dict(type="list", elements="str"),
            expected_database=dict(type="str"),
            maintenance_db=dict(type="str", default=restore.MAINTENANCE_DB),
            jobs=dict(type="int", default=1),
            analyze=dict(type="bool", default=True),
            session_settings=dict(type="dict"),
            ready_timeout=dict(type="int", default=60),
            detach=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    modulekit.finish(
        module,
        lambda: restore_run.beside(module.params, container.module_runner(module), module.check_mode),
        None,
        (restore_run.RestoreFailed,),
    )


if __name__ == "__main__":
    main()
