"""Waiting for services by asking them, never by sleeping a fixed time.

Docker's own ``healthy`` lags the service by up to one healthcheck interval (and compose's
``--wait`` and ``depends_on: condition: service_healthy`` wait for it). On the path of a
restart every such second is downtime, so datasafe asks the services themselves: PostgreSQL
with ``pg_isready`` inside its container, the application with GET on its health URL, every
``interval`` seconds. A watched container that exits ends the wait at once with its log tail
instead of running out the timeout.
"""

import time
import urllib.error
import urllib.parse
import urllib.request

from ansible.module_utils.datasafe import container

# A watched container in one of these will not become ready by waiting longer. "unhealthy" is
# Docker's verdict after the healthcheck's retries ran out.
DEAD_STATES = ("exited", "dead", "missing", "unhealthy")


class NotReady(Exception):
    """The wait ended without the service answering; the message says why and what was seen."""


def check_url(url):
    """Refuse a URL datasafe will not poll: only http(s) with a host."""
    parsed = urllib.parse.urlsplit(url or "")
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(
            "%r is not an http(s) URL with a host: give the health endpoint, e.g. http://127.0.0.1:5002/health" % (url,)
        )
    return url


def pg_isready_argv(cont, user, database, host=None, port=None):
    """``pg_isready`` inside ``cont``; over TCP with ``host``/``port`` (an entrypoint's init server
    listens on the socket only, so TCP tells the real server from it)."""
    argv = ["pg_isready", "-U", user, "-d", database]
    if host:
        argv += ["-h", host]
    if port:
        argv += ["-p", str(int(port))]
    return container.docker_exec(cont, argv)


def pg_ready(run, cont, user, database, host=None, port=None):
    """(True, '') when the server in ``cont`` accepts connections to ``database``, else (False, why)."""
    rc, out, err = run(pg_isready_argv(cont, user, database, host, port))
    return rc == 0, (out or err or "").strip()


def wait_pg(
    run,
    cont,
    user,
    database,
    timeout,
    host=None,
    port=None,
    watch=False,
    interval=0.5,
    clock=time.monotonic,
    sleep=time.sleep,
):
    """The one wait for PostgreSQL: poll ``pg_isready`` in ``cont`` until it accepts connections.

    Returns the seconds waited; raises :class:`NotReady` after ``timeout`` seconds, or at once
    (with its log tail) when ``watch`` is set and the container exits, vanishes or turns
    unhealthy. Used by the restore (a server that was down), the restore drill (its throwaway
    server), stack_start and the ``pg_ready`` module.
    """
    return wait_for(
        "PostgreSQL in %s" % cont,
        lambda: pg_ready(run, cont, user, database, host, port),
        run,
        watch=[cont] if watch else (),
        timeout=timeout,
        interval=interval,
        clock=clock,
        sleep=sleep,
    )


def url_status(url, timeout=2.0):
    """(True, '') when GET ``url`` answers 200, else (False, what it answered)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310  (scheme checked by check_url)
            return response.status == 200, "HTTP %s" % response.status
    except urllib.error.HTTPError as exc:
        return False, "HTTP %s" % exc.code
    except (OSError, ValueError) as exc:  # refused, reset, timeout, bad status line
        return False, str(getattr(exc, "reason", exc))


def container_states(run, names):
    """{name: state}: Docker's status, or its health when it has one and runs (``unhealthy``),
    or ``missing`` when Docker does not know the container."""
    states = {}
    for name in names:
        rc, out, _ = run(
            [
                "docker",
                "inspect",
                "--format",
                "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}",
                name,
            ]
        )
        status, _, health = out.strip().partition(" ")
        states[name] = "missing" if rc != 0 else (health if status == "running" and health == "unhealthy" else status)
    return states


def log_tail(run, name, lines=20):
    rc, out, err = run(["docker", "logs", "--tail", str(lines), name])
    return ((out or "") + (err or "")).strip() if rc == 0 else "(no log: %s)" % (err or "").strip()


def wait_for(what, probe, run, watch=(), timeout=120.0, interval=0.1, clock=time.monotonic, sleep=time.sleep):
    """Poll ``probe() -> (ok, detail)`` until it is ok; returns the seconds waited.

    ``watch`` is a list of container names, or a callable returning one (asked only once the
    first second has passed, so a fast start pays nothing for it). Every second those
    containers are inspected: one that exited, is gone or is unhealthy ends the wait with
    :class:`NotReady` carrying its log tail. Running out of ``timeout`` raises :class:`NotReady`
    with the last answer seen.
    """
    start = clock()
    deadline = start + timeout
    next_watch = start + 1.0
    detail = ""
    while True:
        ok, detail = probe()
        now = clock()
        if ok:
            return round(now - start, 3)
        if watch and now >= next_watch:
            next_watch = now + 1.0
            if callable(watch):
                watch = watch()
            for name, state in sorted(container_states(run, watch).items()):
                if state in DEAD_STATES:
                    raise NotReady(
                        "%s: container %s is %s (last answer: %s); its log ends:\n%s"
                        % (what, name, state, detail or "none", log_tail(run, name) if state != "missing" else "")
                    )
        if now >= deadline:
            raise NotReady("%s: no answer within %ss (last answer: %s)" % (what, timeout, detail or "none"))
        sleep(interval)
