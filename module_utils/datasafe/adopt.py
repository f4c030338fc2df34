"""Adopt a running deployment: read its facts, write its host_vars, retire its old backup cron line.

What an operator would otherwise copy by hand from ``docker inspect`` is read from the running
PostgreSQL container of a compose project: the project name as compose recorded it in the
container's labels (``docker-compose`` v1 and ``docker compose`` v2 derive different names from
the same directory, so the label is the only truth: a wrong name means a new, empty volume),
the database service, container, the named volume's key, database and user (from the
container's environment; the password is never read), and the tables, with a guess of which
are critical for the operator to confirm.

Writing host_vars never overwrites a file the operator wrote: a file adopt wrote carries the
sha256 of its body in its first line, and only such a file, unedited, is replaced.

The old ``~/backup-database.sh`` cron line is kept, commented; the script's own pruning (``find
... -delete``, ``rm``) is neutralised so running it by hand can never delete datasafe's backups;
its backups are listed and never deleted. Engines return results or raise :class:`AdoptError`.
"""

import difflib
import hashlib
import json
import os
import re
import shlex
import tempfile

from ansible.module_utils.datasafe import container as pgcontainer
from ansible.module_utils.datasafe import lock
from ansible.module_utils.datasafe.stack import PGDATA, DockerError, _docker


class AdoptError(Exception):
    pass


# -- the compose project name: v1 and v2 derive it differently ---------------------------------------
def v1_project_name(directory):
    """docker-compose v1 (1.21+): lower case, everything but letters, digits, '-' and '_' removed."""
    return re.sub(r"[^-_a-z0-9]", "", os.path.basename(directory.rstrip("/")).lower())


def v2_project_name(directory):
    """docker compose v2: lower case, other characters removed, starting with a letter or digit."""
    name = re.sub(r"[^-_a-z0-9]", "", os.path.basename(directory.rstrip("/")).lower())
    return name.lstrip("-_")


def project_notes(labels):
    """What the operator should know about the project name compose recorded."""
    project = labels.get("com.docker.compose.project", "")
    version = labels.get("com.docker.compose.version", "")
    working_dir = labels.get("com.docker.compose.project.working_dir", "")
    notes = []
    v1 = version.startswith("1.")
    if v1:
        notes.append(
            "started by docker-compose v1 (%s): datasafe drives it with docker compose v2, named by "
            "datasafe_compose_project" % version
        )
    if working_dir:
        derived = v2_project_name(working_dir)
        if derived != project:
            notes.append(
                "the project is %r (from the containers' labels), not %r, the name docker compose v2 derives from %s:"
                " datasafe_compose_project pins it, so compose finds these containers and the volume %s_<volume>,"
                " never a new empty one" % (project, derived, working_dir, project)
            )
    return notes


# -- reading the deployment --------------------------------------------------------------------------
def _env(config):
    out = {}
    for item in config.get("Env") or []:
        name, _, value = item.partition("=")
        out[name] = value
    return out


def _is_postgres(info):
    config = info.get("Config") or {}
    data = _env(config).get("PGDATA", PGDATA)
    if any(m.get("Destination") in (data, PGDATA) for m in info.get("Mounts") or []):
        return True
    return "postgres" in (config.get("Image") or "").lower()


def _health_url(infos, db_name):
    """A URL from another service's healthcheck, or its published port + /health (a guess the
    validation confirms)."""
    for info in infos:
        if info["Name"].lstrip("/") == db_name:
            continue
        test = " ".join((info.get("Config") or {}).get("Healthcheck", {}).get("Test") or [])
        found = re.search(r"https?://[^\s'\"]+", test)
        if found:
            return found.group(0), "from the healthcheck of %s" % info["Name"].lstrip("/")
    for info in infos:
        if info["Name"].lstrip("/") == db_name:
            continue
        for bindings in ((info.get("HostConfig") or {}).get("PortBindings") or {}).values():
            for binding in bindings or []:
                if binding.get("HostPort"):
                    host = binding.get("HostIp") or "127.0.0.1"
                    host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104  (a bind-all reads as loopback)
                    return (
                        "http://%s:%s/health" % (host, binding["HostPort"]),
                        "guessed from the port %s publishes" % info["Name"].lstrip("/"),
                    )
    return "", ""


