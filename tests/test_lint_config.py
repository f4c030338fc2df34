"""The repository's own .ansible-lint really runs datasafe's guard rules.

A lint profile silently unloads every rule it does not list, custom rules included; this
proves the shipped configuration flags destructive tasks, not just the rule tests' config.
"""

import os
import re
import shutil
import subprocess
import sys

import yaml
from pgbed import REPO

RULE_ID = re.compile(r'^\s+id = "(datasafe-[a-z-]+)"', re.M)
DESTRUCTIVE = """---
- name: Destructive tasks the repository's lint must refuse
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Empty a table with psql
      ansible.builtin.command:
        argv: [docker, exec, lms-postgres, psql, -U, lms_user, -d, lms_slncity, -c, "DELETE FROM test_results"]
      changed_when: true

    - name: Stop the stack and delete its volumes
      community.docker.docker_compose_v2:
        project_src: /srv/lms
        state: absent
        remove_volumes: true
"""


def test_every_guard_rule_is_enabled_under_the_profile():
    rules = set(RULE_ID.findall(open(os.path.join(REPO, "lint_rules", "datasafe_guard_rules.py")).read()))
    config = yaml.safe_load(open(os.path.join(REPO, ".ansible-lint")))
    assert len(rules) == 6
    assert rules <= set(config["enable_list"]), rules - set(config["enable_list"])


def test_the_repository_config_flags_destructive_tasks(tmp_path):
    project = tmp_path / "project"
    shutil.copytree(os.path.join(REPO, "lint_rules"), project / "lint_rules")
    shutil.copytree(os.path.join(REPO, "module_utils"), project / "module_utils")
    shutil.copy(os.path.join(REPO, ".ansible-lint"), project / ".ansible-lint")
    shutil.copy(os.path.join(REPO, ".yamllint"), project / ".yamllint")
    (project / "playbooks").mkdir()
    (project / "playbooks" / "destructive.yml").write_text(DESTRUCTIVE)
    lint = os.path.join(os.path.dirname(sys.executable), "ansible-lint")
    proc = subprocess.run(
        [lint, "--nocolor", "playbooks/destructive.yml"], cwd=project, capture_output=True, text=True, check=False
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "datasafe-sql-guard" in output and "sql-delete-without-where" in output
    assert "datasafe-compose-remove-volumes" in output
