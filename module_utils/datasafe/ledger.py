"""The ledger of verified off-site copies: which backup is where, proved when.

``<backup_dir>/offsite-ledger.json`` (mode 0600; not a backup name, so no reader of backups
mistakes it for one) holds, per backup file and per target label, the copy last verified
there::

    {"version": 1, "copies": {"lms_backup_20261123_020000.sql.gz": {
        "s3://lab-backups/lms/": {"payload": "...sql.gz.age", "size": 123, "sha256": "...",
                                  "source_sha256": "...", "verified_at": "2026-11-23T02:01:07+00:00",
                                  "verified_by": "copied and verified"}}}}

The off-site engine writes it after every run (a copy made, or one found at the target and
re-verified); retention reads it and keeps every backup that lacks a verified copy at every
configured target. A row counts only while its ``source_sha256`` is the local manifest's: a
different file under the same name is not off-site. Rows of backups that no longer exist are
dropped when the ledger is next written.
"""

import fcntl
import json
import os

from ansible.module_utils.datasafe import manifest

NAME = "offsite-ledger.json"
LOCK = ".offsite-ledger.lock"


class LedgerError(Exception):
    pass


def path_for(backup_dir):
    return os.path.join(os.path.abspath(os.path.expanduser(backup_dir)), NAME)


def load(backup_dir):
    """The ledger as a dict (an empty one when there is none); LedgerError when it is unreadable."""
    path = path_for(backup_dir)
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        return {"version": 1, "copies": {}}
    except (OSError, ValueError) as exc:
        raise LedgerError(
            "the off-site ledger %s is unreadable (%s): move it aside; the next off-site run re-verifies "
            "every copy and writes it again" % (path, exc)
        ) from exc
    if not isinstance(data, dict) or not isinstance(data.get("copies"), dict):
        raise LedgerError("the off-site ledger %s is not a datasafe ledger: move it aside" % path)
    return data


def record(backup_dir, label, rows):
    """Set this target's rows (``{file: row}``), under a lock, atomically; returns the ledger path."""
    directory = os.path.abspath(os.path.expanduser(backup_dir))
    lock = os.open(os.path.join(directory, LOCK), os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = load(directory)
        present = set(os.listdir(directory))
        copies = {name: targets for name, targets in data["copies"].items() if name in present}
        for name, row in rows.items():
            copies.setdefault(name, {})[label] = row
        data["copies"] = copies
        manifest.write(path_for(directory), data)
    finally:
        os.close(lock)
    return path_for(directory)


def verified_at(data, entry, labels):
    """``(held, missing)``: the labels of ``labels`` with a verified copy of ``entry``, and those without."""
    rows = data["copies"].get(entry["file"], {})
    sha = (entry.get("manifest") or {}).get("sha256")
    held = [label for label in labels if rows.get(label, {}).get("source_sha256") == sha and sha]
    return held, [label for label in labels if label not in held]
