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
  compose_dir:
    description: The application's checkout holding the compose files.
    type: path
    required: true
  compose_files:
    description: The stack's own compose files, relative to O(compose_dir) or absolute.
    type: list
    elements: str
    required: true
  project:
    description: Compose project name; also names the pgBackRest stanza and the override file.
    type: str
    required: true
  compose_env:
    description: Extra environment for docker compose.
    type: dict
    default: {}
  db_service:
    description: The PostgreSQL service in the compose files.
    type: str
    default: postgres
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
        C(bucket), C(endpoint), C(path), C(region), C(uri_style), C(retention_full), C(verify_tls).
        Credentials and the cipher passphrase never go into the file (environment of the
        container, C(PGBACKREST_REPO2_*)).
    type: dict
extends_documentation_fragment:
  - datasafe
attributes:
  check_mode:
    support: full
    description: It only reads.
  diff_mode:
    support: none
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

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.datasafe import compose, container, continuous, runner


def read_text(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            compose_dir=dict(type="path", required=True),
            compose_files=dict(type="list", elements="str", required=True),
            project=dict(type="str", required=True),
            compose_env=dict(type="dict", default={}),
            db_service=dict(type="str", default="postgres"),
            container=dict(type="str", required=True),
            database=dict(type="str", required=True),
            user=dict(type="str", required=True),
            repo_dir=dict(type="path", required=True),
            conf_dir=dict(type="path", required=True),
            dockerfile_dir=dict(type="path", required=True),
            retention_full=dict(type="int", default=2),
            archive_timeout=dict(type="int", default=60),
            repo2=dict(type="dict"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    env = {k: str(v) for k, v in p["compose_env"].items()}
    run = runner.for_module(module)

    stanza = continuous.stanza_name(p["project"])
    try:
        base = compose.compose_argv(p["project"], p["compose_files"], p["compose_dir"], with_override=False)
        image, command, svc_env = continuous.service_config(run, base, p["db_service"], env)
        if not image:
            raise continuous.ContinuousError(
                "service %s names no image; continuous recovery derives its image FROM it: give it an image:"
                % p["db_service"]
            )
        rc, out, err = run(["docker", "image", "inspect", "--format", "{{.Id}}", image])
        if rc != 0:
            raise continuous.ContinuousError("image %s is not on this host; pull or build it first" % image)
        with open(os.path.join(p["dockerfile_dir"], "Dockerfile"), encoding="utf-8") as handle:
            dockerfile = handle.read()
        derived = continuous.image_tag(p["project"], out.strip(), dockerfile)
        present = run(["docker", "image", "inspect", derived])[0] == 0
        pgdata = continuous.image_pgdata(run, image)
        uid, gid = continuous.image_postgres_ids(run, image)
        settings = continuous.server_settings(stanza, p["archive_timeout"])
        override = continuous.render_override(
            p["db_service"], derived, continuous.with_settings(command, settings), p["repo_dir"], p["conf_dir"]
        )
        conf = continuous.render_conf(
            stanza, svc_env.get("PGPORT") or 5432, p["user"], p["retention_full"], p["repo2"], pgdata=pgdata
        )
    except (continuous.ContinuousError, ValueError, OSError) as exc:
        module.fail_json(msg="continuous recovery plan: %s" % exc)
    override_path = compose.override_path(p["project"])
    archiving = None
    try:
        archiving = continuous.archiver(run, p["container"], p["database"], p["user"])
    except container.ContainerError:
        pass
    module.exit_json(
        changed=False,
        stanza=stanza,
        base_image=image,
        image=derived,
        image_present=present,
        pgdata=pgdata,
        owner=dict(uid=uid, gid=gid),
        override_path=override_path,
        override_content=override,
        override_current=read_text(override_path),
        override_changed=read_text(override_path) != override,
        conf_path=os.path.join(p["conf_dir"], continuous.CONF_NAME),
        conf_content=conf,
        conf_changed=read_text(os.path.join(p["conf_dir"], continuous.CONF_NAME)) != conf,
        repo_dir=p["repo_dir"],
        conf_dir=p["conf_dir"],
        archiving=archiving,
        archiving_on=bool(
            archiving
            and archiving["archive_mode"] in ("on", "always")
            and archiving["archive_command"] == continuous.archive_command(stanza)
        ),
    )


if __name__ == "__main__":
    main()
