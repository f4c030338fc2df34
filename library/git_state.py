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
    p = module.params
    git = module.get_bin_path("git", required=True)

    def run(*args, check=True):
        rc, out, err = module.run_command([git, "-C", p["path"]] + list(args))
        if check and rc != 0:
            module.fail_json(msg="git %s in %s failed: %s" % (args[0], p["path"], (err or out).strip()))
        return rc, out.strip()

    run("rev-parse", "--git-dir")
    _, revision = run("rev-parse", "HEAD")
    _, branch = run("rev-parse", "--abbrev-ref", "HEAD")
    _, status = run("status", "--porcelain", "--untracked-files=normal")
    dirty = [line for line in status.splitlines() if line.strip()]
    _, remote_url = run("remote", "get-url", p["remote"])
    if p["fetch"]:
        run("fetch", "--quiet", p["remote"])
    rc, upstream = run("rev-parse", "--abbrev-ref", "--symbolic-full-name", "@{upstream}", check=False)
    ahead = behind = 0
    if rc == 0 and upstream:
        _, counts = run("rev-list", "--left-right", "--count", "HEAD...@{upstream}")
        ahead, behind = (int(n) for n in counts.split())
    else:
        upstream = None

    result = dict(
        changed=False,
        revision=revision,
        branch=branch,
        dirty=dirty,
        upstream=upstream,
        ahead=ahead,
        behind=behind,
        remote_url=remote_url,
    )
    problems = []
    if p["require_clean"] and dirty:
        problems.append(
            "the working tree of %s has %d uncommitted or untracked file(s) (%s): commit or stash "
            "them first, an update must not discard them" % (p["path"], len(dirty), ", ".join(dirty[:5]))
        )
    if p["require_branch"] and branch != p["require_branch"]:
        problems.append(
            "%s is on %s, not on %s: check out %s first" % (p["path"], branch, p["require_branch"], p["require_branch"])
        )
    if p["require_fast_forward"]:
        if upstream is None:
            problems.append(
                "branch %s has no upstream to pull from: set one with "
                "'git branch --set-upstream-to=%s/%s'" % (branch, p["remote"], branch)
            )
        elif ahead:
            problems.append(
                "%s has %d local commit(s) that %s does not: a pull would not fast-forward; "
                "push or reset them first" % (branch, ahead, upstream)
            )
    if problems:
        module.fail_json(msg="; ".join(problems), problems=problems, **result)
    module.exit_json(problems=[], **result)


if __name__ == "__main__":
    main()
