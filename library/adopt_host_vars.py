#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Write a host's datasafe_* variables, never over a file the operator wrote (adopt)."""

DOCUMENTATION = r"""
---
module: adopt_host_vars
short_description: Write adopted host_vars, never overwriting a file the operator wrote
description:
  - Writes O(variables) as YAML to O(path) (mode 0600, atomically), with a first line holding the
    sha256 of the rest.
  - A file that is not there is created; one adopt wrote and nobody edited since is replaced
    when the variables changed; any other file (the operator's own, or adopt's edited) is never
    touched; the module fails and shows the difference.
version_added: "0.1.0"
author: datasafe maintainers
options:
  path:
    description: The host_vars file (on the controller, usually C(inventory/host_vars/<host>.yml)).
    type: path
    required: true
  variables:
    description: The variables to write.
    type: dict
    required: true
  comments:
    description: Comment lines written above the variables (where each value came from).
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
    description: Reports what would be written (and the refusal) without writing.
  diff_mode:
    support: full
seealso:
  - module: adopt_read
"""
EXAMPLES = r"""
- name: Write the host's variables
  adopt_host_vars:
    path: "{{ inventory_dir }}/host_vars/{{ inventory_hostname }}.yml"
    variables: "{{ adopted.facts }}"
  delegate_to: localhost
"""
RETURN = r"""
action:
  description: create, replace (adopt's own unedited file), unchanged, or refuse.
  returned: always
  type: str
content:
  description: The text written (or that would be).
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.datasafe import adopt, modulekit


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            variables=dict(type="dict", required=True),
            comments=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    modulekit.finish(
        module,
        lambda: adopt.host_vars_task(module.params, module.check_mode, module._diff),
        None,
        (adopt.HostVarsRefused,),
    )


if __name__ == "__main__":
    main()
