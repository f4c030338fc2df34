"""Continuous recovery with pgBackRest: the override, the repository, its health, recovery.

pgBackRest does the archiving, the backups, checksums and retention; this engine decides what
datasafe asks of it and what the answers mean. Every pgBackRest call runs inside a container
(the stack's database container, or a throwaway one of the same image), so the client always
matches the server and the host needs no pgBackRest of its own.

Functions take a ``run`` callable of :mod:`runner`'s signature (``runner.for_module(module)``
or ``runner.run``); they return results or raise :class:`ContinuousError`.
"""

import datetime
import hashlib
import json
import os
import re
import time

from ansible.module_utils.datasafe import compose, container, files

# Inside the database container.
REPO_MOUNT = "/var/lib/pgbackrest"
# A directory, not the file: a file bind mount keeps the old inode when the file is replaced.
CONF_MOUNT = "/etc/pgbackrest"
CONF_NAME = "pgbackrest.conf"
# At most this many seconds between WAL segment switches on an idle server: the recovery point
# is never older than this (the issue asks for 60 s or less).
ARCHIVE_TIMEOUT = 60
# A target a recovery is told to reach: one of these kinds.
TARGET_KINDS = ("latest", "time", "xid", "name", "lsn")

_STANZA = re.compile(r"[^A-Za-z0-9_-]")
_RESTORE_POINT = re.compile(r"^[A-Za-z0-9_.:-]{1,60}$")


class ContinuousError(Exception):
    """Continuous recovery cannot do what was asked; the message names the problem and the fix."""


def stanza_name(project):
    """pgBackRest's stanza for a compose project: its name, with only letters, digits, - and _."""
    return _STANZA.sub("_", project) or "datasafe"


def archive_command(stanza):
    return "pgbackrest --stanza=%s archive-push %%p" % stanza


def server_settings(stanza, archive_timeout=ARCHIVE_TIMEOUT):
    """The PostgreSQL settings continuous recovery needs, in the order they are passed."""
    if not 1 <= int(archive_timeout) <= 60:
        raise ContinuousError(
            "archive_timeout %s s is outside 1..60: the recovery point would be older than a minute; "
            "choose a value between 1 and 60" % archive_timeout
        )
    return [
        ("wal_level", "replica"),
        ("archive_mode", "on"),
        ("archive_command", archive_command(stanza)),
        ("archive_timeout", "%ds" % int(archive_timeout)),
    ]


def with_settings(command, settings):
    """The service's command with ``-c name=value`` for each setting (an earlier -c of the same
    name is dropped, so the override wins and a second render is identical)."""
    argv = list(command or ["postgres"])
    if argv and argv[0].startswith("-"):
        argv = ["postgres"] + argv
    names = {name for name, _ in settings}
    kept, skip = [], False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        if arg == "-c" and i + 1 < len(argv) and argv[i + 1].split("=", 1)[0] in names:
            skip = True
            continue
        kept.append(arg)
    for name, value in settings:
        kept += ["-c", "%s=%s" % (name, value)]
    return kept


def render_conf(stanza, pg_port, pg_user, retention_full, repo2=None, process_max=1, pgdata="/var/lib/postgresql/data"):
    """pgbackrest.conf: repository 1 on the host directory mounted at REPO_MOUNT, optional
    repository 2 on S3 (encrypted; secrets come from the environment, never this file)."""
    if int(retention_full) < 1:
        raise ContinuousError("retention_full must be at least 1 (the newest full backup is always kept)")
    lines = [
        "# Written by datasafe (roles/datasafe_continuous); changes here are overwritten.",
        "[global]",
        "repo1-path=%s" % REPO_MOUNT,
        "repo1-retention-full=%d" % int(retention_full),
        "compress-type=gz",
        "compress-level=3",
        "process-max=%d" % int(process_max),
        "start-fast=y",
        "archive-check=y",
        "log-level-console=warn",
        "log-level-stderr=error",
        "log-level-file=info",
        # inside the container (a throwaway recovery server mounts the repository read-only)
        "log-path=/var/log/pgbackrest",
    ]
    if repo2:
        lines += [
            "repo2-type=s3",
            "repo2-path=%s" % repo2["path"],
            "repo2-s3-bucket=%s" % repo2["bucket"],
            "repo2-s3-endpoint=%s" % repo2["endpoint"],
            "repo2-s3-region=%s" % repo2.get("region", "us-east-1"),
            "repo2-s3-uri-style=%s" % repo2.get("uri_style", "host"),
            "repo2-retention-full=%d" % int(repo2.get("retention_full", retention_full)),
            "repo2-cipher-type=aes-256-cbc",
            # small files bundled into few objects: a backup is a few dozen requests to S3, not thousands
            "repo2-bundle=y",
        ]
        if repo2.get("port"):
            lines.append("repo2-storage-port=%d" % int(repo2["port"]))
        if repo2.get("verify_tls") is False:
            lines.append("repo2-storage-verify-tls=n")
    lines += ["", "[%s]" % stanza, "pg1-path=%s" % pgdata, "pg1-port=%d" % int(pg_port)]
    lines += ["pg1-socket-path=/var/run/postgresql", "pg1-user=%s" % pg_user, ""]
    return "\n".join(lines)


