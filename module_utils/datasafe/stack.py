"""The compose stack: what is true of it right now (its containers, the database's volume), and
starting and stopping it.

Layer 1 of the protocol is the named volume ``postgres_data``. Compose names it
``<project>_postgres_data``; a changed project name silently creates a new, empty one, and
an image that declares ``VOLUME`` gives the database an anonymous volume when the compose
file forgets the mount. Both look healthy and both lose every row at the next ``down``, so
the database's mount is checked, not assumed.
"""

import json
import os
import re
import time

from ansible.module_utils.datasafe import compose, container, counts, ready, specs

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


# --------------------------------------------------------------------------- starting and stopping
# Both build their command with compose.compose_argv (absolute -f, --project-directory): one
# compose command line for the project, whoever starts or stops it. Neither ever builds, pulls,
# creates a container it was not asked to, or removes anything.

SERVICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def compose_argument_spec():
    """The options naming the compose project, as stack_start and stack_stop take them (their
    documentation: the ``datasafe.compose`` doc fragment)."""
    return specs.spec(specs.COMPOSE)  # their one home


class StackError(Exception):
    """Starting, stopping or checking failed; ``result`` holds what had happened until then (commands that
    ran, seconds waited, counts taken), for the caller to report beside the message."""

    def __init__(self, msg, result):
        super().__init__(msg)
        self.result = result


def up_argv(base, services, dependencies=True):
    argv = base + ["up", "--detach", "--no-build", "--pull", "never"]
    if not dependencies:
        argv.append("--no-deps")
    return argv + list(services)


def stop_argv(base, services):
    """``docker compose stop -- SERVICE...``: it only stops. (community.docker's docker_compose_v2
    state=stopped first runs ``up --no-start``, which recreates a container whose configuration
    changed since it started; mid-restore that container is the database being loaded.)"""
    return base + ["stop", "--"] + list(services)


def _service_names(names):
    bad = [s for s in names if not SERVICE_NAME.match(s)]
    if bad:
        raise ValueError("%r is not a compose service name: give names from the compose file" % bad[0])


def running_services(run, project):
    """The services of ``project`` whose container runs now (one ``docker ps``)."""
    out = _docker(
        run,
        "ps",
        "--filter",
        "label=com.docker.compose.project=%s" % project,
        "--filter",
        "status=running",
        "--format",
        '{{.Label "com.docker.compose.service"}}',
    )
    return set(out.split())


def stop(run, project, files, project_dir, services, check_mode=False):
    """Stop the named ``services`` of the project (at least one: an empty list would stop every
    service, the database too). Returns ``{changed, commands, stopped}``: ``stopped`` are the named
    services that were running; with none running nothing runs. Raises ValueError for bad input,
    StackError when docker fails."""
    if not services:
        raise ValueError("name the services to stop (an empty list would stop every service, the database too)")
    _service_names(services)
    result = dict(changed=False, commands=[], stopped=[])
    try:
        running = running_services(run, project)
    except DockerError as exc:
        raise StackError(str(exc), result) from None
    result["stopped"] = [s for s in services if s in running]
    if not result["stopped"]:
        return result
    argv = stop_argv(compose.compose_argv(project, files, project_dir), services)
    result.update(changed=True, commands=[argv])
    if check_mode:
        return result
    rc, out, err = run(argv)
    if rc != 0:
        raise StackError("docker compose stop failed (exit %s): %s" % (rc, (err or out).strip()), result)
    return result


def check_start(
    services=(), exclude_services=(), database=None, wait_url=None, wait_timeout=120, wait_interval=0.1, verify=None
):
    """Every problem with :func:`start`'s input, before anything runs (ValueError). Returns
    ``database.compare_to`` as a snapshot of whole numbers (or None)."""
    _service_names(list(services) + list(exclude_services) + ([database["service"]] if database else []))
    if services and exclude_services:
        raise ValueError("give services or exclude_services, not both")
    if wait_timeout < 1 or not 0.01 <= wait_interval <= 10:
        raise ValueError("wait_timeout must be at least 1 s and wait_interval 0.01 to 10 s")
    if wait_url is not None:
        ready.check_url(wait_url)
    if verify:
        if not SERVICE_NAME.match(verify["db_service"]):
            raise ValueError("verify.db_service %r is not a compose service name" % verify["db_service"])
        if verify["wait_healthy"] < 0:
            raise ValueError("verify.wait_healthy must be 0 (judge at once) or a number of seconds")
    if not database:
        return None
    for table in database["tables"]:
        container.quote_ident(table)
    if database.get("compare_to") is None:
        return None
    return counts.snapshot(database["compare_to"], "database.compare_to")


