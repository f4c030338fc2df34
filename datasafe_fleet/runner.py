"""Run a datasafe playbook over a fleet with ansible-runner (the engine AWX uses) and report per host.

``run_fleet()`` runs one playbook over the inventory through ``ansible_runner.run``, keeps the
run's artifacts (``<artifacts>/artifacts/<ident>/``: stdout, every job event as JSON, rc,
status), streams one line per host and task result as the events arrive, and writes a fleet
report (``fleet-report.json`` beside the artifacts): per host what ran, what changed, what
failed and why, and which hosts the play should have reached but never did (a rollout stopped
at an earlier site's failure leaves them untouched).
"""

import datetime
import json
import os
import re
import sys

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
# The fact roles/datasafe_status sets: its HTML report's path on the host (and the controller's
# copy, "local"), its verdict and failures; it becomes the host's "status_report" in the report.
STATUS_REPORT_FACT = "datasafe_status_report_file"
RESULT_EVENTS = {
    "runner_on_ok": "ok",
    "runner_on_failed": "failed",
    "runner_on_unreachable": "unreachable",
    "runner_on_skipped": "skipped",
}


class FleetError(Exception):
    """Bad input (an unknown playbook, a missing inventory): nothing was run."""


def _playbook_path(playbook):
    candidates = [
        playbook,
        os.path.join(REPO, "playbooks", playbook),
        os.path.join(REPO, "playbooks", playbook + ".yml"),
    ]
    for path in candidates:
        if os.path.isfile(path):
            return os.path.abspath(path)
    known = sorted(n[:-4] for n in os.listdir(os.path.join(REPO, "playbooks")) if n.endswith(".yml"))
    raise FleetError("no playbook '%s': give a path or one of datasafe's playbooks (%s)" % (playbook, ", ".join(known)))


def _why(result):
    """The reason a task failed, in one line (msg, else the command's stderr, else the rc)."""
    for key in ("msg", "stderr", "reason"):
        value = result.get(key)
        if value:
            text = value if isinstance(value, str) else json.dumps(value)
            return re.sub(r"\s+", " ", text).strip()[:2000]
    return "rc=%s" % result.get("rc", "?")


class FleetReport:
    """Folds ansible-runner's job events into per-host results, and streams them as they come."""

    def __init__(self, stream=None):
        self.stream = stream
        self.hosts = {}
        self.patterns = []
        self.stats = {}

    def host(self, name):
        return self.hosts.setdefault(
            name, {"ran": [], "changed": [], "failed": [], "unreachable": False, "ok": 0, "skipped": 0}
        )

    def __call__(self, event):
        kind = event.get("event")
        data = event.get("event_data") or {}
        if kind == "playbook_on_play_start" and data.get("pattern"):
            self.patterns.append(data["pattern"])
        elif kind in RESULT_EVENTS and data.get("host"):
            self._result(RESULT_EVENTS[kind], data)
        elif kind == "playbook_on_stats":
            self.stats = {
                key: data.get(key) or {} for key in ("ok", "changed", "failures", "dark", "skipped", "rescued")
            }
        return True  # keep the event in the artifacts

    def _result(self, outcome, data):
        host = self.host(data["host"])
        task = data.get("task") or data.get("task_action") or "?"
        if data.get("role"):
            task = "%s : %s" % (data["role"], task)
        result = data.get("res") or {}
        ignored = data.get("ignore_errors") and outcome == "failed"
        if outcome == "skipped":
            host["skipped"] += 1
        else:
            host["ran"].append(task)
        if outcome == "ok":
            host["ok"] += 1
        if outcome in ("ok", "failed") and result.get("changed"):
            host["changed"].append(task)
        shown = (result.get("ansible_facts") or {}).get(STATUS_REPORT_FACT) if outcome == "ok" else None
        if isinstance(shown, dict):  # playbooks/status.yml wrote its HTML report on this host
            host["status_report"] = shown
        if outcome in ("failed", "unreachable") and not ignored:
            host["failed"].append({"task": task, "why": _why(result)})
            host["unreachable"] = host["unreachable"] or outcome == "unreachable"
        if self.stream and outcome != "skipped":
            word = {"ok": "changed" if result.get("changed") else "ok"}.get(outcome, outcome.upper())
            line = "%-12s %-11s %s" % (data["host"], word, task)
            if outcome in ("failed", "unreachable"):
                line += ": " + _why(result)
            self.stream.write(line + "\n")
            self.stream.flush()

    def verdicts(self, expected):
        """Per host: failed, unreachable, changed, ok, or not reached (expected but no result).

        ``failed`` lists every task that failed, in order, a rescued one too (a rescue block ran
        for it: the safe update's rollback); the verdict comes from the play's final statistics, so a
        host whose failure was rescued and that then succeeded is not "failed". ``why`` is the last
        failure's reason.
        """
        failures, dark, rescued = (self.stats.get(k, {}) for k in ("failures", "dark", "rescued"))
        report = {}
        for name in sorted(set(expected) | set(self.hosts)):
            host = self.hosts.get(name)
            if host is None:
                report[name] = {"result": "not reached", "ran": [], "changed": [], "failed": [], "why": None}
                continue
            if dark.get(name) or (not self.stats and host["unreachable"]):
                result = "unreachable"
            elif failures.get(name) or (not self.stats and host["failed"]):
                result = "failed"
            elif host["changed"]:
                result = "changed"
            else:
                result = "ok"
            report[name] = {
                "result": result,
                "ran": host["ran"],
                "changed": host["changed"],
                "failed": host["failed"],
                "rescued": rescued.get(name, 0),
                "why": host["failed"][-1]["why"] if result in ("failed", "unreachable") and host["failed"] else None,
            }
            if "status_report" in host:
                report[name]["status_report"] = host["status_report"]
        return report


