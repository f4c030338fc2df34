#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Am I protected right now? (engine: module_utils/datasafe/status.py)"""

DOCUMENTATION = r"""
---
module: stack_status
short_description: The protection state of one stack - last verified backup, off-site copy, drill, change lock
description:
  - Reads what datasafe already writes and judges each part green or red - the newest verified
    backup of O(database) in O(backup_dir) (age at most O(backup_max_age)); the newest off-site copy
    and restore drill in the JSON change log beside O(change_log) (succeeded, and not older than
    O(offsite_max_age) / O(drill_max_age)); the change lock O(lock_path) (free, or held by a
    running change; red when an interrupted run left it or it is older than O(lock_stale_after)).
  - With O(live), also the guards and continuous recovery, read live (see O(live)).
  - Does not fail on what it finds; RV(failures) lists the red parts, so the caller shows the
    whole table first and fails with the reasons last. Reads only.
version_added: "0.2.0"
author: datasafe maintainers
extends_documentation_fragment:
  - datasafe
  - datasafe.read_only
options:
  backup_dir:
    description: Where the backups and their manifests are.
    type: path
    required: true
  database:
    description: The database whose backups count (and whose guard and archiving are read).
  change_log:
    description: The human change log; its JSON lines are read from C(.jsonl) beside it.
    type: path
    required: true
  lock_path:
    description: The stack's change lock.
    type: path
    required: true
  backup_max_age:
    description: Seconds after which the newest verified backup is stale.
    type: int
    default: 93600
  offsite_max_age:
    description: Seconds after which the newest off-site copy is stale.
    type: int
    default: 93600
  drill_max_age:
    description: Seconds after which the newest restore drill is stale.
    type: int
    default: 691200
  lock_stale_after:
    description: Seconds after which a held lock is red.
    type: int
    default: 21600
  expect_offsite:
    description: Whether an off-site copy must exist (red when there never was one).
    type: bool
    default: true
  expect_drill:
    description: Whether a restore drill must have run (red when it never did).
    type: bool
    default: true
  live:
    description:
      - Read the guards and continuous recovery live (C(psql) and C(docker) on the host, through
        O(container)) - the guard inside PostgreSQL (installed and intact), the volume pin of each of
        O(pin_volumes), the agents' hook (when O(agent_hook_agents) is set) and WAL archiving and
        pgBackRest's newest full and differential backups.
      - Each is red when it is set up and broken, or expected (O(expect_dbguard), O(expect_pin),
        O(expect_agent_hook), O(expect_continuous)) and missing; otherwise it is C(off), shown and
        never a failure.
    type: bool
    default: true
  pin_volumes:
    description: Full Docker names of the volumes whose pin is shown.
    type: list
    elements: str
    default: []
  expect_pin:
    description: Whether every volume of O(pin_volumes) must be pinned.
    type: bool
    default: false
  expect_dbguard:
    description: Whether the guard inside PostgreSQL must be installed.
    type: bool
    default: false
  agent_hook_agents:
    description: The agents whose pre-execution hook is shown; empty shows none.
    type: list
    elements: str
    choices: [claude, gemini, cursor]
    default: []
  agent_hook_home:
    description: The home directory holding the agents' settings.
    type: path
    default: "~"
  expect_agent_hook:
    description: Whether the hook must be installed for every agent of O(agent_hook_agents).
    type: bool
    default: false
  project:
    description: The compose project; names the pgBackRest stanza as continuous_plan does (required with O(live)).
    type: str
  expect_continuous:
    description:
      - Whether continuous recovery must be on. Unset - when O(continuous_conf_dir) exists
        (playbooks/continuous.yml set it up for this stack).
    type: bool
  continuous_conf_dir:
    description: Where playbooks/continuous.yml keeps this stack's pgbackrest.conf.
    type: path
  continuous_max_lag:
    description: Archiving further behind than this many seconds (with segments waiting) is red.
    type: int
    default: 300
  continuous_max_backup_age_hours:
    description: The newest pgBackRest backup older than this is red (0 - not checked).
    type: int
    default: 30
  report:
    description:
      - Where the HTML report goes (C(~) is the home directory on the host). When given, RV(report)
        holds what it shows besides the table - the verified backups' history (size, duration, row
        counts of O(critical_tables)), its charts' geometry and the newest change log events; the
        caller renders roles/datasafe_status/templates/status-report.html.j2 to RV(report.path).
    type: path
  critical_tables:
    description: The tables whose row counts are charted (default every table the manifests counted).
    type: list
    elements: str
    default: []
  history_limit:
    description: The most backups the report's charts show (the newest).
    type: int
    default: 90
"""

