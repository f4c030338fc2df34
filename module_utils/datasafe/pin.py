"""The volume pin: a running container that holds the database volume so no Docker client can remove it.

Docker refuses to remove a volume that a container references: ``docker volume rm`` (with or
without ``-f``), ``docker volume prune``, ``docker compose down -v`` and the Engine API's
``DELETE /volumes/{name}`` (even with ``force=true``) all fail with "volume is in use", and
``docker system prune`` removes only stopped containers. A small **running** container that
mounts the volume therefore pins it against every client, whoever types the command.

The pin lives outside the compose project (no ``com.docker.compose.*`` labels), so neither
``compose down`` nor ``--remove-orphans`` touches it; it restarts with the engine; it uses the
database image already on the host (no pull); it runs ``sleep infinity`` with no network, no
capabilities, a read-only root file system and the volume mounted read-only, at the image's
own data directory (so the image's ``VOLUME`` declaration creates no anonymous volume).

``ensure(run, volume, image)`` / ``remove(run, volume)`` / ``status(run, volume)`` return plain
dicts or raise :class:`PinError`; ``run(argv, data=None) -> (rc, stdout, stderr)``.
"""

import json
import re

PIN_LABEL = "io.datasafe.pin"  # value: the pinned volume's name
PIN_PREFIX = "datasafe-pin-"  # the command guard refuses stopping or removing these
MOUNT = "/var/lib/postgresql/data"  # where the PostgreSQL images declare their VOLUME
RESTART_POLICIES = ("always", "unless-stopped")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")  # Docker's own rule for volume and container names


class PinError(Exception):
    """The pin cannot be put in place or checked; the message says why and what to do."""


def pin_name(volume):
    return PIN_PREFIX + volume


def _check_name(volume):
    if not isinstance(volume, str) or not _NAME.match(volume):
        raise PinError("%r is not a Docker volume name (letters, digits, '_', '.', '-')" % (volume,))


def _inspect(run, kind, name):
    rc, out, err = run(["docker", kind, "inspect", name])
    if rc != 0:
        if "no such" in (err or "").lower():
            return None
        raise PinError("docker %s inspect %s failed (exit %s): %s" % (kind, name, rc, (err or "").strip()))
    return json.loads(out)[0]


def run_argv(volume, image, restart="always", extra_labels=None):
    """The ``docker run`` argv that creates the pin (a list, never a shell string)."""
    argv = ["docker", "run", "--detach", "--name", pin_name(volume), "--label", "%s=%s" % (PIN_LABEL, volume)]
    for key, value in sorted((extra_labels or {}).items()):
        argv += ["--label", "%s=%s" % (key, value)]
    argv += [
        "--restart",
        restart,
        "--network",
        "none",
        "--read-only",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--stop-signal",
        "SIGKILL",  # sleep as PID 1 ignores SIGTERM; there is nothing to shut down cleanly
        "--mount",
        "type=volume,source=%s,target=%s,readonly" % (volume, MOUNT),
        "--entrypoint",
        "sleep",
        image,
        "infinity",
    ]
    return argv


def status(run, volume):
    """What holds ``volume`` now: ``{volume, container, exists, running, holds_volume, restart,
    image, ours, volume_exists, problems}``; ``pinned`` is true only when all is as it should be."""
    _check_name(volume)
    name = pin_name(volume)
    info = _inspect(run, "container", name)
    vol = _inspect(run, "volume", volume)
    out = dict(
        volume=volume,
        container=name,
        volume_exists=vol is not None,
        exists=info is not None,
        running=False,
        holds_volume=False,
        restart=None,
        image=None,
        ours=False,
        problems=[],
    )
    if vol is None:
        out["problems"].append("volume %s does not exist" % volume)
    if info is None:
        out["problems"].append("no pin container %s: nothing stops a Docker client from removing %s" % (name, volume))
    else:
        labels = (info.get("Config") or {}).get("Labels") or {}
        out["ours"] = labels.get(PIN_LABEL) == volume
        out["running"] = bool((info.get("State") or {}).get("Running"))
        out["restart"] = ((info.get("HostConfig") or {}).get("RestartPolicy") or {}).get("Name")
        out["image"] = (info.get("Config") or {}).get("Image")
        out["holds_volume"] = any(
            m.get("Type") == "volume" and m.get("Name") == volume for m in info.get("Mounts") or ()
        )
        if not out["ours"]:
            out["problems"].append("container %s is not a datasafe pin (no label %s=%s)" % (name, PIN_LABEL, volume))
        if not out["running"]:
            out["problems"].append(
                "pin container %s is not running: a stopped container does not stop volume prune or down -v" % name
            )
        if not out["holds_volume"]:
            out["problems"].append("pin container %s does not mount volume %s" % (name, volume))
        if out["restart"] not in RESTART_POLICIES:
            out["problems"].append(
                "pin container %s has restart policy %r: it would not come back after the engine restarts"
                % (name, out["restart"])
            )
    out["pinned"] = not out["problems"]
    return out


def _docker(run, argv, what):
    rc, out, err = run(argv)
    if rc != 0:
        raise PinError("%s failed (exit %s): %s" % (what, rc, (err or out or "").strip()))
    return out


