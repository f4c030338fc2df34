#!/usr/bin/python
# -*- coding: utf-8 -*-
"""The restore drill's continuous part: a heartbeat, archived within the RPO, recovered."""

DOCUMENTATION = r"""
---
module: continuous_drill
short_description: Prove recovery to a recent moment with a heartbeat row
description:
  - Commits a heartbeat row in the live database (table C(datasafe.heartbeat), created when
    missing, one row per drill), waits until archiving carries it to the pgBackRest repository on
    its own (no forced WAL switch, so the real recovery point is measured), at most O(rpo_seconds);
    recovers the repository to latest into a new volume and a throwaway server and checks that
    the newest heartbeat there is the one just committed; removes the throwaway server and volume.
  - The live server gets one small row; its data is otherwise only read.
version_added: "0.2.0"
author: datasafe maintainers
options:
  project:
    description: Compose project (names the stanza).
    type: str
    required: true
  image:
    description: The derived image with pgBackRest.
    type: str
    required: true
  repo_dir:
    description: Host directory of the repository.
    type: path
    required: true
  conf_dir:
    description: Host directory of pgbackrest.conf.
    type: path
    required: true
  pgdata:
    description: PGDATA inside the image.
    type: str
    default: /var/lib/postgresql/data
  port:
    description: Loopback port of the throwaway server; 0 picks a free one.
    type: int
    default: 0
  rpo_seconds:
    description: The heartbeat must be archived within this many seconds.
    type: int
    default: 120
  name:
    description: Name of the throwaway container and volume (default from the project and the time).
    type: str
  labels:
    description: Labels for the throwaway container and volume (C(key=value)).
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - datasafe
  - datasafe.pgbackrest_repo
attributes:
  check_mode:
    support: full
    description: Reports what it would do; writes no heartbeat and starts nothing.
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Recover a fresh heartbeat from the repository
  continuous_drill:
    container: lms-postgres
    database: lms_slncity
    user: lms_user
    project: lms
    image: datasafe-continuous/lms-db:abc123
    repo_dir: ~/backups-pgbackrest
    conf_dir: ~/.datasafe/continuous/lms
    port: 55433
"""

RETURN = r"""
repo:
  description: The repository the heartbeat was recovered from (1 local, 2 off-site on S3).
  returned: success
  type: int
heartbeat:
  description: When the heartbeat was committed.
  returned: success
  type: str
archived_after_seconds:
  description: Seconds from the heartbeat's commit to the archiving of its segment (the measured recovery point).
  returned: success
  type: float
recovered_heartbeat:
  description: The newest heartbeat in the recovered server (equal to RV(heartbeat)).
  returned: success
  type: str
"""

import socket
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.datasafe import container, continuous, modulekit, runner, specs


def main():
    module = AnsibleModule(
        argument_spec=specs.spec(
            specs.CONNECTION,
            specs.PGBACKREST_REPO,
            project=dict(type="str", required=True),
            image=dict(type="str", required=True),
            repo_dir=dict(type="path", required=True),
            conf_dir=dict(type="path", required=True),
            pgdata=dict(type="str", default="/var/lib/postgresql/data"),
            port=dict(type="int", default=0),
            rpo_seconds=dict(type="int", default=120),
            name=dict(type="str"),
            labels=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if not p["port"]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.1", 0))
            p["port"] = probe.getsockname()[1]
    name = p["name"] or "%s-drill-%s" % (p["project"], time.strftime("%Y%m%d%H%M%S", time.gmtime()))
    if module.check_mode:
        module.exit_json(
            changed=False,
            would="heartbeat, wait for archiving, recover latest from repository %s into %s, remove it"
            % (p["repo"], name),
        )
    result = modulekit.call(
        module,
        lambda: continuous.drill(
            runner.for_module(module),
            p["container"],
            p["database"],
            p["user"],
            continuous.stanza_name(p["project"]),
            p["image"],
            p["repo_dir"],
            p["conf_dir"],
            name,
            p["port"],
            rpo_seconds=p["rpo_seconds"],
            pgdata=p["pgdata"],
            labels=p["labels"],
            repo=p["repo"],
            repo_env=p["repo_env"]
            or (continuous.repo_env_of(runner.for_module(module), p["container"]) if p["repo"] != 1 else {}),
        ),
        "continuous drill",
        (continuous.ContinuousError, container.ContainerError),
    )
    module.exit_json(changed=True, **result)


if __name__ == "__main__":
    main()
