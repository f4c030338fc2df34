#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Undo, step 1: find exactly what a mistake destroyed, and write it down for review."""

DOCUMENTATION = r"""
---
module: undo_review
short_description: Compare the tables as they were just before a mistake with the live ones, by primary key
description:
  - Recovers the moment just before the mistake into a throwaway server (never the live one),
    from the pgBackRest repository (O(source=continuous)), or from the newest verified logical
    backup older than the moment (O(source=backup), which cannot see what happened between the
    backup and the moment, and says so).
  - Copies the live tables into the throwaway server and compares them there by primary key,
    then writes what it found into review tables in the live database, in a schema of the run's
    own (C(datasafe_undo_<UTC time>)), one table per table undone, plus C(_run) (the target and,
    once applied, the counts). Nothing else in the live database changes.
  - Rows that existed then and are gone now are C(bring_back); rows whose values differ now are
    C(revert) when the transaction that last wrote them (the live row's C(xmin)) is one of
    O(mistake_xids), else C(conflict) (changed again after the mistake, or a key reused). Rows
    added since are left alone. The result lists changed rows grouped by that transaction.
  - Refuses tables that do not exist or have no primary key, a target in the future or older
    than any backup, and a live table whose columns changed since the moment.
version_added: "0.3.0"
author: datasafe maintainers
options:
  tables:
    description: The tables to compare (C(schema.table) for another schema than public).
    type: list
    elements: str
    required: true
  target_kind:
    description: What O(target) is. For V(xid) the recovery stops just before that transaction, which
      then counts as the mistake. For V(time) the recovery stops just before that moment.
    type: str
    choices: [time, xid, name, lsn]
    default: time
  target:
    description: The moment just before the mistake (a time with its zone, an xid, a restore point name, an LSN).
    type: str
    required: true
  mistake_xids:
    description: The transaction(s) that were the mistake (as the review lists them, or C(txid_current()) values);
      only rows they wrote last are reverted.
    type: list
    elements: str
    default: []
  source:
    description: Where the moment comes from.
    type: str
    choices: [continuous, backup]
    default: continuous
  image:
    description: Image of the throwaway server (with pgBackRest for O(source=continuous)).
    type: str
    required: true
  stanza:
    description: The pgBackRest stanza (O(source=continuous)).
    type: str
  repo_dir:
    description: Host directory of the pgBackRest repository (O(source=continuous)).
    type: path
  conf_dir:
    description: Host directory holding pgbackrest.conf (O(source=continuous)).
    type: path
  pgdata:
    description: PGDATA inside the image.
    type: str
    default: /var/lib/postgresql/data
  backup_dir:
    description: Directory of the logical backups (O(source=backup)).
    type: path
    default: ~/backups
  name:
    description: Name of the throwaway container and volume (default C(datasafe-undo-<run>-<random>)).
    type: str
    default: ""
  port:
    description: Loopback port of the throwaway server (0 picks a free one).
    type: int
    default: 0
  labels:
    description: Labels for the throwaway container and volume (C(key=value)).
    type: list
    elements: str
    default: []
  keep_server:
    description: Keep the throwaway server running afterwards (to look at it); removed otherwise.
    type: bool
    default: false
  timeout:
    description: Seconds allowed for the recovery (or restore) and the server to be ready.
    type: int
    default: 3600
extends_documentation_fragment:
  - datasafe
attributes:
  check_mode:
    support: full
    description: Checks the tables, the target and (for backups) the backup it would use; recovers and writes nothing.
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: What did the DELETE at 15:59 destroy?
  undo_review:
    container: lms-postgres
    database: lms_slncity
    user: lms_user
    tables: [visits, results]
    target: "2026-12-01 15:59:00+00"
    image: datasafe-continuous/lms-db:abc123
    stanza: lms
    repo_dir: ~/backups-pgbackrest
    conf_dir: ~/.datasafe/continuous/lms
"""

RETURN = r"""
run:
  description: The review's name (apply it with O(ignore:undo_apply.review)).
  returned: always
  type: str
schema:
  description: The review schema in the live database.
  returned: always
  type: str
found:
  description: Per table, rows to bring back, to revert, and conflicts.
  returned: when reviewed
  type: dict
changed_by_xid:
  description: Per table, the changed rows counted by the transaction that last wrote them.
  returned: when reviewed
  type: dict
summary:
  description: One line per table, and what the review could not see (backup source).
  returned: when reviewed
  type: list
  elements: str
window_not_seen:
  description: For O(source=backup), the window between the backup and the target this undo is blind to.
  returned: when reviewed
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.datasafe import modulekit, runner, specs, undo


def main():
    module = AnsibleModule(
        argument_spec=specs.spec(
            specs.CONNECTION,
            tables=dict(type="list", elements="str", required=True),
            target_kind=dict(type="str", choices=["time", "xid", "name", "lsn"], default="time"),
            target=dict(type="str", required=True),
            mistake_xids=dict(type="list", elements="str", default=[]),
            source=dict(type="str", choices=["continuous", "backup"], default="continuous"),
            image=dict(type="str", required=True),
            stanza=dict(type="str"),
            repo_dir=dict(type="path"),
            conf_dir=dict(type="path"),
            pgdata=dict(type="str", default="/var/lib/postgresql/data"),
            backup_dir=dict(type="path", default="~/backups"),
            name=dict(type="str", default=""),
            port=dict(type="int", default=0),
            labels=dict(type="list", elements="str", default=[]),
            keep_server=dict(type="bool", default=False),
            timeout=dict(type="int", default=3600),
        ),
        required_if=[("source", "continuous", ["stanza", "repo_dir", "conf_dir"])],
        supports_check_mode=True,
    )
    modulekit.finish(
        module,
        lambda: undo.review_task(runner.for_module(module), module.params, check_mode=module.check_mode),
        "undo review",
        undo.ERRORS,
    )


if __name__ == "__main__":
    main()
