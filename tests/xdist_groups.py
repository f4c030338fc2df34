"""How make test spreads the suite over pytest-xdist workers (``--dist loadgroup``).

Waiting dominates the suite (servers starting, playbooks, docker): one process keeps two cores idle
half the time. pytest-xdist sends whole groups to workers; a test file is a group of its own (its
module-scoped servers stay one per file), except a package whose tests use fixed ports behind a
lock (fleet: slots 23-25, recovery: slot 17), where a second worker would only wait.
A package with a session-scoped bed (operator's deployment, offsite's backups and S3 stand-in) is
spread file by file: each worker that runs one of its files builds its own bed (its own project
name, free ports, HOME beside its inventory), so no file waits behind the package's others.
A file of long, independent cases on that per-worker bed (the kill tests: each case kills a run and
lets the next one recover, minutes each) is spread case by case (SPREAD_BY_CASE).
tests/conftest.py gives pytest-xdist a scheduler that sends each group whole to one worker, and
orders the collection so the longest groups start first (EXPECTED_SECONDS, measured; a group not
listed counts as short).
"""

import os

SHARED_BEDS = {"fleet", "recovery"}
SPREAD_BY_CASE = {"operator/test_interrupted.py", "operator/test_interrupted_restore.py"}
TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)  # pytest's rootdir (pyproject.toml): node ids are relative to it


def xdist_group_of(relpath):
    """The xdist group of a test file, given its path relative to tests/."""
    parts = relpath.replace("\\", "/").split("/")
    return parts[0] if parts[0] in SHARED_BEDS else "/".join(parts)


def group_of_nodeid(nodeid):
    """The group of a node id (relative to the rootdir, e.g. ``tests/fleet/test_fleet_ssh.py::t[x]``)."""
    path, sep, case = nodeid.partition("::")
    group = xdist_group_of(os.path.relpath(os.path.join(ROOT, path), TESTS))
    return group + sep + case if group in SPREAD_BY_CASE and sep else group


# Seconds each long group took (the sum of its tests' times from the JUnit report, which
# testbed/suite_summary.py prints after make test; for a file spread by case, seconds per case).
# Only the order matters, so round figures do; these are from the clean-clone CI run of
# 2026-12-02 (3 workers beside molecule on 2 cores), status_continuous after its wait was fixed.
EXPECTED_SECONDS = {
    "fleet": 720,
    "continuous/test_continuous_repo2.py": 500,
    "restore/test_restore_engine.py": 380,
    "dbguard/test_dbguard.py": 350,
    "recovery": 340,
    "backup/test_backup_faults.py": 300,
    "operator/test_verify.py": 210,
    "operator/test_status_continuous.py": 200,
    "guards/test_modules_integration.py": 195,
    "operator/test_adopt.py": 190,
    "backup/test_schedule_systemd.py": 190,
    "continuous/test_continuous_archive.py": 180,
    "operator/test_change_oneshot.py": 170,
    "test_stack_start.py": 170,
    "undo/test_undo.py": 160,
    "operator/test_interrupted.py": 150,
    "operator/test_interrupted_restore.py": 140,
}


def expected_seconds(group):
    """A case of a file spread by case counts as its file (the file's figure is per case there)."""
    return EXPECTED_SECONDS.get(group, EXPECTED_SECONDS.get(group.split("::", 1)[0], 0))
