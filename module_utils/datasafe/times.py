"""Times as datasafe writes and reads them: ISO 8601 with a timezone, seconds precision."""

import datetime


def now_utc():
    return datetime.datetime.now(datetime.timezone.utc)


def now_iso(when=None):
    """``when`` (default: now) as ISO 8601 in the host's local timezone, e.g. 2026-11-23T02:00:09+01:00."""
    return (when or now_utc()).astimezone().isoformat(timespec="seconds")


def parse_time(text):
    """An ISO 8601 time with its timezone (a trailing ``Z`` is UTC); ValueError when it has none."""
    if not isinstance(text, str):
        raise ValueError("%r is not an ISO 8601 time" % (text,))
    # fromisoformat in Python < 3.11 does not take a trailing Z
    when = datetime.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    if when.tzinfo is None:
        raise ValueError("%r has no timezone" % text)
    return when
