"""The test bed itself: a throwaway database is real, seeded deterministically, and removable."""

import socket

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


def test_the_kernel_never_hands_out_a_test_port_as_a_source_port():
    # make setup reserves 56000-56999 (every test and bench server listens there, inside the
    # ephemeral range). 3000 automatic ports drawn from about 28,000 would hit that range with
    # near certainty if it were not reserved.
    with open("/proc/sys/net/ipv4/ip_local_reserved_ports") as handle:
        assert "56000-56999" in handle.read().strip().split(",")
    drawn = []
    for _ in range(3000):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            drawn.append(sock.getsockname()[1])
    assert not [port for port in drawn if 56000 <= port <= 56999]
