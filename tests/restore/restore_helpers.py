"""Helpers for the restore tests: backups made the way the protocol makes them (modules run by tests/harness.py)."""

import datetime
import hashlib
import os
import subprocess

from ansible.module_utils.datasafe import manifest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(REPO, ".venv", "bin")


def make_backup(pg, backup_dir, name="lms_backup_20261123_020000.sql.gz", kind="scheduled"):
    """pg_dump -Z6 inside the container into ``backup_dir/name`` plus a verified manifest of its own."""
    path = os.path.join(backup_dir, name)
    start = datetime.datetime.now(datetime.timezone.utc)
    with open(path, "wb") as out:
        subprocess.run(["docker", "exec", pg.container, "pg_dump", "-Z6", "-U", pg.user, pg.db], stdout=out, check=True)
    with open(path, "rb") as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()
    end = datetime.datetime.now(datetime.timezone.utc)
    data = {
        "file": name,
        "path": path,
        "database": pg.db,
        "container": pg.container,
        "server_version": "15",
        "start": start.isoformat(),
        "end": end.isoformat(),
        "duration_seconds": 0,
        "size": os.path.getsize(path),
        "sha256": digest,
        "format": "plain",
        "compression": "gzip",
        "kind": kind,
        "label": "test",
        "app_revision": None,
        "counts": pg.counts(),
        "verified": True,
        "verified_at": end.isoformat(),
        "checks": ["test"],
    }
    manifest.write(path + ".json", data)
    return data


def databases(pg):
    rows = pg.psql("SELECT datname FROM pg_database ORDER BY 1").stdout.split()
    return [r for r in rows if r not in ("postgres", "template0", "template1")]
