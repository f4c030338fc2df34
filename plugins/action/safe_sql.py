# -*- coding: utf-8 -*-
"""safe_sql's action plugin: the SQL guard judges on the controller, the host runs only what passed.

A managed site runs a bare Python (no pglast). This plugin reads the SQL (the ``sql`` option, or
the ``src`` file from the host), judges it with datasafe's SQL guard here, and runs the module on
the host with the verdict bound to that exact text (``module_utils/datasafe/verdict.py``). The
module refuses a verdict for any other text; without this plugin it judges on the host and fails
closed when pglast is missing there. docs/fleet.md explains the design.
"""

import os

import ansible.module_utils
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase

# The controller does not put ansible.cfg's module_utils on ansible.module_utils' path for
# plugins: add datasafe's, so the engine here is the very code the modules carry to the host.
_MODULE_UTILS = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", "..", "module_utils"))
if _MODULE_UTILS not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(_MODULE_UTILS)

from ansible.module_utils.datasafe import guard_action, guard_sql, verdict  # noqa: E402


class ActionModule(ActionBase):
    def run(self, tmp=None, task_vars=None):
        return guard_action.run(
            self, super().run(tmp, task_vars), task_vars, lambda args: _judge(self, task_vars, args)
        )


def _judge(action, task_vars, args):
    """Put the controller's verdict into ``args`` (the module's own option checks answer a bad pair)."""
    sql, src = args.get("sql"), args.get("src")
    if (sql is None) == (src is None):
        return
    guard_action.require(guard_sql.available, "pglast")
    if src is not None:
        sql = guard_action.read_on_host(action, task_vars, str(to_text(src)))
    # a plain str: templated values are str subclasses, which the parser (Cython) rejects
    args[verdict.PARAM] = guard_action.sql_verdict(str(to_text(sql)), list(args.get("deny_rules") or []))
