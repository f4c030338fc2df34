#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Append an event to the change log: the protocol's human line and a JSON line beside it."""

DOCUMENTATION = r"""
---
module: change_log
short_description: Record a change in the protocol's change log and its JSON twin
description:
  - >-
    Appends C(<date>: <message>) to the text log, the line the protocol writes with
    C(echo "$(date): About to ..." >> ~/change-log.txt), and the same event as one JSON
    object (time, user, host, action, outcome, message and any O(fields)) to the JSON log.
  - Both appends are locked and fsynced; an entry is whole on disk or absent.
version_added: "0.1.0"
author: datasafe maintainers
options:
  path:
    description: The human change log.
    type: path
    default: ~/change-log.txt
  json_path:
    description: The JSON-lines log; defaults to O(path) with the suffix C(.jsonl).
    type: path
  action:
    description: What is being done (for example C(safe_update), C(restore), C(break_glass)).
    type: str
    required: true
  outcome:
    description: Where the change stands.
    type: str
    choices: [about_to, completed, failed, rolled_back, refused, info]
    required: true
  message:
    description: The human line, without the date. Runs of white space, newlines included, become one space.
    type: str
    required: true
  fields:
    description: Extra facts for the JSON line (backup file, counts before and after, revisions).
    type: dict
    default: {}
attributes:
  check_mode:
    support: full
    description: In check mode nothing is written; the entry that would be written is returned.
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Document what is about to happen
  change_log:
    action: safe_update
    outcome: about_to
    message: "About to update lms from 1a2b3c4 (backup BEFORE_UPDATE_20261123_101500.sql.gz)"
    fields:
      backup: /home/lab/backups/BEFORE_UPDATE_20261123_101500.sql.gz
      counts_before: "{{ counts_before.counts }}"
"""

RETURN = r"""
entry:
  description: The JSON entry written (or that would be written in check mode).
  returned: always
  type: dict
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.datasafe import changelog, modulekit


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", default="~/change-log.txt"),
            json_path=dict(type="path"),
            action=dict(type="str", required=True),
            outcome=dict(
                type="str", required=True, choices=["about_to", "completed", "failed", "rolled_back", "refused", "info"]
            ),
            message=dict(type="str", required=True),
            fields=dict(type="dict", default={}),
        ),
        supports_check_mode=True,
    )
    p = module.params
    path = os.path.expanduser(p["path"])
    json_path = os.path.expanduser(p["json_path"] or changelog.json_log_path(path))
    # One event per line: folded YAML and templated text can carry newlines; they never split an entry.
    message = " ".join(p["message"].split())
    if not message:
        module.fail_json(msg="message is empty: say what is being done")
    if module.check_mode:
        module.exit_json(
            changed=False, entry=dict(action=p["action"], outcome=p["outcome"], message=message, **p["fields"])
        )
    entry = modulekit.call(
        module,
        lambda: changelog.record(path, json_path, p["action"], message, p["outcome"], **p["fields"]),
        "could not write the change log %s" % path,
        (OSError,),
    )
    module.exit_json(changed=True, entry=entry, path=path, json_path=json_path)


if __name__ == "__main__":
    main()