def image_tag(project, base_image_id, dockerfile_text):
    """The derived image's name: per project, tagged by what made it (base image id, Dockerfile)."""
    digest = hashlib.sha256(("%s\n%s" % (base_image_id, dockerfile_text)).encode()).hexdigest()[:12]
    return "datasafe-continuous/%s-db:%s" % (_STANZA.sub("-", project).lower(), digest)


def render_override(service, image, command, repo_dir, conf_dir):
    """The compose override (JSON is YAML): the derived image, the command with the archive
    settings, the repository and its configuration mounted. Deterministic: same inputs, same text."""
    doc = {
        "services": {
            service: {
                "image": image,
                "command": command,
                "volumes": [
                    {"type": "bind", "source": repo_dir, "target": REPO_MOUNT},
                    {"type": "bind", "source": conf_dir, "target": CONF_MOUNT, "read_only": True},
                ],
            }
        }
    }
    header = (
        "# datasafe continuous recovery (playbooks/continuous.yml): the database with pgBackRest and\n"
        "# WAL archiving. datasafe adds this file after the stack's own compose files; do not edit.\n"
    )
    return header + json.dumps(doc, indent=2, sort_keys=True) + "\n"


def service_config(run, base_argv, service, env=None):
    """(image, command list or None, environment dict) of ``service`` as compose resolves it
    (``env``: the stack's compose environment, added to the inherited one)."""
    rc, out, err = run(base_argv + ["config", "--format", "json"], env=env)
    if rc != 0:
        raise ContinuousError("docker compose config failed: %s" % (err or out).strip())
    services = json.loads(out).get("services", {})
    if service not in services:
        raise ContinuousError(
            "the compose files define no service %r (they define: %s); set datasafe_db_service"
            % (service, ", ".join(sorted(services)) or "none")
        )
    svc = services[service]
    command = svc.get("command")
    if isinstance(command, str):
        raise ContinuousError(
            "service %r has a string command (%r); continuous recovery needs it as a list "
            '(command: ["postgres", ...]) to add its settings safely' % (service, command)
        )
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env if "=" in item)
    return svc.get("image"), command, env


def image_pgdata(run, image):
    """PGDATA as the image sets it (the official image moved it in PostgreSQL 18)."""
    rc, out, err = run(["docker", "image", "inspect", image])
    if rc != 0:
        raise ContinuousError("image %s is not on this host: %s" % (image, (err or out).strip()))
    for item in (json.loads(out)[0].get("Config") or {}).get("Env") or []:
        if item.startswith("PGDATA="):
            return item.split("=", 1)[1]
    return "/var/lib/postgresql/data"


def image_postgres_ids(run, image):
    """(uid, gid) of the image's postgres user: the owner the repository directory needs
    (999 in the official image, 100 or so in an image built from Debian's packages)."""
    rc, out, err = run(["docker", "run", "--rm", "--network", "none", "--entrypoint", "id", image, "-u", "postgres"])
    rc2, out2, err2 = run(["docker", "run", "--rm", "--network", "none", "--entrypoint", "id", image, "-g", "postgres"])
    if rc != 0 or rc2 != 0:
        raise ContinuousError("cannot find the postgres user in image %s: %s" % (image, (err or err2).strip()))
    return int(out.strip()), int(out2.strip())


def repo_env_of(run, cont):
    """The PGBACKREST_* variables of a running container (the S3 repository's key, secret and
    cipher passphrase, as the stack's compose environment gives them): a throwaway recovery server
    needs the same ones. {} when the container is not there."""
    rc, out, err = run(["docker", "container", "inspect", "--format", "{{json .Config.Env}}", cont])
    if rc != 0:
        return {}
    pairs = (item.split("=", 1) for item in json.loads(out or "[]") or [] if "=" in item)
    return {k: v for k, v in pairs if k.startswith("PGBACKREST_")}


# --- pgBackRest inside a container ---------------------------------------------------------


def pgbackrest(run, cont, stanza, args, stage):
    """``pgbackrest --stanza=S ARGS`` as the postgres user in ``cont``; stdout, or ContinuousError."""
    argv = container.docker_exec(cont, ["pgbackrest", "--stanza=%s" % stanza] + list(args), user="postgres")
    rc, out, err = run(argv)
    if rc != 0:
        raise ContinuousError("pgbackrest %s failed (exit %s): %s" % (stage, rc, (err or out).strip()[-1500:]))
    return out


