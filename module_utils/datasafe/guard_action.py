# -*- coding: utf-8 -*-
"""The controller's half of safe_sql and safe_command: judge there, send only the verdict along.

The action plugins ``plugins/action/safe_sql.py`` and ``safe_command.py`` call these on the
controller, where pglast and bashlex are installed (the controller's virtualenv, the execution
environment). Files the guard must read (a migration given as ``src``, a SQL file a command
hands to ``psql -f``) are read on the managed host through ``ansible.builtin.slurp``, so the
judgement is about the host's file, never a controller file of the same name. No module
imports this file: it is never shipped to a host.
"""

import base64
import posixpath
import sys

from ansible.module_utils.datasafe import guard, guard_cmd, guard_sql, verdict

FORGED = "%s is set by datasafe's action plugin only, never by a task"


class Refusal(Exception):
    """The controller cannot reach a verdict: the task fails and nothing runs on the host."""


def run(action, result, task_vars, judge):
    """An action plugin's ``run`` (safe_sql's and safe_command's): refuse a verdict a task forged,
    let ``judge(args)`` put the controller's verdict into the module's ``args`` (or raise
    :class:`Refusal`: the task fails, nothing runs on the host), then run the module there."""
    args = dict(action._task.args)
    if verdict.PARAM in args:
        return dict(result, failed=True, msg=FORGED % verdict.PARAM)
    try:
        judge(args)
    except Refusal as exc:
        return dict(result, failed=True, changed=False, refused=True, executed=False, msg=str(exc))
    result.update(action._execute_module(module_args=args, task_vars=task_vars))
    return result


def judged_by():
    return {"where": "controller", "python": sys.executable}


def require(available, libraries):
    """Fail closed when the controller lacks the parsers (the host is never asked to judge)."""
    if not available():
        raise Refusal(
            "%s: not importable by the controller's Python %s, so the guard cannot judge and nothing runs. "
            "Install datasafe's requirements.txt into the Python that runs ansible-playbook "
            "(or use datasafe's execution environment)." % (libraries, sys.executable)
        )


def read_on_host(action, task_vars, path, missing_ok=False):
    """The text of ``path`` on the managed host (slurp); None when missing and ``missing_ok``."""
    res = action._execute_module(
        module_name="ansible.legacy.slurp", module_args={"src": path}, task_vars=task_vars, wrap_async=False
    )
    if res.get("failed") or "content" not in res:
        msg = str(res.get("msg", "")).strip()
        if missing_ok and ("not found" in msg or "is a directory" in msg):
            return None
        raise Refusal("cannot read SQL file %s on the host to judge it, nothing ran: %s" % (path, msg))
    try:
        return base64.b64decode(res["content"]).decode("utf-8")
    except (ValueError, UnicodeDecodeError) as exc:
        raise Refusal("cannot read SQL file %s: %s" % (path, exc)) from exc


def sql_verdict(sql, deny_rules):
    """safe_sql's verdict for ``sql``; raises :class:`Refusal` for bad deny rules."""
    try:
        rules = guard.compile_deny_rules(deny_rules, "sql")
    except guard.DenyRuleError as exc:
        raise Refusal("deny_rules: %s" % exc) from exc
    findings = guard_sql.judge(sql, rules)
    try:
        kinds, why = guard_sql.statement_kinds(sql), None
    except Exception as exc:  # noqa: BLE001 - SQL that does not parse is refused by judge already; no kinds then
        kinds, why = None, "%s: %s" % (type(exc).__name__, exc)
    return verdict.make(
        "safe_sql", verdict.sql_subject(sql, deny_rules), findings, judged_by(), statements=kinds, statements_error=why
    )


def command_verdict(subject, chdir, read_file):
    """safe_command's verdict for ``subject`` (:func:`verdict.command_subject` of the task's options).

    ``read_file(path)`` reads a SQL file on the host; relative names are taken from ``chdir``.
    """
    for path in subject["protected_paths"]:
        if not path.startswith("/") or "$" in path:
            raise Refusal(
                "protected_paths: %r: give absolute paths without ~ or $ (the guard judges on the controller, "
                "where the host's home and environment are unknown)" % path
            )
    try:
        rules = guard.compile_deny_rules(subject["deny_rules"])
    except guard.DenyRuleError as exc:
        raise Refusal("deny_rules: %s" % exc) from exc

    def host_file(path):
        if chdir and not path.startswith(("/", "~")):
            path = posixpath.join(chdir, path)
        return read_file(path)

    findings = guard_cmd.judge_subject(subject, rules, read_file=host_file)
    return verdict.make("safe_command", subject, findings, judged_by())
