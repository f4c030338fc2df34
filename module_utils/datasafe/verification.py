"""The verdict of verify.yml: counts against a known-good reference, and the application's logs.

A known-good reference is the newest verified backup's manifest (its same-snapshot counts) or the
snapshot the previous passing verify left; whichever is newer is compared with. Only a verify
that passes writes its snapshot, so a lost row is never absorbed into the reference. The last
lines of every container of the compose project are read (the protocol's ``logs --tail=50``),
shown, and scanned for errors. Pure of Ansible: results are returned, problems are values.
"""

import datetime
import json
import os
import re

from ansible.module_utils.datasafe import counts, files, manifest, times

SNAPSHOT_VERSION = 1
# What an error looks like in a log line: the usual severity words, and an HTTP 5xx in an
# access log line ("GET /health HTTP/1.1" 500 ...).
DEFAULT_LOG_PATTERNS = (
    r"(?i)\b(error|fatal|panic|critical|exception|traceback)\b",
    r'" 5\d\d \d+',
)
# PostgreSQL's own lines around a start or a stop: a client (a healthcheck, the application)
# that connects while the server starts, or the sessions a stop or a restore's swap ends. They
# stay in the quiet database log's last lines long after a healthy restart, so they never count.
# And autovacuum giving way to a session that wants a lock on its table (PostgreSQL logs it at
# ERROR level; it is how autovacuum is meant to behave: it runs again later).
BENIGN_LOG_LINES = (
    r"FATAL:\s+the database system is (starting up|shutting down|not yet accepting connections)",
    r"FATAL:\s+terminating connection due to administrator command",
    r"ERROR:\s+canceling autovacuum task$",
)
COMPARE_TO = ("auto", "backup", "snapshot", "none")


class VerifyError(Exception):
    """Bad input (the caller fails naming the fix); nothing was read or written."""


def _utc(moment):
    return moment.astimezone(datetime.timezone.utc)


def read_snapshot(path):
    """The previous passing verify's snapshot, or None when there is none yet."""
    try:
        with open(path) as handle:
            data = json.load(handle)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise VerifyError(
            "the verify snapshot %s cannot be read (%s): move it aside to start afresh" % (path, exc)
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("counts"), dict) or "at" not in data:
        raise VerifyError("the verify snapshot %s is not one datasafe wrote: move it aside to start afresh" % path)
    return data


def write_snapshot(path, project, database, snapshot, now):
    """Write atomically (files.write_json: temporary name, fsync, rename), mode 0600."""
    os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
    data = {
        "version": SNAPSHOT_VERSION,
        "project": project,
        "database": database,
        "at": _utc(now).isoformat(),
        "counts": snapshot,
    }
    files.write_json(path, data)
    return data


def references(backup_dir, database, snapshot_path):
    """The known-good references there are: newest verified backup, previous verify snapshot."""
    found = []
    if backup_dir and os.path.isdir(backup_dir):
        entry = manifest.newest_verified(backup_dir, database=database)
        if entry is not None:
            found.append(
                {
                    "source": "backup",
                    "name": entry["file"],
                    "at": _utc(entry["end"]).isoformat(),
                    "counts": counts.snapshot(entry["manifest"].get("counts") or {}, "the manifest's counts"),
                }
            )
    snap = read_snapshot(snapshot_path)
    if snap is not None:
        found.append(
            {
                "source": "snapshot",
                "name": os.path.basename(snapshot_path),
                "at": snap["at"],
                "counts": counts.snapshot(snap["counts"], "the verify snapshot's counts"),
            }
        )
    return found


def choose(found, compare_to):
    """The reference to compare with: the newer of the two for ``auto``, else the one asked for."""
    if compare_to not in COMPARE_TO:
        raise VerifyError("compare_to must be one of %s, not %r" % (", ".join(COMPARE_TO), compare_to))
    if compare_to == "none":
        return None
    usable = [r for r in found if compare_to in ("auto", r["source"])]
    if not usable:
        return None
    return max(usable, key=lambda r: times.parse_time(r["at"]))


def compare(reference, now_counts, allow_decrease):
    """Problems of ``now_counts`` against the reference, beyond what the operator allows.

    Only the tables counted now are compared (a table added to the critical list since has no
    reference). ``allow_decrease`` maps a table to the rows it may lose (e.g. a sessions table).
    """
    try:
        allowed = {table: int(n) for table, n in (allow_decrease or {}).items()}
    except (TypeError, ValueError):
        raise VerifyError("allow_decrease must map table names to whole numbers of rows") from None
    if any(n < 0 for n in allowed.values()):
        raise VerifyError("allow_decrease must not be negative")
    before = {t: n for t, n in reference["counts"].items() if t in now_counts}
    problems = []
    for problem in counts.compare(before, now_counts, "no_decrease"):
        lost = problem["before"] - (problem["after"] or 0)
        if problem["after"] is not None and lost <= allowed.get(problem["table"], 0):
            continue
        if allowed.get(problem["table"]):
            problem["problem"] += " (%d allowed)" % allowed[problem["table"]]
        problems.append(problem)
    return problems


