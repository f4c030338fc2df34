"""The shared stack vocabulary has one home with real defaults (roles/datasafe).

An operator who brings an inventory of their own (as AWX users do: no repository group_vars)
sets only what has no safe default, and the playbooks run; a must-set variable left out fails
first, naming it and the fix, with nothing changed.
"""

import glob
import os

import yaml
from opbed import MUST_SET, play, recap
from pgbed import REPO

SHARED = (
    "datasafe_compose_dir",
    "datasafe_compose_files",
    "datasafe_compose_project",
    "datasafe_compose_env",
    "datasafe_db_service",
    "datasafe_db_container",
    "datasafe_db_volume",
    "datasafe_db_name",
    "datasafe_db_user",
    "datasafe_critical_tables",
    "datasafe_health_url",
    "datasafe_health_retries",
    "datasafe_health_delay",
    "datasafe_backup_dir",
    "datasafe_change_log",
    "datasafe_lock_path",
)


def load(path):
    with open(path) as handle:
        return yaml.safe_load(handle)


def test_the_shared_variables_are_declared_once_with_a_default_each():
    common = os.path.join(REPO, "roles", "datasafe")
    defaults = load(os.path.join(common, "defaults", "main.yml"))
    spec = load(os.path.join(common, "meta", "argument_specs.yml"))["argument_specs"]["main"]["options"]
    assert set(SHARED) <= set(defaults) and set(SHARED) <= set(spec)
    # must-set ones are empty (no default may point at somebody's stack), the rest are real
    assert [n for n in MUST_SET if defaults[n]] == []
    assert [n for n in set(SHARED) - set(MUST_SET) - {"datasafe_compose_env"} if not defaults[n]] == []
    for role in glob.glob(os.path.join(REPO, "roles", "datasafe_*")):
        if role == common:
            continue
        options = load(os.path.join(role, "meta", "argument_specs.yml"))["argument_specs"]["main"]["options"]
        assert set(options) & set(SHARED) == set(), role  # one spec, not a copy per role
        assert set(load(os.path.join(role, "defaults", "main.yml"))) & set(SHARED) == set(), role
        deps = load(os.path.join(role, "meta", "main.yml"))["dependencies"]
        assert [d["role"] for d in deps] == ["datasafe"], role
        assert set(deps[0]["datasafe_require"]) <= set(MUST_SET), role


def test_verify_runs_with_an_inventory_that_sets_only_what_an_operator_must(lms, tmp_path):
    inventory = lms.inventory(tmp_path / "hosts.yml")
    for args in (["--check"], [], []):
        proc = play(inventory, "verify.yml", *args)
        assert proc.returncode == 0, proc.stdout[-4000:]
        assert "undefined" not in proc.stdout.lower(), proc.stdout[-4000:]
        assert "rows total: %d" % sum(lms.seeded.values()) in proc.stdout
    # the defaults' ~ is the (test's) home: the first real run left its snapshot there, the
    # second found the same counts and changed nothing
    assert (tmp_path / "home" / ("datasafe_verify_%s.json" % lms.project)).exists()
    assert recap(proc.stdout)["changed"] == 0


def test_the_safe_update_plan_runs_with_that_inventory_too(lms, tmp_path):
    # the plan reads the stack, the checkout and the backup directory's disk: all shared variables
    inventory = lms.inventory(tmp_path / "hosts.yml", datasafe_backup_dir=str(tmp_path / "backups"))
    proc = play(inventory, "safe_update.yml", "--check")
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert "undefined" not in proc.stdout.lower(), proc.stdout[-4000:]


def test_a_must_set_variable_left_out_is_named_and_nothing_runs(lms, tmp_path):
    inventory = lms.inventory(tmp_path / "hosts.yml", drop=("datasafe_health_url", "datasafe_db_user"))
    proc = play(inventory, "verify.yml")
    assert proc.returncode != 0
    assert "datasafe_db_user, datasafe_health_url are not set" in proc.stdout, proc.stdout[-4000:]
    assert "Nothing was changed" in proc.stdout
    assert "Count every critical table" not in proc.stdout  # it failed first thing
