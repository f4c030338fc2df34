"""Layer 4 of the protocol: copy verified backups off the host, and prove the copy is whole.

A backup ``<dir>/<name>`` with its manifest ``<dir>/<name>.json`` (``verified: true``) is copied
to a target as a *payload* (the backup itself, or ``<name>.age`` when it is encrypted with age
first) followed by an *off-site manifest* ``<payload>.json``: the local manifest plus an
``offsite`` block recording the payload's own sha256 and size. The off-site manifest is written
last and only after the payload was verified at the target, so it is the commit marker: a payload
without it is an unfinished copy and is copied again.

The local backup is only ever opened for reading. Nothing here deletes anything, locally or at a
target; an existing off-site manifest that describes a *different* backup of the same name is a
conflict and is never overwritten.

Targets implement ``label``, ``state(entry, payload_name, encrypted)`` (``present`` | ``absent``),
``put_payload(path, name, sha256, size)`` and ``put_manifest(data, name)``; the engine
(:func:`copy_backups`) decides what to copy and in which order.
"""

import base64
import hashlib
import ipaddress
import json
import os
import re
import shlex
import shutil
import tempfile
import time
from urllib.parse import urlparse

from ansible.module_utils.datasafe import changelog, files, ledger, manifest, metrics, runner, specs, times

CHUNK = 1024 * 1024
AGE_MAGIC = b"age-encryption.org/v1\n"
_RECIPIENT = re.compile(r"^(age1[0-9a-z]{58}|ssh-ed25519 \S+|ssh-rsa \S+)(\s.*)?$")


class OffsiteError(Exception):
    """Copying to a target failed; ``stage`` names what was being done."""

    def __init__(self, stage, message):
        self.stage = stage
        super().__init__("%s: %s" % (stage, message))


class Conflict(OffsiteError):
    """The target already holds a different backup under the same name."""


# --------------------------------------------------------------------------- local backups


def _refuse(entry):
    return "%s: %s; only verified backups are copied off-site" % (entry["path"], entry["problem"])


def select(backups=(), backup_dir=None, database=None):
    """The backups to copy (newest first), and the ones found but refused.

    Which file is a good backup is decided by ``manifest`` (the read side every role shares).
    An explicitly named backup that is not verified is an error (``OffsiteError``); one found by
    scanning ``backup_dir`` is only reported in ``ignored``.
    """
    chosen, ignored, seen = [], [], set()
    for path in backups or ():
        path = os.path.abspath(os.path.expanduser(path))
        if path.endswith(manifest.MANIFEST_SUFFIX):
            path = path[: -len(manifest.MANIFEST_SUFFIX)]
        found = [e for e in manifest.list_backups(os.path.dirname(path)) if e["path"] == path]
        if not found:
            raise OffsiteError(
                "select backups", "%s is not a datasafe backup (no such file, or not a backup name)" % path
            )
        if found[0]["problem"]:
            raise OffsiteError("select backups", _refuse(found[0]))
        if path not in seen:
            seen.add(path)
            chosen.append(found[0])
    if backup_dir:
        backup_dir = os.path.abspath(os.path.expanduser(backup_dir))
        if not os.path.isdir(backup_dir):
            raise OffsiteError("select backups", "backup directory %s does not exist" % backup_dir)
        for entry in manifest.list_backups(backup_dir):
            if entry["path"] in seen or (database and entry["database"] != database):
                continue
            seen.add(entry["path"])
            if entry["problem"] or entry["manifest"] is None:
                ignored.append({"file": entry["file"], "problem": entry["problem"]})
            else:
                chosen.append(entry)
    chosen.sort(key=lambda e: (e["end"].timestamp(), e["file"]), reverse=True)
    return chosen, ignored


# --------------------------------------------------------------------------- hashing


hash_file = files.hash_file  # (size, sha256 hex); the one home is files.py


def check_local(entry):
    """Re-hash the local backup; a file that no longer matches its manifest is never shipped."""
    problems = manifest.verify_file(entry)
    if problems:
        return (
            "local backup %s no longer matches its manifest (%s): not copied; investigate the file and take "
            "a new backup" % (entry["path"], "; ".join(problems))
        )
    return None


# --------------------------------------------------------------------------- encryption


def check_recipients(recipients):
    """Problems with the age recipients, naming positions only (the values are never echoed)."""
    if not recipients:
        return [
            "encryption is on but no age recipient is set: set datasafe_offsite_age_recipients "
            "(public keys 'age1...', e.g. from the vault)"
        ]
    return [
        "age recipient #%d is not an age public key (age1...) or an ssh-ed25519/ssh-rsa public key" % (i + 1)
        for i, r in enumerate(recipients)
        if not _RECIPIENT.match(str(r).strip())
    ]


