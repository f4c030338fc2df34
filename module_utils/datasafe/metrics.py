"""The one writer of Prometheus textfiles for node_exporter's textfile collector.

A cron job that silently stopped running is the failure nobody sees; an alert on the age of a
``..._last_success_timestamp_seconds`` sample sees it. Backups, off-site copies and restore
drills each keep such a file, and all of them write it here:

- a file holds metric *families* (name, HELP, TYPE) given by the caller, in the caller's order;
  a family without samples is left out, a sample of a family the caller does not name is dropped;
- a sample is ``(name, labels) -> value``; ``labels`` is a tuple of ``(name, value)`` pairs in the
  order they are written, label values escaped as the exposition format says (backslash, double
  quote, newline);
- :func:`update` reads the samples already in the file, so the samples of other label sets
  (other databases, other targets) are kept; what to carry over across a failed run (the last
  success time) is the caller's decision, made in its ``change`` callback from those samples;
- a lock file beside the textfile (``<path>.lock``, flock) serialises concurrent writers, and the
  file is replaced atomically: temporary file, fchmod 0644, fsync, rename, fsync of the directory.
  A write that fails leaves the previous file as it was.
"""

import collections
import fcntl
import math
import os
import re
import tempfile

Family = collections.namedtuple("Family", ["name", "help", "type"])

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?[ \t]+(\S+)$")
_LABEL = re.compile(r'[ \t]*([a-zA-Z_][a-zA-Z0-9_]*)[ \t]*=[ \t]*"((?:[^"\\]|\\.)*)"[ \t]*(?:,|\Z)')
_ESCAPED = re.compile(r"\\(.)")


def gauge(name, help_text):
    return Family(name, help_text, "gauge")


def escape(value):
    """A label value as the exposition format writes it between double quotes."""
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def unescape(text):
    return _ESCAPED.sub(lambda m: "\n" if m.group(1) == "n" else m.group(1), text)


def labels_key(labels):
    """``labels`` (a dict or ``(name, value)`` pairs) as the tuple samples are keyed by."""
    pairs = labels.items() if isinstance(labels, dict) else labels
    return tuple((str(name), str(value)) for name, value in pairs)


def parse_labels(text):
    """``(name, value)`` pairs of a sample's label text, or None when it is not well formed."""
    pairs, pos = [], 0
    while pos < len(text):
        match = _LABEL.match(text, pos)
        if not match:
            return None
        pairs.append((match.group(1), unescape(match.group(2))))
        pos = match.end()
    return tuple(pairs)


def format_labels(labels):
    return ",".join('%s="%s"' % (name, escape(value)) for name, value in labels_key(labels))


def format_value(value):
    """A sample value: text is written as given, numbers as the exposition format spells them."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, int)):
        return "%d" % value
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


def read(path):
    """``{(name, labels): value text}`` of the samples in the file (empty when there is none)."""
    samples = {}
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                match = _SAMPLE.match(line.strip())
                if not match:
                    continue
                labels = parse_labels(match.group(2) or "")
                if labels is not None:
                    samples[(match.group(1), labels)] = match.group(3)
    except FileNotFoundError:
        pass
    return samples


def render(families, samples):
    """The textfile's text: each family that has samples, its samples sorted by label values."""
    lines = []
    for family in families:
        mine = sorted((labels, value) for (name, labels), value in samples.items() if name == family.name)
        if not mine:
            continue
        lines.append("# HELP %s %s" % (family.name, family.help.replace("\\", "\\\\").replace("\n", "\\n")))
        lines.append("# TYPE %s %s" % (family.name, family.type))
        for labels, value in mine:
            text = format_labels(labels)
            lines.append("%s%s %s" % (family.name, "{%s}" % text if text else "", format_value(value)))
    return "\n".join(lines) + "\n"


def write(path, text):
    """Replace ``path`` with ``text`` atomically; on any error the previous file stays as it was."""
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), suffix=".tmp", dir=directory)
    try:
        data = text.encode("utf-8")
        while data:
            data = data[os.write(fd, data) :]
        os.fchmod(fd, 0o644)  # node_exporter runs as its own user and must read it; it holds no secret
        os.fsync(fd)
        os.close(fd)
        fd = None
        os.rename(tmp, path)
        tmp = None
    finally:
        if fd is not None:
            os.close(fd)
        if tmp is not None:
            os.unlink(tmp)
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself survives a crash
    finally:
        os.close(dir_fd)


def update(path, families, change):
    """Read the textfile's samples, let ``change(samples)`` edit them in place, write it back.

    All of it happens under an exclusive flock on ``<path>.lock``, so concurrent writers never
    lose each other's samples. Returns the absolute path written.
    """
    path = os.path.abspath(os.path.expanduser(path))
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    lock = os.open(path + ".lock", os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        samples = read(path)
        change(samples)
        write(path, render(families, samples))
    finally:
        os.close(lock)
    return path
