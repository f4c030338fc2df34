"""Backup manifests: the one place that says whether a file is a good backup.

Every backup ``<dir>/<name>`` has a manifest ``<dir>/<name>.json`` (mode 0600), written only
after the backup was verified. This module is the read side every role uses (backup,
retention, off-site, restore, break-glass) and the atomic write the backup module uses. A file
with no manifest, a manifest with ``verified`` false, or a size or sha256 that no longer
matches is never a good backup. The verdict is :func:`judge` (one backup) and :func:`verdicts`
(a directory, newest first by the manifest's end time, which is the truth; a file's mtime is
not); :func:`newest_verified` and break-glass both read it.
"""

import datetime
import json
import os

from ansible.module_utils.datasafe import files, times

# What datasafe names its backups, longest first (".sql.gz" before ".sql").
SUFFIXES = (".sql.gz", ".sql.zst", ".dump", ".sql")
MANIFEST_SUFFIX = ".json"
REQUIRED = ("file", "path", "database", "start", "end", "size", "sha256", "format", "compression", "kind", "verified")
# A manifest whose end lies further ahead than this is not evidence of a fresh backup.
FUTURE_SLACK = datetime.timedelta(minutes=1)

# The file and time helpers live in files.py and times.py; these names are kept for callers.
parse_time = times.parse_time
sha256_file = files.sha256_file
fsync_dir = files.fsync_dir


class ManifestError(Exception):
    pass


def manifest_path(backup_path):
    return backup_path + MANIFEST_SUFFIX


def is_backup_name(name):
    """True for names datasafe gives backups; temporary files start with a dot and never are."""
    return not name.startswith(".") and name.endswith(SUFFIXES)


def write(path, data):
    """Write a manifest to ``path`` atomically (mode 0600): temporary file, fsync, rename, fsync the directory."""
    files.write_json(path, data)


