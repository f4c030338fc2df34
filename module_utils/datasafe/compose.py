"""docker compose argv for a stack, and what its configuration says (``run`` as in :mod:`runner`)."""

import json
import os
import re

# datasafe's own compose override for a stack (continuous recovery: the database image with
# pgBackRest, WAL archiving on). It lives outside the user's checkout and is added after the
# user's compose files to every compose call datasafe makes, from here: the one place.
# DATASAFE_OVERRIDE_DIR moves it (the test bed keeps each throwaway stack's under its root).
OVERRIDE_DIR = "~/.datasafe/compose"


def override_path(project):
    """Where datasafe's compose override for ``project`` lives (it may not exist)."""
    where = os.environ.get("DATASAFE_OVERRIDE_DIR") or OVERRIDE_DIR
    return os.path.join(os.path.expanduser(where), "%s.continuous.yml" % project)


def effective_files(project, files, project_dir, with_override=True):
    """The stack's compose files as absolute paths, plus datasafe's override when it exists."""
    paths = [f if os.path.isabs(f) else os.path.join(project_dir, f) for f in files]
    override = override_path(project)
    if with_override and os.path.exists(override) and override not in paths:
        paths.append(override)
    return paths


def compose_argv(project, files, project_dir, with_override=True):
    """``docker compose -p P --project-directory D -f F...`` (argv, never a shell string), with
    datasafe's override (:func:`effective_files`) last."""
    argv = ["docker", "compose", "-p", project, "--project-directory", project_dir]
    for f in effective_files(project, files, project_dir, with_override):
        argv += ["-f", f]
    return argv


def service_image(run, base_argv, service, env=None):
    """The image the compose file (as it is on disk now) gives ``service``."""
    rc, out, err = run(base_argv + ["config", "--format", "json"], env=env)
    if rc != 0:
        raise RuntimeError("docker compose config failed: %s" % (err or out).strip())
    services = json.loads(out).get("services", {})
    if service not in services:
        raise RuntimeError(
            "the compose files define no service %r (they define: %s)"
            % (service, ", ".join(sorted(services)) or "none")
        )
    return services[service].get("image")


_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")


def major_from_version_output(text):
    """'postgres (PostgreSQL) 15.18 (Debian ...)' -> '15'; versions before 10 keep two parts ('9.6')."""
    match = _VERSION.search(text or "")
    if not match:
        return None
    major = int(match.group(1))
    return "%d.%s" % (major, match.group(2)) if major < 10 else str(major)


def image_pg_major(run, image):
    """The PostgreSQL major version an image runs: from PG_MAJOR in its environment (as the
    official image sets it), else by asking its ``postgres --version`` with no network."""
    rc, out, err = run(["docker", "image", "inspect", image])
    if rc != 0:
        raise LookupError(
            "image %s is not present on this host, so compose would try to pull it "
            "during 'up': build or load it before updating" % image
        )
    env = (json.loads(out)[0].get("Config") or {}).get("Env") or []
    for item in env:
        if item.startswith("PG_MAJOR="):
            return item.split("=", 1)[1]
    rc, out, err = run(["docker", "run", "--rm", "--network", "none", "--entrypoint", "postgres", image, "--version"])
    major = major_from_version_output(out) if rc == 0 else None
    if major is None:
        raise LookupError("cannot tell which PostgreSQL version image %s runs: %s" % (image, (err or out).strip()))
    return major
