#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Wait for a datasafe background job and return its result."""

DOCUMENTATION = r"""
---
module: job_result
short_description: Wait for a datasafe background job (such as the ANALYZE after a restore's swap) and return its result
description:
  - Reads the job's result file every O(poll) seconds until the job has ended, then returns its
    result and removes the file.
  - The job is work a datasafe module left running, for example the C(ANALYZE) that
    M(pg_swap_database) starts after the swap (its RV(pg_swap_database#module:analyze_job)), or
    the restore of M(pg_restore_beside) with O(pg_restore_beside#module:detach) (its
    RV(pg_restore_beside#module:job)).
  - Fails when the job failed (its exit status and error output are in the message), when it has
    not ended within O(timeout), or when the file is missing or not a job's result file.
  - Changes nothing; the job itself already ran.
version_added: "0.1.0"
author: datasafe maintainers
options:
  path:
    description: The job's result file.
    type: path
    required: true
  what:
    description: What the job does, for the messages (for example C(ANALYZE of lms_slncity)).
    type: str
    default: the background job
  timeout:
    description: Seconds to wait for the job to end (at least 1).
    type: int
    default: 3600
  poll:
    description: Seconds between two reads of the file (0.05 to 10).
    type: float
    default: 0.1
attributes:
  check_mode:
    support: full
    description: Waits and reads as in a normal run; the job is not this module's to change.
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Wait for the ANALYZE started after the swap
  job_result:
    path: "{{ swap.analyze_job }}"
    what: ANALYZE of lms_slncity
  register: analyzed
"""

RETURN = r"""
rc:
  description: The job's exit status.
  returned: when the job ended
  type: int
  sample: 0
seconds:
  description: How long the job ran.
  returned: when the job ended
  type: float
  sample: 0.93
stderr:
  description: The end of the job's error output (at most 2000 characters).
  returned: when the job ended
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.datasafe import background, modulekit


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            what=dict(type="str", default="the background job"),
            timeout=dict(type="int", default=3600),
            poll=dict(type="float", default=0.1),
        ),
        supports_check_mode=True,
    )
    modulekit.finish(module, lambda: background.collect(module.params), None, (background.JobFailed,))


if __name__ == "__main__":
    main()
