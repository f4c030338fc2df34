#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Swap a restored database in by renaming; the current one is kept under a new name."""

DOCUMENTATION = r"""
---
module: pg_swap_database
short_description: Put a restored database in place of the live one by renaming, keeping the old one
description:
  - In ONE transaction on the maintenance database, ends every session on O(database) and
    O(restored) (C(pg_terminate_backend) with a timeout, so they are gone before the rename),
    renames O(database) to O(keep_as) and O(restored) to O(database). The swap happens whole
    or not at all; nothing is dropped.
  - A client that connects between the terminate and the rename makes the transaction fail
    whole; the swap is then tried again, up to O(attempts) times.
  - The outcome is proven by database OID, not assumed. When it is not exactly "restored is
    now O(database), the old one is O(keep_as)", the old database is given its name back and
    the module fails loudly.
  - When O(database) does not exist (it was dropped), O(restored) is simply renamed into place.
  - Stop the application first; its sessions would otherwise be terminated mid-work.
  - With O(restore_job), it first waits for the background C(pg_restore_beside) job that
    fills O(restored) and swaps only when that job succeeded, restored exactly
    O(restored) and every count matched its manifest; otherwise it fails and renames nothing.
version_added: "0.1.0"
author: datasafe maintainers
options:
  user:
    description: Role that connects over the container's local socket (must own both databases or be superuser).
  database:
    description: The live database name the application uses.
  restored:
    description: The restored database to put in its place.
    type: str
    required: true
  keep_as:
    description:
      - The name the current O(database) keeps. Must not exist.
      - Defaults to C(<database>_before_restore_<timestamp>).
    type: str
  timestamp:
    description: C(YYYYMMDD_HHMMSS) for the default O(keep_as); defaults to now.
    type: str
  maintenance_db:
    description: Database to connect to while renaming (never one of the two renamed).
    type: str
    default: postgres
  attempts:
    description: How often to try the swap transaction when a client sneaks in.
    type: int
    default: 5
  terminate_timeout_ms:
    description: How long C(pg_terminate_backend) waits for each session to end.
    type: int
    default: 5000
  restore_job:
    description:
      - The result file of the background C(pg_restore_beside) that restores into O(restored),
        that is its RV(pg_restore_beside#module:job) with O(pg_restore_beside#module:detach), or
        the C(results_file) of a C(pg_restore_beside) task run with C(async) and C(poll 0).
      - The file is read every O(restore_job_poll) seconds until the job ended; its result is
        returned as RV(restore) and the file removed, whether the swap accepts the result or not.
    type: path
  restore_job_timeout:
    description: Seconds to wait for O(restore_job) before failing (nothing is swapped then).
    type: int
    default: 21600
  restore_job_poll:
    description: Seconds between two reads of O(restore_job) (0.05 to 10).
    type: float
    default: 0.1
  analyze:
    description: Start C(ANALYZE) of the swapped-in database in the background after the swap (see above).
    type: bool
    default: false
extends_documentation_fragment:
  - datasafe
attributes:
  check_mode:
    support: full
    description: Reports the renames that would be done; renames nothing.
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Swap the verified restore in; keep the current database under a dated name
  pg_swap_database:
    container: lms-postgres
    user: lms_user
    database: lms_slncity
    restored: lms_slncity_restore_20261123_101500
    timestamp: "20261123_101500"
"""

RETURN = r"""
kept_as:
  description: The name the previous database now has (null when there was none).
  returned: success
  type: str
  sample: lms_slncity_before_restore_20261123_101500
renames:
  description: The renames done (or that would be done in check mode), in order.
  returned: always
  type: list
  elements: str
attempts:
  description: Transactions tried.
  returned: success
  type: int
databases:
  description: The databases involved after the swap, with OID, owner, encoding and locale.
  returned: success
  type: dict
restore:
  description: The result of the background restore O(restore_job) (new_database, counts, manifest, problems).
  returned: when O(restore_job) was given and the job ended (also when the module failed because of it)
  type: dict
analyze_job:
  description: The result file of the background C(ANALYZE) (null when it could not be started).
  returned: when O(analyze) is true and the swap was done (not in check mode)
  type: str
  sample: /tmp/datasafe-analyze-k2j4x9.json
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.datasafe import container, modulekit, restore, restore_run, specs


def main():
    module = AnsibleModule(
        argument_spec=specs.spec(
            specs.CONNECTION,
            restored=dict(type="str", required=True),
            keep_as=dict(type="str"),
            timestamp=dict(type="str"),
            maintenance_db=dict(type="str", default=restore.MAINTENANCE_DB),
            attempts=dict(type="int", default=5),
            terminate_timeout_ms=dict(type="int", default=5000),
            restore_job=dict(type="path"),
            restore_job_timeout=dict(type="int", default=21600),
            restore_job_poll=dict(type="float", default=0.1),
            analyze=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    modulekit.finish(
        module,
        lambda: restore_run.swap(module.params, container.module_runner(module), module.check_mode, module.warn),
        None,
        (restore_run.RestoreFailed,),
    )


if __name__ == "__main__":
    main()
