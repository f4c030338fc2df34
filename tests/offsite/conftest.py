"""Fixtures for the off-site tests (see offsite_helpers for what they are made of)."""

import shutil
import subprocess

import pytest
from offsite_helpers import Moto, Sshd, ThrowawayPostgres, make_backup


@pytest.fixture(scope="session")
def source_backups(tmp_path_factory):
    """Two real backups (older, newer) of a seeded throwaway database; the database is removed after."""
    pg = ThrowawayPostgres()
    directory = str(tmp_path_factory.mktemp("offsite-source"))
    try:
        pg.start().seed(scale=1)
        older = make_backup(pg, directory, "lms_backup_20261122_020000.sql.gz", "2026-11-22T02:00:09+00:00")
        pg.psql(
            "INSERT INTO users (username, full_name, role, email) "
            "VALUES ('offsite-test', 'Off Site', 'admin', 'offsite@example.org')"
        )
        newer = make_backup(pg, directory, "lms_backup_20261123_020000.sql.gz", "2026-11-23T02:00:09+00:00")
        yield {"dir": directory, "files": [newer, older], "counts": pg.counts()}
    finally:
        pg.remove()


@pytest.fixture
def backup_dir(source_backups, tmp_path):
    """A fresh copy of the source backups for one test (so a test can never spoil another's)."""
    directory = tmp_path / "backups"
    directory.mkdir(mode=0o700)
    for path in source_backups["files"]:
        shutil.copy2(path, directory)
        shutil.copy2(path + ".json", directory)
    return str(directory)


@pytest.fixture(scope="session")
def moto(tmp_path_factory):
    server = Moto(str(tmp_path_factory.mktemp("moto"))).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def age_identity(tmp_path):
    """A throwaway age identity: (identity file, public recipient)."""
    identity = tmp_path / "age-identity.txt"
    proc = subprocess.run(["age-keygen", "-o", str(identity)], capture_output=True, text=True, check=True)
    recipient = [
        line.split(": ", 1)[1] for line in (proc.stderr + proc.stdout).splitlines() if line.startswith("Public key: ")
    ][0]
    return str(identity), recipient


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    """A real sshd on a loopback port for one test module (``port``, ``ssh_args``, ``known_hosts`` ...)."""
    server = Sshd(tmp_path_factory.mktemp("sshd")).start()
    try:
        yield server
    finally:
        server.stop()
