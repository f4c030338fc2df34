#!/usr/bin/env python3
"""Downtime of the safe update against the protocol's manual SAFE UPDATE PROCEDURE.

One throwaway git-backed stack (the demo app, scale 1), the same kind of change for both
(a new release pushed to the app's remote), measured in one run:

  manual    backup (pg_dump | gzip), git pull, down, build --no-cache, up -d
  datasafe  ansible-playbook playbooks/safe_update.yml

Downtime is the time GET /health does not answer 200, as seen by a prober polling every
50 ms on loopback from the moment the run starts until the new release answers. Prints one
line per run, every round's ratio and the spread (bench/spread.py) and, last,
``update ratio R (datasafe A s / manual B s downtime)``: medians of
BENCH_UPDATE_ROUNDS (default 5) alternating rounds, on a quiet machine: the test bed's other
stacks (the demo, the benchmark database) are stopped for the measurement and started again
afterwards (BENCH_UPDATE_QUIET=0 leaves them running).
"""

import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import phases  # noqa: E402
import spread  # noqa: E402
from quiet import QuietMachine  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAME = "benchupdate"
ENV = dict(
    os.environ,
    MOLECULE_SCENARIO_NAME=NAME,
    DATASAFE_TEST_SLOT="20",
    MOLECULE_PROJECT_DIRECTORY=REPO,
    ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
    PROFILE_TASKS_TASK_OUTPUT_LIMIT="all",
)
INVENTORY = os.path.join(REPO, "molecule", "resources", "inventory", "hosts.yml")
ROOT = "/var/tmp/datasafe-molecule/%s" % NAME
PROJECT = "dstest-%s" % NAME
APP = os.path.join(ROOT, "app")
COMPOSE_ENV = {
    "COMPOSE_PROJECT_NAME": PROJECT,
    "LMS_DB_CONTAINER": "%s-pg" % PROJECT,
    "LMS_BACKEND_CONTAINER": "%s-backend" % PROJECT,
    "LMS_DB_PORT": "56200",
    "LMS_BACKEND_PORT": "56201",
    "LMS_BACKEND_IMAGE": "lms-backend:%s" % PROJECT,
}
HEALTH = "http://127.0.0.1:56201/health"


def run(argv, env=None, **kwargs):
    proc = subprocess.run(argv, env=env or ENV, capture_output=True, text=True, check=False, **kwargs)
    if proc.returncode != 0:
        sys.exit("bench_update: %s failed:\n%s%s" % (" ".join(argv[:4]), proc.stdout[-2000:], proc.stderr[-2000:]))
    return proc.stdout


class Prober:
    """Polls the health endpoint; downtime is the span from the first non-200 to the first 200
    of the wanted version after it (bounded: stops on request or after max_seconds)."""

    def __init__(self, want_version, max_seconds=900):
        self.want, self.max_seconds = want_version, max_seconds
        self.first_down = self.back_up = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _status(self):
        try:
            with urllib.request.urlopen(HEALTH, timeout=1) as response:
                return response.status, json.loads(response.read()).get("version")
        except Exception:  # refused, reset, 5xx, timeout: all "not answering"
            return None, None

    def _loop(self):
        deadline = time.monotonic() + self.max_seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            status, version = self._status()
            now = time.monotonic()
            if status != 200 and self.first_down is None:
                self.first_down = now
            if status == 200 and version == self.want and self.first_down is not None:
                self.back_up = now
                return
            time.sleep(0.05)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._thread.join(timeout=120)
        self._stop.set()

    @property
    def downtime(self):
        if self.first_down is None:
            return 0.0
        if self.back_up is None:
            sys.exit("bench_update: the new release never answered 200 on %s" % HEALTH)
        return self.back_up - self.first_down


def push_release(version):
    dev = os.path.join(ROOT, "dev")
    if not os.path.isdir(dev):
        run(["git", "clone", "-q", os.path.join(ROOT, "remote.git"), dev])
    with open(os.path.join(dev, "backend", "VERSION"), "w") as handle:
        handle.write(version + "\n")
    git = ["git", "-C", dev, "-c", "user.name=bench", "-c", "user.email=bench@datasafe.invalid"]
    run(git + ["commit", "-q", "-am", "release %s" % version])
    run(git + ["push", "-q", "origin", "HEAD:main"])