def _labels(info):
    return (info.get("Config") or {}).get("Labels") or {}


def _inspect_running(run):
    ids = _docker(
        run, "ps", "--no-trunc", "--filter", "label=com.docker.compose.project", "--format", "{{.ID}}"
    ).split()
    return json.loads(_docker(run, "inspect", *ids)) if ids else []


def find_database(run, container=None, project=None):
    """The running PostgreSQL container of a compose project (``docker inspect`` of it), and every
    running container of that project."""
    infos = _inspect_running(run)
    candidates = []
    for info in infos:
        labels = (info.get("Config") or {}).get("Labels") or {}
        name = info["Name"].lstrip("/")
        if container and name != container:
            continue
        if project and labels.get("com.docker.compose.project") != project:
            continue
        if container or _is_postgres(info):
            candidates.append(info)
    if not candidates:
        raise AdoptError(
            "no running PostgreSQL container of a compose project was found%s: start the stack "
            "(docker compose -f docker-compose.prod.yml up -d), or name it with datasafe_adopt_container"
            % ((" named %s" % container) if container else (" in project %s" % project) if project else "")
        )
    if len(candidates) > 1:
        found = sorted(
            "%s (project %s)" % (i["Name"].lstrip("/"), _labels(i).get("com.docker.compose.project"))
            for i in candidates
        )
        raise AdoptError(
            "%d PostgreSQL containers run (%s): name the one to adopt with datasafe_adopt_container, or its compose "
            "project with datasafe_adopt_project; nothing was changed" % (len(candidates), ", ".join(found))
        )
    db = candidates[0]
    project_name = ((db.get("Config") or {}).get("Labels") or {}).get("com.docker.compose.project")
    siblings = [
        i
        for i in infos
        if ((i.get("Config") or {}).get("Labels") or {}).get("com.docker.compose.project") == project_name
    ]
    return db, siblings


def deployment_facts(db, siblings, volume_labels):
    """The datasafe_* variables of the deployment, from the database container's ``docker inspect``,
    the project's running containers and the data volume's labels. Raises when the data is not
    on a named volume (adopting it would protect nothing)."""
    config = db.get("Config") or {}
    labels = config.get("Labels") or {}
    env = _env(config)
    name = db["Name"].lstrip("/")
    project = labels.get("com.docker.compose.project", "")
    data = env.get("PGDATA", PGDATA)
    mount = next((m for m in db.get("Mounts") or [] if m.get("Destination") in (data, PGDATA)), None)
    if mount is None or mount.get("Type") != "volume":
        raise AdoptError(
            "%s keeps its data %s, not on a named volume: every row would be lost at the next down. Mount a "
            "named volume (volumes: - postgres_data:/var/lib/postgresql/data) before adopting it; nothing was changed"
            % (name, ("in the bind mount %s" % mount.get("Source")) if mount else "inside the container")
        )
    volume_name = mount["Name"]
    key = volume_labels.get("com.docker.compose.volume")
    if not key:
        if re.fullmatch(r"[0-9a-f]{64}", volume_name):
            raise AdoptError(
                "%s keeps its data on an anonymous volume (%s...): the compose file does not mount a named volume "
                "there, so the next down -v or rm loses it. Mount a named volume first; nothing was changed"
                % (name, volume_name[:12])
            )
        key = volume_name[len(project) + 1 :] if volume_name.startswith(project + "_") else volume_name
    working_dir = labels.get("com.docker.compose.project.working_dir", "")
    files = [f for f in labels.get("com.docker.compose.project.config_files", "").split(",") if f]
    if working_dir:
        files = [os.path.relpath(f, working_dir) if os.path.isabs(f) else f for f in files]
    user = env.get("POSTGRES_USER") or "postgres"
    health_url, health_source = _health_url(siblings, name)
    return {
        "facts": {
            "datasafe_compose_dir": working_dir,
            "datasafe_compose_files": files or ["docker-compose.prod.yml"],
            "datasafe_compose_project": project,
            "datasafe_db_service": labels.get("com.docker.compose.service", ""),
            "datasafe_db_container": name,
            "datasafe_db_volume": key,
            "datasafe_db_name": env.get("POSTGRES_DB") or user,
            "datasafe_db_user": user,
            "datasafe_health_url": health_url,
        },
        "volume": volume_name,
        "compose_version": labels.get("com.docker.compose.version", ""),
        "health_source": health_source,
        "services": sorted(
            ((i.get("Config") or {}).get("Labels") or {}).get("com.docker.compose.service", "") for i in siblings
        ),
        "notes": project_notes(labels),
    }


