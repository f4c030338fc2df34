#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Look for Python libraries in the interpreter that runs modules on this host; install them with pip."""

DOCUMENTATION = r"""
---
module: python_deps
short_description: Look for Python libraries in the host's module Python and install them with pip
description:
  - Looks for O(imports) in the Python that runs Ansible modules on the host (the host's
    C(ansible_python_interpreter)), in a fresh process of that Python, and reports which are missing.
  - Decides how that Python gets libraries (RV(method)) - C(pip) for a virtualenv or a Python of its
    own outside C(/usr), C(apt) for Debian's or Ubuntu's own Python, none for another OS's own Python.
  - With O(install=true) and RV(method=pip), installs O(pip_packages) with C(<python> -m pip install)
    (O(pip_extra_args) first, for example C(--no-index --find-links /srv/wheels) on an air-gapped
    site) and looks again; the task fails when the libraries still do not import. The apt method is
    the caller's (C(ansible.builtin.apt), become); O(install=true) with any other method fails,
    installing nothing.
  - Used by role C(datasafe_offsite) for boto3 (S3 targets); see docs/fleet.md.
version_added: "0.1.0"
author: datasafe maintainers
options:
  imports:
    description: Module names that must import (for example C(boto3), C(botocore)).
    type: list
    elements: str
    required: true
  install:
    description: Install O(pip_packages) with pip when an import is missing and the method is pip.
    type: bool
    default: false
  pip_packages:
    description: pip requirements, pinned (C(boto3==1.44.5) ...).
    type: list
    elements: str
    default: []
  pip_extra_args:
    description: Arguments for C(pip install) before the packages (C(--no-index), C(--find-links DIR) ...).
    type: list
    elements: str
    default: []
  apt_packages:
    description: The OS packages that provide O(imports) on Debian/Ubuntu; only named in RV(fix).
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
    description: Looks (read-only) and reports in RV(would_install) what pip would install; installs nothing.
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Look for boto3 in the site's Python
  python_deps:
    imports: [boto3, botocore]
  register: s3_deps

- name: Install the pinned boto3 into the site's virtualenv from a local wheelhouse
  python_deps:
    imports: [boto3, botocore]
    install: true
    pip_packages: [boto3==1.44.5, botocore==1.44.5, s3transfer==0.19.3]
    pip_extra_args: [--no-index, --find-links, /srv/wheels]
  when: s3_deps.missing and s3_deps.method == 'pip'
"""

RETURN = r"""
python:
  description: The Python looked in (the interpreter running this module).
  returned: always
  type: str
  sample: /opt/datasafe-venv/bin/python
venv:
  description: Whether that Python is a virtualenv.
  returned: always
  type: bool
missing:
  description: O(imports) that do not import there (after installing, when this run installed).
  returned: always
  type: list
  elements: str
why_missing:
  description: Per missing import, the import error.
  returned: always
  type: dict
versions:
  description: Per import found, its C(__version__).
  returned: always
  type: dict
method:
  description: How that Python gets libraries - C(pip), C(apt), or null (datasafe installs nothing there).
  returned: always
  type: str
method_why:
  description: Why that method (what kind of Python it is).
  returned: always
  type: str
fix:
  description: The command that installs the missing libraries by hand, or null when nothing is missing.
  returned: always
  type: str
installed:
  description: pip requirements installed by this run.
  returned: always
  type: list
  elements: str
would_install:
  description: In check mode, the pip requirements a real run would install.
  returned: always
  type: list
  elements: str
cmd:
  description: The pip command run (or, in check mode, that would run), or null.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.datasafe import modulekit, pydeps, runner


def main():
    module = AnsibleModule(
        argument_spec=dict(
            imports=dict(type="list", elements="str", required=True),
            install=dict(type="bool", default=False),
            pip_packages=dict(type="list", elements="str", default=[]),
            pip_extra_args=dict(type="list", elements="str", default=[]),
            apt_packages=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    p = module.params
    modulekit.finish(
        module,
        lambda: pydeps.ensure(
            runner.for_module(module),
            p["imports"],
            pip_packages=p["pip_packages"],
            apt_packages=p["apt_packages"],
            pip_extra_args=p["pip_extra_args"],
            install=p["install"],
            check_mode=module.check_mode,
        ),
        "python_deps",
        (pydeps.DepsError,),
    )


if __name__ == "__main__":
    main()