def encrypt(run, source, staging_dir, recipients, age="age"):
    """Encrypt ``source`` with age into ``staging_dir``; returns the path of the encrypted file.

    The recipients go to age in a 0600 file, not on its command line. The caller removes the
    returned file (and nothing else) when done.
    """
    fd, recipients_file = tempfile.mkstemp(prefix=".recipients-", dir=staging_dir)
    out_fd, out_path = tempfile.mkstemp(prefix=".%s.age-" % os.path.basename(source), dir=staging_dir)
    os.close(out_fd)
    try:
        os.write(fd, ("\n".join(str(r).strip() for r in recipients) + "\n").encode("utf-8"))
        os.close(fd)
        fd = None
        rc, _out, err = run([age, "--encrypt", "-R", recipients_file, "-o", out_path, source])
        if rc != 0:
            raise OffsiteError("encrypt", "age failed (exit %s): %s" % (rc, (err or "").strip() or "no error output"))
        with open(out_path, "rb") as handle:
            if handle.read(len(AGE_MAGIC)) != AGE_MAGIC:
                raise OffsiteError("encrypt", "age wrote no age-encrypted file")
        return out_path
    except BaseException:
        os.unlink(out_path)
        raise
    finally:
        if fd is not None:
            os.close(fd)
        os.unlink(recipients_file)


def staging(staging_dir):
    """Create the private staging directory (0700) for encrypted files and manifests."""
    staging_dir = os.path.abspath(os.path.expanduser(staging_dir))
    os.makedirs(staging_dir, mode=0o700, exist_ok=True)
    os.chmod(staging_dir, 0o700)
    return staging_dir


# --------------------------------------------------------------------------- off-site manifest


def offsite_manifest(entry, payload_name, sha, size, encrypted, target_label, extra=None):
    """The local manifest plus an ``offsite`` block describing the payload as stored off-site."""
    block = {
        "payload": payload_name,
        "sha256": sha,
        "size": size,
        "encrypted": bool(encrypted),
        "encryption": "age" if encrypted else None,
        "source_file": entry["file"],
        "source_sha256": entry["manifest"]["sha256"],
        "source_size": entry["manifest"]["size"],
        "target": target_label,
        "copied_at": times.now_iso(),
    }
    block.update(extra or {})
    data = dict(entry["manifest"])
    data["offsite"] = block
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8")


def describes(remote, entry, payload_name, encrypted):
    """Whether an off-site manifest describes this backup; raises Conflict for a different one."""
    block = remote.get("offsite") if isinstance(remote, dict) else None
    if not isinstance(block, dict):
        raise Conflict(
            "check target",
            "%s exists at the target but is not a datasafe off-site manifest: "
            "not overwritten; use another prefix or directory" % (payload_name + ".json"),
        )
    if block.get("source_sha256") != entry["manifest"]["sha256"]:
        raise Conflict(
            "check target",
            "the target already holds a different backup named %s (source sha256 %s, "
            "ours %s): not overwritten; give every host its own prefix or directory"
            % (payload_name, block.get("source_sha256"), entry["manifest"]["sha256"]),
        )
    return block.get("payload") == payload_name and bool(block.get("encrypted")) == bool(encrypted)


def label_for(item):
    """The label a target item (as in datasafe_offsite_targets) is known by in metrics and the ledger."""
    kind = item.get("type")
    if kind == "s3":
        prefix = str(item.get("prefix") or "").strip("/")
        return "s3://%s/%s" % (item.get("bucket"), prefix + "/" if prefix else "")
    if kind == "dir":
        return DirectoryTarget.label_for(item.get("path"))
    if kind == "rsync":
        dest = str(item.get("dest") or "")
        return dest if dest.endswith("/") else dest + "/"
    raise ValueError("off-site target type %r is not s3, dir or rsync" % (kind,))


def record_ledger(result, label):
    """Write every copy this run confirmed (copied or re-verified) into its backup directory's ledger."""
    when = times.now_iso()
    by_dir = {}
    for row, how in [(c, "copied and verified") for c in result["copied"]] + [
        (c, "found at the target and re-verified") for c in result["skipped"]
    ]:
        by_dir.setdefault(row["dir"], {})[row["file"]] = {
            "payload": row["payload"],
            "source_sha256": row["source_sha256"],
            "size": row.get("size"),
            "sha256": row.get("sha256"),
            "verified_at": when,
            "verified_by": how,
        }
    return [ledger.record(directory, label, rows) for directory, rows in sorted(by_dir.items())]


def end_timestamp(summary):
    try:
        return manifest.parse_time(summary.get("end")).timestamp()
    except (TypeError, ValueError):
        return None


# --------------------------------------------------------------------------- the engine