def load(path):
    """The manifest at ``path`` as a dict; ManifestError naming the problem when it is not usable."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except OSError as exc:
        raise ManifestError("cannot read manifest %s: %s" % (path, exc.strerror or exc)) from exc
    except ValueError as exc:
        raise ManifestError("manifest %s is not valid JSON: %s" % (path, exc)) from exc
    if not isinstance(data, dict):
        raise ManifestError("manifest %s is not a JSON object" % path)
    missing = [key for key in REQUIRED if key not in data]
    if missing:
        raise ManifestError("manifest %s lacks %s" % (path, ", ".join(missing)))
    try:
        parse_time(data["end"])
        parse_time(data["start"])
    except (TypeError, ValueError) as exc:
        raise ManifestError("manifest %s has a bad start or end time: %s" % (path, exc)) from exc
    return data


def _entry(directory, name, manifest, problem):
    path = os.path.join(directory, name)
    try:
        st = os.stat(path)
        size, mtime = st.st_size, st.st_mtime
    except OSError:
        size, mtime = None, None
    end = None
    if manifest is not None:
        end = parse_time(manifest["end"])
    elif mtime is not None:
        end = datetime.datetime.fromtimestamp(mtime, datetime.timezone.utc)
    return {
        "file": name,
        "path": path,
        "manifest_path": manifest_path(path),
        "manifest": manifest,
        "problem": problem,
        "size": size,
        "end": end,
        "kind": manifest.get("kind") if manifest else None,
        "database": manifest.get("database") if manifest else None,
    }


def list_backups(backup_dir):
    """Every backup in ``backup_dir`` with its manifest, newest first.

    Each entry is a dict (``file``, ``path``, ``manifest_path``, ``manifest``, ``size``,
    ``end`` (datetime), ``kind``, ``database``, ``problem``); ``problem`` is None only for a
    file whose manifest says it was verified and whose size still matches. Manifests whose
    backup file is gone are listed too, with a problem. Checksums are not read here; see
    :func:`verify_file`.
    """
    try:
        names = os.listdir(backup_dir)
    except FileNotFoundError:
        return []
    entries = []
    present = set(names)
    for name in names:
        if is_backup_name(name):
            entries.append(_classify(backup_dir, name, manifest_path(name) in present))
        elif name.endswith(MANIFEST_SUFFIX) and not name.startswith("."):
            backup = name[: -len(MANIFEST_SUFFIX)]
            if is_backup_name(backup) and backup not in present:
                entry = _classify(backup_dir, backup, True)
                entry["problem"] = "backup file %s is missing (only its manifest is left)" % backup
                entries.append(entry)
    epoch = datetime.datetime.fromtimestamp(0, datetime.timezone.utc)
    entries.sort(key=lambda e: (e["end"] or epoch, e["file"]), reverse=True)
    return entries


def _classify(directory, name, has_manifest):
    if not has_manifest:
        return _entry(directory, name, None, "no manifest: never verified, not a good backup")
    try:
        manifest = load(os.path.join(directory, manifest_path(name)))
    except ManifestError as exc:
        return _entry(directory, name, None, str(exc))
    entry = _entry(directory, name, manifest, None)
    if manifest.get("verified") is not True:
        said = manifest.get("verified")
        entry["problem"] = "not verified (the manifest says verified is %r): not a good backup" % said
    elif manifest.get("file") != name:
        entry["problem"] = "manifest describes %r, not %r" % (manifest.get("file"), name)
    elif entry["size"] is not None and entry["size"] != manifest.get("size"):
        entry["problem"] = "size %s differs from the manifest's %s" % (entry["size"], manifest.get("size"))
    return entry


def companions(entry):
    """Paths of the files that belong to a backup besides its manifest (the roles file), existing or not."""
    block = (entry.get("manifest") or {}).get("roles")
    if isinstance(block, dict) and block.get("file"):
        return [os.path.join(os.path.dirname(entry["path"]), os.path.basename(block["file"]))]
    return []


def verify_companions(entry):
    """Size and sha256 of each companion file against the manifest; a list of problems."""
    problems = []
    block = (entry.get("manifest") or {}).get("roles")
    for path in companions(entry):
        try:
            size = os.path.getsize(path)
        except OSError as exc:
            problems.append("roles file %s: %s" % (path, exc.strerror or exc))
            continue
        if size != block.get("size") or sha256_file(path) != block.get("sha256"):
            problems.append("roles file %s no longer matches its manifest (size or sha256)" % path)
    return problems


def verify_file(entry):
    """Re-check a listed backup against its manifest (size and sha256); returns a list of problems."""
    if entry.get("manifest") is None:
        return [entry.get("problem") or "no manifest"]
    manifest = entry["manifest"]
    problems = []
    if entry.get("problem"):
        problems.append(entry["problem"])
    try:
        size = os.path.getsize(entry["path"])
    except OSError as exc:
        return problems + ["cannot read %s: %s" % (entry["path"], exc.strerror or exc)]
    if size != manifest["size"] and not any("size" in p for p in problems):
        problems.append("size %d differs from the manifest's %s" % (size, manifest["size"]))
    if not problems:
        actual = sha256_file(entry["path"])
        if actual != manifest["sha256"]:
            problems.append(
                "sha256 %s differs from the manifest's %s: the file changed after it was verified"
                % (actual, manifest["sha256"])
            )
        problems += verify_companions(entry)
    return problems


def _human(seconds):
    seconds = int(seconds)
    if seconds < 120:
        return "%d s" % seconds
    if seconds < 7200:
        return "%d min" % (seconds // 60)
    return "%.1f h" % (seconds / 3600.0)


def judge(entry, database=None, kind=None, max_age_seconds=None, now=None, known_good=()):
    """The verdict on one listed backup: why it is not a good backup (an empty list: it is one).

    A good backup has a readable, complete manifest that says ``verified``, describes this
    file, and matches the file's size and sha256 (re-read here unless ``entry["path"]`` is in
    ``known_good``, paths the caller re-checked moments ago). ``database`` and ``kind`` (a
    string or a list of kinds) narrow what the caller accepts. With ``max_age_seconds`` the
    manifest's end must be younger than that and not in the future (clock skew or a forged
    manifest make an age meaningless).
    """
    if entry["problem"] or entry["manifest"] is None:
        return [entry["problem"] or "no manifest"]
    if database is not None and entry["database"] != database:
        return ["backup of database %r, not %r" % (entry["database"], database)]
    kinds = [kind] if isinstance(kind, str) else kind
    if kinds is not None and entry["kind"] not in kinds:
        return ["a %s backup, not %s" % (entry["kind"], " or ".join(kinds))]
    if max_age_seconds is not None:
        now = now or times.now_utc()
        age = now - entry["end"]
        if age.total_seconds() > max_age_seconds:
            return ["too old: finished %s ago" % _human(age.total_seconds())]
        if age < -FUTURE_SLACK:
            return ["'end' is in the future (%s); clock skew or a forged manifest" % entry["manifest"]["end"]]
    if entry["path"] in known_good:
        return []
    return verify_file(entry)


def verdicts(backup_dir, database=None, kind=None, max_age_seconds=None, now=None, known_good=()):
    """``(entry, problems)`` for every backup in ``backup_dir``, newest first (see :func:`judge`).

    A generator: a caller that stops at the first good backup re-reads no older file.
    """
    now = now or times.now_utc()
    for entry in list_backups(backup_dir):
        yield entry, judge(entry, database, kind, max_age_seconds, now, known_good)


def newest_verified(backup_dir, database=None, max_age_seconds=None, kind=None, now=None, known_good=()):
    """The newest good backup (manifest verified, size and sha256 re-checked), or None.

    ``database`` and ``kind`` (a string or a list of kinds) filter; ``max_age_seconds`` ignores
    older backups. Candidates are checked newest first, so a corrupt newest file makes the one
    before it the newest good backup. ``known_good`` are paths the caller re-checked itself
    moments ago (hashing a 1 GB backup twice costs a second and a half).
    """
    for entry, problems in verdicts(backup_dir, database, kind, max_age_seconds, now, known_good):
        if not problems:
            return entry
    return None


def public(entry):
    """An entry as plain JSON-able data (for module results)."""
    out = dict(entry)
    out["end"] = entry["end"].isoformat() if entry.get("end") else None
    return out
