"""The fleet test bed: three sites over SSH, shared by every fleet test of a session."""

import pytest
from fleetbed import Fleet


@pytest.fixture(scope="session")
def fleet():
    bed = Fleet()
    try:
        yield bed.start()
    finally:
        bed.remove()
