"""The off-site ledger and what retention does with it; the roles file travels with its backup.

The modules run through ansible-core's harness on real files: gzip'd SQL with the backup role's
manifest (roles block included), a real directory target, real hashing. Retention's rule: while
off-site is configured, a backup without a verified copy at every target is never removed.
"""

import datetime
import gzip
import hashlib
import json
import os

from ansible.module_utils.datasafe import ledger
from harness import run_module

DB = "lms_slncity"


def make(directory, stamp, days_ago, body=b"-- PostgreSQL database dump complete\n"):
    """A backup named for ``stamp`` ended ``days_ago`` days ago, with a verified manifest and roles file."""
    name = "lms_backup_%s.sql.gz" % stamp
    path = os.path.join(directory, name)
    with open(path, "wb") as handle:
        handle.write(gzip.compress(b"-- %s\n" % stamp.encode() + body))
    roles_text = b"CREATE ROLE x;\n-- PostgreSQL database cluster dump complete\n"
    with open(path + ".roles", "wb") as handle:
        handle.write(roles_text)
    end = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=days_ago)
    with open(path, "rb") as handle:
        data = handle.read()
    manifest = {
        "file": name,
        "path": path,
        "database": DB,
        "start": end.isoformat(),
        "end": end.isoformat(),
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "format": "plain",
        "compression": "gzip",
        "kind": "scheduled",
        "verified": True,
        "counts": {"users": 1},
        "roles": {
            "file": name + ".roles",
            "size": len(roles_text),
            "sha256": hashlib.sha256(roles_text).hexdigest(),
            "verified": True,
        },
    }
    with open(path + ".json", "w") as handle:
        json.dump(manifest, handle)
    return path


def test_the_roles_file_travels_with_its_backup_and_the_ledger_records_each_verified_copy(tmp_path):
    backups, nas = tmp_path / "backups", tmp_path / "nas"
    backups.mkdir()
    nas.mkdir()
    path = make(str(backups), "20261101_020000", 1)
    args = dict(target="dir", dest=str(nas), allow_same_filesystem=True, backup_dir=str(backups), database=DB)
    first = run_module("offsite_copy", args)
    assert not first["failed"], first["msg"]
    assert sorted(os.listdir(nas)) == sorted([os.path.basename(path) + s for s in ("", ".json", ".roles")])
    with open(nas / (os.path.basename(path) + ".json")) as handle:
        assert json.load(handle)["offsite"]["roles"]["payload"] == os.path.basename(path) + ".roles"
    data = ledger.load(str(backups))
    row = data["copies"][os.path.basename(path)][str(nas)]
    assert row["verified_by"] == "copied and verified"
    # A copy whose roles file was damaged at the target is not "already off-site": it is copied again.
    with open(nas / (os.path.basename(path) + ".roles"), "ab") as handle:
        handle.write(b"-- damaged\n")
    again = run_module("offsite_copy", args)
    assert [c["file"] for c in again["copied"]] == [os.path.basename(path)]
    third = run_module("offsite_copy", args)
    assert third["copied"] == [] and [s["file"] for s in third["skipped"]] == [os.path.basename(path)]
    assert ledger.load(str(backups))["copies"][os.path.basename(path)][str(nas)]["verified_by"].startswith("found")


def test_retention_keeps_a_backup_that_never_reached_offsite_and_says_how_much_disk_it_holds(tmp_path):
    backups, nas = tmp_path / "backups", tmp_path / "nas"
    backups.mkdir()
    nas.mkdir()
    offsite_old = make(str(backups), "20261001_020000", 40)
    local_only = make(str(backups), "20261002_020000", 39)
    newest = make(str(backups), "20261130_020000", 0)
    target = {"name": "nas", "type": "dir", "path": str(nas)}
    rows = {}
    for path in (offsite_old, newest):
        with open(path + ".json") as handle:
            rows[os.path.basename(path)] = {"source_sha256": json.load(handle)["sha256"], "payload": "x"}
    ledger.record(str(backups), str(nas), rows)
    policy = dict(backup_dir=str(backups), database=DB, days=7, min_keep=1, new_backup=newest)

    # Without off-site configured, both old backups would go (this is what the hold prevents).
    plain = run_module("backup_retention", policy, check_mode=True)
    assert sorted(r["file"] for r in plain["remove"]) == sorted(map(os.path.basename, (offsite_old, local_only)))

    done = run_module("backup_retention", dict(policy, offsite_targets=[target]))
    assert not done["failed"], done["msg"]
    assert [r["file"] for r in done["remove"]] == [os.path.basename(offsite_old)]
    assert not os.path.exists(offsite_old) and not os.path.exists(offsite_old + ".roles")
    assert not os.path.exists(offsite_old + ".json")
    kept = {r["file"]: r["reason"] for r in done["keep"]}
    assert "no verified off-site copy at %s" % nas in kept[os.path.basename(local_only)]
    [held] = done["held_for_offsite"]
    assert held["file"] == os.path.basename(local_only) and held["missing_at"] == [str(nas)]
    assert held["bytes"] == os.path.getsize(local_only) + os.path.getsize(local_only + ".roles")
    assert done["held_bytes"] == held["bytes"]
    assert os.path.exists(local_only) and os.path.exists(local_only + ".roles")


def test_a_ledger_row_for_a_different_file_of_the_same_name_does_not_count(tmp_path):
    backups = tmp_path / "backups"
    backups.mkdir()
    old = make(str(backups), "20261001_020000", 40)
    newest = make(str(backups), "20261130_020000", 0)
    ledger.record(str(backups), "/mnt/nas", {os.path.basename(old): {"source_sha256": "0" * 64}})
    done = run_module(
        "backup_retention",
        dict(backup_dir=str(backups), database=DB, days=7, min_keep=1, new_backup=newest),
        offsite_targets=[{"type": "dir", "path": "/mnt/nas"}],
    )
    assert done["remove"] == [] and os.path.exists(old)
    assert os.path.basename(old) in [h["file"] for h in done["held_for_offsite"]]