def verify(run, cont, stanza, repo=None):
    """``pgbackrest verify`` over the repository; ContinuousError naming every invalid file.

    pgBackRest 2.45 exits 0 and logs ``status: error`` at info level when it finds a corrupt or
    unreadable file, so the verdict is read from its report, never from the exit status alone.
    """
    repo_args = ["--repo=%d" % int(repo)] if repo else []
    out = pgbackrest(run, cont, stanza, ["--log-level-console=info"] + repo_args + ["verify"], "verify")
    invalid = re.findall(r"invalid result (\S+?):? *(.*)", out)
    if invalid or re.search(r"status:\s*error", out):
        details = "; ".join("%s (%s)" % (f, why.strip()) for f, why in invalid) or out.strip()[-800:]
        raise ContinuousError(
            "pgbackrest verify found damage in %s: %s" % (repo_name(repo) if repo else "the repository", details)
        )
    match = re.search(r"total WAL checked: (\d+), total valid WAL: (\d+)", out)
    return {"wal_checked": int(match.group(1)) if match else None, "wal_valid": int(match.group(2)) if match else None}


def info(run, cont, stanza, repo=None):
    """pgBackRest's ``info --output=json`` for the stanza (a dict), or ContinuousError; every
    configured repository, or only ``repo`` (its key, 1 or 2)."""
    args = ["info", "--output=json"] + (["--repo=%d" % int(repo)] if repo else [])
    out = pgbackrest(run, cont, stanza, args, "info")
    data = json.loads(out or "[]")
    for entry in data:
        if entry.get("name") == stanza:
            return entry
    raise ContinuousError("pgbackrest info knows no stanza %s; run playbooks/continuous.yml to create it" % stanza)


def repo_name(key):
    """How reports name a repository: 1 is the local directory, 2 the off-site one on S3."""
    return "repository %d (%s)" % (int(key), "local" if int(key) == 1 else "off-site, S3")


def repo_keys(stanza_info):
    """The keys of the repositories pgbackrest.conf configures (info's ``repo`` list); [1] when
    info says nothing about them (no stanza yet, or an answer without the list)."""
    keys = sorted(int(r["key"]) for r in stanza_info.get("repo") or [] if r.get("key") is not None)
    return keys or [1]


def repo_status(stanza_info, key):
    """(code, message) of one repository in info (code 1: the stanza is missing there)."""
    for r in stanza_info.get("repo") or []:
        if int(r.get("key", 0)) == int(key):
            st = r.get("status") or {}
            return st.get("code"), st.get("message", "")
    st = stanza_info.get("status") or {}
    return st.get("code"), st.get("message", "")


def backup_repo(backup):
    """The repository a backup in info's list lives in (``database.repo-key``; 1 when not given)."""
    return int((backup.get("database") or {}).get("repo-key") or 1)


def _summary_of(backups, now, status):
    out = {"count": 0, "status": status}
    for b in backups:
        out["count"] += 1
        kind = b.get("type")
        stop = (b.get("timestamp") or {}).get("stop")
        entry = {
            "label": b.get("label"),
            "stop": stop,
            "age_seconds": round(now - stop, 1) if stop else None,
            "error": bool(b.get("error")),
            "size_repo": ((b.get("info") or {}).get("repository") or {}).get("delta"),
        }
        if kind in ("full", "diff", "incr") and not entry["error"]:
            if kind not in out or (stop or 0) > (out[kind]["stop"] or 0):
                out[kind] = entry
    return out


def backups_summary(stanza_info, now=None):
    """{'full': {...}, 'diff': {...}, 'incr': {...}, 'count': n, 'status': text, 'repos': {...}}
    from info. The top level is repository 1 (the one a recovery reads by default); ``repos``
    holds the same summary for every configured repository, keyed by its number as text."""
    now = time.time() if now is None else now
    backups = stanza_info.get("backup") or []
    repos = {}
    for key in repo_keys(stanza_info):
        repos[str(key)] = _summary_of(
            [b for b in backups if backup_repo(b) == key], now, repo_status(stanza_info, key)[1]
        )
    out = dict(repos[min(repos, key=int)])
    out["status"] = (stanza_info.get("status") or {}).get("message", "")
    out["repos"] = repos
    return out


def stanza_missing(stanza_info):
    """The repositories where the stanza does not exist yet (stanza-create creates it in each)."""
    if not stanza_info:
        return [1]
    return [k for k in repo_keys(stanza_info) if repo_status(stanza_info, k)[0] == 1]


