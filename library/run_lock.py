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
    description: The lock file. Give it or O(crontab_user).
    type: path
  crontab_user:
    description:
      - Instead of O(path), the lock beside this user's crontab (in that user's home; the empty string
        is the connecting user), which every datasafe edit of that crontab holds.
    type: str
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
  owner:
    description:
      - The process that owns the run (C(pid), C(pid_start), C(host)), recorded instead of the
        module's own short-lived process; a playbook passes C(lookup('datasafe_run_owner')).
    type: dict
  take_over_dead:
    description:
      - Take over a lock whose recorded owner process is gone (same host; that pid with that start
        time no longer runs), as the run that held it was interrupted. Its record is kept in
        C(<path>.interrupted) and returned in RV(interrupted). A lock whose owner runs, or cannot be
        checked (another host, an older record), is never taken over.
    type: bool
    default: false
  refuse_phases:
    description:
      - With O(take_over_dead), the phases of an interrupted run this run must not take over because
        it cannot finish them (a restore cannot finish an update's V(rollback)). The module then
        fails, naming the interrupted run and the run that finishes it, and leaves the lock as it is.
    type: list
    elements: str
    default: []
  phase:
    description:
      - With O(state=present) and the lock held by O(token), record the phase the run is in (and
        O(facts)) in the lock, so a run that finds it interrupted knows where it stopped.
    type: str
  facts:
    description: What a run finding this one interrupted needs to know (for example the counts before down).
    type: dict
    default: {}
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
interrupted:
  description: The record of the interrupted run whose lock was taken over (its phase and facts), else null.
  returned: always
  type: dict
interrupted_summary:
  description: One line saying which run was interrupted, when it started and at which phase.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.datasafe import lock, modulekit


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path"),
            crontab_user=dict(type="str"),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            token=dict(type="str", required=True, no_log=False),
            purpose=dict(type="str", default="change"),
            wait=dict(type="int", default=0),
            stale_after=dict(type="int", default=lock.DEFAULT_STALE_AFTER),
            owner=dict(type="dict"),
            take_over_dead=dict(type="bool", default=False),
            refuse_phases=dict(type="list", elements="str", default=[]),
            phase=dict(type="str"),
            facts=dict(type="dict", default={}),
        ),
        mutually_exclusive=[("path", "crontab_user")],
        required_one_of=[("path", "crontab_user")],
        supports_check_mode=True,
    )
    modulekit.finish(module, lambda: lock.task(module.params, module.check_mode), None, (lock.LockHeld,))


if __name__ == "__main__":
    main()
