"""Prometheus textfile for node_exporter's textfile collector, written on every backup run.

A cron job that silently stopped running is the failure nobody sees; an alert on
``time() - datasafe_backup_last_success_timestamp_seconds > 26*3600`` sees it. The file is
rewritten atomically (temporary file + rename) and keeps the samples of other databases and
kinds, and the last success time across failed runs.
"""

import os
import re

PREFIX = "datasafe_backup_"
HELP = {
    "last_run_timestamp_seconds": "Unix time the last backup run ended, successful or not.",
    "last_run_success": "1 when the last backup run produced a verified backup, else 0.",
    "last_success_timestamp_seconds": "Unix time the last verified backup was completed.",
    "last_size_bytes": "Size of the last verified backup file.",
    "last_duration_seconds": "Wall time of the last backup run.",
    "last_verified": "1 when the last verified backup passed every check.",
    "last_shrink_flagged": "1 when the last verified backup was far smaller than the one before it.",
}
_SAMPLE = re.compile(r"^(%s[a-z_]+)\{([^}]*)\}\s+(\S+)$" % PREFIX)


def _labels(database, kind):
    return 'database="%s",kind="%s"' % (_escape(database), _escape(kind))


def _escape(text):
    return str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def read(path):
    """Samples already in the file: {(metric, labels): value}."""
    samples = {}
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                match = _SAMPLE.match(line.strip())
                if match:
                    samples[(match.group(1), match.group(2))] = match.group(3)
    except FileNotFoundError:
        pass
    return samples


def render(samples):
    lines = []
    for short, text in HELP.items():
        name = PREFIX + short
        mine = sorted((labels, value) for (metric, labels), value in samples.items() if metric == name)
        if not mine:
            continue
        lines.append("# HELP %s %s" % (name, text))
        lines.append("# TYPE %s gauge" % name)
        lines.extend("%s{%s} %s" % (name, labels, value) for labels, value in mine)
    return "\n".join(lines) + "\n"


def record_run(path, database, kind, success, ended, duration, size=None, verified=False, shrink=False):
    """Update the textfile for one run; ``ended`` is a Unix time. Returns the samples written."""
    samples = read(path)
    labels = _labels(database, kind)

    def put(short, value):
        samples[(PREFIX + short, labels)] = ("%.3f" % value) if isinstance(value, float) else str(int(value))

    put("last_run_timestamp_seconds", float(ended))
    put("last_run_success", 1 if success else 0)
    put("last_duration_seconds", float(duration))
    if success:
        put("last_success_timestamp_seconds", float(ended))
        put("last_size_bytes", size or 0)
        put("last_verified", 1 if verified else 0)
        put("last_shrink_flagged", 1 if shrink else 0)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, ".%s.tmp-%d" % (os.path.basename(path), os.getpid()))
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(render(samples))
    os.chmod(tmp, 0o644)  # node_exporter reads it; it holds no secret
    os.rename(tmp, path)
    return samples
