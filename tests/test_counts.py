"""Row-count snapshots: what a snapshot handed back to row_counts or stack_start must be."""

import pytest
from ansible.module_utils.datasafe import counts
from harness import run_module
from pgbed import CRITICAL_TABLES


def test_a_snapshot_from_ansible_may_carry_its_numbers_as_strings():
    assert counts.snapshot({"users": "10", "visits": 6000}) == {"users": 10, "visits": 6000}


@pytest.mark.parametrize("bad", [{"users": "ten"}, {"users": None}, ["users", 10]])
def test_anything_else_is_refused_naming_the_option(bad):
    with pytest.raises(ValueError, match="^database.compare_to must map table names to whole numbers"):
        counts.snapshot(bad, "database.compare_to")


def test_row_counts_refuses_a_snapshot_that_is_not_counts(throwaway_pg):
    result = run_module(
        "row_counts",
        container=throwaway_pg.container,
        database=throwaway_pg.db,
        user=throwaway_pg.user,
        tables=CRITICAL_TABLES,
        compare_to={"users": "ten"},
    )
    assert result["failed"] and result["problems"] == []
    assert result["msg"] == "compare_to must map table names to whole numbers, as row_counts returns them"
