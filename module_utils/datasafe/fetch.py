"""Bring a backup back from an off-site target onto a (new) machine, proved before it is used.

The reverse of :mod:`offsite`. A target holds, per backup, a payload (the backup, or its
age-encrypted form), maybe a roles payload, and the off-site manifest ``<payload>.json`` that
was written last (the commit marker). :func:`listing` reads the manifests; :func:`fetch`:

1. downloads the payload (and the roles payload) under temporary names in ``dest`` (0700 dir,
   0600 files) and checks each one's size and sha256 against the off-site manifest **before
   anything else** - a tampered or truncated copy is refused here, nothing else has happened;
2. decrypts age payloads with the operator's identity file and checks the plaintext's size and
   sha256 against the backup's own manifest (and the roles file against its ``roles`` block);
3. only then gives them their final names and writes the local manifest (the off-site manifest
   without its ``offsite`` block, plus ``fetched_from``), so ``dest`` is an ordinary backup
   directory that restore, the drill and retention read like any other.

An existing file of the same name in ``dest`` is never overwritten: if it is the same backup
(same sha256) it is used as it is, otherwise the fetch fails.
"""

import os
import tempfile

from ansible.module_utils.common.process import get_bin_path
from ansible.module_utils.datasafe import manifest, runner, times
from ansible.module_utils.datasafe.offsite import Failed, OffsiteError, hash_file


def listing(target, database=None):
    """The backups the target holds (newest first), from their off-site manifests."""
    names = target.names()
    present = set(names)
    rows = []
    for name in names:
        if not name.endswith(manifest.MANIFEST_SUFFIX) or name.startswith("."):
            continue
        data = target.read_json(name)
        block = data.get("offsite") if isinstance(data, dict) else None
        if not isinstance(block, dict) or not block.get("payload"):
            continue
        if database and data.get("database") != database:
            continue
        rows.append(
            {
                "file": data.get("file"),
                "payload": block["payload"],
                "complete": block["payload"] in present,
                "encrypted": bool(block.get("encrypted")),
                "database": data.get("database"),
                "kind": data.get("kind"),
                "end": data.get("end"),
                "size": block.get("size"),
                "app_revision": data.get("app_revision"),
                "roles": bool(block.get("roles")),
                "counts_total": data.get("counts_total"),
                "manifest": data,
            }
        )
    rows.sort(key=lambda r: (str(r["end"]), str(r["file"])), reverse=True)
    return rows


def choose(rows, backup=None):
    """The named backup (file or payload name) or the newest complete one; OffsiteError otherwise."""
    if backup:
        found = [r for r in rows if backup in (r["file"], r["payload"])]
        if not found:
            raise OffsiteError(
                "choose backup",
                "the target holds no backup named %s (list them with datasafe_recover_server_mode=list)" % backup,
            )
        return found[0]
    for row in rows:
        if row["complete"]:
            return row
    raise OffsiteError("choose backup", "the target holds no complete backup of this database")


def _download(target, name, dest, size, sha):
    """Download ``name`` into a temporary file in ``dest`` and check it; returns the temporary path."""
    fd, tmp = tempfile.mkstemp(prefix=".%s.fetch-" % name, dir=dest)
    try:
        os.fchmod(fd, 0o600)
        target.download(name, fd)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    got_size, got_sha = hash_file(tmp)
    if (got_size, got_sha) != (size, sha):
        os.unlink(tmp)
        raise OffsiteError(
            "verify download",
            "%s at %s is %s bytes with sha256 %s, but its off-site manifest says %s bytes with %s: the copy "
            "was changed or damaged; it is refused and nothing else was done (choose another backup)"
            % (name, target.label, got_size, got_sha, size, sha),
        )
    return tmp


def _decrypt(run, age, identity, src, dest):
    fd, out = tempfile.mkstemp(prefix=".decrypted-", dir=dest)
    os.close(fd)
    rc, _out, err = run([age, "--decrypt", "-i", identity, "-o", out, src])
    if rc != 0:
        os.unlink(out)
        raise OffsiteError(
            "decrypt",
            "age could not decrypt %s (exit %s): %s (is datasafe_recover_server_age_identity the private key matching "
            "the off-site recipients?)" % (os.path.basename(src), rc, (err or "").strip() or "no error output"),
        )
    return out


def _expect(path, size, sha, what):
    got_size, got_sha = hash_file(path)
    if (got_size, got_sha) != (size, sha):
        raise OffsiteError(
            "verify backup",
            "%s decrypted to %s bytes with sha256 %s, its manifest says %s bytes with %s: refused"
            % (what, got_size, got_sha, size, sha),
        )


def _place(tmp, dest, name, sha):
    """Link ``tmp`` to ``dest/name`` (never over a different file); returns True when it was new."""
    final = os.path.join(dest, name)
    if os.path.exists(final):
        if hash_file(final)[1] != sha:
            raise OffsiteError(
                "place backup", "%s already exists and is a different file: never overwritten; move it aside" % final
            )
        os.unlink(tmp)
        return False
    os.link(tmp, final)
    os.unlink(tmp)
    return True


