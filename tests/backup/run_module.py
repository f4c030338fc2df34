"""Run one of datasafe's modules as a real process, the way Ansible does: ``run_module.py NAME ARGS.json``.

ARGS.json holds ``{"ANSIBLE_MODULE_ARGS": {...}}``; the module prints its JSON result and
exits 0 (success) or 1 (failure). Tests use it to kill, lock or starve a module mid-run.
"""

import os
import runpy
import sys

import ansible.module_utils

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ansible.module_utils.__path__.append(os.path.join(REPO, "module_utils"))

# Faults a test injects into the engine of the module it runs (``run_module.py NAME ARGS FAULT``).
FAULTS = ("crash-before-rename",)


def inject(fault):
    """crash-before-rename: SIGKILL this process once the temporary file was fsynced and verified,
    just before the rename gives it its final name (as a power cut or the OOM killer would)."""
    from ansible.module_utils.datasafe import backup

    def crash(*args, **kwargs):
        os.kill(os.getpid(), 9)

    if fault == "crash-before-rename":
        backup.link_no_clobber = crash


if __name__ == "__main__":
    name, args = sys.argv[1], sys.argv[2]
    if len(sys.argv) > 3:
        if sys.argv[3] not in FAULTS:
            sys.exit("run_module.py: unknown fault %r (known: %s)" % (sys.argv[3], ", ".join(FAULTS)))
        inject(sys.argv[3])
    sys.argv = [name, args]
    runpy.run_path(os.path.join(REPO, "library", name + ".py"), run_name="__main__")
