#!/usr/bin/python
# -*- coding: utf-8 -*-
"""What enabling continuous recovery on a stack would change: override, configuration, image."""

DOCUMENTATION = r"""
---
module: continuous_plan
short_description: Plan continuous recovery (pgBackRest, WAL archiving) for a compose stack
description:
  - Reads the stack's compose configuration (the user's files only, never datasafe's override)
    and works out datasafe's compose override for the database service (the derived image with
    pgBackRest, the service's own command plus C(wal_level), C(archive_mode), C(archive_command)
    and C(archive_timeout), the repository and configuration mounted), the pgBackRest
    configuration, the derived image's tag, the owner the repository directory needs (the
    image's postgres user, 999 in the official image) and the image's PGDATA.
  - Compares them with what is on disk and with what the running server does, so the role
    changes only what differs and a second run changes nothing.
  - Reads only; it changes nothing, in check mode or not.
version_added: "0.2.0"
author: datasafe maintainers
options:
  project:
    description: Compose project name; also names the pgBackRest stanza and the override file.
  repo_dir:
    description: Host directory of the pgBackRest repository (mode 0700, owned by the image's postgres user).
    type: path
    required: true
  conf_dir:
    description: Host directory holding pgbackrest.conf, mounted read-only at /etc/pgbackrest.
    type: path
    required: true
  dockerfile_dir:
    description: Directory with the derived image's Dockerfile.
    type: path
    required: true
  retention_full:
    description: Full backups pgBackRest keeps (repo1-retention-full); WAL expires only with them.
    type: int
    default: 2
  archive_timeout:
    description: Seconds after which an idle server switches WAL segment, so the recovery point is never older (1-60).
    type: int
    default: 60
  repo2:
    description:
      - Optional second repository on S3, encrypted with pgBackRest's aes-256-cbc. Keys
        C(bucket), C(endpoint), C(path), C(region), C(uri_style), C(retention_full), C(verify_tls),
        C(port) (the endpoint's port when not 443). Small files are bundled (C(repo2-bundle)), so a
        backup is a few dozen requests to S3.
        Credentials and the cipher passphrase never go into the file (environment of the
        container, C(PGBACKREST_REPO2_*)).
    type: dict
extends_documentation_fragment:
  - datasafe
  - datasafe.stack
  - datasafe.read_only
"""

EXAMPLES = r"""
- name: Plan continuous recovery
  continuous_plan:
    compose_dir: /srv/lms
    compose_files: [docker-compose.prod.yml]
    project: lms
    container: lms-postgres
    database: lms_slncity
    user: lms_user
    repo_dir: ~/backups-pgbackrest
    conf_dir: ~/.datasafe/continuous/lms
    dockerfile_dir: "{{ role_path }}/files"
  register: plan
"""

RETURN = r"""
stanza:
  description: The pgBackRest stanza.
  returned: success
  type: str
base_image:
  description: The database image the stack's own compose files name.
  returned: success
  type: str
image:
  description: The derived image's tag (per project, by base image id and Dockerfile).
  returned: success
  type: str
image_present:
  description: Whether the derived image is already built.
  returned: success
  type: bool
override_path:
  description: datasafe's compose override for the stack.
  returned: success
  type: str
override_content:
  description: What the override must contain.
  returned: success
  type: str
override_current:
  description: The override on disk now, or null when there is none.
  returned: success
  type: str
override_changed:
  description: The override on disk differs (or is missing).
  returned: success
  type: bool
conf_content:
  description: What pgbackrest.conf must contain.
  returned: success
  type: str
owner:
  description: uid and gid of the image's postgres user (the repository's owner).
  returned: success
  type: dict
archiving:
  description: The running server's archiving (pg_stat_archiver), or null when it does not answer.
  returned: success
  type: dict
archiving_on:
  description: The running server archives with this stanza's command.
  returned: success
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.datasafe import continuous, modulekit, runner, specs


def main():
    module = AnsibleModule(
        argument_spec=specs.spec(
            specs.CONNECTION,
            specs.STACK,
            repo_dir=dict(type="path", required=True),
            conf_dir=dict(type="path", required=True),
            dockerfile_dir=dict(type="path", required=True),
            retention_full=dict(type="int", default=2),
            archive_timeout=dict(type="int", default=60),
            repo2=dict(type="dict"),
        ),
        supports_check_mode=True,
    )
    modulekit.finish(
        module,
        lambda: continuous.plan(runner.for_module(module), module.params),
        "continuous recovery plan",
        (continuous.ContinuousError, ValueError, OSError),
    )


if __name__ == "__main__":
    main()
