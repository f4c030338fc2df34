"""What is true of a compose stack right now: its containers, and the database's volume.

Layer 1 of the protocol is the named volume ``postgres_data``. Compose names it
``<project>_postgres_data``; a changed project name silently creates a new, empty one, and
an image that declares ``VOLUME`` gives the database an anonymous volume when the compose
file forgets the mount. Both look healthy and both lose every row at the next ``down``, so
the database's mount is checked, not assumed.
"""

import json
import time

from ansible.module_utils.datasafe import ready

PGDATA = "/var/lib/postgresql/data"


class DockerError(Exception):
    pass


def _docker(run, *args):
    rc, out, err = run(["docker"] + list(args))
    if rc != 0:
        raise DockerError("docker %s failed (exit %s): %s" % (" ".join(args[:2]), rc, (err or "").strip()))
    return out


def project_containers(run, project):
    """Every container of the compose project, running or not, keyed by service."""
    out = _docker(
        run,
        "ps",
        "-a",
        "--no-trunc",
        "--filter",
        "label=com.docker.compose.project=%s" % project,
        "--format",
        "{{.ID}}",
    )
    ids = out.split()
    if not ids:
        return {}
    services = {}
    for info in json.loads(_docker(run, "inspect", *ids)):
        config = info.get("Config") or {}
        labels = config.get("Labels") or {}
        state = info.get("State", {})
        services[labels.get("com.docker.compose.service", info["Name"].lstrip("/"))] = {
            "container": info["Name"].lstrip("/"),
            "image": info.get("Config", {}).get("Image"),
            "image_id": info.get("Image"),
            "status": state.get("Status"),
            "running": bool(state.get("Running")),
            "started_at": state.get("StartedAt"),
            "health": (state.get("Health") or {}).get("Status"),
            "healthcheck": healthcheck_argv(config),
            "healthcheck_timeout": (config.get("Healthcheck") or {}).get("Timeout") or 0,
            "mounts": info.get("Mounts") or [],
        }
    return services


def healthcheck_argv(config):
    """The container's healthcheck command as Docker runs it (``CMD`` as given, ``CMD-SHELL``
    through the container's shell), or None when it has none."""
    test = (config.get("Healthcheck") or {}).get("Test") or []
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD":
        return list(test[1:]) or None
    if test[0] == "CMD-SHELL" and len(test) == 2:
        return list(config.get("Shell") or ["/bin/sh", "-c"]) + [test[1]]
    return None


def healthcheck_passes(run, svc, default_timeout=30, limit=None):
    """Run a container's own healthcheck now, the way Docker runs it (``docker exec``: the
    container's user, environment and directory), within its timeout (and ``limit`` seconds,
    at least 1); True when it exits 0.

    Docker runs the first check only one interval after the start (30 s unless the compose
    file says otherwise), so a service that is up can read ``starting`` for that long.
    """
    if not svc.get("running") or not svc.get("healthcheck"):
        return False
    seconds = (svc.get("healthcheck_timeout") or 0) / 1e9 or default_timeout
    if limit is not None:
        seconds = max(1, min(seconds, limit))
    argv = ["timeout", "--kill-after=2", "%gs" % seconds, "docker", "exec", svc["container"]]
    rc, _, _ = run(argv + svc["healthcheck"])
    return rc == 0


def wait_healthy(run, project, seconds, interval=0.2, recheck=1.0, clock=None, sleep=None):
    """The project's services, waited for (up to ``seconds``) while a healthcheck says ``starting``.

    Such a service's own healthcheck is run meanwhile, at most every ``recheck`` seconds; once
    it passed, the service counts as healthy (``health_checked_now``) even while Docker, which
    has not run its first check yet, still says ``starting``. Docker's ``unhealthy`` and a
    stopped container are never overridden. The wait itself is :func:`ready.wait_for`'s; when
    it runs out, the last listing is returned for the caller to judge.
    """
    clock, sleep = clock or time.monotonic, sleep or time.sleep
    deadline = clock() + seconds
    passed, last_run, listing = set(), {}, {}

    def probe():
        listing.clear()
        listing.update(project_containers(run, project))
        starting = []
        for name, svc in listing.items():
            svc["health_checked_now"] = False
            if svc["running"] and svc["health"] == "starting":
                # a pass holds for this run of the container only (a restart starts over)
                key = (svc["container"], svc["started_at"])
                due = key not in last_run or clock() - last_run[key] >= recheck
                if key not in passed and seconds > 0 and due:
                    last_run[key] = clock()
                    if healthcheck_passes(run, svc, limit=deadline - clock()):
                        passed.add(key)
                if key in passed:
                    svc.update(health="healthy", health_checked_now=True)
                else:
                    starting.append(name)
        return not starting, "still starting: %s" % ", ".join(starting)

    try:
        ready.wait_for(
            "the healthchecks of %s" % project, probe, run, timeout=seconds, interval=interval, clock=clock, sleep=sleep
        )
    except ready.NotReady:
        pass  # a service still starting is one of the caller's problems, not an error here
    return dict(listing)


def volume_identity(run, name):
    """(name, created_at, mountpoint, labels) of a volume, or None when it does not exist."""
    rc, out, _ = run(["docker", "volume", "inspect", name])
    if rc != 0:
        return None
    info = json.loads(out)[0]
    return {
        "name": info["Name"],
        "created_at": info.get("CreatedAt"),
        "mountpoint": info.get("Mountpoint"),
        "labels": info.get("Labels") or {},
    }


