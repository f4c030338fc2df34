# -*- coding: utf-8 -*-
"""The process that owns this playbook run: the ansible-playbook process on the controller."""

DOCUMENTATION = r"""
---
name: datasafe_run_owner
short_description: The ansible-playbook process running this play (pid, its start time, host)
description:
  - Returns C({pid, pid_start, host}) of the ansible-playbook process on the controller. A lock
    taken through a module records it as its owner, so the next run can tell a lock whose run
    was interrupted (Ctrl-C, a lost session, a kill, a power cut) from one whose run still goes.
  - Templating runs in a worker process forked from ansible-playbook (same command line); the
    owner is the topmost ancestor with that command line.
author: datasafe maintainers
"""

EXAMPLES = r"""
- name: Take the lock as this run
  run_lock:
    path: ~/.datasafe/lms.lock
    token: "{{ token }}"
    owner: "{{ lookup('datasafe_run_owner') }}"
"""

RETURN = r"""
_raw:
  description: One dict with pid, pid_start (clock ticks since boot) and host.
  type: list
  elements: dict
"""

import importlib.util
import os
import socket

from ansible.plugins.lookup import LookupBase

# The lock engine only uses the standard library; load it from module_utils by path (the
# controller does not put module_utils on ansible.module_utils' path for plugins).
_LOCK = os.path.join(os.path.dirname(__file__), "..", "..", "module_utils", "datasafe", "lock.py")


def _lock_engine():
    spec = importlib.util.spec_from_file_location("datasafe_lock_engine", _LOCK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            return handle.read()
    except OSError:
        return None


def _parent(pid):
    try:
        with open("/proc/%d/stat" % pid, encoding="utf-8") as handle:
            return int(handle.read().rpartition(")")[2].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def run_owner_pid(pid=None):
    """The topmost ancestor of ``pid`` (default this process) with the same command line."""
    pid = pid or os.getpid()
    mine = _cmdline(pid)
    while True:
        parent = _parent(pid)
        if not parent or parent <= 1 or _cmdline(parent) != mine:
            return pid
        pid = parent


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        pid = run_owner_pid()
        return [{"pid": pid, "pid_start": _lock_engine().pid_start(pid), "host": socket.gethostname()}]
