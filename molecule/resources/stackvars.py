"""Shared testinfra helper: the scenario's stack variables, templated by Ansible itself.

testinfra's ``host.ansible.get_variables()`` returns raw inventory values with their Jinja
expressions unrendered; asking the debug module renders them exactly as the playbooks see them.
"""

import pytest

NAMES = (
    "datasafe_compose_dir",
    "datasafe_compose_project",
    "datasafe_compose_env",
    "datasafe_db_container",
    "datasafe_db_name",
    "datasafe_db_user",
    "datasafe_critical_tables",
    "datasafe_health_url",
    "datasafe_backup_dir",
    "datasafe_change_log",
    "datasafe_test_root",
    "datasafe_test_db_port",
    "datasafe_test_backend_port",
    "datasafe_test_repo",
)


def rendered(host, names=NAMES):
    expression = "{{ {%s} }}" % ", ".join("'%s': %s" % (n, n) for n in names)
    return host.ansible("ansible.builtin.debug", "msg=%s" % expression, check=False)["msg"]


@pytest.fixture(scope="module")
def stack(host):
    return rendered(host)
