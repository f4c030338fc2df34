"""Every module's documentation parses and renders with ansible-doc, as operators read it.

A plain YAML mistake in DOCUMENTATION (for example ``text: more`` inside a plain scalar) does
not break the module, lint or the playbooks; only ansible-doc and Galaxy/AWX show it.
"""

import json
import os
import subprocess
import sys

import pytest
from pgbed import REPO

MODULES = sorted(name[:-3] for name in os.listdir(os.path.join(REPO, "library")) if name.endswith(".py"))


@pytest.mark.parametrize("module", MODULES)
def test_the_documentation_renders(module):
    proc = subprocess.run(
        [
            os.path.join(os.path.dirname(sys.executable), "ansible-doc"),
            "-M",
            os.path.join(REPO, "library"),
            "--json",
            module,
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg")),
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)[module]
    assert doc["doc"]["short_description"] and doc["doc"]["options"]
    assert doc["examples"] and doc["return"]