def scan_logs(logs, patterns, ignore):
    """Lines matching any pattern and neither an ignore pattern nor a benign PostgreSQL line:
    [{container, line}]."""
    try:
        wanted = [re.compile(p) for p in patterns]
        unwanted = [re.compile(p) for p in list(BENIGN_LOG_LINES) + list(ignore)]
    except re.error as exc:
        raise VerifyError("a log pattern is not a valid regular expression: %s" % exc) from None
    findings = []
    for name in sorted(logs):
        for line in logs[name]:
            if any(p.search(line) for p in wanted) and not any(p.search(line) for p in unwanted):
                findings.append({"container": name, "line": line})
    return findings


def project_logs(run, project, lines):
    """The last ``lines`` lines (stdout and stderr, in order) of every container of the project."""
    rc, out, err = run(
        ["docker", "ps", "--all", "--filter", "label=com.docker.compose.project=%s" % project, "--format", "{{.Names}}"]
    )
    if rc != 0:
        raise VerifyError("docker ps failed: %s" % (err or out).strip())
    logs = {}
    for name in sorted(out.split()):
        rc, out_, err_ = run(["docker", "logs", "--tail", str(int(lines)), name])
        if rc != 0:
            raise VerifyError("docker logs %s failed: %s" % (name, (err_ or out_).strip()))
        # docker logs writes the container's stdout and stderr to ours; order between the two
        # streams is lost, which does not matter for a scan.
        logs[name] = [line for line in (out_ + err_).splitlines() if line.strip()]
    return logs


def judge(now_counts, found, compare_to, allow_decrease, logs, patterns, ignore):
    """Everything verify.yml concludes, as data: reference, problems, findings, failures."""
    reference = choose(found, compare_to)
    problems = compare(reference, now_counts, allow_decrease) if reference else []
    findings = scan_logs(logs, patterns, ignore)
    failures = []
    if problems:
        failures.append(
            "rows lost since the %s %s (%s): %s"
            % (
                "verified backup" if reference["source"] == "backup" else "previous verify",
                reference["name"],
                reference["at"],
                counts.describe(problems),
            )
        )
    if findings:
        failures.append(
            "%d error line(s) in the application's last log lines, first: %s: %s"
            % (len(findings), findings[0]["container"], findings[0]["line"][:300])
        )
    return {"reference": reference, "problems": problems, "log_findings": findings, "failures": failures}


def summary(verdict, snapshot_written, snapshot_path):
    """Finished report lines: what was compared with, and the outcome."""
    reference = verdict["reference"]
    lines = []
    if reference is None:
        lines.append("counts compared with: nothing yet (no verified backup, no earlier verify)")
    else:
        what = "verified backup" if reference["source"] == "backup" else "previous verify"
        lines.append("counts compared with: the %s %s (%s)" % (what, reference["name"], reference["at"]))
        lines.append(
            "counts: "
            + ("no critical table lost a row" if not verdict["problems"] else counts.describe(verdict["problems"]))
        )
    lines.append(
        "logs: "
        + (
            "no error line in the last lines"
            if not verdict["log_findings"]
            else "%d error line(s) found" % len(verdict["log_findings"])
        )
    )
    if snapshot_written:
        lines.append("snapshot: these counts are the next verify's reference (%s)" % snapshot_path)
    return lines


def task(run, p, check_mode=False):
    """What the verify_judge module does with its options ``p``: judge the counts against the
    newest known-good reference and scan the project's logs; with no failure, write the snapshot
    (not in check mode) unless it already holds these counts. Returns the module's result;
    raises :class:`VerifyError` or ValueError for bad input."""
    now_counts = counts.snapshot(p["counts"], "counts")
    found = references(p["backup_dir"], p["database"], p["snapshot"])
    logs = project_logs(run, p["project"], p["log_lines"])
    verdict = judge(
        now_counts,
        found,
        p["compare_to"],
        p["allow_decrease"],
        logs,
        p["log_patterns"] or list(DEFAULT_LOG_PATTERNS),
        p["log_ignore"],
    )
    previous = next((r for r in found if r["source"] == "snapshot"), None)
    write = not verdict["failures"] and (previous is None or previous["counts"] != now_counts)
    if write and not check_mode:
        write_snapshot(
            p["snapshot"], p["project"], p["database"], now_counts, datetime.datetime.now(datetime.timezone.utc)
        )
    return dict(
        changed=write, logs=logs, snapshot_written=write, summary=summary(verdict, write, p["snapshot"]), **verdict
    )