def manual_update(version):
    """The protocol's SAFE UPDATE PROCEDURE, command for command."""
    env = dict(ENV, **COMPOSE_ENV)
    compose = ["docker", "compose", "-f", os.path.join(APP, "docker-compose.prod.yml")]
    os.makedirs(os.path.join(ROOT, "manual-backups"), exist_ok=True)
    stamp = time.strftime("%Y%m%d_%H%M%S")
    dump = os.path.join(ROOT, "manual-backups", "BEFORE_UPDATE_%s.sql" % stamp)
    with Prober(version) as probe:
        start = time.monotonic()
        with open(dump, "w") as out:
            subprocess.run(
                ["docker", "exec", COMPOSE_ENV["LMS_DB_CONTAINER"], "pg_dump", "-U", "lms_user", "lms_slncity"],
                stdout=out,
                check=True,
            )
        run(["gzip", dump])
        run(["git", "-C", APP, "pull", "-q", "origin", "main"], env=env)
        run(compose + ["down"], env=env)
        run(compose + ["build", "--no-cache"], env=env)
        run(compose + ["up", "-d"], env=env)
    return probe.downtime, probe.back_up - start


def datasafe_update(version):
    with Prober(version) as probe:
        start = time.monotonic()
        output = run(["ansible-playbook", "-i", INVENTORY, os.path.join(REPO, "playbooks", "safe_update.yml")])
    # Where the time went: every task from the old stack's stop to the new release's health check.
    times = phases.task_times(output)
    names = [name for _, name in times]
    first = next(i for i, name in enumerate(names) if "Stop the old stack" in name)
    last = next(i for i, name in enumerate(names) if "health endpoint" in name.lower() and i > first)
    for seconds, name in times[first : last + 1]:
        print("  %5.2f s  %s" % (seconds, name), flush=True)
    return probe.downtime, probe.back_up - start


def settle():
    """Let Docker's healthchecks settle (outside the measurement): the safe update refuses to
    start on a stack that is not healthy yet, and each round starts from a serving stack."""
    run(
        ["docker", "compose", "-f", os.path.join(APP, "docker-compose.prod.yml"), "up", "-d", "--wait"],
        env=dict(ENV, **COMPOSE_ENV),
    )


def main():
    rounds = int(os.environ.get("BENCH_UPDATE_ROUNDS", "5"))
    if rounds < 1:
        sys.exit("bench_update: BENCH_UPDATE_ROUNDS must be 1 or more")
    manual, ours, loads = [], [], []
    with QuietMachine(os.environ.get("BENCH_UPDATE_QUIET", "1") != "0", say=lambda line: print(line, flush=True)):
        run(["ansible-playbook", "-i", INVENTORY, os.path.join(REPO, "molecule", "resources", "create.yml")])
        try:
            # Alternating order (manual first, then datasafe first, ...), a new release each
            # time, so neither side always meets a warmer machine; the ratio is of the medians.
            for number in range(rounds):
                order = ("manual", "datasafe") if number % 2 == 0 else ("datasafe", "manual")
                for side in order:
                    version = "2.%d.%d" % (number, len(manual) + len(ours))
                    push_release(version)
                    down, total = (manual_update if side == "manual" else datasafe_update)(version)
                    (manual if side == "manual" else ours).append(down)
                    if side == order[1]:
                        loads.append(spread.loadavg())
                    print(
                        "round %d %-8s downtime %6.2f s (whole procedure %6.1f s)" % (number + 1, side, down, total),
                        flush=True,
                    )
                    settle()
        finally:
            subprocess.run(
                [os.path.join(REPO, "testbed", "remove-test-stack.sh"), PROJECT, ROOT],
                capture_output=True,
                check=False,
            )
    for line in spread.lines(ours, manual, loads, digits=2):
        print(line)
    ours_down, manual_down = statistics.median(ours), statistics.median(manual)
    print(
        "update ratio %.2f (datasafe %.2f s / manual %.2f s downtime)"
        % (ours_down / manual_down, ours_down, manual_down)
    )


if __name__ == "__main__":
    main()
