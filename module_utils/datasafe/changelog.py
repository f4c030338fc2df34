"""The change log: a human line in the protocol's format and a JSON line beside it.

``~/change-log.txt`` keeps the protocol's ``$(date): About to ...`` lines, so people who read
it by hand keep doing so; ``~/change-log.jsonl`` holds the same events as JSON for machines.
Both appends are locked and fsynced: an entry is either whole on disk or not there.
"""

import datetime
import fcntl
import getpass
import json
import os
import socket


def _append(path, line):
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, (line.rstrip("\n") + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def human_time(now):
    """The format of the protocol's ``$(date)``: ``Mon Nov 23 21:45:00 UTC 2026``."""
    return now.strftime("%a %b %e %H:%M:%S %Z %Y").replace("  ", " ")


def json_log_path(text_path):
    """The JSON log beside a human change log: ``~/change-log.txt`` -> ``~/change-log.jsonl``."""
    return os.path.splitext(text_path)[0] + ".jsonl"


def record(text_path, json_path, action, message, outcome, **fields):
    """Append one event to both logs and return it as written to the JSON log."""
    now = datetime.datetime.now(datetime.timezone.utc).astimezone()
    entry = {
        "time": now.isoformat(timespec="seconds"),
        "user": _user(),
        "host": socket.gethostname(),
        "action": action,
        "outcome": outcome,
        "message": message,
    }
    entry.update({k: v for k, v in fields.items() if v is not None})
    _append(text_path, "%s: %s" % (human_time(now), message))
    _append(json_path, json.dumps(entry, sort_keys=True))
    return entry


def _user():
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())
