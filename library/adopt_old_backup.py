#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Retire the deployment's old backup cron line, keeping it and its backups (adopt)."""

DOCUMENTATION = r"""
---
module: adopt_old_backup
short_description: Retire the old backup cron line, disable its script's pruning, list its backups
description:
  - Comments out, in the user's crontab, every active line matching O(pattern) (the protocol's
    C(0 2 * * * ~/backup-database.sh >> ~/backup.log 2>&1)); the line is kept after a
    C(# datasafe adopt:) mark. datasafe's own entries are never touched.
  - In the script those lines run, every pruning line (C(find ... -delete), C(find ... -exec rm),
    C(rm ...), C(... | xargs rm)) becomes a no-op comment, so running the script by hand, as the
    protocol says before a change, can never delete datasafe's backups; the original is kept beside
    it as C(<script>.before-datasafe-adopt). A pruning command continued over several lines is not
    edited but reported (RV(scripts)), for the operator.
  - Lists the files in O(backup_dir) that have no datasafe manifest (the old script's backups).
    Nothing is ever deleted.
  - Run it only after datasafe's nightly backup is installed, so the host always has one.
version_added: "0.1.0"
author: datasafe maintainers
options:
  pattern:
    description: A regular expression matching the old backup's cron line (and naming its script).
    type: str
    default: backup-database\.sh
  user:
    description: Whose crontab (C(crontab -u)); default the user the module runs as.
    type: str
  home:
    description: The home that C(~) and C($HOME) in the cron line mean; default the module's user's.
    type: path
  backup_dir:
    description: Where the old script's backups are (listed, never deleted).
    type: str
    default: ~/backups
attributes:
  check_mode:
    support: full
    description: Reports what would be commented and disabled, changing nothing.
  diff_mode:
    support: none
requirements:
  - the C(crontab) program on the managed host
seealso:
  - module: adopt_read
"""
EXAMPLES = r"""
- name: Retire ~/backup-database.sh's cron line
  adopt_old_backup:
    pattern: backup-database\.sh
"""
RETURN = r"""
retired:
  description: The cron lines commented out (or that would be).
  returned: always
  type: list
  elements: str
scripts:
  description:
    - Each script found, with path, found, disabled (lines), manual (lines left for the operator)
      and kept (the original).
  returned: always
  type: list
  elements: dict
old_backups:
  description: The files in O(backup_dir) that are not datasafe's (name, size, mtime), kept.
  returned: always
  type: list
  elements: dict
backup_dir:
  description: O(backup_dir) as given.
  returned: always
  type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.datasafe import adopt, lock, modulekit, runner


def main():
    module = AnsibleModule(
        argument_spec=dict(
            pattern=dict(type="str", default=r"backup-database\.sh"),
            user=dict(type="str"),
            home=dict(type="path"),
            backup_dir=dict(type="str", default="~/backups"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    home = p["home"] or os.path.expanduser("~%s" % (p["user"] or ""))
    modulekit.finish(
        module,
        lambda: adopt.retire_old_backup(
            runner.for_module(module), p["pattern"], home, p["backup_dir"], p["user"], module.check_mode
        ),
        None,
        (adopt.AdoptError, lock.LockHeld, OSError),
    )


if __name__ == "__main__":
    main()