class _Start:
    """One start: the result grows as it goes, and any failure carries it (StackError)."""

    def __init__(self, run, project, wait_timeout, wait_interval):
        self.run, self.project = run, project
        self.wait_timeout, self.wait_interval = wait_timeout, wait_interval
        self.result = dict(changed=False, commands=[], waited={}, problems=[], containers=[])

    def fail(self, msg):
        raise StackError(msg, self.result)

    def up(self, argv, services):
        """Run ``up``; returns a callable naming the started containers (asked only when needed,
        so the fast path spends no time on it)."""
        self.result["changed"] = True
        rc, out, err = self.run(argv)
        if rc != 0:
            self.fail("docker compose up failed (exit %s): %s" % (rc, (err or out).strip()))
        return lambda: self.containers(services)

    def containers(self, services, first=()):
        """The containers of ``services`` (every service when none is named), ``first`` before them."""
        try:
            present = project_containers(self.run, self.project)
        except DockerError as exc:
            self.fail(str(exc))
        order = list(first) + [s for s in (services or sorted(present)) if s not in first]
        names = [present[s]["container"] for s in order if s in present]
        self.result["containers"] += [n for n in names if n not in self.result["containers"]]
        return names

    def wait(self, key, what, probe, watch):
        try:
            self.result["waited"][key] = ready.wait_for(
                what, probe, self.run, watch=watch, timeout=self.wait_timeout, interval=self.wait_interval
            )
        except ready.NotReady as exc:
            self.fail("started, but %s" % exc)

    def database(self, db, compare_to, argv):
        watch = self.up(argv, [db["service"]])
        self.wait(
            "postgres",
            "PostgreSQL in %s" % db["container"],
            lambda: ready.pg_ready(self.run, db["container"], db["user"], db["name"]),
            watch,
        )
        if not db["tables"]:
            return
        try:
            snapshot = container.count_rows(self.run, db["container"], db["name"], db["user"], db["tables"])
        except container.ContainerError as exc:
            self.fail("could not count rows (%s) in %s/%s: %s" % (db["label"], db["container"], db["name"], exc))
        self.result.update(counts=snapshot, total=sum(snapshot.values()))
        if compare_to is not None:
            self.result["problems"] = counts.compare(compare_to, snapshot)
            if self.result["problems"]:
                self.fail(
                    "row counts %s: %s; nothing else was started"
                    % (db["label"], counts.describe(self.result["problems"]))
                )

    def verify(self, v):
        """The stack check of stack_info, after the start; a problem fails."""
        expected = v["volume_name"] or "%s_%s" % (self.project, v["volume"])
        try:
            checked = check(self.run, self.project, v["db_service"], expected, v["data_path"], True, v["wait_healthy"])
        except DockerError as exc:
            self.fail("started, but the stack could not be read for its check: %s" % exc)
        self.result["stack"] = checked
        if checked["problems"]:
            self.fail("started, but the stack check failed: %s" % "; ".join(checked["problems"]))


def start(
    run,
    project,
    files,
    project_dir,
    services=(),
    exclude_services=(),
    dependencies=True,
    database=None,
    wait_url=None,
    wait_timeout=120,
    wait_interval=0.1,
    verify=None,
    check_mode=False,
):
    """Start the project's services and wait until they answer; the database first and alone when
    ``database`` is given (its rows counted and compared with ``database.compare_to`` before
    anything else starts), the stack check of :func:`check` last with ``verify``.

    ``run(argv, data=None) -> (rc, stdout, stderr)``. Returns the result (``changed``,
    ``commands``, ``waited``, ``problems``, ``containers``, and ``counts``/``total``/``stack``
    when taken); in check mode only the commands that would run. Raises ValueError for bad input
    (nothing ran) and StackError when a step fails.
    """
    compare_to = check_start(services, exclude_services, database, wait_url, wait_timeout, wait_interval, verify)
    base = compose.compose_argv(project, files, project_dir)
    starting = _Start(run, project, wait_timeout, wait_interval)
    services = list(services)
    if exclude_services:
        rc, out, err = run(base + ["config", "--services"])
        if rc != 0:
            starting.fail("docker compose config failed (exit %s): %s" % (rc, (err or out).strip()))
        services = [s for s in out.split() if s not in exclude_services]
    steps = []
    if database:
        steps.append(up_argv(base, [database["service"]]))
    steps.append(up_argv(base, services, dependencies))
    starting.result["commands"] = steps
    if check_mode:
        starting.result["changed"] = True
        return starting.result

    if database:
        starting.database(database, compare_to, steps[0])
    watch = starting.up(steps[-1], services)
    if wait_url:
        starting.wait("url", "GET %s" % wait_url, lambda: ready.url_status(wait_url), watch)
    # One listing for the result: the database first, then the services.
    starting.containers(services, first=[database["service"]] if database else [])
    if verify:
        starting.verify(verify)
    return starting.result


