# -*- coding: utf-8 -*-
"""safe_command's action plugin: the command guard judges on the controller, the host runs only what passed.

A managed site runs a bare Python (no bashlex, no pglast). This plugin judges the command line or
argv here, reading any SQL file it hands to psql on the host (``ansible.builtin.slurp``), and runs
the module on the host with the verdict bound to exactly that command (``module_utils/datasafe/
verdict.py``). The module refuses a verdict for anything else; without this plugin it judges on
the host and fails closed when the parsers are missing there. docs/fleet.md explains the design.
"""

import os

import ansible.module_utils
from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase

# The controller does not put ansible.cfg's module_utils on ansible.module_utils' path for
# plugins: add datasafe's, so the engine here is the very code the modules carry to the host.
_MODULE_UTILS = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", "..", "module_utils"))
if _MODULE_UTILS not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(_MODULE_UTILS)

from ansible.module_utils.datasafe import guard_action, guard_cmd, verdict  # noqa: E402


def _text(value):
    # a plain str: templated values are str subclasses, which the parsers (Cython) reject
    return None if value is None else str(to_text(value))


class ActionModule(ActionBase):
    def run(self, tmp=None, task_vars=None):
        return guard_action.run(
            self, super().run(tmp, task_vars), task_vars, lambda args: _judge(self, task_vars, args)
        )


def _judge(action, task_vars, args):
    """Put the controller's verdict into ``args`` (the module's own option checks answer a bad pair)."""
    cmd, argv = args.get("cmd"), args.get("argv")
    if (cmd is None) == (argv is None) or argv == []:
        return
    subject = verdict.command_subject(
        dict(
            cmd=_text(cmd),
            argv=None if argv is None else [_text(a) for a in argv],
            stdin=_text(args.get("stdin")),
            read_sql_files=boolean(args.get("read_sql_files", True), strict=False),
            protected_paths=[_text(p) for p in args.get("protected_paths") or []],
            deny_rules=list(args.get("deny_rules") or []),
        )
    )

    def read_file(path):
        return guard_action.read_on_host(action, task_vars, path, missing_ok=True)

    guard_action.require(guard_cmd.available, "bashlex and pglast")
    args[verdict.PARAM] = guard_action.command_verdict(subject, _text(args.get("chdir")), read_file)
