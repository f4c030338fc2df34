#!/usr/bin/python
# -*- coding: utf-8 -*-
"""The verdict of verify.yml (engine: module_utils/datasafe/verification.py)."""

DOCUMENTATION = r"""
---
module: verify_judge
short_description: Judge a stack's counts against a known-good reference and scan its logs
description:
  - Compares the counts just taken (O(counts)) with the newest known-good reference - the newest
    verified backup's manifest in O(backup_dir) or the snapshot of the previous passing verify
    (O(snapshot)) - and reports every critical table that lost rows beyond O(allow_decrease).
  - Reads the last O(log_lines) lines of every container of the compose project (the
    protocol's C(docker compose logs --tail=50)), returns them and the lines matching
    O(log_patterns) but no O(log_ignore).
  - Does not fail on what it finds; RV(failures) lists the reasons, so the caller shows the logs
    first and fails with the reasons last.
  - When there is no failure, writes the counts to O(snapshot) (atomically, mode 0600) unless
    it already holds exactly these counts; a failing verify never moves the reference.
version_added: "0.2.0"
author: datasafe maintainers
options:
  counts:
    description: The counts just taken, as row_counts returns them.
    type: dict
    required: true
  project:
    description: Compose project whose containers' logs are read.
    type: str
    required: true
  database:
    description: Only backups of this database are references.
    type: str
    required: true
  backup_dir:
    description: Where the verified backups and their manifests are (a missing directory has none).
    type: path
    required: true
  snapshot:
    description: The verify snapshot file (JSON).
    type: path
    required: true
  compare_to:
    description:
      - V(auto) compares with the newer of the newest verified backup and the previous snapshot;
        V(backup) or V(snapshot) only with that one; V(none) compares nothing.
    type: str
    choices: [auto, backup, snapshot, none]
    default: auto
  allow_decrease:
    description: "Rows a table may lose against the reference, C({table: rows}); none by default."
    type: dict
    default: {}
  log_lines:
    description: Lines read from the end of every container's log.
    type: int
    default: 50
  log_patterns:
    description: Regular expressions of an error line; empty uses the severity words and HTTP 5xx.
    type: list
    elements: str
    default: []
  log_ignore:
    description: Regular expressions of lines never counted as errors (known noise).
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
    description: Everything is read and judged as in a real run; the snapshot is not written.
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Judge the counts and scan the logs
  verify_judge:
    counts: "{{ counted.counts }}"
    project: lms
    database: lms_slncity
    backup_dir: ~/backups
    snapshot: ~/datasafe_verify_lms.json
  register: verdict
"""

RETURN = r"""
reference:
  description: The reference compared with (source backup or snapshot, name, at, counts); null when there is none.
  returned: always
  type: dict
problems:
  description: One entry per table that lost rows beyond what is allowed.
  returned: always
  type: list
  elements: dict
logs:
  description: The last lines of every container of the project.
  returned: always
  type: dict
log_findings:
  description: Log lines that look like errors, with their container.
  returned: always
  type: list
  elements: dict
failures:
  description: Why the verify fails, one line per reason; empty when it passes.
  returned: always
  type: list
  elements: str
summary:
  description: Finished report lines.
  returned: always
  type: list
  elements: str
snapshot_written:
  description: Whether the snapshot was (or, in check mode, would be) written.
  returned: always
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.datasafe import container, modulekit, verification


def main():
    module = AnsibleModule(
        argument_spec=dict(
            counts=dict(type="dict", required=True),
            project=dict(type="str", required=True),
            database=dict(type="str", required=True),
            backup_dir=dict(type="path", required=True),
            snapshot=dict(type="path", required=True),
            compare_to=dict(type="str", choices=list(verification.COMPARE_TO), default="auto"),
            allow_decrease=dict(type="dict", default={}),
            log_lines=dict(type="int", default=50),
            log_patterns=dict(type="list", elements="str", default=[]),
            log_ignore=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    modulekit.finish(
        module,
        lambda: verification.task(container.module_runner(module), module.params, module.check_mode),
        "verify_judge",
        (verification.VerifyError, ValueError),
    )


if __name__ == "__main__":
    main()
