# -*- coding: utf-8 -*-
"""The Python libraries a module needs on the managed host: are they there, and how do they get there.

Almost every datasafe module needs nothing but the standard library on a site (docs/fleet.md lists
which runs where). The exception is S3 (``offsite_s3``, ``offsite_fetch``): amazon.aws needs boto3
and botocore in the Python that runs modules on the site. This engine looks for them in that
Python (a fresh process of the same interpreter, so a re-probe after installing sees the truth),
decides how that Python gets packages, and installs with pip when that is the way:

* a virtualenv (``sys.prefix != sys.base_prefix``): ``pip`` into it, the pinned versions;
* the OS's own Python on Debian/Ubuntu (``/usr``, PEP 668 externally managed): ``apt``, the OS
  package (``python3-boto3``); installing it is the role's task (``ansible.builtin.apt``, become);
* a Python of its own outside ``/usr`` that is not externally managed (``/opt/python3.11``, pyenv):
  ``pip`` into it;
* any other OS Python (externally managed, or under ``/usr`` on a distribution without apt):
  nothing is installed; the operator installs it with the OS's package manager or points
  ``ansible_python_interpreter`` at a virtualenv.

pip runs as ``<python> -m pip`` (argv, through the runner), not through ``ansible.builtin.pip``,
which needs ``packaging`` or ``setuptools`` in the site's Python: a Python 3.12 virtualenv has
neither. Nothing here talks to Ansible: :func:`ensure` returns a result or raises :class:`DepsError`.
"""

import json
import os
import sys
import sysconfig

# Run in the site's Python: which of argv's modules import, and their versions.
_PROBE = r"""
import importlib, json, sys
missing, versions = {}, {}
for name in sys.argv[1:]:
    try:
        versions[name] = getattr(importlib.import_module(name), "__version__", None)
    except Exception as exc:
        missing[name] = "%s: %s" % (type(exc).__name__, exc)
print(json.dumps({"missing": missing, "versions": versions}))
"""


class DepsError(Exception):
    """The libraries cannot be looked for or installed; ``result`` holds what was found."""

    def __init__(self, message, result=None):
        self.result = result or {}
        super().__init__(message)


def _debian_family(os_release="/etc/os-release"):
    """True on Debian, Ubuntu and their derivatives (ID or ID_LIKE names debian or ubuntu)."""
    try:
        with open(os_release) as handle:
            fields = dict(line.rstrip("\n").split("=", 1) for line in handle if "=" in line)
    except OSError:
        return os.path.exists("/etc/debian_version")
    names = " ".join(fields.get(key, "").strip("\"'") for key in ("ID", "ID_LIKE")).split()
    return "debian" in names or "ubuntu" in names


def interpreter():
    """What decides how the running Python gets packages."""
    venv = sys.prefix != sys.base_prefix
    marker = os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")
    return {
        "python": sys.executable,
        "prefix": sys.prefix,
        "venv": venv,
        # PEP 668: the marker sits in the base stdlib; a virtualenv is exempt from it.
        "externally_managed": (not venv) and os.path.isfile(marker),
        "debian": _debian_family(),
    }


def install_method(info):
    """``(method, why)``: ``pip``, ``apt`` or ``None`` (datasafe installs nothing there), from :func:`interpreter`."""
    if info["venv"]:
        return "pip", "a virtualenv (%s): pip installs the pinned versions into it" % info["prefix"]
    os_python = info["prefix"] == "/usr" or info["externally_managed"]
    if os_python and info["debian"] and info["prefix"] == "/usr":
        return "apt", "Debian's or Ubuntu's own Python (%s): its libraries come from apt, the OS packages" % info[
            "python"
        ]
    if os_python:
        return None, (
            "the operating system's own Python (%s%s) on a system without apt: datasafe does not install "
            "into it" % (info["python"], ", externally managed (PEP 668)" if info["externally_managed"] else "")
        )
    return "pip", "a Python of its own (%s), not the OS's: pip installs the pinned versions into it" % info["prefix"]


def probe(run, python, imports):
    """``{"missing": {name: why}, "versions": {name: version}}`` for ``imports`` in a fresh ``python``."""
    rc, out, err = run([python, "-c", _PROBE] + list(imports))
    if rc != 0:
        raise DepsError("cannot run %s to look for %s: %s" % (python, ", ".join(imports), (err or out).strip()))
    try:
        return json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError) as exc:
        raise DepsError("%s gave no answer when looking for %s: %r" % (python, ", ".join(imports), out)) from exc


def fix_by_hand(result, apt_packages, pip_packages):
    """The command an operator runs to install the libraries there (for the refusal's text)."""
    if result["method"] == "apt":
        return "apt-get install %s (as root)" % " ".join(apt_packages)
    if result["method"] == "pip":
        return "%s -m pip install %s" % (result["python"], " ".join(pip_packages))
    return "install %s with the OS's package manager" % " ".join(sorted(result["missing"]))


def ensure(
    run, imports, pip_packages=(), apt_packages=(), pip_extra_args=(), install=False, check_mode=False, info=None
):
    """Look for ``imports``; with ``install`` and the pip method, install ``pip_packages`` and look again.

    Returns ``python``, ``venv``, ``missing`` (names), ``why_missing``, ``versions``, ``method``,
    ``method_why``, ``fix`` (the command by hand), ``installed`` / ``would_install`` (pip
    requirements), ``cmd`` and ``changed``. Installing when the method is not pip is refused
    (apt is the role's task; ``None`` is the operator's).
    """
    info = info or interpreter()
    method, why = install_method(info)
    found = probe(run, info["python"], imports)
    result = {
        "changed": False,
        "python": info["python"],
        "venv": info["venv"],
        "missing": sorted(found["missing"]),
        "why_missing": found["missing"],
        "versions": found["versions"],
        "method": method,
        "method_why": why,
        "installed": [],
        "would_install": [],
        "cmd": None,
    }
    result["fix"] = fix_by_hand(result, apt_packages, pip_packages) if result["missing"] else None
    if not result["missing"] or not install:
        return result
    if method != "pip":
        raise DepsError(
            "%s is missing in %s, and pip does not install there: %s"
            % (", ".join(result["missing"]), info["python"], why),
            result,
        )
    if not pip_packages:
        raise DepsError(
            "%s is missing in %s and no pip_packages were given" % (", ".join(result["missing"]), info["python"]),
            result,
        )
    argv = [info["python"], "-m", "pip", "install", "--disable-pip-version-check", "--no-input"]
    argv += list(pip_extra_args) + list(pip_packages)
    result["cmd"] = argv
    if check_mode:
        result.update(changed=True, would_install=list(pip_packages))
        return result
    rc, out, err = run(argv)
    if rc != 0:
        tail = "\n".join(((err or "") + (out or "")).strip().splitlines()[-8:])
        raise DepsError("pip install into %s failed (exit %d): %s" % (info["python"], rc, tail), result)
    again = probe(run, info["python"], imports)
    result.update(changed=True, installed=list(pip_packages), versions=again["versions"])
    if again["missing"]:
        result.update(missing=sorted(again["missing"]), why_missing=again["missing"])
        raise DepsError(
            "pip installed %s into %s, but %s still does not import there: %s"
            % (" ".join(pip_packages), info["python"], ", ".join(sorted(again["missing"])), again["missing"]),
            result,
        )
    result.update(missing=[], why_missing={}, fix=None)
    return result
