"""Run one of datasafe's modules as a real process, the way Ansible does: ``run_module.py NAME ARGS.json``.

ARGS.json holds ``{"ANSIBLE_MODULE_ARGS": {...}}``; the module prints its JSON result and
exits 0 (success) or 1 (failure). Tests use it to kill, lock or starve a module mid-run.
"""

import os
import runpy
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "module_utils"))
import datasafe_path  # noqa: E402,F401

if __name__ == "__main__":
    name, args = sys.argv[1], sys.argv[2]
    sys.argv = [name, args]
    runpy.run_path(os.path.join(REPO, "library", name + ".py"), run_name="__main__")
