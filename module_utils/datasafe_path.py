"""Put datasafe's engine where Ansible puts it, for Python that runs outside Ansible.

Modules import the engine as ``ansible.module_utils.datasafe.*``; under Ansible the
``module_utils`` setting of ansible.cfg makes that work. The CLI in ``bin/``, the ansible-lint
rules, the tests and the benchmarks import the very same modules the same way, after one line::

    sys.path.insert(0, "<repo>/module_utils"); import datasafe_path  # noqa: E402,F401

Importing this file is all it does: it adds its own folder to ``ansible.module_utils.__path__``
(once), so there is exactly one copy of each engine module in ``sys.modules``.
"""

import os

import ansible.module_utils

MODULE_UTILS = os.path.dirname(os.path.abspath(__file__))

if MODULE_UTILS not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(MODULE_UTILS)
