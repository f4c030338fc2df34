"""Fixtures for the server-loss tests: the S3 test server, an age identity and the old server."""

import fcntl
import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "offsite"))

from offsite_helpers import Moto  # noqa: E402
from recovery_helpers import SLOT_LOCK, OldServer  # noqa: E402


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    server = Moto(str(tmp_path_factory.mktemp("moto"))).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def age_key(tmp_path_factory):
    """A throwaway age identity: (identity file, public recipient). The identity is the operator's,
    kept off the server; only the recipient is in the server's inventory."""
    identity = tmp_path_factory.mktemp("operator") / "age-identity.txt"
    proc = subprocess.run(["age-keygen", "-o", str(identity)], capture_output=True, text=True, check=True)
    recipient = [
        line.split(": ", 1)[1] for line in (proc.stderr + proc.stdout).splitlines() if line.startswith("Public key: ")
    ][0]
    return str(identity), recipient


@pytest.fixture(scope="module")
def old_server(moto, age_key):
    """The old server on molecule slot 17's ports; a second run of this module waits for the first."""
    with open(SLOT_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        server = OldServer(moto, moto.bucket(), age_key[1], age_key[0])
        try:
            yield server.start()
        finally:
            server.remove()
