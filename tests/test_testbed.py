"""The test bed itself: a throwaway database is real, seeded deterministically, and removable."""

from pgbed import CRITICAL_TABLES


def test_throwaway_database_is_seeded_with_exact_counts(throwaway_pg):
    counts = throwaway_pg.counts()
    assert counts == {"users": 10, "patients": 2000, "visits": 6000, "test_results": 18000, "invoices": 6000}


def test_foreign_keys_hold(throwaway_pg):
    orphans = throwaway_pg.psql(
        "SELECT count(*) FROM test_results r LEFT JOIN visits v ON v.id = r.visit_id WHERE v.id IS NULL"
    ).stdout.strip()
    assert orphans == "0"


def test_counts_are_taken_for_every_critical_table(throwaway_pg):
    assert sorted(throwaway_pg.counts()) == sorted(CRITICAL_TABLES)
