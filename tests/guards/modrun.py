"""Run a module's main() in-process with ansible-core's test harness (patch_module_args).

Fast enough for the whole corpus: the module code, the guard and, for allowed SQL, psql in the
container all run for real; only the AnsiballZ packaging and the process start are skipped.
"""

import importlib
from unittest import mock

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args


class ModuleExit(Exception):
    def __init__(self, result, failed):
        super().__init__(result.get("msg"))
        self.result, self.failed = result, failed


def _exit_json(self, **kwargs):
    raise ModuleExit(dict(kwargs, failed=False), failed=False)


def _fail_json(self, msg, **kwargs):
    raise ModuleExit(dict(kwargs, msg=msg, failed=True), failed=True)


def run_module(name, args, check_mode=False):
    """Return the module's result dict (``failed`` says whether it failed)."""
    module = importlib.import_module(name)
    args = dict(args, _ansible_check_mode=check_mode)
    with (
        patch_module_args(args),
        mock.patch.object(basic.AnsibleModule, "exit_json", _exit_json),
        mock.patch.object(basic.AnsibleModule, "fail_json", _fail_json),
    ):
        try:
            module.main()
        except ModuleExit as done:
            return done.result
    raise AssertionError("%s returned without exit_json/fail_json" % name)
