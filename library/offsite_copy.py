#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Copy verified backups to a plain directory (a mounted NAS) or an rsync target, and verify them there."""

DOCUMENTATION = r"""
---
module: offsite_copy
short_description: Copy verified backups to a mounted directory or over rsync, verified by checksum
description:
  - Layer 4 of the data safety protocol for a plain directory (a mounted NAS or disk) or an
    rsync destination (C([user@]host:path/) over ssh, or a local path).
  - Copies every selected verified backup (a manifest beside it whose C(verified) is true) that is
    not yet at the target, optionally encrypted with C(age) first, then writes an off-site
    manifest C(<payload>.json) (the local manifest plus an C(offsite) block with the payload's own
    sha256 and size). The off-site manifest is written last, only after the payload verified.
  - A directory copy is written under a temporary name, fsynced, re-read from the destination and
    hashed, and only then renamed. An rsync copy is verified with C(rsync --checksum --dry-run),
    which must find no difference.
  - The local backup is only read. A local backup that no longer matches its manifest is not copied
    and fails the task. Nothing is ever deleted, locally or at the target; a different backup of the
    same name at the target is a conflict and is never overwritten.
  - Writes this target's samples into a Prometheus textfile (O(metrics_file)) on success and on failure.
version_added: "0.1.0"
author: datasafe maintainers
options:
  target:
    description:
      - V(dir) copies into the existing directory O(dest) with Python file operations.
      - V(rsync) runs C(rsync) to O(dest) (remote over ssh when it has the C(host:) form).
    type: str
    choices: [dir, rsync]
    required: true
  dest:
    description:
      - The destination directory, or the rsync destination C([user@]host:path/).
      - A V(dir) destination must exist; it is never created, so an unmounted share cannot fill the local disk.
    type: str
    required: true
  allow_same_filesystem:
    description:
      - A V(dir) destination on the same filesystem as O(backup_dir) is refused (that is not off-site,
        and usually means the share is not mounted). Set true only for tests and demos.
    type: bool
    default: false
  rsync_ssh_args:
    description: Extra C(ssh) arguments for a remote rsync destination (port, identity file), as a list.
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - datasafe.offsite
attributes:
  check_mode:
    support: full
    description: Reads the target and reports in RV(would_copy) what a real run would copy; writes nothing.
  diff_mode:
    support: none
notes:
  - Requires C(rsync) for O(target=rsync) and C(age) when O(encrypt=true).
  - For an encrypted rsync copy already at the target, presence is judged by its off-site manifest and
    its size (age output is not reproducible, so there is no local file to compare checksums with);
    every new copy is still verified by checksum.
"""

EXAMPLES = r"""
- name: Copy every verified backup to the NAS
  offsite_copy:
    target: dir
    dest: /mnt/nas/lms-backups
    backup_dir: ~/backups
    metrics_file: /var/lib/node_exporter/textfile_collector/datasafe_offsite.prom

- name: Copy the new backup, encrypted, to a backup host over rsync+ssh
  offsite_copy:
    target: rsync
    dest: backup@nas.example.org:/srv/backups/lms/
    rsync_ssh_args: [-p, "2222", -i, /root/.ssh/backup_ed25519]
    backups: ["{{ datasafe_backup_result.path }}"]
    encrypt: true
    age_recipients: "{{ vault_datasafe_age_recipients }}"
"""

RETURN = r"""
target:
  description: The target, as named in metrics and messages.
  returned: always
  type: str
  sample: /mnt/nas/lms-backups
copied:
  description: Backups copied and verified by this run.
  returned: always
  type: list
  elements: dict
  sample: [{"file": "lms_backup_20261123_020000.sql.gz", "payload": "lms_backup_20261123_020000.sql.gz.age",
            "sha256": "9f86d0...", "size": 2411, "encrypted": true, "end": "2026-11-23T02:00:09+00:00"}]
skipped:
  description: Backups already at the target and verified there (not copied again).
  returned: always
  type: list
  elements: dict
would_copy:
  description: In check mode, the backups a real run would copy.
  returned: always
  type: list
  elements: dict
ignored:
  description: Backups found in O(backup_dir) but not copied, with the reason (no manifest, not verified).
  returned: always
  type: list
  elements: dict
problems:
  description: Local backups that no longer match their manifest (the task fails when there is any).
  returned: always
  type: list
  elements: dict
pending:
  description: Selected backups not confirmed at the target after this run.
  returned: always
  type: list
  elements: str
bytes:
  description: Bytes copied by this run.
  returned: always
  type: int
encrypted:
  description: Whether payloads are encrypted with age.
  returned: always
  type: bool
metrics_file:
  description: The metrics file written, or null.
  returned: always
  type: str
stage:
  description: The stage that failed (C(check target), C(copy), C(verify copy), C(encrypt), C(check local backups)).
  returned: failure
  type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.datasafe import modulekit, offsite, runner, specs


def main():
    argument_spec = specs.spec(specs.OFFSITE)
    argument_spec.update(
        target=dict(type="str", choices=["dir", "rsync"], required=True),
        dest=dict(type="str", required=True),
        allow_same_filesystem=dict(type="bool", default=False),
        rsync_ssh_args=dict(type="list", elements="str", default=[]),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params

    def make_target(run):
        if p["target"] == "dir":
            source_dir = p["backup_dir"] or os.path.dirname(os.path.expanduser(p["backups"][0]))
            return offsite.DirectoryTarget(
                p["dest"], source_dir=source_dir, allow_same_filesystem=p["allow_same_filesystem"]
            )
        rsync = module.get_bin_path("rsync")
        if not rsync:
            raise offsite.OffsiteError("check target", "rsync is not installed: install the Debian package rsync")
        return offsite.RsyncTarget(p["dest"], run, ssh_args=p["rsync_ssh_args"], rsync=rsync)

    label = p["dest"]
    if p["target"] == "dir":
        label = offsite.DirectoryTarget.label_for(p["dest"])
    elif not label.endswith("/"):
        label += "/"
    run = runner.for_module(module)
    modulekit.finish(
        module,
        lambda: offsite.execute(p, make_target, label, module.check_mode, run, module.get_bin_path, module.warn),
        None,
        (offsite.Failed,),
    )


if __name__ == "__main__":
    main()
