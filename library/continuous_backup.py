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
  description: The backup taken (label, type, stop time), or null.
  returned: success
  type: dict
summary:
  description: Newest good full/diff/incr backup with its age, and how many backups the repository lists.
  returned: success
  type: dict
verify:
  description: What C(pgbackrest verify) checked (WAL segments checked and valid), when it ran.
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
    actions, result = [], dict(changed=False, stanza_created=False, backup=None)
    try:
        try:
            before = continuous.info(run, p["container"], p["stanza"])
            missing = (before.get("status") or {}).get("code") == 1  # "missing stanza path"
        except continuous.ContinuousError:
            before, missing = {}, True
        if missing:
            actions.append("pgbackrest stanza-create --stanza=%s" % p["stanza"])
            if not module.check_mode:
                continuous.pgbackrest(run, p["container"], p["stanza"], ["stanza-create"], "stanza-create")
                result["stanza_created"] = result["changed"] = True
        if p["check"]:
            actions.append("pgbackrest check (a WAL segment must reach the repository)")
            if not module.check_mode:
                continuous.pgbackrest(run, p["container"], p["stanza"], ["check"], "check")
        summary = continuous.backups_summary(before) if before else {"count": 0}
        kind = p["type"]
        if kind == "auto":
            kind = "full" if "full" not in summary else None
        elif kind == "scheduled":
            kind = continuous.scheduled_type(summary, p["full_every_days"])
        if kind and kind != "none":
            actions.append("pgbackrest backup --type=%s, then verify" % kind)
            if not module.check_mode:
                continuous.pgbackrest(run, p["container"], p["stanza"], ["backup", "--type=%s" % kind], "backup")
                result["changed"] = True
                after = continuous.info(run, p["container"], p["stanza"])
                newest = (after.get("backup") or [None])[-1]
                if not newest or newest.get("error") or newest.get("type") != kind:
                    raise continuous.ContinuousError(
                        "pgbackrest reported success but info does not list a good %s backup as the newest: %r"
                        % (kind, newest)
                    )
                if p["verify"]:
                    result["verify"] = continuous.verify(run, p["container"], p["stanza"])
                result["backup"] = dict(label=newest["label"], type=newest["type"], stop=newest["timestamp"]["stop"])
                summary = continuous.backups_summary(after)
        result.update(actions=actions, summary=summary)
    except continuous.ContinuousError as exc:
        module.fail_json(msg="continuous backup: %s" % exc, actions=actions, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
