#!/usr/bin/python
# -*- coding: utf-8 -*-
"""The finished lines an operator reads after a restore or a rolled-back update."""

DOCUMENTATION = r"""
---
module: report_lines
short_description: The finished summary lines of a restore or a rolled-back update
description:
  - Writes the sentences a role shows at its end and puts into the change log, from the facts
    the role gathered (C(module_utils/datasafe/reports.py)), so no role assembles report text in
    Jinja.
  - Reads nothing and changes nothing.
version_added: "0.4.0"
author: datasafe maintainers
options:
  kind:
    description:
      - C(restore) (the restore's notes, its change log message and report lines),
        C(update_rolled_back) or C(update_rollback_failed) (the change log message and the
        failure of the safe update).
    type: str
    choices: [restore, update_rolled_back, update_rollback_failed]
    required: true
  facts:
    description:
      - What the role gathered. C(restore) needs C(database), C(backup_file), C(check_mode), and
        takes C(counts), C(kept_as), C(downtime), C(verified_at), C(analyze), C(analyzed)
        (job_result's result), C(safety_enabled), C(reachable) (the probe's result),
        C(safety_backup).
      - The update's kinds need C(project), C(failure), C(revision_before), C(restore_command) and
        take C(problems) (row_counts' problems), C(restore_on_data_loss), C(backup_path);
        C(update_rollback_failed) also needs C(compose_dir) and takes C(rollback_task),
        C(rollback_msg).
    type: dict
    required: true
extends_documentation_fragment:
  - datasafe.read_only
"""

EXAMPLES = r"""
- name: Word the restore's report
  report_lines:
    kind: restore
    facts:
      database: lms_slncity
      backup_file: lms_slncity_20260101_020000.sql.gz
      check_mode: "{{ ansible_check_mode }}"
      counts: {patients: 1200}
  register: report
"""

RETURN = r"""
message:
  description: The change log's message.
  returned: success
  type: str
lines:
  description: The restore's report, one line each (kind C(restore)).
  returned: success
  type: list
  elements: str
msg:
  description: The failure shown to the operator (the update's kinds).
  returned: success
  type: str
safety_note:
  description: The safety backup, or why there is none (kind C(restore)).
  returned: success
  type: str
downtime_note:
  description: How long the application was down (kind C(restore)).
  returned: success
  type: str
analyze_note:
  description: The ANALYZE after the swap (kind C(restore)).
  returned: success
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.datasafe import modulekit, reports


def main():
    module = AnsibleModule(
        argument_spec=dict(
            kind=dict(type="str", choices=list(reports.KINDS), required=True),
            facts=dict(type="dict", required=True),
        ),
        supports_check_mode=True,
    )
    lines = modulekit.call(
        module, lambda: reports.lines(module.params["kind"], module.params["facts"]), "report_lines", (ValueError,)
    )
    module.exit_json(changed=False, **lines)


if __name__ == "__main__":
    main()