def backup_each(run, cont, stanza, kinds, verify_after=True):
    """Take a backup in each repository of ``kinds`` ({repo key: 'full'|'diff'|'incr'}), in key
    order (repository 1 first), each checked in info and verified on its own.

    A failure in one repository never touches another's backup: every repository gets its
    result, {'backup': {...} or None, 'verify': {...}, 'error': text or None}. Returns
    (results keyed by repository number as text, the info after the last run).
    """
    results = {}
    for key in sorted(kinds, key=int):
        kind, key = kinds[key], int(key)
        res = {"type": kind, "backup": None, "verify": None, "error": None}
        results[str(key)] = res
        try:
            pgbackrest(
                run, cont, stanza, ["backup", "--repo=%d" % key, "--type=%s" % kind], "backup to %s" % repo_name(key)
            )
            mine = [b for b in info(run, cont, stanza, repo=key).get("backup") or [] if backup_repo(b) == key]
            newest = mine[-1] if mine else None
            if not newest or newest.get("error") or newest.get("type") != kind:
                raise ContinuousError(
                    "pgbackrest reported success but info does not list a good %s backup as the newest in %s: %r"
                    % (kind, repo_name(key), newest)
                )
            res["backup"] = dict(label=newest["label"], type=newest["type"], stop=newest["timestamp"]["stop"], repo=key)
            if verify_after:
                res["verify"] = verify(run, cont, stanza, repo=key)
        except ContinuousError as exc:
            res["error"] = "%s: %s" % (repo_name(key), exc)
    # info over every repository, or, when one failed (an unreachable S3 costs pgBackRest's
    # io-timeout per file it tries), over the first that did not
    good = [int(k) for k, r in results.items() if not r["error"]]
    try:
        if len(good) == len(results):
            after = info(run, cont, stanza)
        else:
            after = info(run, cont, stanza, repo=good[0]) if good else None
    except ContinuousError:
        after = None  # the caller keeps what it knew before; each repository's result says what happened
    return results, after


ARCHIVER_SQL = """SELECT archived_count, coalesce(last_archived_wal, ''),
  coalesce(extract(epoch FROM now() - last_archived_time)::bigint::text, ''),
  failed_count, coalesce(last_failed_wal, ''),
  coalesce(extract(epoch FROM now() - last_failed_time)::bigint::text, ''),
  current_setting('archive_mode'), current_setting('archive_command'),
  (SELECT count(*) FROM pg_ls_dir('pg_wal/archive_status') f WHERE f LIKE '%.ready'),
  (SELECT coalesce(sum(size), 0) FROM pg_ls_waldir()),
  pg_is_in_recovery()::text,
  (last_failed_time IS NOT NULL AND (last_archived_time IS NULL OR last_failed_time > last_archived_time))::text
FROM pg_stat_archiver"""


def archiver(run, cont, db, user):
    """pg_stat_archiver and the WAL waiting to be archived, as numbers."""
    row = container.query(run, cont, db, user, ARCHIVER_SQL + ";", stage="read pg_stat_archiver")[0]

    def num(text):
        return int(text) if text not in ("", None) else None

    return {
        "archived_count": int(row[0]),
        "last_archived_wal": row[1] or None,
        "last_archived_age_seconds": num(row[2]),
        "failed_count": int(row[3]),
        "last_failed_wal": row[4] or None,
        "last_failed_age_seconds": num(row[5]),
        "archive_mode": row[6],
        "archive_command": row[7],
        "ready_segments": int(row[8]),
        "wal_bytes": int(row[9]),
        "in_recovery": row[10] == "true",
        # the newest attempt failed (a failure later than the last success)
        "failing": row[11] == "true",
    }


def repo_size(path):
    """Bytes under the repository directory (as the host sees it), or None when unreadable."""
    total, seen = 0, False
    for root, _dirs, names in os.walk(os.path.expanduser(path)):
        seen = True
        for f in names:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total if seen else None


ARCHIVE_MODES_ON = ("on", "always")


def archives(arch):
    """Whether the server archives WAL, from :func:`archiver`'s reading (archive_mode on or always)."""
    return arch["archive_mode"] in ARCHIVE_MODES_ON


