#!/usr/bin/python
# -*- coding: utf-8 -*-
"""pgBackRest stanza, check and a verified backup, inside the database container."""

DOCUMENTATION = r"""
---
module: continuous_backup
short_description: Create the pgBackRest stanza, check archiving, take and verify a backup
description:
  - Runs pgBackRest inside the database container as the postgres user, so it always matches
    the server. Creates the stanza when the repository has none, runs C(pgbackrest check)
    (a WAL segment is switched and must reach the repository), takes a backup of O(type), and
    then C(pgbackrest verify) over the repository.
  - A backup counts only when C(pgbackrest info) lists it without error after the run and
    verify passed; pgBackRest itself adds a backup to its list only when it completed, so a
    killed backup is never named good. Retention (repo1-retention-full) expires old backups and
    the WAL only they need, only after a new backup completed.
  - With O(type=auto) a full backup is taken only when the repository holds no good full one,
    so a second run of the enable playbook changes nothing.
  - With a second repository (C(repo2) on S3, from C(datasafe_continuous_repo2)) every backup is
    taken in each repository, repository 1 first (C(--repo=1), then C(--repo=2)), each checked in
    info and verified on its own; the type is decided per repository (repository 2 gets a full
    backup while it holds none). A failure in one repository fails the task naming that
    repository and never touches the other's good backup (O(type) per repository in RV(repos)).
    Retention runs per repository (C(repoN-retention-full)).
version_added: "0.2.0"
author: datasafe maintainers
options:
  container:
    description: The running database container (with pgBackRest, from datasafe's override).
    type: str
    required: true
  stanza:
    description: The pgBackRest stanza (continuous_plan returns it).
    type: str
  project:
    description: The compose project; names the stanza when O(stanza) is not given.
    type: str
  type:
    description:
      - V(auto) a full backup only when none is good; V(full), V(diff), V(incr) always take one;
        V(scheduled) (the nightly job) a full one when the newest is O(full_every_days) old or
        missing, else a differential one; V(none) only stanza and check.
    type: str
    choices: [auto, scheduled, full, diff, incr, none]
    default: auto
  full_every_days:
    description: With O(type=scheduled), days between full backups.
    type: int
    default: 7
  check:
    description: Run C(pgbackrest check) (archiving works end to end).
    type: bool
    default: true
  verify:
    description: Run C(pgbackrest verify) after a backup.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: Reads C(info) and reports what it would do; creates, checks and backs up nothing.
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: The nightly differential backup
  continuous_backup:
    container: lms-postgres
    stanza: lms
    type: diff
"""

RETURN = r"""
stanza_created:
  description: The stanza was created by this run.
  returned: success
  type: bool
backup:
  description: The backup taken in repository 1 (label, type, stop time, repo), or null.
  returned: success
  type: dict
repos:
  description:
    - Per repository (key C("1"), C("2")) the backup taken in it (C(backup), C(type)), what verify
      checked (C(verify)) and C(error) (null, or what failed, naming the repository).
    - Empty when no backup was taken.
  returned: always
  type: dict
summary:
  description:
    - Newest good full/diff/incr backup with its age, and how many backups the repository lists
      (repository 1), and under C(repos) the same for every configured repository.
  returned: success
  type: dict
verify:
  description: What C(pgbackrest verify) checked in repository 1 (WAL segments checked and valid), when it ran.
  returned: when a backup was taken and verify is true
  type: dict
actions:
  description: What was (or in check mode, would be) done, in order.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.datasafe import continuous, runner


def main():
    module = AnsibleModule(
        argument_spec=dict(
            container=dict(type="str", required=True),
            stanza=dict(type="str"),
            project=dict(type="str"),
            type=dict(type="str", choices=["auto", "scheduled", "full", "diff", "incr", "none"], default="auto"),
            full_every_days=dict(type="int", default=7),
            check=dict(type="bool", default=True),
            verify=dict(type="bool", default=True),
        ),
        required_one_of=[("stanza", "project")],
        supports_check_mode=True,
    )
    p = module.params
    p["stanza"] = p["stanza"] or continuous.stanza_name(p["project"])
    run = runner.for_module(module)
    actions, result = [], dict(changed=False, stanza_created=False, backup=None, repos={})
    try:
        try:
            before = continuous.info(run, p["container"], p["stanza"])
        except continuous.ContinuousError:
            before = {}
        missing = continuous.stanza_missing(before)
        if missing:
            actions.append(
                "pgbackrest stanza-create --stanza=%s (in %s)"
                % (p["stanza"], ", ".join(continuous.repo_name(k) for k in missing))
            )
            if not module.check_mode:
                continuous.pgbackrest(run, p["container"], p["stanza"], ["stanza-create"], "stanza-create")
                result["stanza_created"] = result["changed"] = True
        if p["check"]:
            actions.append("pgbackrest check (a WAL segment must reach every repository)")
            if not module.check_mode:
                continuous.pgbackrest(run, p["container"], p["stanza"], ["check"], "check")
        summary = continuous.backups_summary(before)
        kinds = {}
        for key, one in summary["repos"].items():
            kind = p["type"]
            if kind == "auto":
                kind = "full" if "full" not in one else None
            elif kind == "scheduled":
                kind = continuous.scheduled_type(one, p["full_every_days"])
            if kind and kind != "none":
                kinds[key] = kind
                actions.append(
                    "pgbackrest backup --repo=%s --type=%s to %s, then verify" % (key, kind, continuous.repo_name(key))
                )
        if kinds and not module.check_mode:
            done, after = continuous.backup_each(run, p["container"], p["stanza"], kinds, verify_after=p["verify"])
            result["changed"] = True
            result["repos"] = done
            if after:
                summary = continuous.backups_summary(after)
            first = done.get(min(done, key=int))
            result["backup"] = first["backup"]
            result["verify"] = first["verify"]
            errors = [r["error"] for r in done.values() if r["error"]]
            if errors:
                good = [
                    "%s: %s backup %s verified" % (continuous.repo_name(k), r["type"], r["backup"]["label"])
                    for k, r in sorted(done.items())
                    if not r["error"] and r["backup"]
                ]
                result.update(actions=actions, summary=summary)
                module.fail_json(
                    msg="continuous backup: %s%s"
                    % ("; ".join(errors), (" (still good: %s)" % "; ".join(good)) if good else ""),
                    **result,
                )
        result.update(actions=actions, summary=summary)
    except continuous.ContinuousError as exc:
        module.fail_json(msg="continuous backup: %s" % exc, actions=actions, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