def ensure(run, volume, image, restart="always", extra_labels=None, check_mode=False):
    """Make sure a running pin holds ``volume``. Returns ``{changed, actions, commands, pin}``.

    Refuses (PinError) when the volume does not exist (``docker run`` would create an empty one
    and pin that), when the image is not on the host (it would be pulled), and when a container
    that is not a datasafe pin already carries the pin's name.
    """
    _check_name(volume)
    if restart not in RESTART_POLICIES:
        raise PinError("restart must be one of %s, not %r" % (", ".join(RESTART_POLICIES), restart))
    if not image:
        raise PinError("no image for the pin: give the database image (it is already on the host)")
    before = status(run, volume)
    if not before["volume_exists"]:
        raise PinError(
            "volume %s does not exist: start the stack first (docker compose up -d creates it); "
            "pinning now would create an empty volume of that name" % volume
        )
    if _inspect(run, "image", image) is None:
        raise PinError("image %s is not on this host: the pin uses an image already there (the database's)" % image)
    if before["exists"] and not before["ours"]:
        raise PinError(
            "a container named %s exists and is not a datasafe pin: rename or remove it by hand, then retry"
            % before["container"]
        )
    actions, commands = [], []
    if before["pinned"]:
        return dict(changed=False, actions=[], commands=[], pin=before)
    if before["exists"] and before["holds_volume"] and before["restart"] in RESTART_POLICIES:
        actions.append("start the stopped pin %s" % before["container"])
        commands.append(["docker", "start", before["container"]])
    else:
        if before["exists"]:
            actions.append("replace pin %s (%s)" % (before["container"], "; ".join(before["problems"])))
            commands.append(["docker", "rm", "--force", before["container"]])
        actions.append("start pin %s holding %s (image %s)" % (pin_name(volume), volume, image))
        commands.append(run_argv(volume, image, restart, extra_labels))
    if check_mode:
        return dict(changed=True, actions=actions, commands=commands, pin=before)
    for argv in commands:
        _docker(run, argv, " ".join(argv[:3]))
    after = status(run, volume)
    if not after["pinned"]:
        rc, logs, err = run(["docker", "logs", "--tail", "20", pin_name(volume)])
        raise PinError(
            "the pin for %s is not in place after starting it: %s (logs: %s)"
            % (volume, "; ".join(after["problems"]), (logs or err or "none").strip())
        )
    return dict(changed=True, actions=actions, commands=commands, pin=after)


def remove(run, volume, check_mode=False):
    """Remove the pin of ``volume`` (only a container carrying the pin label for that volume)."""
    before = status(run, volume)
    if not before["exists"]:
        return dict(changed=False, actions=[], commands=[], pin=before)
    if not before["ours"]:
        raise PinError("container %s is not a datasafe pin of %s: left alone" % (before["container"], volume))
    commands = [["docker", "rm", "--force", before["container"]]]
    actions = ["remove pin %s: volume %s is no longer held" % (before["container"], volume)]
    if not check_mode:
        _docker(run, commands[0], "docker rm")
        return dict(changed=True, actions=actions, commands=commands, pin=status(run, volume))
    return dict(changed=True, actions=actions, commands=commands, pin=before)


def image_of(run, container):
    """The image name a running container was created from (the database's, for the pin)."""
    info = _inspect(run, "container", container)
    if info is None:
        raise PinError("container %s does not exist: give the pin's image explicitly, or start the stack" % container)
    return (info.get("Config") or {}).get("Image")


class TaskFailed(PinError):
    """The volume_pin task fails; ``result`` holds its fields."""

    def __init__(self, message, result):
        super().__init__(message)
        self.result = result


def task(run, p, check_mode=False, warn=None):
    """What the volume_pin module does with its options ``p``: ``query`` reports (with ``required``,
    an unpinned volume fails; without, ``warn`` says it loudly), ``absent`` removes the pin,
    ``present`` ensures it. Returns the module's result; raises :class:`TaskFailed`."""
    try:
        if p["state"] == "query":
            result = dict(changed=False, actions=[], commands=[], pin=status(run, p["volume"]))
        elif p["state"] == "absent":
            result = remove(run, p["volume"], check_mode=check_mode)
        else:
            image = p["image"] or (image_of(run, p["from_container"]) if p["from_container"] else None)
            if not image:
                raise PinError("give image, or from_container (the database container) for its image")
            labels = {str(k): str(v) for k, v in p["labels"].items()}
            result = ensure(run, p["volume"], image, p["restart"], labels, check_mode=check_mode)
    except PinError as exc:
        raise TaskFailed("volume_pin: %s" % exc, dict(pinned=False, actions=[], commands=[])) from exc
    result["pinned"] = result["pin"]["pinned"] or (check_mode and p["state"] == "present")
    if p["state"] == "query" and not result["pinned"]:
        msg = "VOLUME NOT PINNED: %s (run playbooks/pin.yml)" % "; ".join(result["pin"]["problems"])
        if p["required"]:
            raise TaskFailed(msg, result)
        if warn:
            warn(msg)
        result["msg"] = msg
    return result
