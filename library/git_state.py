#!/usr/bin/python
# -*- coding: utf-8 -*-
"""The application checkout's state: revision, branch, local changes, and how it stands to origin."""

DOCUMENTATION = r"""
---
module: git_state
short_description: Revision, branch and cleanliness of a git checkout, and whether a pull fast-forwards
description:
  - Reports the checkout's current revision and branch, any uncommitted or untracked files,
    and, after C(git fetch), how many commits it is ahead of and behind its upstream.
  - With O(require_clean), O(require_branch) and O(require_fast_forward) it fails before
    anything is changed, naming what is wrong and how to fix it. A safe update must never
    discard someone's uncommitted change to the compose files or the application.
  - C(git fetch) updates only remote-tracking refs; the working tree is never touched.
version_added: "0.1.0"
author: datasafe maintainers
options:
  path:
    description: The checkout (the directory holding the compose files).
    type: path
    required: true
  fetch:
    description: Run C(git fetch) first, so RV(behind) and RV(ahead) describe the remote as it is now.
    type: bool
    default: true
  remote:
    description: The remote to fetch from and compare with.
    type: str
    default: origin
  require_clean:
    description: Fail when the working tree has uncommitted or untracked files (ignored files do not count).
    type: bool
    default: true
  require_branch:
    description: Fail unless this branch is checked out.
    type: str
  require_fast_forward:
    description: Fail when the local branch has commits its upstream does not (a pull would not fast-forward).
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: Fetching changes no file of the working tree; in check mode it still fetches, so the plan is true.
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Refuse a dirty tree or a diverged branch before anything stops
  git_state:
    path: /home/lab/LMS-SLNCity-V1
    require_branch: main
  register: app_git
"""

RETURN = r"""
revision:
  description: The commit checked out.
  returned: success
  type: str
branch:
  description: The branch checked out, or C(HEAD) when detached.
  returned: success
  type: str
dirty:
  description: C(git status --porcelain) lines of uncommitted or untracked files.
  returned: success
  type: list
  elements: str
upstream:
  description: The upstream ref compared with (for example C(origin/main)), or null.
  returned: success
  type: str
ahead:
  description: Commits on the local branch that the upstream does not have.
  returned: success
  type: int
behind:
  description: Commits on the upstream that a pull would bring.
  returned: success
  type: int
remote_url:
  description: URL of O(remote).
  returned: success
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.datasafe import gitrepo, modulekit, runner


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            fetch=dict(type="bool", default=True),
            remote=dict(type="str", default="origin"),
            require_clean=dict(type="bool", default=True),
            require_branch=dict(type="str"),
            require_fast_forward=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    git = module.get_bin_path("git", required=True)
    modulekit.finish(
        module, lambda: gitrepo.task(runner.for_module(module), module.params, git), None, (gitrepo.GitFailed,)
    )


if __name__ == "__main__":
    main()
