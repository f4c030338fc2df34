#!/usr/bin/python
# -*- coding: utf-8 -*-
"""A lock that lets only one change run on a stack at a time."""

DOCUMENTATION = r"""
---
module: run_lock
short_description: Take or release the lock that keeps two changes off one stack
description:
  - O(state=present) creates the lock file atomically (C(O_CREAT|O_EXCL)) holding who took it,
    when and for what, and the caller's O(token). When another run holds it, the module waits
    up to O(wait) seconds and then fails, naming the holder.
  - >-
    O(state=absent) removes the lock only when it holds the same O(token): a run never
    releases someone else's lock.
  - A lock is never broken silently. One older than O(stale_after) is reported as stale, with
    the command to remove it after checking that no change is running.
version_added: "0.1.0"
author: datasafe maintainers
options:
  path:
    description: The lock file.
    type: path
    required: true
  state:
    description: V(present) takes the lock, V(absent) releases it.
    type: str
    choices: [present, absent]
    default: present
  token:
    description: Identifies this run; the same token must be given to release the lock.
    type: str
    required: true
  purpose:
    description: What the lock is taken for, shown to whoever finds it held.
    type: str
    default: change
  wait:
    description: Seconds to wait for a held lock before failing; 0 refuses at once.
    type: int
    default: 0
  stale_after:
    description: Age in seconds after which a held lock is reported as probably stale.
    type: int
    default: 21600
attributes:
  check_mode:
    support: full
    description: In check mode the lock is neither taken nor released, but a held lock is still reported.
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Take the update lock
  run_lock:
    path: ~/.datasafe/lms.lock
    token: "{{ run_token }}"
    purpose: safe_update
"""

RETURN = r"""
holder:
  description: The lock's content when another run holds it.
  returned: when held by another run
  type: dict
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.datasafe import lock


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            token=dict(type="str", required=True, no_log=False),
            purpose=dict(type="str", default="change"),
            wait=dict(type="int", default=0),
            stale_after=dict(type="int", default=lock.DEFAULT_STALE_AFTER),
        ),
        supports_check_mode=True,
    )
    p = module.params
    change_lock = lock.FileLock(os.path.expanduser(p["path"]), p["token"], p["purpose"], p["stale_after"])
    try:
        if p["state"] == "absent":
            changed = change_lock.release(module.check_mode)
        else:
            changed = change_lock.take(p["wait"], module.check_mode)
    except lock.LockHeld as exc:
        module.fail_json(msg=str(exc), holder=exc.holder)
    module.exit_json(changed=changed)


if __name__ == "__main__":
    main()
