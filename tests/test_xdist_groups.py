"""How make test spreads the suite over xdist workers (tests/xdist_groups.py, marked by tests/conftest.py)."""

import os
import re
import subprocess
import sys

import pytest
from xdist_groups import EXPECTED_SECONDS, expected_seconds, group_of_nodeid, xdist_group_of

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize(
    ("relpath", "group"),
    [
        ("test_lock.py", "test_lock.py"),  # a file is a group of its own
        ("restore/test_restore_engine.py", "restore/test_restore_engine.py"),
        ("operator/test_status.py", "operator/test_status.py"),  # a session bed per worker
        ("offsite/test_offsite_targets.py", "offsite/test_offsite_targets.py"),
        ("fleet/test_fleet_ssh.py", "fleet"),  # fixed ports behind a lock: a second worker would wait
        ("recovery/test_server_loss.py", "recovery"),
        ("backup/test_schedule_systemd.py", "backup/test_schedule_systemd.py"),
        ("backup/test_backup_integration.py", "backup/test_backup_integration.py"),
    ],
)
def test_each_file_gets_its_group(relpath, group):
    assert xdist_group_of(relpath) == group


def test_a_distributed_run_keeps_each_group_on_one_worker():
    """A real pytest-xdist session over two workers (the Makefile's flags) of two small files:
    each file's tests all report from one worker (pytest 9 broke xdist's own loadgroup silently)."""
    argv = [sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-v", "-p", "no:cacheprovider"]
    files = ["tests/test_psql.py", "tests/test_runner.py"]
    proc = subprocess.run(argv + files, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:]
    workers = {}
    for line in proc.stdout.splitlines():
        match = re.match(r"^\[(gw\d+)\] .*? (tests/\S+?\.py)::", line)
        if match:
            workers.setdefault(match.group(2), set()).add(match.group(1))
    assert sorted(workers) == files, proc.stdout[-3000:]
    assert all(len(seen) == 1 for seen in workers.values()), workers


def test_the_scheduler_groups_node_ids_by_file_and_shared_bed():
    assert group_of_nodeid("tests/test_lock.py::test_a[x::y]") == "test_lock.py"
    assert group_of_nodeid("tests/fleet/test_fleet_ssh.py::test_b") == "fleet"
    assert group_of_nodeid("tests/operator/test_adopt.py::test_c") == "operator/test_adopt.py"
    # the kill tests: every case its own group (each kills a run and lets the next recover)
    case = "tests/operator/test_interrupted.py::test_k[SIGKILL-preflight]"
    assert group_of_nodeid(case) == "operator/test_interrupted.py::test_k[SIGKILL-preflight]"


def test_longer_groups_sort_first_and_unknown_ones_count_as_short():
    longest = max(EXPECTED_SECONDS, key=EXPECTED_SECONDS.get, default=None)
    if longest is not None:
        assert expected_seconds(longest) > expected_seconds("no/such_group.py") == 0
    assert expected_seconds("no/such_group.py") == 0