def copy_backups(
    target, entries, encrypt_with=None, staging_dir=None, check_mode=False, run=None, result=None, age="age"
):
    """Copy every entry not yet at ``target``; returns a result dict (never raises for one bad backup).

    ``encrypt_with`` is a list of age recipients (None: no encryption). A target failure raises
    :class:`OffsiteError` at once: the target is probably unreachable and every later copy would
    fail the same way; ``result`` (when given) then holds the progress made until the failure.
    """
    if result is None:
        result = {}
    for key in ("copied", "skipped", "would_copy", "problems"):
        result.setdefault(key, [])
    result.setdefault("bytes", 0)
    encrypted = bool(encrypt_with)
    for entry in entries:
        payload_name = entry["file"] + (".age" if encrypted else "")
        summary = {
            "file": entry["file"],
            "payload": payload_name,
            "end": entry["manifest"].get("end"),
            "dir": os.path.dirname(entry["path"]),
            "source_sha256": entry["manifest"]["sha256"],
        }
        if target.state(entry, payload_name, encrypted) == "present":
            result["skipped"].append(summary)
            continue
        if check_mode:
            result["would_copy"].append(summary)
            continue
        problem = check_local(entry)
        if problem:
            result["problems"].append({"file": entry["file"], "problem": problem})
            continue
        payload, staged = entry["path"], None
        try:
            if encrypted:
                staged = payload = encrypt(run, entry["path"], staging_dir, encrypt_with, age=age)
            size, sha = hash_file(payload)
            extra = target.put_payload(payload, payload_name, sha, size) or {}
            extra.update(_copy_companions(target, entry, encrypt_with, staging_dir, run, age))
            data = offsite_manifest(entry, payload_name, sha, size, encrypted, target.label, extra)
            target.put_manifest(data, payload_name + ".json")
        finally:
            if staged:
                os.unlink(staged)
        summary.update(sha256=sha, size=size, encrypted=encrypted)
        result["copied"].append(summary)
        result["bytes"] += size
    return result


def _copy_companions(target, entry, encrypt_with, staging_dir, run, age):
    """Copy the backup's roles file (encrypted like the payload) before the manifest commits both."""
    extra = {}
    for path in manifest.companions(entry):
        name = os.path.basename(path) + (".age" if encrypt_with else "")
        staged = source = encrypt(run, path, staging_dir, encrypt_with, age=age) if encrypt_with else path
        try:
            size, sha = hash_file(source)
            put = target.put_payload(source, name, sha, size) or {}
        finally:
            if encrypt_with:
                os.unlink(staged)
        extra["roles"] = {
            "payload": name,
            "size": size,
            "sha256": sha,
            "s3_checksum_sha256": put.get("s3_checksum_sha256"),
        }
    return extra


def companion_problems(check, entry, block):
    """Problems of the roles copy an off-site manifest describes; ``check(local, payload, size, sha, s3)``
    is the target's own test of one stored object."""
    roles = block.get("roles")
    local = manifest.companions(entry)
    if local and not isinstance(roles, dict):
        return ["the off-site copy lacks the roles file"]
    if not isinstance(roles, dict):
        return []
    return check(local[0] if local else None, roles.get("payload"), roles.get("size"), roles.get("sha256"), roles)


# --------------------------------------------------------------------------- a plain directory


def _write_all(fd, chunk):
    view = memoryview(chunk)
    while view:
        view = view[os.write(fd, view) :]