def read(run, container=None, project=None):
    db, siblings = find_database(run, container, project)
    volume = next(
        (m["Name"] for m in db.get("Mounts") or [] if m.get("Type") == "volume" and m.get("Destination") == PGDATA),
        None,
    )
    volume_labels = {}
    if volume:
        try:
            volume_labels = json.loads(_docker(run, "volume", "inspect", volume))[0].get("Labels") or {}
        except (DockerError, IndexError, ValueError):
            volume_labels = {}
    found = deployment_facts(db, siblings, volume_labels)
    f = found["facts"]
    rows = pgcontainer.query(
        run, f["datasafe_db_container"], f["datasafe_db_name"], f["datasafe_db_user"], TABLES_SQL, "tables"
    )
    found["tables"] = guess_critical(rows)
    return found


# -- which tables are critical: a guess for the operator to confirm ----------------------------------
TABLES_SQL = """
SELECT c.relname,
       greatest(c.reltuples, 0)::bigint,
       (SELECT count(*) FROM pg_constraint f WHERE f.confrelid = c.oid AND f.contype = 'f')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'datasafe') AND n.nspname NOT LIKE 'pg\\_%'
  AND pg_table_is_visible(c.oid)
ORDER BY 1;
"""

# Tables an application refills, prunes or rebuilds itself: losing rows there is not losing data.
VOLATILE = re.compile(
    r"(^|_)(sessions?|migrations?|schema_migrations|knex_migrations(_lock)?|locks?|cache|caches|tmp|temp|"
    r"jobs?|queue|queues|logs?|tokens?|password_resets?|failed_jobs)$"
)


def guess_critical(rows):
    """[{name, rows_estimate, referenced_by, critical, why}] for ``[name, reltuples, fk_count]`` rows."""
    out = []
    for name, estimate, referenced in rows:
        if name.startswith("datasafe_"):
            critical, why = False, "datasafe's own"
        elif VOLATILE.search(name):
            critical, why = False, "looks refilled or pruned by the application (sessions, migrations, logs, queues)"
        else:
            critical, why = (
                True,
                "application data" + (" referenced by %s foreign key(s)" % referenced if int(referenced) else ""),
            )
        out.append(
            {
                "name": name,
                "rows_estimate": int(estimate),
                "referenced_by": int(referenced),
                "critical": critical,
                "why": why,
            }
        )
    return out


# -- host_vars: written once, never over the operator's own ------------------------------------------
HEADER = re.compile(r"^# datasafe adopt wrote this file \(sha256 of the lines below: ([0-9a-f]{64})\)")
ORDER = (
    "datasafe_compose_dir",
    "datasafe_compose_files",
    "datasafe_compose_project",
    "datasafe_db_service",
    "datasafe_db_container",
    "datasafe_db_volume",
    "datasafe_db_name",
    "datasafe_db_user",
    "datasafe_critical_tables",
    "datasafe_health_url",
)


def render_host_vars(variables, comments=()):
    """YAML text (JSON-quoted scalars, which YAML reads as they are) with adopt's header."""
    lines = ["---"]
    lines += ["# %s" % c for c in comments]
    for name in ORDER + tuple(sorted(k for k in variables if k not in ORDER)):
        if name not in variables:
            continue
        value = variables[name]
        if isinstance(value, list):
            lines.append("%s:" % name)
            lines += ["  - %s" % json.dumps(v) for v in value]
        else:
            lines.append("%s: %s" % (name, json.dumps(value)))
    body = "\n".join(lines) + "\n"
    head = (
        "# datasafe adopt wrote this file (sha256 of the lines below: %s).\n"
        "# Edit it freely: once edited, adopt never overwrites it (it refuses and shows the difference).\n"
        % hashlib.sha256(body.encode()).hexdigest()
    )
    return head + body


def _body(text):
    return text.split("\n", 2)[2] if text.count("\n") >= 2 else ""


