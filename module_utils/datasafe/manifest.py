"""Backup manifests: the one place that says whether a file is a good backup.

Every backup ``<dir>/<name>`` has a manifest ``<dir>/<name>.json`` (mode 0600), written only
after the backup was verified. This module is the read side every role uses (backup,
retention, off-site, restore) and the atomic write the backup module uses. A file with no
manifest, a manifest with ``verified`` false, or a size or sha256 that no longer matches is
never a good backup.
"""

import datetime
import hashlib
import json
import os

# What datasafe names its backups, longest first (".sql.gz" before ".sql").
SUFFIXES = (".sql.gz", ".sql.zst", ".dump", ".sql")
MANIFEST_SUFFIX = ".json"
REQUIRED = ("file", "path", "database", "start", "end", "size", "sha256", "format", "compression", "kind", "verified")
CHUNK = 1 << 20


class ManifestError(Exception):
    pass


def manifest_path(backup_path):
    return backup_path + MANIFEST_SUFFIX


def is_backup_name(name):
    """True for names datasafe gives backups; temporary files start with a dot and never are."""
    return not name.startswith(".") and name.endswith(SUFFIXES)


def parse_time(text):
    """An ISO 8601 time with its timezone, as the manifest stores it."""
    when = datetime.datetime.fromisoformat(text)
    if when.tzinfo is None:
        raise ValueError("%r has no timezone" % text)
    return when


def fsync_dir(directory):
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write(path, data):
    """Write JSON to ``path`` atomically: temporary file, fsync, rename, fsync the directory."""
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, ".%s.tmp-%d" % (os.path.basename(path), os.getpid()))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            os.write(fd, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fsync_dir(directory)


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


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


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
        entry["problem"] = "manifest says verified is %r: not a good backup" % manifest.get("verified")
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


def newest_verified(backup_dir, database=None, max_age_seconds=None, kind=None, now=None, known_good=()):
    """The newest good backup (manifest verified, size and sha256 re-checked), or None.

    ``database`` and ``kind`` (a string or a list of kinds) filter; ``max_age_seconds`` ignores
    older backups. Candidates are checked newest first, so a corrupt newest file makes the one
    before it the newest good backup. ``known_good`` are paths the caller re-checked itself
    moments ago (hashing a 1 GB backup twice costs a second and a half).
    """
    now = now or datetime.datetime.now(datetime.timezone.utc)
    kinds = [kind] if isinstance(kind, str) else kind
    for entry in list_backups(backup_dir):
        if entry["problem"] or entry["manifest"] is None:
            continue
        if database is not None and entry["database"] != database:
            continue
        if kinds is not None and entry["kind"] not in kinds:
            continue
        if max_age_seconds is not None and (now - entry["end"]).total_seconds() > max_age_seconds:
            continue
        if entry["path"] in known_good or not verify_file(entry):
            return entry
    return None


def public(entry):
    """An entry as plain JSON-able data (for module results)."""
    out = dict(entry)
    out["end"] = entry["end"].isoformat() if entry.get("end") else None
    return out
