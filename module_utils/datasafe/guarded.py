# -*- coding: utf-8 -*-
"""The host's half of safe_sql and safe_command: the steps both guarded modules take, once.

:meth:`Guard.judge`, in order: fail closed when there is neither a verdict from the controller
nor a parser here, the project's deny rules, the findings (the controller's verdict for exactly
this subject, or the guard judging here), the break-glass gate; then, before a break-glass run,
the named restore point (:func:`restore_point`). ``guard_action.py`` is the controller's half. Refusals raise
``breakglass.Refused`` with the result so far; the modules end through ``modulekit``.
"""

from ansible.module_utils.datasafe import breakglass, guard, verdict


class Unjudged(Exception):
    """No verdict from the controller and no parser on the host: nothing runs (fail closed)."""

    def __init__(self, message, import_error):
        super().__init__(message)
        self.result = dict(exception=str(import_error))


ERRORS = (Unjudged, breakglass.Refused)


class Guard:
    """One guarded module's judgement: ``action`` (its name), ``available()`` (its parsers import
    here), ``libraries`` (their names), ``import_error()``, ``rules_kind`` (None: every deny rule,
    ``"sql"``: only the SQL ones)."""

    def __init__(self, action, available, libraries, import_error, rules_kind=None):
        self.action, self.available, self.libraries = action, available, libraries
        self.import_error, self.rules_kind = import_error, rules_kind

    def judge(self, params, subject, judge_here, text, check_mode, result, **gate_kw):
        """Judge ``subject`` and pass the break-glass gate; the gate's evidence (None: no break-glass).

        ``judge_here(rules)`` is the guard on the host, used when the task carries no verdict from
        the controller (which is valid only for exactly ``subject``). Sets ``result["findings"]``
        and, with evidence, ``result["breakglass"]``; raises one of :data:`ERRORS`.
        """
        judged = params[verdict.PARAM]
        if judged is None and not self.available():
            from ansible.module_utils.basic import missing_required_lib

            raise Unjudged(
                missing_required_lib(self.libraries) + " (or run it through datasafe's action plugin)",
                self.import_error(),
            )
        try:
            rules = guard.compile_deny_rules(params["deny_rules"], *([self.rules_kind] if self.rules_kind else []))
        except guard.DenyRuleError as exc:
            raise breakglass.Refused("deny_rules: %s" % exc, result) from exc
        if judged is None:
            found = judge_here(rules)
        else:
            try:
                found = verdict.accept(judged, self.action, subject)
            except verdict.VerdictError as exc:
                raise breakglass.Refused(str(exc), result) from exc
        result["findings"] = [f.to_dict() for f in found]
        evidence = breakglass.gate(params, found, self.action, text, check_mode, **gate_kw)
        if evidence:
            result["breakglass"] = evidence
        return evidence


def restore_point(run, params, evidence, check_mode):
    """Before a break-glass run: the named restore point in the task's database (``breakglass.restore_point``)."""
    return breakglass.restore_point(
        run, evidence, (params["container"], params["database"], params["user"]), check_mode
    )
