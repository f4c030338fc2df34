"""Every module's documentation parses and renders with ansible-doc, as operators read it, and
documents exactly the options its argument_spec takes (doc fragments of plugins/doc_fragments merged).

A plain YAML mistake in DOCUMENTATION (for example ``text: more`` inside a plain scalar) does
not break the module, lint or the playbooks; only ansible-doc and Galaxy/AWX show it.
"""

import json
import os
import re
import runpy
import subprocess
import sys
from unittest import mock

import pytest
from ansible.module_utils import basic
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


# ----------------------------------------------------------------- documented options == argument spec


class SpecCaptured(Exception):
    pass


def argument_spec(module):
    """The argument_spec module ``module`` hands to AnsibleModule (AnsibleAWSModule's additions included)."""

    def capture(self, *args, **kwargs):
        raise SpecCaptured(kwargs["argument_spec"] if "argument_spec" in kwargs else args[0])

    module_globals = runpy.run_path(os.path.join(REPO, "library", module + ".py"), run_name="datasafe_spec_" + module)
    with mock.patch.object(basic.AnsibleModule, "__init__", capture):
        try:
            module_globals["main"]()
        except SpecCaptured as captured:
            return captured.args[0]
    raise AssertionError("%s.main() never built an AnsibleModule" % module)


@pytest.fixture(scope="module")
def rendered():
    """Every module's documentation as ansible-doc renders it, doc fragments merged (one ansible-doc run)."""
    proc = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ansible-doc"), "-M", os.path.join(REPO, "library"), "--json"]
        + MODULES,
        capture_output=True,
        text=True,
        env=dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg")),
        cwd=REPO,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


# Names that hold secrets must say no_log (True, or False on purpose); these must hide their values.
SECRET_NAME = re.compile(r"pass|secret|token|key|recipient|credential")
MUST_HIDE = re.compile(r"password|passphrase|secret|session_token")


def differences(documented, spec, where=""):
    """Every way the documented options and the argument spec disagree, one line each."""
    found = []
    for name in sorted(set(documented) | set(spec)):
        here = where + name
        if name not in spec:
            found.append("%s: documented, but not in the argument spec" % here)
            continue
        if name not in documented:
            found.append("%s: in the argument spec, but not documented" % here)
            continue
        doc, arg = documented[name], spec[name]
        for key, default in (("type", "str"), ("required", False), ("default", None), ("choices", None)):
            if doc.get(key, default) != arg.get(key, default):
                found.append(
                    "%s: %s documented %r, spec %r" % (here, key, doc.get(key, default), arg.get(key, default))
                )
        if doc.get("elements") != arg.get("elements"):
            found.append("%s: elements documented %r, spec %r" % (here, doc.get("elements"), arg.get("elements")))
        if sorted(doc.get("aliases") or []) != sorted(arg.get("aliases") or []):
            found.append("%s: aliases documented %r, spec %r" % (here, doc.get("aliases"), arg.get("aliases")))
        if SECRET_NAME.search(name) and "no_log" not in arg:
            found.append("%s: looks like a secret, the spec must set no_log (True, or False on purpose)" % here)
        hides = MUST_HIDE.search(name) or "never logged" in json.dumps(doc.get("description", "")).lower()
        if hides and arg.get("no_log") is not True:
            found.append("%s: a secret (or documented as never logged) without no_log=True" % here)
        if doc.get("suboptions") or arg.get("options"):
            found += differences(doc.get("suboptions") or {}, arg.get("options") or {}, here + ".")
    return found


@pytest.mark.parametrize("module", MODULES)
def test_the_documented_options_are_the_argument_spec(module, rendered):
    assert differences(rendered[module]["doc"]["options"], argument_spec(module)) == []


def test_the_comparison_sees_a_difference():
    """The check above can fail: each kind of drift is reported."""
    documented = {
        "a": {"type": "int", "default": 1},
        "b": {"type": "str", "choices": ["x", "y"]},
        "c": {"type": "dict", "suboptions": {"d": {"type": "bool", "required": True}}},
        "api_password": {"type": "str"},
        "gone": {"type": "str"},
    }
    spec = {
        "a": {"type": "int", "default": 2},
        "b": {"type": "str", "choices": ["x"]},
        "c": {"type": "dict", "options": {"d": {"type": "bool"}}},
        "api_password": {"type": "str", "no_log": False},
        "new": {"type": "str"},
    }
    found = "\n".join(differences(documented, spec))
    for expected in (
        "a: default",
        "b: choices",
        "c.d: required",
        "api_password: a secret",
        "gone: documented",
        "new: in",
    ):
        assert expected in found


def test_modules_sharing_options_take_them_from_the_fragments(rendered):
    """A module that takes the database in its container, break-glass, an off-site target's or a compose
    project's options says so with extends_documentation_fragment rather than writing them again."""
    fragments = {
        "datasafe": {"container", "database", "user"},
        "datasafe.breakglass": {"allow_destructive", "reason", "breakglass_max_age", "change_log_json"},
        "datasafe.offsite": {"backups", "encrypt", "age_recipients", "staging_dir"},
        "datasafe.compose": {"project_src", "project_name", "files"},
    }
    for module in MODULES:
        with open(os.path.join(REPO, "library", module + ".py"), encoding="utf-8") as handle:
            source = handle.read()
        extends = re.search(r"^extends_documentation_fragment:\n((?:  - .*\n)+)", source, re.M)
        extended = set(re.findall(r"- (\S+)", extends.group(1))) if extends else set()
        for fragment, options in fragments.items():
            if options <= set(rendered[module]["doc"]["options"]):
                assert fragment in extended, "%s documents %s itself" % (module, fragment)


def test_the_off_site_modules_return_the_same_shared_values(rendered):
    """ansible-core has no RETURN fragments: the return values both off-site modules share keep
    one shape (type, when returned, elements)."""
    copy, s3 = rendered["offsite_copy"]["return"], rendered["offsite_s3"]["return"]
    shared = sorted(set(copy) & set(s3))
    assert {"copied", "skipped", "would_copy", "problems", "stage", "target", "metrics_file"} <= set(shared)
    for name in shared:
        for key in ("type", "returned", "elements"):
            assert copy[name].get(key) == s3[name].get(key), (name, key)