def health(arch, summary, stanza, max_lag, max_full_age=None, free_bytes=None, now_busy=True):
    """Problems (strings naming cause and fix) with continuous recovery, from the archiver's
    statistics and the repository's summary; empty when it is healthy."""
    problems = []
    if not archives(arch):
        problems.append(
            "archive_mode is %s: WAL is not archived; run playbooks/continuous.yml (the database must run "
            "with datasafe's compose override)" % arch["archive_mode"]
        )
        return problems
    if arch["archive_command"] != archive_command(stanza):
        problems.append(
            "archive_command (%s) does not push to stanza %s; run playbooks/continuous.yml"
            % (arch["archive_command"], stanza)
        )
    if arch["failing"]:
        problems.append(
            "archiving is FAILING: the last attempt (WAL %s, %ss ago) failed after the last success; "
            "%d segment(s) (%d MiB of WAL) wait in pg_wal; read the repository log "
            "(/var/log/pgbackrest in the container) and `pgbackrest check`; PostgreSQL keeps running and keeps the WAL"
            % (
                arch["last_failed_wal"],
                arch["last_failed_age_seconds"],
                arch["ready_segments"],
                arch["wal_bytes"] >> 20,
            )
        )
    age = arch["last_archived_age_seconds"]
    if age is None:
        problems.append("no WAL segment was ever archived; run `pgbackrest check` (playbooks/continuous.yml does)")
    elif age > max_lag and arch["ready_segments"] > 0:
        problems.append(
            "archiving is %ss behind (limit %ss): %d segment(s) (%d MiB) wait to be archived"
            % (age, max_lag, arch["ready_segments"], arch["wal_bytes"] >> 20)
        )
    elif age > max_lag + ARCHIVE_TIMEOUT * 2:
        problems.append(
            "the last WAL segment was archived %ss ago although archive_timeout is at most %ss: "
            "is archiving stalled? run `pgbackrest check`" % (age, ARCHIVE_TIMEOUT)
        )
    if summary is not None:
        repos = summary.get("repos") or {"1": summary}
        for key in sorted(repos, key=int):
            one = repos[key]
            # one repository keeps the old wording; with two, each problem names its repository
            where = "the repository" if len(repos) == 1 else repo_name(key)
            if "full" not in one:
                problems.append("%s holds no good full backup; run playbooks/continuous.yml or the backup job" % where)
            elif max_full_age and one["full"]["age_seconds"] is not None:
                newest = min(one[k]["age_seconds"] for k in ("full", "diff", "incr") if k in one)
                if newest > max_full_age:
                    problems.append(
                        "the newest pgBackRest backup in %s is %d h old (limit %d h): is the scheduled job running?"
                        % (where, newest // 3600, max_full_age // 3600)
                    )
    return problems


def scheduled_type(summary, full_every_days=7):
    """The scheduled job's backup type: full when the repository has no good full backup or the
    newest is at least ``full_every_days`` old, else differential (restores need one full + one diff)."""
    full = (summary or {}).get("full")
    if not full or full.get("age_seconds") is None or full["age_seconds"] >= full_every_days * 86400:
        return "full"
    return "diff"


# --- restore points ------------------------------------------------------------------------


def restore_point_name(action, when=None):
    """``datasafe-<action>-<UTC time>``: what recover.yml is given as a named target."""
    when = time.gmtime(when if when is not None else time.time())
    name = "datasafe-%s-%s" % (re.sub(r"[^A-Za-z0-9_-]", "-", action)[:30], time.strftime("%Y%m%dT%H%M%SZ", when))
    return name


def create_restore_point(run, cont, db, user, name):
    """``pg_create_restore_point(name)`` when WAL is archived; returns {'name', 'lsn'} or
    {'name': None, 'skipped': why} when the server does not archive (nothing to recover to)."""
    if not _RESTORE_POINT.match(name or ""):
        raise ContinuousError(
            "restore point name %r: use 1-60 letters, digits, '.', ':', '_' or '-' (e.g. before-update-42)" % name
        )
    mode = container.query(run, cont, db, user, "SELECT current_setting('archive_mode');", stage="archive_mode")
    if mode[0][0] not in ARCHIVE_MODES_ON:
        return {"name": None, "skipped": "archive_mode is %s: no WAL archive to recover from" % mode[0][0]}
    rows = container.query(
        run,
        cont,
        db,
        user,
        "SELECT pg_create_restore_point(%s)::text, now()::text;" % container._sql_literal(name),
        stage="create restore point",
    )
    return {"name": name, "lsn": rows[0][0], "time": rows[0][1]}


# --- recovery into a throwaway server -------------------------------------------------------


def parse_target_time(value, now=None):
    """A recovery target time as pgBackRest gets it (ISO, with its zone); ContinuousError for a
    time without a zone (ambiguous at 3 a.m.) or in the future (nothing to recover to)."""
    try:
        when = datetime.datetime.fromisoformat(str(value).strip())
    except ValueError:
        raise ContinuousError(
            "target time %r is not a time: write it as 2026-12-01 15:59:00+00 (with the zone)" % (value,)
        ) from None
    if when.tzinfo is None:
        raise ContinuousError(
            "target time %r has no zone: add it (2026-12-01 15:59:00+00 for UTC), or the server's zone decides" % value
        )
    now = now or datetime.datetime.now(datetime.timezone.utc)
    if when > now:
        raise ContinuousError(
            "target time %s is in the future (now %s): give a past moment" % (when.isoformat(), now.isoformat())
        )
    return when.isoformat(sep=" ")


def target_options(kind, value=None, inclusive=True):
    """pgbackrest restore options for a target; ContinuousError for an unknown or empty one."""
    if kind not in TARGET_KINDS:
        raise ContinuousError("target kind %r: use one of %s" % (kind, ", ".join(TARGET_KINDS)))
    if kind == "latest":
        return ["--type=default"]
    if value in (None, ""):
        raise ContinuousError("target kind %s needs a value (datasafe_recover_target)" % kind)
    value = str(value)
    if kind == "time":
        value = parse_target_time(value)
    if kind == "xid" and not value.isdigit():
        raise ContinuousError("transaction id %r is not a number" % value)
    if kind == "name" and not _RESTORE_POINT.match(value):
        raise ContinuousError("restore point name %r is not one datasafe creates (letters, digits, .:_-)" % value)
    opts = ["--type=%s" % kind, "--target=%s" % value, "--target-action=promote"]
    if kind in ("time", "xid", "lsn") and not inclusive:
        opts.append("--target-exclusive")
    return opts


def recover(
    run,
    image,
    stanza,
    repo_dir,
    conf_dir,
    name,
    port,
    user,
    db,
    tables,
    kind="latest",
    value=None,
    inclusive=True,
    labels=(),
    pgdata="/var/lib/postgresql/data",
    timeout=900,
    sleep=time.sleep,
    clock=time.monotonic,
    repo=1,
    repo_env=None,
):
    """Restore the repository into a NEW volume ``name`` and start a throwaway server on it
    (container ``name``, 127.0.0.1:``port``, archiving off), replay to the target and promote.

    ``repo`` 1 reads the local repository (mounted read-only); 2 reads only the off-site one on
    S3 (the server-loss path: the local directory is not even mounted, the containers get the
    network to reach S3). ``repo_env`` holds the PGBACKREST_REPO2_* secrets the S3 repository
    needs; they reach the containers by name through the environment, never through argv.

    The live stack is never touched: only the repository is read. Returns
    {'container', 'volume', 'port', 'counts', 'recovered_to'}; on failure the throwaway server
    and its volume are kept for inspection and ContinuousError names them.
    """
    opts = target_options(kind, value, inclusive) + ["--repo=%d" % int(repo)]
    repo_env = dict(repo_env or {})
    bad = sorted(k for k in repo_env if not k.startswith("PGBACKREST_"))
    if bad:
        raise ContinuousError("repo_env may hold only PGBACKREST_* variables, not %s" % ", ".join(bad))
    env_args = []
    for key in sorted(repo_env):
        env_args += ["-e", key]
    network = "none" if int(repo) == 1 else "host"
    label_args = []
    for label in labels:
        label_args += ["--label", label]
    rc, out, err = run(["docker", "volume", "create"] + label_args + [name])
    if rc != 0:
        raise ContinuousError("cannot create volume %s: %s" % (name, err.strip()))
    mounts = ["--mount", "type=volume,source=%s,target=%s" % (name, pgdata)]
    if int(repo) == 1:
        mounts += ["--mount", "type=bind,source=%s,target=%s,readonly" % (os.path.expanduser(repo_dir), REPO_MOUNT)]
    mounts += ["--mount", "type=bind,source=%s,target=%s,readonly" % (os.path.expanduser(conf_dir), CONF_MOUNT)]
    # The restore itself, as postgres, into the empty volume (chowned first: a new volume is root's).
    restore_argv = (
        ["docker", "run", "--rm", "--network", network]
        + label_args
        + env_args
        + mounts
        + ["--entrypoint", "bash", image, "-c", _RESTORE_SCRIPT, "restore", stanza, pgdata]
        + opts
    )
    rc, out, err = run(restore_argv, env=repo_env or None)
    if rc != 0:
        raise ContinuousError(
            "pgbackrest restore into volume %s failed (exit %s): %s; the volume is kept for inspection"
            % (name, rc, (err or out).strip()[-1500:])
        )
    server_argv = (
        ["docker", "run", "-d", "--name", name, "--network", "host", "--shm-size", container.THROWAWAY_SHM_SIZE]
        + label_args
        + env_args
        + mounts
        + ["-e", "PGPORT=%d" % int(port), image]
        + [
            "postgres",
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "port=%d" % int(port),
            "-c",
            "archive_mode=off",
            "-c",
            "archive_command=",
        ]
    )
    rc, out, err = run(server_argv, env=repo_env or None)
    if rc != 0:
        raise ContinuousError("cannot start the recovered server %s: %s" % (name, err.strip()))
    deadline = clock() + timeout
    state = None
    while clock() < deadline:
        rc, out, _ = run(
            container.docker_exec(
                name,
                ["psql", "-X", "-At", "-U", user, "-d", db, "-c", "SELECT pg_is_in_recovery()"],
            )
        )
        state = out.strip()
        if rc == 0 and state == "f":
            break
        rc2, status, _ = run(["docker", "inspect", "--format", "{{.State.Status}}", name])
        if status.strip() not in ("running", "created"):
            raise ContinuousError(
                "the recovered server %s stopped (%s) before it was promoted; its log:\n%s"
                % (name, status.strip(), _log_tail(run, name))
            )
        sleep(0.5)
    else:
        raise ContinuousError(
            "the recovered server %s did not finish recovery and promote within %ss (last answer %r); its log:\n%s"
            % (name, timeout, state, _log_tail(run, name))
        )
    gap = None
    if kind == "latest":
        gap = archive_gap(run, name, db, user, stanza, repo=repo)
        if gap:
            raise ContinuousError(
                "recovery to latest stopped early: %s. The recovered server %s (port %s) is kept for "
                "inspection; it is missing everything after that point. Check `pgbackrest verify` and "
                "recover to a target before the gap, or find the missing segment" % (gap, name, port)
            )
    counts = container.count_rows(run, name, db, user, tables) if tables else {}
    rows = container.query(
        run, name, db, user, "SELECT now()::text, pg_current_wal_lsn()::text;", stage="recovered server"
    )
    return {
        "container": name,
        "volume": name,
        "port": int(port),
        "counts": counts,
        "promoted_at": rows[0][0],
        "target": {"kind": kind, "value": value, "inclusive": inclusive},
        "repo": int(repo),
    }


HEARTBEAT_SQL = """CREATE SCHEMA IF NOT EXISTS datasafe;
CREATE TABLE IF NOT EXISTS datasafe.heartbeat (
  at timestamptz PRIMARY KEY DEFAULT clock_timestamp(),
  source text NOT NULL
);
COMMENT ON TABLE datasafe.heartbeat IS 'datasafe restore drill: one row per drill, proves recovery reaches it';
INSERT INTO datasafe.heartbeat (source) VALUES ('restore drill') RETURNING at::text, extract(epoch FROM at)::text;
"""


def drill(
    run,
    live,
    db,
    user,
    stanza,
    image,
    repo_dir,
    conf_dir,
    name,
    port,
    rpo_seconds=ARCHIVE_TIMEOUT + 60,
    pgdata="/var/lib/postgresql/data",
    labels=(),
    timeout=1800,
    sleep=time.sleep,
    clock=time.monotonic,
    repo=1,
    repo_env=None,
):
    """The restore drill's continuous part: a heartbeat row is committed in the live database;
    archiving must carry it to the repository within ``rpo_seconds`` on its own (no forced WAL
    switch: the drill measures the real recovery point); the repository is recovered to latest
    into a throwaway server, which must hold that heartbeat; the throwaway server is removed.

    Returns {'heartbeat', 'archived_after_seconds', 'recovered_heartbeat', 'recovered_in_seconds'};
    ContinuousError when the heartbeat is not archived within the RPO or not recovered.
    """
    at_text, at_epoch = container.query(run, live, db, user, HEARTBEAT_SQL, stage="write the heartbeat")[0]
    at_epoch = float(at_epoch)
    start = clock()
    while True:
        row = container.query(
            run,
            live,
            db,
            user,
            "SELECT coalesce(extract(epoch FROM last_archived_time), 0)::text FROM pg_stat_archiver;",
            stage="read pg_stat_archiver",
        )
        if float(row[0][0]) > at_epoch:
            archived_after = round(float(row[0][0]) - at_epoch, 1)
            break
        if clock() - start > rpo_seconds:
            raise ContinuousError(
                "the heartbeat committed at %s was not archived within %ss (the RPO): archiving is stalled "
                "or archive_timeout is longer than the RPO; run continuous_status" % (at_text, rpo_seconds)
            )
        sleep(1)
    began = clock()
    try:
        recover(
            run,
            image,
            stanza,
            repo_dir,
            conf_dir,
            name,
            port,
            user,
            db,
            [],
            pgdata=pgdata,
            labels=labels,
            timeout=timeout,
            sleep=sleep,
            clock=clock,
            repo=repo,
            repo_env=repo_env,
        )
        got = container.query(
            run,
            name,
            db,
            user,
            "SELECT coalesce(max(at)::text, ''), coalesce(max(extract(epoch FROM at)), 0)::text "
            "FROM datasafe.heartbeat;",
            stage="read the recovered heartbeat",
        )[0]
    finally:
        run(["docker", "rm", "--force", name])
        run(["docker", "volume", "rm", name])
    if abs(float(got[1]) - at_epoch) > 0.001:
        raise ContinuousError(
            "the recovered server's newest heartbeat is %s, not the one committed at %s before the recovery: "
            "recovery to latest does not reach the archived WAL" % (got[0] or "missing", at_text)
        )
    return {
        "repo": int(repo),
        "heartbeat": at_text,
        "archived_after_seconds": archived_after,
        "recovered_heartbeat": got[0],
        "recovered_in_seconds": round(clock() - began, 1),
    }


def lsn_segment(lsn, timeline, segment_size=16 * 1024 * 1024):
    """The WAL file name holding ``lsn`` ('0/5008460') on ``timeline``."""
    high, low = (int(part, 16) for part in lsn.split("/"))
    segno = ((high << 32) | low) // segment_size
    per_id = 0x100000000 // segment_size
    return "%08X%08X%08X" % (timeline, segno // per_id, segno % per_id)


def archive_gap(run, cont, db, user, stanza, repo=None):
    """After a recovery to latest: None when replay reached the newest archived segment, else a
    sentence saying where it stopped and what the archive holds (a missing or unreadable segment
    in between makes PostgreSQL end recovery there and promote, quietly, without this check)."""
    rows = container.query(
        run,
        cont,
        db,
        user,
        "SELECT timeline_id::text FROM pg_control_checkpoint();",
        stage="read the recovered timeline",
    )
    timeline = int(rows[0][0])
    history = container.query(
        run,
        cont,
        db,
        user,
        "SELECT pg_read_file('pg_wal/%08X.history');" % timeline,
        stage="read the timeline history",
    )
    last = [line.split() for line in history[0][0].splitlines() if line.strip() and not line.startswith("#")][-1]
    stopped = lsn_segment(last[1], int(last[0]))
    newest = None
    for archive in info(run, cont, stanza, repo=repo).get("archive") or []:
        if archive.get("max") and (newest is None or archive["max"][8:] > newest[8:]):
            newest = archive["max"]
    if newest and stopped[8:] < newest[8:]:
        return "replay ended in WAL segment %s but the repository holds segments up to %s" % (stopped, newest)
    return None


# Runs in the throwaway restore container: a fresh volume is root's; pgBackRest runs as postgres.
_RESTORE_SCRIPT = (
    "set -o errexit -o nounset -o pipefail; stanza=$1 pgdata=$2; shift 2; "
    'chown postgres:postgres "$pgdata"; chmod 0700 "$pgdata"; '
    "exec setpriv --reuid=postgres --regid=postgres --init-groups "
    'pgbackrest --stanza="$stanza" --pg1-path="$pgdata" --log-level-file=off --archive-mode=off restore "$@"'
)


def _log_tail(run, name, lines=30):
    rc, out, err = run(["docker", "logs", "--tail", str(lines), name])
    return ((out or "") + (err or "")).strip()


def plan(run, p):
    """What the continuous_plan module does with its options ``p``: the stanza, the derived image,
    the override and pgBackRest configuration datasafe would write (and whether they differ from
    what is there), and whether archiving is on now. Only reads. Returns the module's result;
    raises ContinuousError, ValueError or OSError."""
    env = {k: str(v) for k, v in p["compose_env"].items()}

    stanza = stanza_name(p["project"])
    base = compose.compose_argv(p["project"], p["compose_files"], p["compose_dir"], with_override=False)
    image, command, svc_env = service_config(run, base, p["db_service"], env)
    if not image:
        raise ContinuousError(
            "service %s names no image; continuous recovery derives its image FROM it: give it an image:"
            % p["db_service"]
        )
    rc, out, err = run(["docker", "image", "inspect", "--format", "{{.Id}}", image])
    if rc != 0:
        raise ContinuousError("image %s is not on this host; pull or build it first" % image)
    with open(os.path.join(p["dockerfile_dir"], "Dockerfile"), encoding="utf-8") as handle:
        dockerfile = handle.read()
    derived = image_tag(p["project"], out.strip(), dockerfile)
    present = run(["docker", "image", "inspect", derived])[0] == 0
    pgdata = image_pgdata(run, image)
    uid, gid = image_postgres_ids(run, image)
    settings = server_settings(stanza, p["archive_timeout"])
    override = render_override(p["db_service"], derived, with_settings(command, settings), p["repo_dir"], p["conf_dir"])
    conf = render_conf(stanza, svc_env.get("PGPORT") or 5432, p["user"], p["retention_full"], p["repo2"], pgdata=pgdata)
    override_path = compose.override_path(p["project"])
    archiving = None
    try:
        archiving = archiver(run, p["container"], p["database"], p["user"])
    except container.ContainerError:
        pass
    return dict(
        changed=False,
        stanza=stanza,
        base_image=image,
        image=derived,
        image_present=present,
        pgdata=pgdata,
        owner=dict(uid=uid, gid=gid),
        override_path=override_path,
        override_content=override,
        override_current=files.read_text(override_path),
        override_changed=files.read_text(override_path) != override,
        conf_path=os.path.join(p["conf_dir"], CONF_NAME),
        conf_content=conf,
        conf_changed=files.read_text(os.path.join(p["conf_dir"], CONF_NAME)) != conf,
        repo_dir=p["repo_dir"],
        conf_dir=p["conf_dir"],
        archiving=archiving,
        archiving_on=bool(
            archiving and archives(archiving) and archiving["archive_command"] == archive_command(stanza)
        ),
    )
