#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Run SQL inside the database container, only if datasafe's SQL guard allows it."""

DOCUMENTATION = r"""
---
module: safe_sql
short_description: Run SQL in the PostgreSQL container, refusing anything that destroys data
description:
  - Judges the SQL with datasafe's SQL guard (PostgreSQL's own parser, via pglast) before
    anything runs. TRUNCATE, DROP TABLE/SCHEMA/DATABASE/MATERIALIZED VIEW/OWNED, DROP ... CASCADE,
    ALTER TABLE ... DROP COLUMN, DELETE/UPDATE without a WHERE or with one that is always true,
    joins that restrict nothing, DO blocks, EXECUTE, COPY ... PROGRAM and SQL that does not parse
    are refused, however they are written (comments, casing, quoting, CTEs, several statements).
  - Allowed SQL runs with C(psql -X -v ON_ERROR_STOP=1) inside the container (C(docker exec)),
    by default in one transaction, and the module returns the rows each statement affected
    or returned.
  - The only way past a refusal is break-glass, O(allow_destructive) with a O(reason), accepted
    only when a verified backup younger than O(breakglass_max_age) minutes is in O(backup_dir);
    every attempt is written to the change log.
version_added: "0.1.0"
author: datasafe maintainers
options:
  database:
    description: Database to run the SQL in.
  sql:
    description: The SQL to run, one or more statements.
    type: str
  src:
    description: A file of SQL on the managed host, judged and run like O(sql).
    type: path
  single_transaction:
    description:
      - Run all statements in one transaction, so a failure leaves nothing half done.
      - SQL that cannot run inside a transaction (VACUUM, CREATE INDEX CONCURRENTLY, ...) or that
        controls transactions itself (BEGIN/COMMIT) is run without the wrapper; RV(transaction)
        says which happened.
    type: bool
    default: true
  deny_rules:
    description:
      - Project deny rules added to the built-in ones (which cannot be removed), usually from
        the inventory variable C(datasafe_guard_deny_rules). Each is a mapping with C(id),
        C(regex), C(reason), C(instead) and C(applies_to=sql); command rules are ignored here.
extends_documentation_fragment:
  - datasafe
  - datasafe.breakglass
attributes:
  check_mode:
    support: full
    description:
      - Refusals are reported exactly as in a real run.
      - Allowed SQL runs inside a transaction that is rolled back, so RV(statements) shows the
        real row counts and nothing is kept. SQL that cannot run in a transaction (or contains
        BEGIN/COMMIT) is not run at all in check mode; RV(executed) is then false.
      - A rolled-back run still takes locks and advances sequences, like any aborted transaction.
  diff_mode:
    support: none
requirements:
  - pglast where the guard judges, on the controller (the action plugin, C(plugins/action/safe_sql.py), judges there
    and the managed host needs only Python's standard library) or, without the action plugin, on the managed host
  - the C(docker) CLI on the managed host and C(psql) in the container
notes:
  - C(changed) is true when a statement changed data or schema (DML that affected rows, DDL,
    maintenance); reads, SET and DML that affected no row report no change.
seealso:
  - module: safe_command
"""

EXAMPLES = r"""
- name: Fix one patient's phone number
  safe_sql:
    container: lms-postgres
    database: lms_slncity
    user: lms_user
    sql: "UPDATE patients SET phone = '555-0100' WHERE mrn = 'MRN-000001'"

- name: Run a migration file (refused as a whole if any statement is destructive)
  safe_sql:
    container: "{{ datasafe_db_container }}"
    database: "{{ datasafe_db_name }}"
    user: "{{ datasafe_db_user }}"
    src: /srv/lms/migrations/0042_add_index.sql
    deny_rules: "{{ datasafe_guard_deny_rules | default([]) }}"

- name: Drop the retired staging table (break-glass, after a fresh verified backup)
  safe_sql:
    container: lms-postgres
    database: lms_slncity
    user: lms_user
    sql: DROP TABLE import_staging_2024
    allow_destructive: true
    reason: "CHG-1234: staging table of the finished 2024 import, approved by the lab manager"
"""

