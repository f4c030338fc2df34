"""Fixtures shared by every test; the test bed itself lives in pgbed.py."""

import pytest
from pgbed import ThrowawayPostgres


@pytest.fixture(scope="module")
def throwaway_pg():
    """A seeded throwaway LMS database (scale 1), shared by the tests of one module."""
    pg = ThrowawayPostgres()
    try:
        pg.start().seed(scale=1)
        yield pg
    finally:
        pg.remove()
