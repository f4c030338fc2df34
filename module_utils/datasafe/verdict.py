# -*- coding: utf-8 -*-
"""A guard's verdict reached on the controller, carried to the managed host with the task.

safe_sql and safe_command judge with pglast and bashlex. A managed site runs a bare Python
without them, so their action plugins (``plugins/action/``) judge on the controller and hand
the module the verdict in the internal option ``_datasafe_verdict``. The verdict is bound to
what was judged: a SHA-256 over the module's name and the judged inputs (the SQL text itself,
not a file name; the command, its stdin, the deny rules ...). The module recomputes the digest
from what it is about to run and refuses when it differs, so a verdict never covers anything
but the exact text that was judged. Standard library only: imported on both sides.
"""

import hashlib
import json

from ansible.module_utils.datasafe.guard import Finding

PARAM = "_datasafe_verdict"
VERSION = 1


class VerdictError(ValueError):
    """The verdict is missing parts, is for another module or for other inputs: run nothing."""


def digest(module, subject):
    blob = json.dumps({"module": module, "subject": subject}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def sql_subject(sql, deny_rules):
    """What safe_sql's verdict covers: the SQL text itself (a file's content, not its name) and the rules."""
    return {"sql": sql, "deny_rules": list(deny_rules or [])}


def command_subject(params):
    """What safe_command's verdict covers. ``chdir`` is left out: it only says where SQL files are read."""
    keys = ("cmd", "argv", "stdin", "read_sql_files", "protected_paths", "deny_rules")
    return {k: params.get(k) for k in keys}


def make(module, subject, findings, judged_by, **extra):
    """The verdict a module receives: findings (dicts) for exactly ``subject``."""
    out = dict(
        version=VERSION,
        module=module,
        digest=digest(module, subject),
        findings=[f.to_dict() for f in findings],
        judged_by=judged_by,
    )
    out.update(extra)
    return out


def accept(verdict, module, subject):
    """The verdict's findings as :class:`Finding` objects, if it belongs to exactly ``subject``."""
    if not isinstance(verdict, dict) or verdict.get("version") != VERSION:
        raise VerdictError("%s: the guard's verdict is malformed or of another datasafe version" % PARAM)
    if verdict.get("module") != module:
        raise VerdictError("%s: the guard's verdict is for %s, not %s" % (PARAM, verdict.get("module"), module))
    if verdict.get("digest") != digest(module, subject):
        raise VerdictError(
            "%s: what this module would run is not what the guard judged on the controller (the SQL file "
            "changed in between, or the option was set by hand: only datasafe's action plugin sets it)" % PARAM
        )
    findings = verdict.get("findings")
    if not isinstance(findings, list):
        raise VerdictError("%s: the guard's verdict has no findings list" % PARAM)
    try:
        return [Finding(f["rule"], f["statement"], f.get("reason"), f.get("instead")) for f in findings]
    except (KeyError, TypeError) as exc:
        raise VerdictError("%s: a finding of the guard's verdict is malformed: %s" % (PARAM, exc)) from exc
