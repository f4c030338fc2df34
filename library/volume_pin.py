#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Keep a running pin container on a protected volume, so no Docker client can remove it."""

DOCUMENTATION = r"""
---
module: volume_pin
short_description: Keep a running container holding a protected volume, so no Docker client can remove it
description:
  - Docker refuses to remove a volume that a container uses. A small B(running) container
    that mounts the database volume therefore stops C(docker compose down -v),
    C(docker volume rm -f), C(docker volume prune), C(docker system prune --volumes) and the
    Engine API's C(DELETE /volumes/{name}), whoever sends them.
  - The pin is named C(datasafe-pin-<volume>), labelled C(io.datasafe.pin=<volume>), lives
    outside the compose project (C(compose down) never removes it), restarts with the engine,
    uses an image already on the host (the database's) and runs C(sleep infinity) with no
    network, no capabilities, a read-only root and the volume mounted read-only.
  - V(query) only reports; with O(required) it fails when the pin is missing, otherwise it
    warns loudly.
version_added: "0.1.0"
author: datasafe maintainers
options:
  volume:
    description:
      - Full Docker name of the volume to pin (compose names it C(<project>_<key>)).
      - It must exist; the module never creates a volume.
    type: str
    required: true
  state:
    description:
      - V(present) starts the pin (or the stopped one again); V(absent) removes only a container
        carrying the pin label of this volume; V(query) changes nothing.
    type: str
    choices: [present, absent, query]
    default: present
  image:
    description:
      - Image for the pin; it must already be on the host (nothing is pulled).
      - Default is the image of O(from_container), the database container.
    type: str
  from_container:
    description: Container whose image the pin uses when O(image) is not given.
    type: str
  restart:
    description: Restart policy of the pin.
    type: str
    choices: [always, unless-stopped]
    default: always
  labels:
    description: Extra labels for the pin container (for example a test label).
    type: dict
    default: {}
  required:
    description: With O(state=query), fail when the volume is not pinned (otherwise warn).
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Reports the docker commands it would run and runs none of them.
  diff_mode:
    support: none
notes:
  - Requires the C(docker) CLI on the host.
  - What gets through anyway is in C(docs/guards.md) (root deleting files under C(/var/lib/docker)).
"""

EXAMPLES = r"""
- name: Pin the database volume
  volume_pin:
    volume: lms_postgres_data
    from_container: lms-postgres

- name: Report loudly when the volume is not pinned
  volume_pin:
    volume: lms_postgres_data
    state: query
"""

RETURN = r"""
pinned:
  description: Whether a running pin holds the volume (after the run).
  returned: always
  type: bool
  sample: true
pin:
  description: The pin's state (container, running, holds_volume, restart, image, problems).
  returned: always
  type: dict
actions:
  description: What was done (or would be, in check mode), in words.
  returned: always
  type: list
  elements: str
msg:
  description: With O(state=query), the loud report of a volume that is not pinned.
  returned: when not pinned
  type: str
commands:
  description: The docker argv lists run (or that would run, in check mode).
  returned: always
  type: list
  elements: list
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.datasafe import container, modulekit, pin


def main():
    module = AnsibleModule(
        argument_spec=dict(
            volume=dict(type="str", required=True),
            state=dict(type="str", choices=["present", "absent", "query"], default="present"),
            image=dict(type="str"),
            from_container=dict(type="str"),
            restart=dict(type="str", choices=list(pin.RESTART_POLICIES), default="always"),
            labels=dict(type="dict", default={}),
            required=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    modulekit.finish(
        module,
        lambda: pin.task(container.module_runner(module), module.params, module.check_mode, module.warn),
        None,
        (pin.TaskFailed,),
    )


if __name__ == "__main__":
    main()
