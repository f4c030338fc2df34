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

import datetime
import getpass
import json
import os
import socket
import time

from ansible.module_utils.basic import AnsibleModule


def read_lock(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"unreadable": True}


def describe(holder, path, stale_after):
    if holder.get("unreadable"):
        return "the lock %s exists but cannot be read; if no change is running, remove it" % path
    age = time.time() - holder.get("epoch", time.time())
    text = "%s holds the lock %s since %s (%s@%s, %d s ago)" % (
        holder.get("purpose"),
        path,
        holder.get("started"),
        holder.get("user"),
        holder.get("host"),
        age,
    )
    if age > stale_after:
        text += "; it is older than %d s and probably stale: if no change is running, remove %s" % (stale_after, path)
    return text


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            token=dict(type="str", required=True, no_log=False),
            purpose=dict(type="str", default="change"),
            wait=dict(type="int", default=0),
            stale_after=dict(type="int", default=21600),
        ),
        supports_check_mode=True,
    )
    p = module.params
    path = os.path.expanduser(p["path"])

    if p["state"] == "absent":
        holder = read_lock(path)
        if holder is None:
            module.exit_json(changed=False)
        if holder.get("token") != p["token"]:
            module.fail_json(msg="not releasing %s: another run holds it" % path, holder=holder)
        if not module.check_mode:
            os.unlink(path)
        module.exit_json(changed=True)

    deadline = time.monotonic() + max(0, p["wait"])
    while True:
        holder = read_lock(path)
        if holder is not None and holder.get("token") == p["token"]:
            module.exit_json(changed=False)
        if holder is None:
            if module.check_mode:
                module.exit_json(changed=True)
            now = datetime.datetime.now(datetime.timezone.utc).astimezone()
            content = dict(
                token=p["token"],
                purpose=p["purpose"],
                started=now.isoformat(timespec="seconds"),
                epoch=time.time(),
                host=socket.gethostname(),
                user=getpass.getuser(),
                pid=os.getpid(),
            )
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                continue  # someone else took it between our read and our create
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(content, handle)
                handle.flush()
                os.fsync(handle.fileno())
            module.exit_json(changed=True)
        if time.monotonic() >= deadline:
            module.fail_json(
                msg="refusing to start: another run is in progress: %s" % describe(holder, path, p["stale_after"]),
                holder=holder,
            )
        time.sleep(1)


if __name__ == "__main__":
    main()