# One docker exec for the data directory's facts (each exec starts a process in the container):
# PG_VERSION (may be absent), then the directory's inode, then pg_controldata, each section
# after a marker line; the script exits 11 when stat fails and 12 when pg_controldata does.
_MARK = "--datasafe-data-facts--"
_FACTS_SCRIPT = (
    'cat "$1/PG_VERSION" 2>/dev/null; echo "%s"; stat -c %%i "$1" || exit 11; echo "%s"; '
    'pg_controldata "$1" || exit 12' % (_MARK, _MARK)
)


def data_facts(run, db_container, data_path=PGDATA):
    """What makes the data *this* data, and its major version, read through the running database
    container in one ``docker exec``. Returns ``(facts, problems)``: ``facts`` has ``pg_version``
    (the directory's PG_VERSION, None when it cannot be read) and, when they could be read,
    ``data_inode`` and ``system_identifier``; ``problems`` says why one could not.

    ``docker volume inspect``'s CreatedAt is no identity: the local driver reports the ctime
    of the volume's ``_data`` directory, which PostgreSQL changes on every start (it creates
    ``postmaster.pid`` there). The directory's inode changes only when the volume is
    recreated, and PostgreSQL's ``system_identifier`` only when the cluster is re-initialised.
    """
    rc, out, err = run(["docker", "exec", db_container, "sh", "-c", _FACTS_SCRIPT, "datasafe-data-facts", data_path])
    parts = (out or "").split(_MARK + "\n")
    facts = {"pg_version": (parts[0].strip() or None) if len(parts) > 1 else None}
    if rc == 11 or len(parts) < 3:
        why = (err or out or "").strip()[:300]
        return facts, ["cannot stat %s in %s: %s" % (data_path, db_container, why)]
    facts["data_inode"] = int(parts[1].strip())
    if rc == 0:
        for line in parts[2].splitlines():
            if line.startswith("Database system identifier:"):
                facts["system_identifier"] = line.split(":", 1)[1].strip()
    if "system_identifier" not in facts:
        why = (err or parts[2] or "").strip()[:300]
        return facts, ["cannot read the cluster's system identifier in %s: %s" % (db_container, why)]
    return facts, []


IDENTITY_KEYS = ("name", "mountpoint", "data_inode", "system_identifier")


def identity_changes(before, after):
    """The identity keys whose values differ between two volume descriptions."""
    return ["%s: %s -> %s" % (k, before.get(k), after.get(k)) for k in IDENTITY_KEYS if before.get(k) != after.get(k)]


def volume_problems(db_service, expected_volume, volume, data_path=PGDATA):
    """Reasons the database's data is not safely on the expected named volume (empty when it is)."""
    problems = []
    if volume is None:
        problems.append(
            "volume %s does not exist: the database's data is not where the protocol keeps it "
            "(was the compose project renamed?)" % expected_volume
        )
    if db_service is None:
        problems.append("the database service has no container")
        return problems
    mount = next((m for m in db_service["mounts"] if m.get("Destination") == data_path), None)
    if mount is None:
        problems.append(
            "container %s has nothing mounted at %s: its data lives in the container and dies with it"
            % (db_service["container"], data_path)
        )
    elif mount.get("Type") != "volume":
        problems.append(
            "container %s keeps %s on a %s mount (%s), not on the named volume %s"
            % (db_service["container"], data_path, mount.get("Type"), mount.get("Source"), expected_volume)
        )
    elif mount.get("Name") != expected_volume:
        kind = "an anonymous volume" if len(mount.get("Name", "")) == 64 else "volume %s" % mount.get("Name")
        problems.append(
            "container %s keeps %s on %s, not on %s" % (db_service["container"], data_path, kind, expected_volume)
        )
    return problems


def check(run, project, db_service, expected_volume, data_path=PGDATA, require_running=True, wait=0, compare_to=None):
    """The protocol's stack check (stack_info, and stack_start's ``verify``).

    Every service of ``project`` (waited for up to ``wait`` s while a healthcheck says
    ``starting``), running and healthy when ``require_running``; the database service's data on
    the named volume ``expected_volume``; its identity (with ``compare_to``: unchanged). Returns
    ``{"services", "volume", "expected_volume", "data_pg_version", "problems"}``; raises
    DockerError when Docker cannot be read.
    """
    services = wait_healthy(run, project, wait)
    volume = volume_identity(run, expected_volume)
    db = services.get(db_service)
    problems = volume_problems(db, expected_volume, volume, data_path)
    if require_running:
        if not services:
            problems.append("compose project %s has no containers: the stack is not up" % project)
        for name, svc in sorted(services.items()):
            if not svc["running"]:
                problems.append("service %s (%s) is %s" % (name, svc["container"], svc["status"]))
            elif svc["health"] not in (None, "healthy"):
                problems.append("service %s (%s) is %s" % (name, svc["container"], svc["health"]))
    data_pg_version = None
    if db and db["running"]:
        facts, trouble = data_facts(run, db["container"], data_path)
        data_pg_version = facts.pop("pg_version")
        if volume is not None:
            volume.update(facts)
            problems.extend(trouble)
    if compare_to is not None:
        changes = identity_changes(compare_to, volume or {})
        if changes:
            problems.append(
                "the database volume changed identity (%s): the database no longer runs on the data it ran on before"
                % "; ".join(changes)
            )
    return dict(
        services=services,
        volume=volume,
        expected_volume=expected_volume,
        data_pg_version=data_pg_version,
        problems=problems,
    )
