"""The fleet test bed: three sites over SSH, shared by every fleet test of a session."""

import sys

import pytest
from fleetbed import REPO, Fleet

if REPO not in sys.path:  # the fleet runner's package, datasafe_fleet, lives at the top of the checkout
    sys.path.insert(0, REPO)


@pytest.fixture(scope="session")
def fleet():
    bed = Fleet()
    try:
        yield bed.start()
    finally:
        bed.remove()
