#!/usr/bin/python
# -*- coding: utf-8 -*-
"""List the backups an off-site target holds, or fetch one back, verified before anything else."""

DOCUMENTATION = r"""
---
module: offsite_fetch
short_description: List the backups at an off-site target, or fetch one, verify it and place it as a local backup
description:
  - The way back of layer 4, for a recovery onto a new machine (C(playbooks/recover_server.yml)).
    Reads the off-site manifests (C(<payload>.json)) an S3 or directory target holds.
  - With O(state=list), returns what the target holds (newest first) and changes nothing.
  - With O(state=fetched), downloads the chosen backup (O(backup), or the newest complete one of
    O(database)) and its roles file into O(dest) under temporary names and checks each one's size
    and sha256 against the off-site manifest before anything else; a tampered copy is refused
    there. Age-encrypted copies are then decrypted with O(age_identity), and the plaintext checked
    against the backup's own manifest. Only then are the files named and the local manifest
    written, so O(dest) is an ordinary datasafe backup directory.
  - A file of the same name already in O(dest) is never overwritten (the same backup is used as it is).
  - Connection options and credentials for S3 are amazon.aws's own (C(AnsibleAWSModule)).
version_added: "0.2.0"
author: datasafe maintainers
options:
  type:
    description: The target's type (rsync targets are not supported here; copy the files back with rsync).
    type: str
    choices: [s3, dir]
    required: true
  bucket:
    description: S3 bucket (O(type=s3)).
    type: str
  prefix:
    description: Key prefix in the bucket (O(type=s3)).
    type: str
    default: ""
  path:
    description: The directory (O(type=dir)).
    type: path
  state:
    description: V(list) what the target holds, or V(fetched) one backup into O(dest).
    type: str
    choices: [list, fetched]
    default: list
  backup:
    description: File (or payload) name of the backup to fetch; default the newest complete one of O(database).
    type: str
  database:
    description: Only backups of this database.
    type: str
  dest:
    description: The local backup directory to fetch into (created 0700). Required with O(state=fetched).
    type: path
  age_identity:
    description: The operator's age identity file (private key) for encrypted copies.
    type: path
  allow_insecure_endpoint:
    description: Allow plain http or O(validate_certs=false) off loopback (do not).
    type: bool
    default: false
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
attributes:
  check_mode:
    support: full
    description: Lists the target and names the backup that would be fetched; downloads nothing.
  diff_mode:
    support: none
seealso:
  - module: offsite_s3
  - module: offsite_copy
"""

EXAMPLES = r"""
- name: What does the bucket hold?
  offsite_fetch:
    type: s3
    bucket: lab-db-backups
    prefix: lms/prod-1/
    database: lms_slncity
  register: held

- name: Fetch the newest backup, decrypt it, check it against its manifest
  offsite_fetch:
    type: s3
    bucket: lab-db-backups
    prefix: lms/prod-1/
    database: lms_slncity
    state: fetched
    dest: ~/backups
    age_identity: /root/age-identity.txt
"""

RETURN = r"""
backups:
  description:
    - What the target holds, newest first (file, payload, complete, encrypted, database, kind,
      end, size, app_revision, roles).
  returned: always
  type: list
  elements: dict
chosen:
  description: The backup fetched (or that would be).
  returned: when state is fetched
  type: dict
path:
  description: The fetched backup's local path.
  returned: when state is fetched, not in check mode
  type: str
manifest:
  description: Its local manifest (counts, app_revision, roles ...).
  returned: when state is fetched, not in check mode
  type: dict
checks:
  description: What was verified, in order.
  returned: when state is fetched, not in check mode
  type: list
  elements: str
stage:
  description:
    - The stage that failed (list target, choose backup, fetch, verify download, decrypt, verify
      backup, place backup).
  returned: failure
  type: str
"""

import sys

from ansible.module_utils.datasafe import fetch, modulekit, offsite, runner
from ansible_collections.amazon.aws.plugins.module_utils.botocore import HAS_BOTO3, check_sdk_version_supported
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            type=dict(type="str", choices=["s3", "dir"], required=True),
            bucket=dict(type="str"),
            prefix=dict(type="str", default=""),
            path=dict(type="path"),
            state=dict(type="str", choices=["list", "fetched"], default="list"),
            backup=dict(type="str"),
            database=dict(type="str"),
            dest=dict(type="path"),
            age_identity=dict(type="path"),
            allow_insecure_endpoint=dict(type="bool", default=False),
        ),
        required_if=[("type", "s3", ["bucket"]), ("type", "dir", ["path"]), ("state", "fetched", ["dest"])],
        supports_check_mode=True,
        # boto3 only for an S3 target: a directory target works on a bare Python (checked below)
        check_boto3=False,
    )
    p = module.params

    def make_target():
        if p["type"] == "dir":
            return offsite.DirectoryTarget(p["path"])
        if not HAS_BOTO3:
            raise offsite.Failed(
                "offsite_fetch: an S3 target needs boto3 and botocore in %s, the Python that runs modules on "
                "this host; role datasafe_offsite's deps.yml installs them (datasafe_offsite_install_deps), or "
                "install them there yourself (docs/fleet.md). Nothing was fetched." % sys.executable,
                {"stage": "check target"},
            )
        check_sdk_version_supported(warn=module.warn)
        problem = offsite.endpoint_problem(p["endpoint_url"], p["validate_certs"], p["allow_insecure_endpoint"])
        if problem:
            raise offsite.Failed("offsite_fetch: " + problem, {})
        return offsite.S3Target(module.client("s3"), p["bucket"], prefix=p["prefix"], endpoint_url=p["endpoint_url"])

    modulekit.finish(
        module,
        lambda: fetch.task(p, make_target, module.check_mode, runner.for_module(module)),
        None,
        (offsite.Failed,),
    )


if __name__ == "__main__":
    main()