def fetch(target, row, dest, run=None, age="age", identity=None):
    """Download, verify, decrypt and place the backup ``row`` (from :func:`listing`) in ``dest``."""
    data = dict(row["manifest"])
    block = data.pop("offsite")
    if row["encrypted"] and not identity:
        raise OffsiteError(
            "decrypt",
            "%s is age-encrypted: pass the identity file (datasafe_recover_server_age_identity)" % row["payload"],
        )
    dest = os.path.abspath(os.path.expanduser(dest))
    os.makedirs(dest, mode=0o700, exist_ok=True)
    temps, checks = [], []
    roles_block = block.get("roles") if isinstance(block.get("roles"), dict) else None
    try:
        payload = _download(target, block["payload"], dest, block["size"], block["sha256"])
        temps.append(payload)
        checks.append("payload %s: size and sha256 equal the off-site manifest's" % block["payload"])
        roles_tmp = None
        if roles_block:
            roles_tmp = _download(target, roles_block["payload"], dest, roles_block["size"], roles_block["sha256"])
            temps.append(roles_tmp)
            checks.append("roles payload %s: size and sha256 equal the off-site manifest's" % roles_block["payload"])
        if row["encrypted"]:
            plain = _decrypt(run, age, identity, payload, dest)
            temps.append(plain)
            payload = plain
            if roles_tmp:
                roles_tmp = _decrypt(run, age, identity, roles_tmp, dest)
                temps.append(roles_tmp)
            checks.append("decrypted with age")
        _expect(payload, data["size"], data["sha256"], data["file"])
        checks.append("backup %s: size and sha256 equal its manifest's" % data["file"])
        if roles_tmp:
            _expect(roles_tmp, data["roles"]["size"], data["roles"]["sha256"], data["roles"]["file"])
            checks.append("roles file %s: size and sha256 equal its manifest's" % data["roles"]["file"])
        new = _place(payload, dest, data["file"], data["sha256"])
        if roles_tmp:
            _place(roles_tmp, dest, os.path.basename(data["roles"]["file"]), data["roles"]["sha256"])
    finally:
        for tmp in temps:
            if os.path.exists(tmp):
                os.unlink(tmp)
    path = os.path.join(dest, data["file"])
    data["path"] = path
    data["fetched_from"] = {"target": target.label, "payload": block["payload"], "at": times.now_iso()}
    manifest_path = manifest.manifest_path(path)
    if new or not os.path.exists(manifest_path):
        manifest.write(manifest_path, data)
    manifest.fsync_dir(dest)
    return {
        "file": data["file"],
        "path": path,
        "manifest_path": manifest_path,
        "manifest": data,
        "checks": checks,
        "new": new,
    }


# --------------------------------------------------------------------------- the module's body


def public(row):
    """A :func:`listing` row as the module returns it (without the whole off-site manifest)."""
    return {k: v for k, v in row.items() if k != "manifest"}


def _age_program(which, required):
    """The age program's path, or None when it is not installed and not ``required``; ``which``
    raises ValueError naming the paths searched when a program is missing (ansible-core's
    ``get_bin_path``), which fails the run when age is ``required``."""
    try:
        return which("age")
    except ValueError as exc:
        if required:
            raise Failed(str(exc), {}) from exc
        return None


def task(p, make_target, check_mode=False, run=runner.run, which=get_bin_path):
    """What the offsite_fetch module does with its options ``p``: list the target ``make_target()``
    builds, and with ``state=fetched`` choose a backup and :func:`fetch` it into ``dest`` (in
    ``check_mode`` only name it). Returns the module's result (with ``msg`` once fetched); raises
    :class:`~offsite.Failed` with ``stage`` (and what was listed) in its result. ``make_target``
    may raise Failed itself for a target that cannot be used at all."""
    result = dict(changed=False, backups=[])
    try:
        target = make_target()
        rows = listing(target, p["database"])
        result["backups"] = [public(r) for r in rows]
        result["target"] = target.label
        if p["state"] == "list":
            return result
        chosen = choose(rows, p["backup"])
        result["chosen"] = public(chosen)
        if check_mode:
            return dict(result, changed=True)
        age = _age_program(which, chosen["encrypted"])
        if chosen["encrypted"] and not (p["age_identity"] and os.path.isfile(p["age_identity"])):
            raise OffsiteError(
                "decrypt", "%s is age-encrypted: age_identity must name the identity file" % chosen["payload"]
            )
        done = fetch(target, chosen, p["dest"], run=run, age=age, identity=p["age_identity"])
    except OffsiteError as exc:
        raise Failed("offsite_fetch: %s" % exc, dict(result, stage=exc.stage)) from exc
    except OSError as exc:
        raise Failed("offsite_fetch: %s" % exc, dict(result, stage="fetch")) from exc
    result.update(changed=done["new"], path=done["path"], manifest=done["manifest"], checks=done["checks"])
    result["msg"] = "fetched %s from %s, verified: %s" % (done["file"], target.label, "; ".join(done["checks"]))
    return result