def written_by_adopt(text):
    """True when ``text`` is a file adopt wrote and nobody edited since."""
    found = HEADER.match(text)
    return bool(found) and hashlib.sha256(_body(text).encode()).hexdigest() == found.group(1)


def plan_host_vars(path, new_text):
    """{action: create|unchanged|replace|refuse, diff}; refuse when the file is the operator's."""
    try:
        with open(path, encoding="utf-8") as handle:
            old = handle.read()
    except FileNotFoundError:
        return {"action": "create", "diff": "", "old": ""}
    diff = "".join(
        difflib.unified_diff(old.splitlines(True), new_text.splitlines(True), path, path + " (adopt would write)")
    )
    if _body(old) == _body(new_text) and written_by_adopt(old):
        return {"action": "unchanged", "diff": "", "old": old}
    if written_by_adopt(old):
        return {"action": "replace", "diff": diff, "old": old}
    return {"action": "refuse", "diff": diff, "old": old}


def write_host_vars(path, text):
    """Write ``text`` atomically (a temporary file in the same directory, renamed), mode 0600."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".adopt-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class HostVarsRefused(AdoptError):
    """The host_vars file is the operator's (or adopt's, edited): ``result`` is what the module returns."""

    def __init__(self, message, result):
        super().__init__(message)
        self.result = result


def host_vars_task(p, check_mode=False, diff=False):
    """What the adopt_host_vars module does with its options ``p``: render the variables, plan
    against the file there and write it (not in ``check_mode``) when it is absent or adopt's own,
    unedited. Returns the module's result (with ``diff`` a before/after for Ansible's diff);
    raises :class:`HostVarsRefused` rather than overwrite any other file."""
    text = render_host_vars(p["variables"], p["comments"])
    plan = plan_host_vars(p["path"], text)
    result = dict(action=plan["action"], content=text, changed=plan["action"] in ("create", "replace"))
    if diff and result["changed"]:
        result["diff"] = dict(before_header=p["path"], after_header=p["path"], before=plan["old"], after=text)
    if plan["action"] == "refuse":
        raise HostVarsRefused(
            "%s exists and was not written by adopt (or was edited since): it is never overwritten. "
            "Compare it with what adopt read (below), merge by hand, or move it away and run adopt again. "
            "Nothing was changed.\n%s" % (p["path"], plan["diff"]),
            dict(result, changed=False),
        )
    if result["changed"] and not check_mode:
        write_host_vars(p["path"], text)
    return result


# -- the old backup: its cron line, its pruning, its files -------------------------------------------
CRON_MARK = "# datasafe adopt: replaced by datasafe's nightly backup (kept for reference): "
PRUNE_MARK = ": # datasafe adopt: pruning disabled, datasafe's retention prunes only backups it verified: "
PRUNING = re.compile(r"(\bfind\b.*(-delete\b|-exec\s+rm\b))|(^\s*rm\s)|(\bxargs\b.*\brm\b)")


def retire_cron_lines(text, pattern):
    """(new crontab text, [retired lines]): active lines matching ``pattern`` kept, commented."""
    regex = re.compile(pattern)
    out, retired = [], []
    for line in text.splitlines():
        stripped = line.strip()
        active = stripped and not stripped.startswith("#") and not re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", stripped)
        if active and regex.search(line) and "datasafe" not in line:
            out.append(CRON_MARK + line)
            retired.append(line)
        else:
            out.append(line)
    return ("\n".join(out) + "\n") if out else "", retired


def script_of(line, pattern, home):
    """The script a cron line runs (the first word matching ``pattern``), ~ and $HOME expanded."""
    try:
        words = shlex.split(line)
    except ValueError:
        words = line.split()
    regex = re.compile(pattern)
    for word in words:
        if regex.search(word):
            word = re.sub(r"^(~|\$HOME|\$\{HOME\})(?=/)", home, word)
            return word if os.path.isabs(word) else os.path.join(home, word)
    return None


def disable_pruning(text):
    """(new script text, [disabled lines], [lines left for the operator]). A pruning line becomes
    ``: # ... <line>`` (a no-op, so an if-block around it stays valid shell); a pruning command
    continued over several lines is not edited, only reported (all its lines)."""
    out, disabled, manual = [], [], []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        group = [lines[i]]  # one logical command: a line and its backslash continuations
        while group[-1].rstrip().endswith("\\") and i + len(group) < len(lines):
            group.append(lines[i + len(group)])
        i += len(group)
        joined = " ".join(line.rstrip().rstrip("\\") for line in group)
        stripped = joined.strip()
        if not stripped or stripped.startswith("#") or stripped.startswith(":") or not PRUNING.search(joined):
            out.extend(group)
        elif len(group) > 1:
            out.extend(group)
            manual.extend(group)
        else:
            line = group[0]
            out.append(line[: len(line) - len(line.lstrip())] + PRUNE_MARK + line.strip())
            disabled.append(line)
    return "\n".join(out) + ("\n" if text.endswith("\n") else ""), disabled, manual


def old_backups(directory, limit=200):
    """[{name, size, mtime}] of the files in ``directory`` that are not datasafe's (no manifest)."""
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return []
    out = []
    for name in names:
        path = os.path.join(directory, name)
        if not os.path.isfile(path) or name.endswith(".json") or os.path.exists(path + ".json"):
            continue
        st = os.stat(path)
        out.append({"name": name, "size": st.st_size, "mtime": int(st.st_mtime)})
    return out[-limit:]