def expected_hosts(inventories, patterns, limit):
    """The hosts the plays target, after --limit, read with ansible's own inventory code."""
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader

    manager = InventoryManager(loader=DataLoader(), sources=list(inventories))
    if limit:
        manager.subset(limit)
    names = set()
    for pattern in patterns or ["all"]:
        if "{{" in pattern:  # a templated play pattern cannot be resolved here: count what ran
            continue
        names.update(host.name for host in manager.get_hosts(pattern))
    return sorted(names)


def run_fleet(
    playbook,
    inventories,
    artifacts,
    limit=None,
    extravars=None,
    check=False,
    stream=None,
    ident=None,
    report_path=None,
):
    """Run ``playbook`` over ``inventories``; returns the fleet report (also written as JSON)."""
    import ansible_runner

    playbook = _playbook_path(playbook)
    inventories = [os.path.abspath(i) for i in inventories] or [os.path.join(REPO, "inventory", "hosts.yml")]
    for inventory in inventories:
        if not os.path.exists(inventory):
            raise FleetError("no inventory at %s: pass --inventory with an existing file or directory" % inventory)
    os.makedirs(artifacts, exist_ok=True)
    started = datetime.datetime.now(datetime.timezone.utc)
    ident = ident or "%s-%s" % (started.strftime("%Y%m%dT%H%M%S%fZ"), os.path.splitext(os.path.basename(playbook))[0])
    folder = FleetReport(stream=stream)
    extravars = dict(extravars or {})
    if os.path.basename(playbook) == "status.yml":  # each host's HTML report, copied beside the run
        extravars.setdefault(
            "datasafe_status_report_fetch_dir",
            os.path.join(os.path.abspath(artifacts), "artifacts", ident, "status-reports"),
        )
    envvars = {
        "ANSIBLE_CONFIG": os.environ.get("ANSIBLE_CONFIG") or os.path.join(REPO, "ansible.cfg"),
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_NOCOLOR": "1",
        # ansible-playbook from the same environment as this runner, wherever that is (.venv, an EE).
        "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
    }
    runner = ansible_runner.run(
        private_data_dir=os.path.abspath(artifacts),
        project_dir=REPO,
        playbook=playbook,
        inventory=inventories,
        limit=limit,
        extravars=extravars,
        cmdline="--check" if check else None,
        envvars=envvars,
        ident=ident,
        event_handler=folder,
        quiet=True,
        rotate_artifacts=0,
    )
    finished = datetime.datetime.now(datetime.timezone.utc)
    hosts = folder.verdicts(expected_hosts(inventories, folder.patterns, limit))
    report = {
        "playbook": os.path.relpath(playbook, REPO) if playbook.startswith(REPO + os.sep) else playbook,
        "inventory": inventories,
        "limit": limit,
        "check_mode": check,
        "status": runner.status,
        "rc": runner.rc,
        "started": started.isoformat(),
        "finished": finished.isoformat(),
        "artifacts": runner.config.artifact_dir,
        "summary": {
            key: sorted(n for n, h in hosts.items() if h["result"] == key)
            for key in ("ok", "changed", "failed", "unreachable", "not reached")
        },
        "hosts": hosts,
    }
    paths = [os.path.join(runner.config.artifact_dir, "fleet-report.json")]
    if report_path:
        paths.append(report_path)
    for path in paths:
        tmp = path + ".tmp"
        with open(tmp, "w") as handle:
            json.dump(report, handle, indent=2, sort_keys=True)
            handle.write("\n")
        os.replace(tmp, path)
    return report
