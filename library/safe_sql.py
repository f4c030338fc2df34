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
  container:
    description: Name of the running PostgreSQL container.
    type: str
    required: true
  database:
    description: Database to run the SQL in.
    type: str
    required: true
  user:
    description:
      - Database role C(psql) connects as, over the container's local socket; no password is
        passed (none appears in argv, output or logs).
    type: str
    required: true
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
    type: list
    elements: dict
    default: []
  allow_destructive:
    description:
      - Break-glass. Run SQL the guard refuses, only if a verified backup younger than
        O(breakglass_max_age) minutes exists in O(backup_dir). Requires O(reason).
    type: bool
    default: false
  reason:
    description: Why the destruction is necessary; written to the change log. Required with O(allow_destructive).
    type: str
  backup_dir:
    description: Where backups and their C(<file>.json) manifests are.
    type: path
    default: ~/backups
  breakglass_max_age:
    description: Age limit in minutes of the verified backup break-glass requires.
    type: int
    default: 15
  change_log:
    description: The human change log break-glass uses are appended to.
    type: path
    default: ~/change-log.txt
  change_log_json:
    description: The JSON-lines change log break-glass uses are appended to.
    type: path
    default: ~/change-log.jsonl
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
  - pglast (on the managed host, for the guard)
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
  description: The backup that justified break-glass (path, manifest, end, age_seconds, sha256), when used.
  returned: when break-glass was used
  type: dict
"""

import csv
import io
import uuid

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.datasafe import breakglass, container, guard, guard_sql

DML = ("InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt")
# Statements that only touch the session, never stored data or schema.
SESSION_ONLY = (
    "SelectStmt",
    "VariableSetStmt",
    "VariableShowStmt",
    "TransactionStmt",
    "ExplainStmt",
    "PrepareStmt",
    "DeallocateStmt",
    "ListenStmt",
    "UnlistenStmt",
    "NotifyStmt",
    "DiscardStmt",
    "CheckPointStmt",
    "LockStmt",
    "DeclareCursorStmt",
    "FetchStmt",
    "ClosePortalStmt",
)


def build_script(kinds, marker, wrap):
    """psql input: each statement between two \\echo markers, the second carrying :ROW_COUNT."""
    lines = []
    if wrap:
        lines.append("BEGIN;")
    for i, kind in enumerate(kinds):
        lines.append("\\echo %s start %d" % (marker, i))
        # the newline before ';' keeps a trailing -- comment from swallowing it
        lines.append(kind["statement"] + "\n;")
        lines.append("\\echo %s end %d :ROW_COUNT" % (marker, i))
    if wrap:
        lines.append(wrap + ";")
    return "\n".join(lines) + "\n"


def parse_output(out, marker, kinds):
    """Split psql's CSV output by markers into per-statement row counts and rows."""
    results, current, buffer = [], None, []
    for line in out.splitlines():
        if line.startswith(marker + " "):
            parts = line.split()
            if parts[1] == "start":
                current, buffer = int(parts[2]), []
            elif parts[1] == "end" and current is not None:
                rows = list(csv.reader(io.StringIO("\n".join(buffer))))
                header, data = (rows[0], rows[1:]) if rows else ([], [])
                count = int(parts[3]) if len(parts) > 3 and parts[3].isdigit() else None
                results.append(dict(kinds[current], row_count=count, rows=[dict(zip(header, r)) for r in data]))
                current = None
            continue
        if current is not None:
            buffer.append(line)
    return results, current


def statement_changed(stmt):
    """Did this statement change stored data or schema? (honest ``changed``)"""
    if stmt["read_only"]:
        return False
    if stmt["type"] in DML or stmt["type"] == "CopyStmt":
        return bool(stmt.get("row_count"))
    return stmt["type"] not in SESSION_ONLY or stmt["type"] in ("ExplainStmt", "SelectStmt")


