"""Run a datasafe module's main() in-process with ansible-core's own test harness.

``run_module("row_counts", {...}, check_mode=True)`` returns the module's result dict, with
``failed`` true when it called fail_json. Everything the module does (docker, psql in the
container, age, rsync) runs for real; only AnsiballZ packaging and the process start are
skipped, which makes whole corpora affordable. Each call loads the module afresh.
"""

import os
import runpy
from unittest import mock

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

LIBRARY = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "library")


class ModuleExit(Exception):
    def __init__(self, result):
        super().__init__(result.get("msg"))
        self.result = result


def _exit_json(self, **kwargs):
    kwargs.setdefault("changed", False)
    kwargs["failed"] = False
    raise ModuleExit(kwargs)


def _fail_json(self, msg, **kwargs):
    kwargs["failed"] = True
    kwargs["msg"] = msg
    raise ModuleExit(kwargs)


def run_module(name, args=None, check_mode=False, **kwargs):
    """The result of module ``name`` called with ``args`` (and/or keyword arguments)."""
    module_globals = runpy.run_path(os.path.join(LIBRARY, name + ".py"), run_name="datasafe_test_" + name)
    args = dict(args or {}, **kwargs)
    if check_mode:
        args["_ansible_check_mode"] = True
    with (
        patch_module_args(args),
        mock.patch.object(basic.AnsibleModule, "exit_json", _exit_json),
        mock.patch.object(basic.AnsibleModule, "fail_json", _fail_json),
    ):
        try:
            module_globals["main"]()
        except ModuleExit as done:
            return done.result
    raise AssertionError("%s returned without exit_json or fail_json" % name)
