"""What is true of a compose stack right now: its containers, and the database's volume.

Layer 1 of the protocol is the named volume ``postgres_data``. Compose names it
``<project>_postgres_data``; a changed project name silently creates a new, empty one, and
an image that declares ``VOLUME`` gives the database an anonymous volume when the compose
file forgets the mount. Both look healthy and both lose every row at the next ``down``, so
the database's mount is checked, not assumed.
"""

import json

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
        labels = info.get("Config", {}).get("Labels") or {}
        state = info.get("State", {})
        services[labels.get("com.docker.compose.service", info["Name"].lstrip("/"))] = {
            "container": info["Name"].lstrip("/"),
            "image": info.get("Config", {}).get("Image"),
            "image_id": info.get("Image"),
            "status": state.get("Status"),
            "running": bool(state.get("Running")),
            "health": (state.get("Health") or {}).get("Status"),
            "mounts": info.get("Mounts") or [],
        }
    return services


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