class DirectoryTarget:
    """A directory on a mounted filesystem (a NAS, a USB disk): copy, fsync, re-read, rename."""

    def __init__(self, path, source_dir=None, allow_same_filesystem=False):
        self.path = self.label = self.label_for(path)
        if not os.path.isdir(self.path):
            raise OffsiteError(
                "check target",
                "destination directory %s does not exist (is the share mounted?); "
                "it is never created here, so an unmounted share cannot fill the local disk" % self.path,
            )
        if source_dir and not allow_same_filesystem:
            if os.stat(self.path).st_dev == os.stat(os.path.abspath(os.path.expanduser(source_dir))).st_dev:
                raise OffsiteError(
                    "check target",
                    "destination %s is on the same filesystem as the backups: that is "
                    "not off-site (is the share mounted?); set allow_same_filesystem only for tests" % self.path,
                )

    @staticmethod
    def label_for(path):
        return os.path.abspath(os.path.expanduser(path))

    def _read_json(self, name):
        try:
            with open(os.path.join(self.path, name), "rb") as handle:
                return json.loads(handle.read().decode("utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise OffsiteError("check target", "cannot read %s: %s" % (os.path.join(self.path, name), exc)) from exc

    def state(self, entry, payload_name, encrypted):
        remote = self._read_json(payload_name + ".json")
        if remote is None or not describes(remote, entry, payload_name, encrypted):
            return "absent"
        target_file = os.path.join(self.path, payload_name)
        if not os.path.isfile(target_file):
            return "absent"
        size, sha = hash_file(target_file, drop_cache=True)
        if (size, sha) != (remote["offsite"]["size"], remote["offsite"]["sha256"]):
            return "absent"
        return "absent" if companion_problems(self._object_problems, entry, remote["offsite"]) else "present"

    def _object_problems(self, _local, name, size, sha, _block):
        path = os.path.join(self.path, name or "")
        if not name or not os.path.isfile(path):
            return ["%s is missing" % path]
        return [] if hash_file(path, drop_cache=True) == (size, sha) else ["%s does not verify" % path]

    def _write(self, name, source_path=None, data=None, sha=None):
        final = os.path.join(self.path, name)
        fd, tmp = tempfile.mkstemp(prefix=".%s.tmp-" % name, dir=self.path)
        try:
            os.fchmod(fd, 0o600)
            if data is not None:
                os.write(fd, data)
            else:
                with open(source_path, "rb") as src:
                    while True:
                        chunk = src.read(CHUNK)
                        if not chunk:
                            break
                        view = memoryview(chunk)
                        while view:
                            view = view[os.write(fd, view) :]
            os.fsync(fd)
            os.close(fd)
            fd = None
            size, got = hash_file(tmp, drop_cache=True)
            if got != sha:
                raise OffsiteError("verify copy", "%s re-read as sha256 %s, expected %s" % (final, got, sha))
            os.rename(tmp, final)
            tmp = None
            files.fsync_dir(self.path)
        except OSError as exc:
            raise OffsiteError("copy", "writing %s failed: %s" % (final, exc)) from exc
        finally:
            if fd is not None:
                os.close(fd)
            if tmp is not None and os.path.exists(tmp):
                os.unlink(tmp)  # our own partial copy, never anything else
        return size

    def put_payload(self, path, name, sha, size):
        self._write(name, source_path=path, sha=sha)
        return {"verified_by": "re-read and sha256 at the destination"}

    def names(self):
        """Every file name at the target (for a recovery's listing)."""
        return sorted(os.listdir(self.path))

    def read_json(self, name):
        return self._read_json(name)

    def download(self, name, fd):
        """Copy the stored object ``name`` into the open file ``fd``."""
        try:
            with open(os.path.join(self.path, name), "rb") as src:
                for chunk in iter(lambda: src.read(CHUNK), b""):
                    _write_all(fd, chunk)
        except OSError as exc:
            raise OffsiteError("fetch", "reading %s failed: %s" % (os.path.join(self.path, name), exc)) from exc

    def put_manifest(self, data, name):
        self._write(name, data=data, sha=hashlib.sha256(data).hexdigest())


# --------------------------------------------------------------------------- rsync (over ssh)


class RsyncTarget:
    """An rsync destination, ``[user@]host:path/`` over ssh or a local path; verified with --checksum."""

    def __init__(self, dest, run, ssh_args=(), rsync="rsync"):
        if not dest:
            raise OffsiteError("check target", "rsync destination is empty")
        self.dest = dest if dest.endswith("/") else dest + "/"
        self.label = self.dest
        self.run = run
        self.base = [rsync]
        if self.remote:
            self.base += ["-e", shlex.join(["ssh", "-o", "BatchMode=yes"] + list(ssh_args))]

    @property
    def remote(self):
        head = self.dest.split("/", 1)[0]
        return ":" in head

    def _rsync(self, *args):
        rc, out, err = self.run(self.base + list(args))
        return rc, out or "", (err or "").strip()

    def _fetch_manifest(self, name):
        fd, local = tempfile.mkstemp(prefix=".datasafe-offsite-manifest-")
        os.close(fd)
        try:
            rc, _out, err = self._rsync("--", self.dest + name, local)
            if rc == 23 and "No such file or directory" in err:
                return None
            if rc != 0:
                raise OffsiteError(
                    "check target",
                    "rsync could not read %s%s (exit %s): %s" % (self.dest, name, rc, err or "no error output"),
                )
            with open(local, "rb") as handle:
                try:
                    return json.loads(handle.read().decode("utf-8"))
                except ValueError as exc:
                    raise OffsiteError("check target", "%s%s is not JSON: %s" % (self.dest, name, exc)) from exc
        finally:
            if os.path.exists(local):
                os.unlink(local)

    def _differs(self, local_path, name):
        """True unless rsync --checksum finds the destination file identical to ``local_path``."""
        rc, out, err = self._rsync("--checksum", "--dry-run", "--itemize-changes", "--", local_path, self.dest + name)
        if rc != 0:
            raise OffsiteError("verify copy", "rsync --checksum --dry-run failed (exit %s): %s" % (rc, err))
        return bool(out.strip())

    def _remote_size(self, name):
        rc, out, err = self._rsync("--list-only", "--", self.dest + name)
        if rc != 0:
            return None
        fields = out.split()
        return int(fields[1].replace(",", "").replace(".", "")) if len(fields) > 1 else None

    def state(self, entry, payload_name, encrypted):
        remote = self._fetch_manifest(payload_name + ".json")
        if remote is None or not describes(remote, entry, payload_name, encrypted):
            return "absent"
        if encrypted:
            # age output is not reproducible, so there is no local file to compare against; the
            # manifest is written only after a verified copy, and the size must still match.
            if self._remote_size(payload_name) != remote["offsite"]["size"]:
                return "absent"
        elif self._differs(entry["path"], payload_name):
            return "absent"
        return "absent" if companion_problems(self._object_problems, entry, remote["offsite"]) else "present"

    def _object_problems(self, local, name, size, _sha, block):
        if not name:
            return ["no payload name"]
        if name.endswith(".age") or local is None:
            return [] if self._remote_size(name) == size else ["%s%s size differs" % (self.dest, name)]
        return ["%s%s differs" % (self.dest, name)] if self._differs(local, name) else []

    def _push(self, local_path, name):
        rc, _out, err = self._rsync("--checksum", "--perms", "--chmod=F600", "--", local_path, self.dest + name)
        if rc != 0:
            raise OffsiteError(
                "copy", "rsync to %s%s failed (exit %s): %s" % (self.dest, name, rc, err or "no error output")
            )
        if self._differs(local_path, name):
            raise OffsiteError(
                "verify copy", "rsync --checksum still finds %s%s different after the copy" % (self.dest, name)
            )

    def put_payload(self, path, name, sha, size):
        self._push(path, name)
        return {"verified_by": "rsync --checksum --dry-run shows no difference"}

    def put_manifest(self, data, name):
        fd, local = tempfile.mkstemp(prefix=".datasafe-offsite-manifest-")
        try:
            os.write(fd, data)
            os.close(fd)
            self._push(local, name)
        finally:
            os.unlink(local)


# --------------------------------------------------------------------------- S3


def _b64(digest):
    return base64.b64encode(digest).decode("ascii")


def _error_code(exc):
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def _not_found(exc):
    return _error_code(exc) in ("404", "NoSuchKey", "NotFound")


class S3Target:
    """An S3 bucket (or an S3-compatible store), through a boto3 client the caller made.

    Every object is uploaded with ``ChecksumAlgorithm=SHA256`` and the checksum computed here,
    so S3 itself rejects bytes that arrive different (BadDigest). After the upload the object's
    stored checksum and size are read back (``HeadObject`` with ``ChecksumMode=ENABLED``) and
    compared; ``verify="download"`` also streams the object back and hashes it, which is the
    only proof on stores that keep a client's checksum without checking it (moto, some gateways).
    Objects above ``multipart_threshold`` go up in parts, each with its own SHA256; their
    checksum is S3's composite (sha256 of the parts' digests).
    """

    def __init__(
        self,
        client,
        bucket,
        prefix="",
        verify="checksum",
        multipart_threshold=4 * 1024**3,
        part_size=128 * 1024**2,
        storage_class=None,
        endpoint_url=None,
    ):
        self.client, self.bucket, self.verify = client, bucket, verify
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.multipart_threshold, self.part_size = multipart_threshold, part_size
        self.storage_class = storage_class
        self.label = "s3://%s/%s" % (bucket, self.prefix)
        self.endpoint_url = endpoint_url

    def _call(self, stage, what, fn, **kwargs):
        try:
            return fn(**kwargs)
        except Exception as exc:  # botocore raises many classes; every one is a failed stage
            raise OffsiteError(stage, "%s %s: %s" % (what, self.label, exc)) from exc

    def check_bucket(self):
        self._call("check target", "bucket not reachable:", self.client.head_bucket, Bucket=self.bucket)

    def _head(self, key):
        try:
            return self.client.head_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED")
        except Exception as exc:
            if _not_found(exc):
                return None
            raise OffsiteError(
                "check target", "HeadObject %s%s: %s" % (self.label, key[len(self.prefix) :], exc)
            ) from exc

    def _get_json(self, key):
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except Exception as exc:
            if _not_found(exc):
                return None
            raise OffsiteError("check target", "GetObject %s: %s" % (key, exc)) from exc
        try:
            return json.loads(body.decode("utf-8"))
        except ValueError as exc:
            raise OffsiteError("check target", "s3://%s/%s is not JSON: %s" % (self.bucket, key, exc)) from exc

    def _download_sha(self, key):
        digest, size = hashlib.sha256(), 0
        body = self._call("verify copy", "GetObject", self.client.get_object, Bucket=self.bucket, Key=key)["Body"]
        for chunk in iter(lambda: body.read(CHUNK), b""):
            digest.update(chunk)
            size += len(chunk)
        return size, digest.hexdigest()

    def _matches(self, key, size, sha, s3_checksum):
        """Problems of the object at ``key`` against what was sent; empty when it verifies."""
        head = self._head(key)
        if head is None:
            return ["object %s is missing" % key]
        problems = []
        if head.get("ContentLength") != size:
            problems.append("size %s, expected %s" % (head.get("ContentLength"), size))
        stored = str(head.get("ChecksumSHA256") or "").split("-")[0]
        if stored != s3_checksum.split("-")[0]:
            problems.append("stored SHA256 checksum %r, expected %r" % (stored or None, s3_checksum))
        if not problems and self.verify == "download":
            try:
                got_size, got_sha = self._download_sha(key)
            except Exception as exc:  # botocore checks the stored checksum while streaming, and raises
                return problems + ["download failed: %s" % exc]
            if (got_size, got_sha) != (size, sha):
                problems.append(
                    "downloaded %s bytes with sha256 %s, expected %s bytes with %s" % (got_size, got_sha, size, sha)
                )
        return problems

    def state(self, entry, payload_name, encrypted):
        remote = self._get_json(self.prefix + payload_name + ".json")
        if remote is None or not describes(remote, entry, payload_name, encrypted):
            return "absent"
        block = remote["offsite"]
        problems = self._matches(
            self.prefix + payload_name, block.get("size"), block.get("sha256"), str(block.get("s3_checksum_sha256", ""))
        )
        problems = problems or companion_problems(self._object_problems, entry, block)
        return "absent" if problems else "present"

    def _object_problems(self, _local, name, size, sha, block):
        if not name:
            return ["no payload name"]
        return self._matches(self.prefix + name, size, sha, str(block.get("s3_checksum_sha256") or ""))

    def _extra(self, sha):
        args = {"ChecksumAlgorithm": "SHA256", "Metadata": {"sha256": sha}}
        if self.storage_class:
            args["StorageClass"] = self.storage_class
        return args

    def _copy(self, what, fn, key, **kwargs):
        """One call of the copy stage on object ``key`` of the bucket."""
        return self._call("copy", what, fn, Bucket=self.bucket, Key=key, **kwargs)

    def _put_single(self, key, body, sha, size):
        checksum = _b64(bytes.fromhex(sha))
        self._copy(
            "PutObject",
            self.client.put_object,
            key,
            Body=body,
            ContentLength=size,
            ChecksumSHA256=checksum,
            **self._extra(sha),
        )
        return checksum

    def _put_multipart(self, key, path, sha):
        upload = self._copy("CreateMultipartUpload", self.client.create_multipart_upload, key, **self._extra(sha))
        upload_id, parts, digests = upload["UploadId"], [], []
        try:
            with open(path, "rb") as handle:
                number = 0
                while True:
                    data = handle.read(self.part_size)
                    if not data:
                        break
                    number += 1
                    digest = hashlib.sha256(data).digest()
                    digests.append(digest)
                    part = self._copy(
                        "UploadPart",
                        self.client.upload_part,
                        key,
                        UploadId=upload_id,
                        PartNumber=number,
                        Body=data,
                        ChecksumAlgorithm="SHA256",
                        ChecksumSHA256=_b64(digest),
                    )
                    parts.append({"PartNumber": number, "ETag": part["ETag"], "ChecksumSHA256": _b64(digest)})
            self._copy(
                "CompleteMultipartUpload",
                self.client.complete_multipart_upload,
                key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            # an unfinished multipart upload is invisible but billed; abort only our own upload id
            try:
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            except Exception:  # noqa: S110 - the original error is the one to report
                pass
            raise
        return "%s-%d" % (_b64(hashlib.sha256(b"".join(digests)).digest()), len(digests))

    def _upload(self, key, path, sha, size, data=None):
        if data is not None:
            checksum = self._put_single(key, data, sha, size)
        elif size > self.multipart_threshold:
            checksum = self._put_multipart(key, path, sha)
        else:
            with open(path, "rb") as body:
                checksum = self._put_single(key, body, sha, size)
        problems = self._matches(key, size, sha, checksum)
        if problems:
            raise OffsiteError("verify copy", "s3://%s/%s after upload: %s" % (self.bucket, key, "; ".join(problems)))
        return checksum

    def put_payload(self, path, name, sha, size):
        checksum = self._upload(self.prefix + name, path, sha, size)
        how = "S3 SHA256 checksum (sent with the upload, read back with HeadObject)"
        if self.verify == "download":
            how += " and download + sha256"
        return {"s3_checksum_sha256": checksum, "verified_by": how, "bucket": self.bucket, "key": self.prefix + name}

    def put_manifest(self, data, name):
        self._upload(self.prefix + name, None, hashlib.sha256(data).hexdigest(), len(data), data=data)

    def names(self):
        """Every object name under the prefix (for a recovery's listing)."""
        out, token = [], None
        while True:
            args = {"Bucket": self.bucket, "Prefix": self.prefix}
            if token:
                args["ContinuationToken"] = token
            page = self._call("list target", "ListObjectsV2", self.client.list_objects_v2, **args)
            out += [o["Key"][len(self.prefix) :] for o in page.get("Contents", [])]
            if not page.get("IsTruncated"):
                return sorted(n for n in out if n and "/" not in n)
            token = page.get("NextContinuationToken")

    def read_json(self, name):
        return self._get_json(self.prefix + name)

    def download(self, name, fd):
        """Stream the object ``name`` into the open file ``fd``."""
        body = self._call("fetch", "GetObject", self.client.get_object, Bucket=self.bucket, Key=self.prefix + name)[
            "Body"
        ]
        for chunk in iter(lambda: body.read(CHUNK), b""):
            _write_all(fd, chunk)


# --------------------------------------------------------------------------- endpoints


def _loopback(url):
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def endpoint_problem(endpoint_url, validate_certs, allow_insecure):
    """Why this endpoint is refused, or None. Backups are medical records: no plain http off the host."""
    if allow_insecure:
        return None
    if endpoint_url and urlparse(endpoint_url).scheme not in ("https", "http"):
        return "endpoint_url %s is not an http(s) URL" % endpoint_url
    insecure = (endpoint_url and urlparse(endpoint_url).scheme == "http") or not validate_certs
    if insecure and not (endpoint_url and _loopback(endpoint_url)):
        return (
            "plain http or validate_certs=false is only allowed for a loopback test endpoint (127.0.0.1); "
            "use https with certificate checks, or set allow_insecure_endpoint if you really must"
        )
    return None


# --------------------------------------------------------------------------- metrics


METRICS = (
    metrics.gauge(
        "datasafe_offsite_last_run_success",
        "1 when the last off-site run to the target copied or found every selected backup, 0 when it failed.",
    ),
    metrics.gauge("datasafe_offsite_last_run_timestamp_seconds", "When the last off-site run to the target ended."),
    metrics.gauge(
        "datasafe_offsite_last_success_timestamp_seconds", "When an off-site run to the target last succeeded."
    ),
    metrics.gauge("datasafe_offsite_last_run_duration_seconds", "How long the last off-site run to the target took."),
    metrics.gauge("datasafe_offsite_last_run_copied_backups", "Backups copied to the target by the last run."),
    metrics.gauge("datasafe_offsite_last_run_copied_bytes", "Bytes copied to the target by the last run."),
    metrics.gauge(
        "datasafe_offsite_pending_backups", "Verified local backups not confirmed at the target after the last run."
    ),
    metrics.gauge(
        "datasafe_offsite_newest_backup_timestamp_seconds", "End time of the newest backup confirmed at the target."
    ),
    metrics.gauge("datasafe_offsite_encrypted", "1 when the last run encrypted with age before copying."),
)


def _number(value):
    return "%d" % value if float(value).is_integer() else repr(float(value))


def read_metrics(path):
    """``{target: {metric: float}}`` from a textfile written by :func:`write_metrics`."""
    samples = {}
    for (name, labels), value in metrics.read(path).items():
        if name.startswith("datasafe_offsite_") and len(labels) == 1 and labels[0][0] == "target":
            samples.setdefault(labels[0][1], {})[name] = float(value)
    return samples


def write_metrics(path, target, success, started, copied=0, copied_bytes=0, pending=0, newest=None, encrypted=False):
    """Update this target's samples in the node_exporter textfile (see :mod:`metrics`).

    Other targets' samples are kept; on failure the last success time (and the newest backup
    confirmed, when this run confirmed none) is carried over, so an alert on its age fires.
    """
    labels = metrics.labels_key((("target", target),))

    def change(samples):
        def previous(name):
            return float(samples.get((name, labels), 0))

        ended = time.time()
        last_success = ended if success else previous("datasafe_offsite_last_success_timestamp_seconds")
        newest_end = newest if newest is not None else previous("datasafe_offsite_newest_backup_timestamp_seconds")
        values = {
            "datasafe_offsite_last_run_success": 1 if success else 0,
            "datasafe_offsite_last_run_timestamp_seconds": round(ended, 3),
            "datasafe_offsite_last_success_timestamp_seconds": round(last_success, 3),
            "datasafe_offsite_last_run_duration_seconds": round(ended - started, 3),
            "datasafe_offsite_last_run_copied_backups": copied,
            "datasafe_offsite_last_run_copied_bytes": copied_bytes,
            "datasafe_offsite_pending_backups": pending,
            "datasafe_offsite_newest_backup_timestamp_seconds": round(newest_end or 0, 3),
            "datasafe_offsite_encrypted": 1 if encrypted else 0,
        }
        for name, value in values.items():
            samples[(name, labels)] = _number(value)

    return metrics.update(path, METRICS, change)


# --------------------------------------------------------------------------- the modules' shared body


def common_argument_spec():
    """Options both off-site modules take (their one home: specs.OFFSITE); each adds its target's own."""
    return specs.spec(specs.OFFSITE)


class Failed(Exception):
    """The off-site run failed; ``result`` is what the module returns with the failure."""

    def __init__(self, message, result):
        super().__init__(message)
        self.result = result


def execute(params, make_target, label, check_mode=False, run=runner.run, which=shutil.which, warn=None):
    """Select, copy, verify, record metrics and the change log; return the result or raise :class:`Failed`.

    ``params`` are the module's options (see :func:`common_argument_spec`). ``make_target(run)``
    builds the target (it may raise OffsiteError for a bad destination); ``label`` names the
    target in metrics and messages even when it cannot be built. ``which`` finds a program on
    the host; ``warn(text)`` reports a problem that does not fail the run.
    """
    started = time.time()
    p = params
    if not p["backups"] and not p["backup_dir"]:
        raise Failed(
            "offsite: nothing to copy: name the backups (backups) or a backup_dir whose verified "
            "backups are all copied",
            {},
        )
    age = None
    if p["encrypt"]:
        problems = check_recipients(p["age_recipients"])
        if problems:
            raise Failed("offsite: " + "; ".join(problems), {})
        age = which("age")
        if not age:
            raise Failed(
                "offsite: encryption is on but the age program is not installed on %s: "
                "install the Debian package age (apt-get install age)" % os.uname()[1],
                {},
            )
    result = {
        "copied": [],
        "skipped": [],
        "would_copy": [],
        "problems": [],
        "ignored": [],
        "bytes": 0,
        "encrypted": bool(p["encrypt"]),
        "target": label,
        "metrics_file": None,
    }
    target, chosen, failure = None, [], None
    try:
        target = make_target(run)
        chosen, result["ignored"] = select(p["backups"], p["backup_dir"], p["database"])
        staging_dir = None
        if p["encrypt"] and not check_mode and chosen:
            staging_dir = staging(
                p["staging_dir"]
                or os.path.join(p["backup_dir"] or os.path.dirname(chosen[0]["path"]), ".offsite-staging")
            )
        copy_backups(
            target,
            chosen,
            encrypt_with=p["age_recipients"] if p["encrypt"] else None,
            staging_dir=staging_dir,
            check_mode=check_mode,
            run=run,
            result=result,
            age=age,
        )
    except OffsiteError as exc:
        failure = exc
    except OSError as exc:
        failure = OffsiteError("copy", str(exc))
    return _finish(p, result, chosen, started, failure, check_mode, warn)


def _finish(p, result, chosen, started, failure, check_mode, warn):
    confirmed = result["copied"] + result["skipped"]
    result["changed"] = bool(result["would_copy"] if check_mode else result["copied"])
    result["pending"] = [e["file"] for e in chosen if e["file"] not in {c["file"] for c in confirmed}]
    if failure is None and result["problems"]:
        failure = OffsiteError("check local backups", "; ".join(x["problem"] for x in result["problems"]))
    label = result["target"]
    if check_mode:
        if failure is not None:
            raise Failed("offsite to %s would fail at %s" % (label, failure), result)
        return result
    try:
        result["ledger"] = record_ledger(result, label)
    except (OSError, ledger.LedgerError) as exc:
        failure = failure or OffsiteError("record ledger", str(exc))
    newest = [end_timestamp(e) for e in confirmed if e.get("end")]
    newest = max([t for t in newest if t is not None], default=None)
    if p["metrics_file"]:
        try:
            result["metrics_file"] = write_metrics(
                p["metrics_file"],
                label,
                failure is None,
                started,
                copied=len(result["copied"]),
                copied_bytes=result["bytes"],
                pending=len(result["pending"]),
                newest=newest,
                encrypted=result["encrypted"],
            )
        except OSError as exc:
            if warn:
                warn("offsite: could not write the metrics file %s: %s" % (p["metrics_file"], exc))
    if p["change_log"] and (result["copied"] or failure is not None):
        log = os.path.abspath(os.path.expanduser(p["change_log"]))
        if failure is None:
            message = "Copied %d backup(s) off-site to %s, verified: %s" % (
                len(result["copied"]),
                label,
                ", ".join(c["payload"] for c in result["copied"]),
            )
        else:
            message = "Off-site copy to %s FAILED at %s; local backups untouched" % (label, failure)
        changelog.record(
            log,
            changelog.json_log_path(log),
            "offsite",
            message,
            "failed" if failure else "ok",
            target=label,
            copied=[c["payload"] for c in result["copied"]] or None,
        )
    if failure is not None:
        raise Failed(
            "offsite to %s failed at %s (the local backups were only read, never changed)" % (label, failure),
            dict(result, stage=failure.stage),
        )
    return result
