#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Recover the pgBackRest repository to a moment, into a new volume and a throwaway server."""

DOCUMENTATION = r"""
---
module: continuous_recover
short_description: Point-in-time recovery into a new volume and a throwaway server (never the live one)
description:
  - Creates a NEW labelled volume, runs C(pgbackrest restore) into it (the repository mounted
    read-only) with the target (V(latest), a time, a transaction id, a named restore point or
    an LSN), starts a throwaway server on it on 127.0.0.1:O(port) with archiving off, waits
    until it replayed to the target and promoted, and counts the critical tables beside the
    live ones.
  - The live stack, its volume and the repository are never written to. The recovered server
    keeps running (read it on its port, or dump a database from it into the live stack with
    the restore playbook's beside-and-swap); remove it with O(state=absent).
version_added: "0.2.0"
author: datasafe maintainers
options:
  name:
    description: Name of the throwaway container and its volume (must not exist yet).
    type: str
    required: true
  state:
    description: V(present) recovers; V(absent) removes the throwaway container and volume O(name).
    type: str
    choices: [present, absent]
    default: present
  image:
    description: The derived database image (with pgBackRest) to run.
    type: str
  stanza:
    description: The pgBackRest stanza.
    type: str
  repo_dir:
    description: Host directory of the repository.
    type: path
  conf_dir:
    description: Host directory holding pgbackrest.conf.
    type: path
  pgdata:
    description: PGDATA inside the image.
    type: str
    default: /var/lib/postgresql/data
  port:
    description: Loopback port of the recovered server.
    type: int
  database:
    description: Database whose tables are counted.
    type: str
  user:
    description: Role to connect as.
    type: str
  tables:
    description: Critical tables to count in the recovered server (and in O(live_container)).
    type: list
    elements: str
    default: []
  live_container:
    description: The live database container, counted beside for comparison (read only).
    type: str
  target_kind:
    description: What O(target) is.
    type: str
    choices: [latest, time, xid, name, lsn]
    default: latest
  target:
    description: The target (a time with zone such as C(2026-12-01 16:00:00+00), an xid, a restore point name, an LSN).
    type: str
  inclusive:
    description: Stop just after (true) or just before (false) the target transaction.
    type: bool
    default: true
  labels:
    description: Labels for the container and volume (C(key=value)).
    type: list
    elements: str
    default: []
  timeout:
    description: Seconds to wait for replay and promotion.
    type: int
    default: 1800
extends_documentation_fragment:
  - datasafe.pgbackrest_repo
attributes:
  check_mode:
    support: full
    description: Reports what it would do; creates nothing.
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Recover to just before the update
  continuous_recover:
    name: lms-recovered-20261201
    image: datasafe-continuous/lms-db:abc123
    stanza: lms
    repo_dir: ~/backups-pgbackrest
    conf_dir: ~/.datasafe/continuous/lms
    port: 55432
    database: lms_slncity
    user: lms_user
    tables: [users, visits]
    target_kind: name
    target: datasafe-update-20261201T160000Z
"""

RETURN = r"""
container:
  description: The recovered server's container (and volume) name.
  returned: when recovered
  type: str
port:
  description: Its loopback port.
  returned: when recovered
  type: int
counts:
  description: Row counts of the critical tables in the recovered server.
  returned: when recovered
  type: dict
repo:
  description: The repository recovered from (1 local, 2 off-site on S3).
  returned: when recovered
  type: int
live_counts:
  description: The same tables counted in the live database, for comparison.
  returned: when live_container is set
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.datasafe import container, continuous, modulekit, runner, specs


def main():
    module = AnsibleModule(
        argument_spec=specs.spec(
            specs.PGBACKREST_REPO,
            name=dict(type="str", required=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            image=dict(type="str"),
            stanza=dict(type="str"),
            repo_dir=dict(type="path"),
            conf_dir=dict(type="path"),
            pgdata=dict(type="str", default="/var/lib/postgresql/data"),
            port=dict(type="int"),
            database=dict(type="str"),
            user=dict(type="str"),
            tables=dict(type="list", elements="str", default=[]),
            live_container=dict(type="str"),
            target_kind=dict(type="str", choices=list(continuous.TARGET_KINDS), default="latest"),
            target=dict(type="str"),
            inclusive=dict(type="bool", default=True),
            labels=dict(type="list", elements="str", default=[]),
            timeout=dict(type="int", default=1800),
        ),
        required_if=[("state", "present", ["image", "stanza", "repo_dir", "conf_dir", "port", "database", "user"])],
        supports_check_mode=True,
    )
    p = module.params
    run = runner.for_module(module)
    exists = run(["docker", "container", "inspect", p["name"]])[0] == 0
    vol_exists = run(["docker", "volume", "inspect", p["name"]])[0] == 0
    if p["state"] == "absent":
        if not module.check_mode:
            if exists:
                run(["docker", "rm", "-f", p["name"]])
            if vol_exists:
                rc, out, err = run(["docker", "volume", "rm", p["name"]])
                if rc != 0:
                    module.fail_json(msg="cannot remove volume %s: %s" % (p["name"], err.strip()))
        module.exit_json(changed=exists or vol_exists)
    opts = modulekit.call(
        module,
        lambda: continuous.target_options(p["target_kind"], p["target"], p["inclusive"]),
        "recover",
        (continuous.ContinuousError,),
    )
    if exists or vol_exists:
        module.fail_json(
            msg="recover: a container or volume named %s exists already; recovery never reuses one: "
            "choose another name (datasafe_recover_name) or remove it (datasafe_recover_state=absent)" % p["name"]
        )
    if module.check_mode:
        module.exit_json(
            changed=True,
            would="pgbackrest restore --repo=%s %s into new volume %s, serve on 127.0.0.1:%s"
            % (p["repo"], " ".join(opts), p["name"], p["port"]),
        )
    try:
        result = continuous.recover(
            run,
            p["image"],
            p["stanza"],
            p["repo_dir"],
            p["conf_dir"],
            p["name"],
            p["port"],
            p["user"],
            p["database"],
            p["tables"],
            kind=p["target_kind"],
            value=p["target"],
            inclusive=p["inclusive"],
            labels=p["labels"],
            pgdata=p["pgdata"],
            timeout=p["timeout"],
            repo=p["repo"],
            repo_env=p["repo_env"]
            or (continuous.repo_env_of(run, p["live_container"]) if p["live_container"] and p["repo"] != 1 else {}),
        )
        if p["live_container"] and p["tables"]:
            result["live_counts"] = container.count_rows(
                run, p["live_container"], p["database"], p["user"], p["tables"]
            )
    except (continuous.ContinuousError, container.ContainerError, ValueError) as exc:
        module.fail_json(msg="recover: %s" % exc, changed=True)
    module.exit_json(changed=True, **result)


if __name__ == "__main__":
    main()