RETURN = r"""
findings:
  description: The guard's findings (empty when allowed); each has rule, statement, reason, instead.
  returned: always
  type: list
  elements: dict
  sample: [{"rule": "sql-truncate", "statement": "TRUNCATE patients", "reason": "TRUNCATE removes every row of
            the table", "instead": "delete only the rows you mean with DELETE ... WHERE <condition>"}]
refused:
  description: Whether the guard refused the SQL (and break-glass did not let it through).
  returned: always
  type: bool
executed:
  description:
    - Whether the SQL was sent to the database (false when refused, or in check mode when it
      cannot be rolled back).
  returned: always
  type: bool
transaction:
  description: V(commit), V(rollback) (check mode) or V(none) (statements ran without a wrapping transaction).
  returned: when executed
  type: str
statements:
  description:
    - Per statement, its text, type, row count (affected rows for DML, returned rows for
      queries) and result rows.
  returned: when executed
  type: list
  elements: dict
  sample: [{"statement": "UPDATE patients SET phone = '555-0100' WHERE id = 1", "type": "UpdateStmt",
            "row_count": 1, "rows": []}]
rows_affected:
  description: Sum of the rows inserted, updated, deleted or merged.
  returned: when executed
  type: int
  sample: 1
breakglass:
  description:
    - The backup that justified break-glass (path, manifest, end, age_seconds, sha256), when used.
    - C(restore_point), the named restore point created just before it (null with
      C(restore_point_skipped) saying why - check mode, no database given, no WAL archiving).
  returned: when break-glass was used
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.datasafe import (
    breakglass,
    guard_sql,
    guarded,
    modulekit,
    psql,
    runner,
    specs,
    verdict,
)

GUARD = guarded.Guard("safe_sql", guard_sql.available, "pglast", lambda: guard_sql.PGLAST_IMPORT_ERROR, "sql")


def main():
    module = AnsibleModule(
        argument_spec=specs.spec(
            specs.CONNECTION,
            specs.BREAKGLASS,
            sql=dict(type="str"),
            src=dict(type="path"),
            single_transaction=dict(type="bool", default=True),
        ),
        mutually_exclusive=[("sql", "src")],
        required_one_of=[("sql", "src")],
        required_if=specs.BREAKGLASS_REQUIRED_IF,
        supports_check_mode=True,
    )
    p = module.params
    result = dict(changed=False, findings=[], refused=False, executed=False)
    sql = p["sql"]
    if p["src"] is not None:
        try:
            with open(p["src"], encoding="utf-8") as handle:
                sql = handle.read()
        except (OSError, UnicodeDecodeError) as exc:
            module.fail_json(msg="cannot read SQL file %s: %s" % (p["src"], exc), **result)
    # a verdict reached on the controller (plugins/action/safe_sql.py) is valid only for exactly this SQL
    subject = verdict.sql_subject(sql, p["deny_rules"])
    evidence = modulekit.call(
        module,
        lambda: GUARD.judge(
            p,
            subject,
            lambda rules: guard_sql.judge(sql, rules),
            sql,
            module.check_mode,
            result,
            database=p["database"],
        ),
        None,
        guarded.ERRORS,
        **result,
    )
    judged = p[verdict.PARAM]
    kinds = None if judged is None else judged.get("statements")
    if evidence:
        # With continuous recovery on, "just before the break-glass statement" is a recovery
        # target (playbooks/recover.yml, target kind name); without it nothing is created.
        modulekit.call(
            module,
            lambda: guarded.restore_point(runner.for_module(module), p, evidence, module.check_mode),
            None,
            (breakglass.Refused,),
            **result,
        )

    try:
        result.update(
            psql.execute(
                runner.for_module(module),
                p["container"],
                p["database"],
                p["user"],
                kinds if kinds is not None else _statement_kinds(module, sql, judged, result),
                single_transaction=p["single_transaction"],
                check_mode=module.check_mode,
            )
        )
    except psql.StatementFailed as exc:
        result.update(exc.result)
        breakglass.log_outcome(p, "safe_sql", evidence, "failed", module.check_mode, rc=exc.result["rc"])
        module.fail_json(msg=str(exc), **result)
    if result["executed"]:
        breakglass.log_outcome(
            p, "safe_sql", evidence, "succeeded", module.check_mode, rows_affected=result["rows_affected"]
        )
    module.exit_json(**result)


def _statement_kinds(module, sql, judged, result):
    if judged is not None or not guard_sql.available():
        why = (judged or {}).get("statements_error") or "no parser"
        module.fail_json(msg="safe_sql: the SQL's statements could not be parsed (%s), nothing ran" % why, **result)
    return guard_sql.statement_kinds(sql)


if __name__ == "__main__":
    main()
