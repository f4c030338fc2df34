"""boto3 on a managed host (module_utils/datasafe/pydeps.py, library/python_deps.py): the decision
which Python gets which install method, the probe in a real interpreter, and the pins.

The installs themselves run over SSH into a real virtualenv (test_offsite_deps_ssh.py); apt is
never run on this machine (it would change it), so its branch is covered by the decision here.
"""

import os
import re
import subprocess
import sys

import pytest
import yaml
from ansible.module_utils.datasafe import pydeps, runner
from harness import run_module
from offsite_helpers import REPO


def info(**fields):
    base = {"python": "/usr/bin/python3", "prefix": "/usr", "venv": False, "externally_managed": True, "debian": True}
    base.update(fields)
    return base


@pytest.mark.parametrize(
    ("fields", "method"),
    [
        # Debian's or Ubuntu's /usr/bin/python3 (PEP 668): the OS package, with apt
        ({}, "apt"),
        ({"externally_managed": False}, "apt"),  # an older Debian without the marker
        # a virtualenv: pip, wherever its base Python is from
        ({"python": "/srv/venv/bin/python", "prefix": "/srv/venv", "venv": True, "externally_managed": False}, "pip"),
        ({"prefix": "/srv/venv", "venv": True, "externally_managed": False, "debian": False}, "pip"),
        # a Python of its own outside /usr (built into /opt or /usr/local, pyenv): pip
        ({"python": "/opt/py/bin/python3", "prefix": "/opt/py", "externally_managed": False}, "pip"),
        ({"python": "/usr/local/bin/python3", "prefix": "/usr/local", "externally_managed": False}, "pip"),
        # another OS's own Python: datasafe installs nothing
        ({"debian": False}, None),
        ({"debian": False, "externally_managed": False}, None),
        ({"prefix": "/usr/local", "debian": False}, None),  # externally managed, wherever it lives
    ],
)
def test_which_python_gets_which_install_method(fields, method):
    got, why = pydeps.install_method(info(**fields))
    assert got == method
    assert why  # always says what kind of Python it is


def test_this_interpreter_is_described_truthfully():
    here = pydeps.interpreter()
    assert here["python"] == sys.executable
    assert here["venv"] == (sys.prefix != sys.base_prefix)
    assert not (here["venv"] and here["externally_managed"])  # PEP 668 exempts a virtualenv


def recording(calls):
    def run(argv, **kwargs):
        calls.append(list(argv))
        return runner.run(argv, **kwargs)

    return run


def test_the_probe_imports_in_a_fresh_interpreter():
    calls = []
    result = pydeps.ensure(recording(calls), ["json", "datasafe_no_such_module"], pip_packages=["x==1"])
    assert result["missing"] == ["datasafe_no_such_module"]
    assert "ModuleNotFoundError" in result["why_missing"]["datasafe_no_such_module"]
    assert "json" in result["versions"] and not result["changed"]
    assert calls[0][0] == sys.executable and len(calls) == 1  # looked only


def test_check_mode_says_what_pip_would_install_and_runs_nothing_but_the_probe():
    calls = []
    venv = info(python=sys.executable, prefix="/srv/venv", venv=True, externally_managed=False)
    result = pydeps.ensure(
        recording(calls),
        ["datasafe_no_such_module"],
        pip_packages=["boto3==1.44.5"],
        pip_extra_args=["--no-index", "--find-links", "/srv/wheels"],
        install=True,
        check_mode=True,
        info=venv,
    )
    assert result["changed"] and result["would_install"] == ["boto3==1.44.5"] and result["installed"] == []
    assert result["cmd"][1:4] == ["-m", "pip", "install"]
    assert result["cmd"][-4:] == ["--no-index", "--find-links", "/srv/wheels", "boto3==1.44.5"]
    assert len(calls) == 1 and "pip" not in calls[0]


def test_installing_into_a_python_pip_must_not_touch_is_refused_running_nothing():
    for fields in ({}, {"debian": False}):  # apt's Python; another OS's Python
        calls = []
        with pytest.raises(pydeps.DepsError, match="pip does not install there") as err:
            pydeps.ensure(
                recording(calls),
                ["datasafe_no_such_module"],
                pip_packages=["boto3==1.44.5"],
                apt_packages=["python3-boto3"],
                install=True,
                info=info(python=sys.executable, **fields),
            )
        assert len(calls) == 1 and not err.value.result["changed"]
        assert err.value.result["fix"] in (
            "apt-get install python3-boto3 (as root)",
            "install datasafe_no_such_module with the OS's package manager",
        )


def test_the_module_reports_a_library_that_is_there():
    result = run_module("python_deps", {"imports": ["json"]})
    assert not result["failed"] and not result["changed"]
    assert result["missing"] == [] and result["fix"] is None and result["python"] == sys.executable


def test_the_role_installs_exactly_the_pins_of_requirements_txt():
    defaults = yaml.safe_load(open(os.path.join(REPO, "roles/datasafe_offsite/defaults/main.yml")))
    pinned = {}
    with open(os.path.join(REPO, "requirements.txt")) as handle:
        for line in handle:
            match = re.match(r"^([A-Za-z0-9_.-]+)==(\S+)", line)
            if match:
                pinned[match.group(1).lower()] = match.group(2)
    packages = defaults["datasafe_offsite_deps_pip_packages"]
    assert {p.split("==")[0] for p in packages} == {
        "boto3",
        "botocore",
        "s3transfer",
        "jmespath",
        "python-dateutil",
        "urllib3",
        "six",
    }
    for requirement in packages:
        name, version = requirement.split("==")
        assert pinned[name] == version, requirement
    # and nothing boto3 needs is left out: pip resolves the set against the wheelhouse offline
    wheels = os.path.join(REPO, ".cache", "site-wheels")
    if os.path.isdir(wheels):
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--no-index", "--quiet"]
            + ["--disable-pip-version-check", "--find-links", wheels, "--report", "-"]
            + packages,
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr


# What docs/fleet.md's table says each module needs beyond the standard library on the site:
# a new import from outside it fails here until docs/fleet.md (and, for a site-side module,
# an install like deps.yml's) covers it.
NEEDS = {
    "module_utils/datasafe/guard_sql.py": {"pglast"},  # judged on the controller (action plugin)
    "module_utils/datasafe/guard_cmd.py": {"bashlex"},  # judged on the controller (action plugin)
    "library/offsite_s3.py": {"ansible_collections"},  # amazon.aws -> boto3, installed by deps.yml
    "library/offsite_fetch.py": {"ansible_collections"},  # amazon.aws -> boto3 (S3 only), deps.yml
    "module_utils/datasafe/backup.py": {"isal"},  # optional: ISA-L's inflate, zlib where it is missing
}


def test_only_the_documented_modules_need_more_than_the_standard_library():
    import ast
    import glob

    found = {}
    for path in sorted(glob.glob(os.path.join(REPO, "library", "*.py"))) + sorted(
        glob.glob(os.path.join(REPO, "module_utils", "datasafe", "*.py"))
    ):
        with open(path) as handle:
            tree = ast.parse(handle.read())
        names = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
        outside = {n for n in names if n not in sys.stdlib_module_names and n != "ansible"}
        if outside:
            found[os.path.relpath(path, REPO)] = outside
    assert found == NEEDS