def crontab_argv(user=None, *args):
    return ["crontab"] + (["-u", user] if user else []) + list(args)


def read_crontab(run, user=None):
    rc, out, err = run(crontab_argv(user, "-l"))
    if rc != 0:
        if "no crontab" in (err or "").lower():
            return ""
        raise AdoptError("crontab -l failed (exit %s): %s" % (rc, (err or "").strip()))
    return out


def write_crontab(run, text, user=None):
    fd, tmp = tempfile.mkstemp(prefix="datasafe-adopt-crontab-")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        rc, _, err = run(crontab_argv(user, tmp))
        if rc != 0:
            raise AdoptError("crontab failed (exit %s): %s; the crontab is unchanged" % (rc, (err or "").strip()))
    finally:
        os.unlink(tmp)


def retire_old_backup(run, pattern, home, backup_dir, user=None, check_mode=False):
    """Comment the old backup's cron lines, neutralise its script's pruning (the original kept
    beside it), list its backups. Returns what was (or, in check mode, would be) done. The crontab
    is read and written under the crontab lock (lock.crontab_edit), as every datasafe edit of it."""
    with lock.crontab_edit("adopt retires the old backup's cron lines", user, check_mode=check_mode):
        return _retire_old_backup(run, pattern, home, backup_dir, user, check_mode)


def _retire_old_backup(run, pattern, home, backup_dir, user, check_mode):
    crontab = read_crontab(run, user)
    new_crontab, retired = retire_cron_lines(crontab, pattern)
    scripts = []
    for line in retired + [line[len(CRON_MARK) :] for line in crontab.splitlines() if line.startswith(CRON_MARK)]:
        path = script_of(line, pattern, home)
        if path and path not in [s["path"] for s in scripts]:
            scripts.append({"path": path})
    changed = bool(retired)
    for script in scripts:
        try:
            with open(script["path"], encoding="utf-8") as handle:
                text = handle.read()
        except (OSError, UnicodeDecodeError) as exc:
            script.update(found=False, error=str(exc), disabled=[], manual=[])
            continue
        new_text, disabled, manual = disable_pruning(text)
        script.update(found=True, disabled=disabled, manual=manual, kept=script["path"] + ".before-datasafe-adopt")
        if disabled:
            changed = True
            if not check_mode:
                if not os.path.exists(script["kept"]):
                    with open(script["kept"], "w", encoding="utf-8") as handle:
                        handle.write(text)
                    os.chmod(script["kept"], os.stat(script["path"]).st_mode & 0o777)
                mode = os.stat(script["path"]).st_mode & 0o7777
                fd, tmp = tempfile.mkstemp(dir=os.path.dirname(script["path"]), prefix=".adopt-")
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(new_text)
                os.chmod(tmp, mode)
                os.replace(tmp, script["path"])
    if retired and not check_mode:
        write_crontab(run, new_crontab, user)
    return {
        "changed": changed,
        "retired": retired,
        "scripts": scripts,
        "old_backups": old_backups(re.sub(r"^~(?=/|$)", home, backup_dir)),
        "backup_dir": backup_dir,
    }
