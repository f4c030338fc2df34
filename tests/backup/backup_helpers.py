"""Shared helpers for the backup tests: fake verified backups, hash a directory (modules run by tests/harness.py)."""

import datetime
import gzip
import hashlib
import os

from ansible.module_utils.datasafe import manifest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
TRAILER = b"--\n-- PostgreSQL database dump complete\n--\n\n"


def tree_hashes(directory):
    """{name: sha256} of every file in ``directory`` except the lock (which holds the holder's pid)."""
    out = {}
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if os.path.isfile(path) and name != ".datasafe-backup.lock":
            with open(path, "rb") as handle:
                out[name] = hashlib.sha256(handle.read()).hexdigest()
    return out


def good_backups(directory, database=None):
    return [
        e
        for e in manifest.list_backups(directory)
        if not e["problem"] and not manifest.verify_file(e) and (database is None or e["database"] == database)
    ]


def fake_backup(
    directory, name, end, kind="scheduled", database="lms_slncity", body=b"SELECT 1;\n", verified=True, counts=None
):
    """A small but real gzip dump with a manifest, as pg_backup writes them, ended at ``end``."""
    path = os.path.join(directory, name)
    data = gzip.compress(b"-- PostgreSQL database dump\n" + body + TRAILER)
    with open(path, "wb") as handle:
        handle.write(data)
    os.chmod(path, 0o600)
    when = end.isoformat(timespec="seconds")
    manifest.write(
        manifest.manifest_path(path),
        {
            "file": name,
            "path": path,
            "database": database,
            "container": "fake",
            "server_version": "15",
            "start": when,
            "end": when,
            "duration_seconds": 1.0,
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "format": "plain",
            "compression": "gzip",
            "kind": kind,
            "label": "",
            "app_revision": None,
            "counts": counts or {},
            "verified": verified,
            "verified_at": when,
            "checks": ["fake"],
        },
    )
    return path


def utc(*args):
    return datetime.datetime(*args, tzinfo=datetime.timezone.utc)