EXAMPLES = r"""
- name: Read the protection state
  stack_status:
    backup_dir: ~/backups
    container: lms-postgres
    database: lms_slncity
    user: lms_user
    project: lms-slncity-v1
    change_log: ~/change-log.txt
    lock_path: ~/.datasafe/lms.lock
  register: status
"""

RETURN = r"""
checks:
  description: One entry per part (name, ok, detail, age_seconds, at).
  returned: always
  type: list
  elements: dict
failures:
  description: One line per red part; empty when protected.
  returned: always
  type: list
  elements: str
lines:
  description: The table as text lines.
  returned: always
  type: list
  elements: str
ok:
  description: Whether every part is green (or off).
  returned: always
  type: bool
report:
  description: The HTML report's path (expanded) and data (keys path, history, charts, events).
  returned: when report is given
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.datasafe import changelog, continuous, report, runner, specs, status


def main():
    module = AnsibleModule(
        argument_spec=specs.spec(
            specs.CONNECTION,
            backup_dir=dict(type="path", required=True),
            change_log=dict(type="path", required=True),
            lock_path=dict(type="path", required=True),
            backup_max_age=dict(type="int", default=93600),
            offsite_max_age=dict(type="int", default=93600),
            drill_max_age=dict(type="int", default=691200),
            lock_stale_after=dict(type="int", default=21600),
            expect_offsite=dict(type="bool", default=True),
            expect_drill=dict(type="bool", default=True),
            live=dict(type="bool", default=True),
            pin_volumes=dict(type="list", elements="str", default=[]),
            expect_pin=dict(type="bool", default=False),
            expect_dbguard=dict(type="bool", default=False),
            agent_hook_agents=dict(type="list", elements="str", choices=["claude", "gemini", "cursor"], default=[]),
            agent_hook_home=dict(type="path", default="~"),
            expect_agent_hook=dict(type="bool", default=False),
            project=dict(type="str"),
            expect_continuous=dict(type="bool"),
            continuous_conf_dir=dict(type="path"),
            continuous_max_lag=dict(type="int", default=300),
            continuous_max_backup_age_hours=dict(type="int", default=30),
            report=dict(type="path"),
            critical_tables=dict(type="list", elements="str", default=[]),
            history_limit=dict(type="int", default=90),
        ),
        required_if=[("live", True, ("project",))],
        supports_check_mode=True,
    )
    p = module.params
    live = None
    if p["live"]:
        live = {
            "db": {"container": p["container"], "database": p["database"], "user": p["user"]},
            "pin_volumes": p["pin_volumes"],
            "expect_pin": p["expect_pin"],
            "expect_dbguard": p["expect_dbguard"],
            "agent_hook_agents": p["agent_hook_agents"],
            "agent_hook_home": p["agent_hook_home"],
            "expect_agent_hook": p["expect_agent_hook"],
            "stanza": continuous.stanza_name(p["project"]),
            "expect_continuous": p["expect_continuous"],
            "continuous_conf_dir": p["continuous_conf_dir"],
            "continuous_max_lag": p["continuous_max_lag"],
            "continuous_max_backup_age": p["continuous_max_backup_age_hours"] * 3600,
        }
    json_log = changelog.json_log_path(p["change_log"])
    result = status.gather(
        p["backup_dir"],
        p["database"],
        json_log,
        p["lock_path"],
        {
            "backup": p["backup_max_age"],
            "offsite": p["offsite_max_age"],
            "drill": p["drill_max_age"],
            "lock": p["lock_stale_after"],
        },
        {"offsite": p["expect_offsite"], "drill": p["expect_drill"]},
        run=runner.for_module(module),
        live=live,
    )
    if p["report"]:
        result["report"] = report.build(
            p["backup_dir"], p["database"], status.read_events(json_log), p["critical_tables"], p["history_limit"]
        )
        result["report"]["path"] = p["report"]
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