def info_task(run, p):
    """What the stack_info module does with its options ``p``: :func:`check` of the project and
    its database volume. Returns the module's result; raises :class:`StackError` (its ``result``:
    the problems, and the facts when read) for bad options, a docker failure, or problems with
    ``fail_on_problems``."""
    if p["wait_healthy"] < 0:
        raise StackError("stack_info: wait_healthy must be 0 (judge at once) or a number of seconds", {})
    expected = p["volume_name"] or "%s_%s" % (p["project"], p["volume"])
    try:
        checked = check(
            run,
            p["project"],
            p["db_service"],
            expected,
            p["data_path"],
            p["require_running"],
            p["wait_healthy"],
            p["compare_volume_to"],
        )
    except DockerError as exc:
        raise StackError("stack_info: %s" % exc, {"problems": [str(exc)]}) from exc
    result = dict(changed=False, **checked)
    if checked["problems"] and p["fail_on_problems"]:
        raise StackError("stack %s: %s" % (p["project"], "; ".join(checked["problems"])), result)
    return result


# --------------------------------------------------------------------------- before a change stops it


class PreflightFailed(Exception):
    """The database could not survive the change, or its backup has no room; ``result`` holds the
    module's fields (compose argv and files, what was measured, ``problems``)."""

    def __init__(self, msg, result):
        super().__init__(msg)
        self.result = result


def nearest_existing(path):
    """``path``, or its nearest parent that exists (what a directory not made yet will be on)."""
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def version_problem(image, image_major, data_pg_version):
    """Why the image cannot open the data directory, or None when its major version is the directory's."""
    if image_major == data_pg_version.strip():
        return None
    return (
        "the compose files run %s (PostgreSQL %s) but the data directory was made by PostgreSQL %s: "
        "it would not start after the old server stops. Upgrade with pg_upgrade or a dump and "
        "restore, not with an update" % (image, image_major, data_pg_version)
    )


def space_problem(free_bytes, db_size_bytes, space_factor, where):
    """Why a backup of ``db_size_bytes`` does not fit in ``free_bytes`` at ``where``, or None."""
    needed = int(db_size_bytes * space_factor)
    if free_bytes >= needed:
        return None
    return (
        "only %d MiB free in %s for a backup of a %d MiB database (need %d MiB): free space "
        "first; datasafe never deletes backups to make room"
        % (free_bytes >> 20, where, db_size_bytes >> 20, needed >> 20)
    )


def preflight_task(run, p):
    """What the db_preflight module does with its options ``p``: the image the compose files (as
    they are on disk now) give the database service must run the data directory's PostgreSQL major
    version, and with ``backup_dir`` the free space there must hold ``space_factor`` times the
    database. Only reads. Returns the module's result; raises :class:`PreflightFailed`."""
    env = {k: str(v) for k, v in p["compose_env"].items()}  # only the compose variables, added to the rest
    base = compose.compose_argv(p["project"], p["compose_files"], p["compose_dir"])
    result = dict(
        changed=False,
        compose_argv=base,
        compose_files=compose.effective_files(p["project"], p["compose_files"], p["compose_dir"]),
    )
    try:
        result["image"] = compose.service_image(run, base, p["db_service"], env)
        result["image_pg_major"] = compose.image_pg_major(run, result["image"])
    except (RuntimeError, LookupError) as exc:
        raise PreflightFailed("preflight: %s" % exc, dict(result, problems=[str(exc)])) from exc
    problems = [version_problem(result["image"], result["image_pg_major"], p["data_pg_version"])]
    if p["backup_dir"]:
        try:
            rows = container.query(
                run,
                p["container"],
                p["database"],
                p["user"],
                "SELECT pg_database_size(current_database())",
                stage="measure the database",
            )
        except container.ContainerError as exc:
            raise PreflightFailed("preflight: %s" % exc, dict(result, problems=[str(exc)])) from exc
        result["db_size_bytes"] = int(rows[0][0])
        where = nearest_existing(os.path.expanduser(p["backup_dir"]))
        stat = os.statvfs(where)
        result["free_bytes"] = stat.f_bavail * stat.f_frsize
        problems.append(space_problem(result["free_bytes"], result["db_size_bytes"], p["space_factor"], where))
    problems = [problem for problem in problems if problem]
    if problems:
        raise PreflightFailed("preflight: " + "; ".join(problems), dict(result, problems=problems))
    return dict(result, problems=[])