def main():
    spec = dict(
        container=dict(type="str", required=True),
        database=dict(type="str", required=True),
        user=dict(type="str", required=True),
        sql=dict(type="str"),
        src=dict(type="path"),
        single_transaction=dict(type="bool", default=True),
        deny_rules=dict(type="list", elements="dict", default=[]),
    )
    spec.update(breakglass.ARGUMENT_SPEC)
    module = AnsibleModule(
        argument_spec=spec,
        mutually_exclusive=[("sql", "src")],
        required_one_of=[("sql", "src")],
        required_if=breakglass.REQUIRED_IF,
        supports_check_mode=True,
    )
    if not guard_sql.available():
        # fail closed: without the parser nothing can be verified, so nothing runs
        module.fail_json(msg=missing_required_lib("pglast"), exception=str(guard_sql.PGLAST_IMPORT_ERROR))
    p = module.params
    result = dict(changed=False, findings=[], refused=False, executed=False)

    sql = p["sql"]
    if p["src"] is not None:
        try:
            with open(p["src"], encoding="utf-8") as handle:
                sql = handle.read()
        except (OSError, UnicodeDecodeError) as exc:
            module.fail_json(msg="cannot read SQL file %s: %s" % (p["src"], exc), **result)
    try:
        rules = guard.compile_deny_rules(p["deny_rules"], "sql")
    except guard.DenyRuleError as exc:
        module.fail_json(msg="deny_rules: %s" % exc, **result)

    findings = guard_sql.judge(sql, rules)
    result["findings"] = [f.to_dict() for f in findings]
    try:
        evidence = breakglass.gate(p, findings, "safe_sql", sql, module.check_mode, database=p["database"])
    except breakglass.Refused as exc:
        module.fail_json(msg=str(exc), **dict(result, **exc.result))
    if evidence:
        result["breakglass"] = evidence

    kinds = guard_sql.statement_kinds(sql)
    if not kinds:
        module.exit_json(msg="no SQL statements to run", **result)
    wrappable = all(k["transactional"] for k in kinds)
    would_change = not all(k["read_only"] or k["type"] in SESSION_ONLY for k in kinds)
    if module.check_mode and not wrappable:
        result.update(
            changed=would_change,
            statements=[dict(k, row_count=None, rows=[]) for k in kinds],
            msg="check mode: not run, because it cannot be rolled back (statements that cannot run "
            "in a transaction, or BEGIN/COMMIT of its own)",
        )
        module.exit_json(**result)

    if module.check_mode:
        wrap = "ROLLBACK"
    else:
        wrap = "COMMIT" if (p["single_transaction"] and wrappable) else None
    marker = "__datasafe_%s__" % uuid.uuid4().hex
    script = build_script(kinds, marker, wrap)
    argv = container.psql_argv(p["container"], p["database"], p["user"], extra=["--csv"])
    run = container.module_runner(module)
    rc, out, err = run(argv, data=script)
    statements, unfinished = parse_output(out, marker, kinds)
    result.update(
        executed=True,
        statements=statements,
        transaction={"ROLLBACK": "rollback", "COMMIT": "commit", None: "none"}[wrap],
    )
    result["rows_affected"] = sum(s["row_count"] or 0 for s in statements if s["type"] in DML)
    if rc != 0:
        failed_at = unfinished if unfinished is not None else len(statements)
        # Inside a wrapping transaction a failure undoes everything; without one, earlier statements stay done.
        kept = [] if wrap else statements
        result["changed"] = any(statement_changed(s) for s in kept) and not module.check_mode
        breakglass.log_outcome(p, "safe_sql", evidence, "failed", module.check_mode, rc=rc)
        module.fail_json(
            msg="psql failed (exit %d) at statement %d of %d: %s"
            % (rc, failed_at + 1, len(kinds), (err or "").strip() or "no error output"),
            rc=rc,
            stderr=err,
            failed_statement=kinds[min(failed_at, len(kinds) - 1)]["statement"],
            **result,
        )
    result["changed"] = any(statement_changed(s) for s in statements)
    breakglass.log_outcome(
        p, "safe_sql", evidence, "succeeded", module.check_mode, rows_affected=result["rows_affected"]
    )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
